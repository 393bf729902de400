//! Subnet IP headroom, one scenario per module: the read itself against moto ([`reading`]),
//! and end to end on the testbed: real Fargate Jobs (the stand-in takes one moto ENI per pod
//! from the two Fargate /28s), the real binary, and the figures it publishes read back from
//! moto through aws-sdk-cloudwatch → CBOR bridge → moto.
//!
//! The Fargate namespace and moto's subnets are shared by the testbed scenarios, so they
//! take turns ([`harness::SERIAL`]) and each starts by waiting for the Fargate subnets to
//! be empty. Every run publishes into its own metrics namespace, so a value read back
//! belongs to exactly one run.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod emergency;
mod forecast;
mod harness;
mod ips_return;
mod low_headroom;
mod metrics_detail;
mod metrics_outage;
mod published;
mod reading;
mod stuck;

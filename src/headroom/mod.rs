//! Subnet IP headroom: the free IPv4 addresses of the subnets a cluster's pods draw from
//! ([`subnets`]), and how long they last at the rate Fargate pods are created
//! ([`forecast`]).

pub mod forecast;
pub mod subnets;

pub use forecast::Forecast;
pub use subnets::Headroom;

//! Shared harness for the Rust integration tests: the running testbed ([`testbed`]), the
//! real binary behind the Lambda Runtime Interface Emulator ([`lambda`]), and moto on its
//! own for the tests that need AWS APIs without the whole testbed ([`moto`]).

#![allow(dead_code, unused_imports)] // each test binary uses a different part of the harness

pub mod cli;
pub mod lambda;
pub mod moto;
pub mod testbed;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;

pub use lambda::{Invocation, Lambda};
pub use testbed::{End, Fixtures, RUN_LABEL, Testbed, ago, merge, mins, set};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A loopback port nothing listens on (yet).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// An AWS configuration for one endpoint with static credentials.
pub async fn aws_config(
    region: &str,
    endpoint: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> aws_types::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_types::region::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "testbed",
        ))
        .load()
        .await
}

/// Waits until `check` holds, polling; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > end {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

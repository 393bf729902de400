//! The Lambda entry point: init tracing → build clients once → serve invocations.
//!
//! Settings come from `REAPER_*` environment variables (read once at init), the invocation
//! event may override the clusters and dry-run ([`crate::config::event`]). The handler returns the
//! JSON report; it fails (Lambda `Errors` metric, retries) when the configuration is invalid
//! or a cluster could not be processed at all, with a [`Diagnostic`] whose `errorType` says
//! why (`ConfigError`, `ClusterFailed.Forbidden`, ...).

use std::time::SystemTime;

use aws_types::SdkConfig;
use clap::Parser;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use tokio::time::Instant;
use tracing::error;

use crate::Error;
use crate::clock::SystemClock;
use crate::config::event::Overrides;
use crate::config::{Config, Options};
use crate::deadline::Deadline;
use crate::fanout;
use crate::prune::RunContext;
use crate::prune::tally::Progress;

/// What every invocation shares.
#[derive(Debug)]
pub struct Deps {
    /// Settings from the environment.
    pub options: Options,
    /// Base AWS configuration.
    pub aws: SdkConfig,
}

#[derive(Parser)]
struct EnvOnly {
    #[command(flatten)]
    options: Options,
}

/// Runs the Lambda runtime loop until the environment shuts it down.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let options = EnvOnly::try_parse_from(["eks-reaper"])?.options;
    let deps = Deps {
        options,
        aws: crate::run::load_aws_config().await,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event| handler(event, deps))).await
}

/// Handles one invocation.
///
/// An SQS event (the queue's event source mapping) runs the cluster of each record
/// ([`fanout::consume`]); any other event, with a queue configured, plans the fleet onto the
/// queue ([`fanout::plan`]); without one, it runs every cluster here.
pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    let end = instant_at(context.deadline());
    // Per invocation: a warm container serves many, and each counts its own progress.
    let progress = Progress::default();
    let run = |config: &Config| RunContext {
        aws: &deps.aws,
        deadline: Deadline::bounded(Some(end), config.max_run_time, config.deadline_margin),
        clock: &SystemClock,
        progress: &progress,
        json_logs: crate::report::json_logs_from_env(),
        observer: &crate::prune::observe::Unobserved,
        failures_printed: false,
    };
    if let Some(records) = fanout::sqs_records(&payload) {
        return Ok(fanout::consume(records, &deps.options, run).await);
    }
    let config = Overrides::from_event(&payload)
        .and_then(|overrides| Config::resolve(&deps.options, &overrides))
        .inspect_err(
            |e| error!(errorKind = "ConfigError", error = %e, field = e.field(), "invalid configuration; nothing done"),
        )?;
    if let Some(queue_url) = &config.queue_url {
        let plan = fanout::plan(&config, queue_url, &context.request_id, run(&config)).await;
        return Ok(serde_json::to_value(&plan).unwrap_or(Value::Null));
    }
    let report = crate::run::outcome(crate::run::run(&config, run(&config)).await)?;
    Ok(serde_json::to_value(&report).unwrap_or(Value::Null))
}

fn instant_at(at: SystemTime) -> Instant {
    let now = Instant::now();
    match at.duration_since(SystemTime::now()) {
        Ok(left) => now + left,
        Err(_) => now,
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.kind(),
            error_message: e.to_string(),
        }
    }
}

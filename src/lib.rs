//! eks-reaper prunes finished Kubernetes Jobs and Pods on Amazon EKS from outside the
//! cluster, and watches the subnet IP headroom that finished Fargate pods eat.
//!
//! # Layout
//!
//! The modules follow one run, top to bottom:
//!
//! 1. [`event`] — the Lambda input (EventBridge Scheduler raw input, classic scheduled
//!    event, or nothing) becomes [`event::Overrides`].
//! 2. [`config`] — environment variables / CLI flags ([`config::Options`]) plus the
//!    overrides become one validated [`config::Config`]. A bad value stops the run here,
//!    before anything is deleted.
//! 3. [`run`] — processes the clusters concurrently (bounded), each through [`prune`]:
//!    - [`eks`] — `DescribeCluster` (endpoint, CA, status), a presigned-STS bearer token
//!      ([`eks::token`]) re-signed before EKS's 15 minutes run out ([`eks::client`]);
//!    - [`subnets`] — free IPv4 addresses of the cluster's and Fargate profiles' subnets;
//!      low headroom gives finished Fargate pods a shorter retention;
//!    - [`scan`] — paginated lists, each object decided by the pure [`policy`] as its page
//!      arrives; due ones stream on as small [`scan::Candidate`]s. Three passes (Jobs,
//!      Fargate pods, other pods), one at a time: a pass's deletions finish before the next
//!      pass lists, and the pod passes know which Jobs keep their pods;
//!    - [`delete`] — bounded concurrent DELETEs with preconditions, through [`api`], which
//!      counts requests and honours 429 `Retry-After`; the [`deadline`] stops new work in
//!      time;
//!    - [`forecast`] — hours to IP exhaustion from the Fargate pod creation rate.
//! 4. [`metrics`] — the clusters' figures to CloudWatch (`PutMetricData`) or EMF log lines.
//! 5. [`report`] — the JSON report (Lambda return value / CLI output) and one summary log
//!    line.
//!
//! The entry points are thin: [`lambda`] (Lambda runtime) and [`cli`] (command line); both
//! end in [`run`].

pub mod api;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod delete;
pub mod eks;
pub mod event;
pub mod forecast;
pub mod lambda;
pub mod metrics;
pub mod policy;
pub mod prune;
pub mod report;
pub mod scan;
pub mod subnets;

use aws_types::SdkConfig;
use futures::StreamExt;
use jiff::Timestamp;
use tokio::time::Instant;

use crate::config::Config;
use crate::deadline::Deadline;
use crate::report::{Report, RunStatus};

/// Why a run failed as a whole.
#[derive(thiserror::Error)]
pub enum Error {
    /// The configuration or the event is invalid; nothing was done.
    #[error("invalid configuration: {0}")]
    Config(#[from] config::ConfigError),
    /// At least one cluster could not be processed at all (the others were).
    #[error("{failed} of {total} cluster(s) could not be processed: {details}")]
    ClustersFailed {
        /// Failed clusters.
        failed: usize,
        /// All clusters.
        total: usize,
        /// `cluster: kind: message` per failed cluster.
        details: String,
        /// The first failure's kind.
        kind: String,
        /// The full report, for callers that still want to show it.
        report: Box<Report>,
    },
}

impl Error {
    /// A short classification: Lambda's `errorType`, the CLI's exit reason.
    pub fn kind(&self) -> String {
        match self {
            Error::Config(_) => "ConfigError".to_owned(),
            Error::ClustersFailed { kind, .. } => format!("ClusterFailed.{kind}"),
        }
    }
}

/// The same one line as `Display`: the Lambda runtime logs a failed invocation's error with
/// `Debug`, and that line should name the failure, not dump the whole report.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs one pruning pass over every configured cluster and reports on it.
///
/// `aws` is the base AWS configuration (built once per process); `deadline` bounds the
/// run. Clusters are processed `config.cluster_concurrency` at a time; one cluster's failure
/// is recorded in its report entry and does not stop the others.
pub async fn run(config: &Config, aws: &SdkConfig, deadline: Deadline) -> Report {
    let started_at = Timestamp::now();
    let started = Instant::now();
    let clusters: Vec<_> = futures::stream::iter(&config.clusters)
        .map(|target| prune::prune_cluster(target, config, aws, deadline))
        .buffered(config.cluster_concurrency.max(1))
        .collect()
        .await;

    let sink = metrics::Sink::new(
        match config.metrics.sink {
            config::MetricsSinkKind::CloudWatch => metrics::SinkKind::CloudWatch,
            config::MetricsSinkKind::Emf => metrics::SinkKind::Emf,
            config::MetricsSinkKind::None => metrics::SinkKind::None,
        },
        config.metrics.namespace.clone(),
        aws,
    );
    let figures: Vec<_> = clusters
        .iter()
        .map(|c| c.figures(config.metrics.per_namespace))
        .collect();
    // After pruning: metrics may use the margin, up to the end of the run.
    let published = metrics::publish(&sink, &figures, &deadline.end_of_run()).await;

    let mut report = Report {
        status: RunStatus::Ok,
        dry_run: config.dry_run.as_str(),
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        clusters,
        metrics: Some(published),
    };
    if report.failed_clusters().next().is_some() {
        report.status = RunStatus::Failed;
    }
    report.log_summary();
    report
}

/// Turns a report into the run's result: an error when a cluster could not be processed.
pub fn outcome(report: Report) -> Result<Report> {
    let failed: Vec<_> = report.failed_clusters().collect();
    if failed.is_empty() {
        return Ok(report);
    }
    let details = failed
        .iter()
        .map(|c| {
            format!(
                "{}: {}: {}",
                c.cluster,
                c.error_kind.as_deref().unwrap_or("Error"),
                c.error.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let kind = failed[0]
        .error_kind
        .clone()
        .unwrap_or_else(|| "Error".to_owned());
    let failed = failed.len();
    let total = report.clusters.len();
    Err(Error::ClustersFailed {
        failed,
        total,
        details,
        kind,
        report: Box::new(report),
    })
}

/// Loads the base AWS configuration from the environment (region, credentials, endpoint
/// overrides such as `AWS_ENDPOINT_URL`).
pub async fn load_aws_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ClusterReport;

    #[test]
    fn a_failed_run_debugs_as_its_one_line_message_not_the_report() {
        let mut cluster = ClusterReport::new("etl", None, false);
        cluster.fail("Forbidden", "listing jobs: HTTP 403".to_owned());
        let report = Report {
            status: RunStatus::Failed,
            dry_run: "off",
            started_at: Timestamp::UNIX_EPOCH,
            duration_ms: 1,
            clusters: vec![cluster],
            metrics: None,
        };
        let e = outcome(report).expect_err("a failed cluster fails the run");
        let debug = format!("{e:?}");
        assert_eq!(debug, e.to_string());
        assert_eq!(
            debug,
            "1 of 1 cluster(s) could not be processed: etl: Forbidden: listing jobs: HTTP 403"
        );
    }
}

//! eks-reaper prunes finished Kubernetes Jobs and Pods on Amazon EKS from outside the
//! cluster, and watches the subnet IP headroom that finished Fargate pods eat.
//!
//! # Layout
//!
//! The modules follow one run, top to bottom; each layer uses only the ones above it.
//!
//! 1. [`config`] — the Lambda input ([`config::event`]: EventBridge Scheduler raw input,
//!    classic scheduled event, or nothing) and the environment variables / CLI flags
//!    ([`config::Options`], typed by [`config::values`]) become one validated
//!    [`config::Config`]. A bad value stops the run here, before anything is deleted.
//! 2. [`run`] — adds the clusters found by tag ([`eks::discover`]) to the named ones,
//!    processes them concurrently (bounded), each through [`prune`], then publishes the
//!    figures and builds the report:
//!    - [`eks`] — one `DescribeCluster` (status, endpoint, CA, subnets), the Fargate
//!      profiles' subnets ([`eks::fargate`]), a presigned-STS bearer token
//!      ([`eks::token`]) re-signed before EKS's 15 minutes run out ([`eks::client`]);
//!    - [`headroom`] — free IPv4 addresses of those subnets ([`headroom::subnets`]); low
//!      headroom puts the policy in [`prune::policy::Mode::LowHeadroom`]; and hours to
//!      exhaustion from the Fargate pod creation rate ([`headroom::forecast`]);
//!    - [`prune`] — three passes ([`prune::pass`]: Jobs, Fargate pods, other pods), one at a
//!      time: paginated lists ([`prune::scan`]), each object decided by the pure
//!      [`prune::policy`] as its page arrives, due ones streamed as small
//!      [`prune::pass::Candidate`]s to concurrent DELETEs with preconditions
//!      ([`prune::delete`]) under an adaptive limit ([`prune::concurrency`]: AIMD on 429s
//!      and latency, `REAPER_CONCURRENCY` as ceiling) through [`api`] (request counts, 429
//!      `Retry-After`); every
//!      decision and outcome counted in a [`prune::tally::Tally`]; the [`deadline`] stops
//!      new work in time; a [`prune::observe::Observer`] may watch the passes (the CLI's
//!      progress bars and `plan`; the Lambda watches nothing).
//! 3. [`metrics`] — the report's figures ([`metrics::figures`]) as the fixed metric set
//!    ([`metrics::list`]) through a [`metrics::Sink`]: CloudWatch `PutMetricData` or EMF
//!    log lines.
//! 4. [`report`] — the output only: the JSON report (Lambda return value / CLI output) and
//!    one summary log line.
//!
//! Shared below them: [`failure`] (why a cluster or a deletion failed, as typed kinds) and
//! [`clock`] (where the time is read). The entry points are thin: [`lambda`] (Lambda
//! runtime) and [`cli`] (command line: `run` and `plan` end in [`run`]; `headroom` reads
//! [`eks`] and [`headroom`] only; `token` prints [`eks::token`]'s token for kubectl; the
//! tables and the terminal's progress bars).

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod deadline;
pub mod eks;
pub mod failure;
pub mod headroom;
pub mod lambda;
pub mod metrics;
pub mod prune;
pub mod report;
pub mod run;

#[cfg(test)]
pub(crate) mod testing;

use crate::report::Report;

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
        /// `cluster: message` per failed cluster, joined by `; `.
        details: String,
        /// The first failure's kind.
        kind: failure::ClusterFailure,
        /// The full report, for callers that still want to show it.
        report: Box<Report>,
    },
    /// Cluster discovery could not search a region: clusters there may have gone unpruned.
    #[error("cluster discovery failed: {details}")]
    DiscoveryFailed {
        /// What failed, per region.
        details: String,
        /// The full report (the clusters found elsewhere were pruned).
        report: Box<Report>,
    },
}

impl Error {
    /// A short classification: Lambda's `errorType`, the CLI's exit reason.
    pub fn kind(&self) -> String {
        match self {
            Error::Config(_) => "ConfigError".to_owned(),
            Error::ClustersFailed { kind, .. } => format!("ClusterFailed.{kind}"),
            Error::DiscoveryFailed { .. } => "DiscoveryFailed".to_owned(),
        }
    }

    /// One line per failure, as a person reads them: each failed cluster's one-line message
    /// after its name, or the configuration or discovery error.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Error::ClustersFailed { report, .. } => report
                .failed_clusters()
                .map(|c| format!("{}: {}", c.cluster, c.error.as_deref().unwrap_or("")))
                .collect(),
            other => vec![other.to_string()],
        }
    }
}

/// One line, the kind then the message: the Lambda runtime logs a failed invocation's error
/// with `Debug`, and that line should name the failure, not dump the whole report.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {self}", self.kind())
    }
}

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

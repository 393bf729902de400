//! eks-reaper prunes finished Kubernetes Jobs and Pods on Amazon EKS from outside the
//! cluster, and watches the subnet IP headroom that finished Fargate pods eat.
//!
//! # Layout
//!
//! One run, as the data flows: the Lambda input or the command line becomes a validated
//! [`config::Config`] ([`config`]; a bad value stops the run before anything is deleted);
//! [`run`] adds the clusters found by tag ([`eks::discover`]) and processes them
//! concurrently (bounded), each through [`prune::prune_cluster`]: connect ([`eks`]: one
//! `DescribeCluster`, a presigned-STS token re-signed before EKS's 15 minutes) → read the
//! subnet headroom ([`headroom`]), which decides the [`policy::Mode`] → the namespaces'
//! annotations (their own retentions and opt-outs, [`policy::NamespaceIndex`]) → three
//! passes (Jobs, Fargate pods, other pods), each a paginated list whose objects the pure
//! [`policy`] judges as their page arrives, due ones streamed to concurrent DELETEs with
//! preconditions under an adaptive limit through [`api`] ([`prune`]) → one Event per
//! namespace with deletions, if asked → judge the outcome → forecast exhaustion
//! ([`headroom::forecast`]). Then [`metrics`] publishes the figures and [`report`] builds
//! the JSON report and the run's summary log line. [`lambda`] and [`cli`] are the entry
//! points.
//!
//! The modules form layers; each uses only the layers above it (`scripts/test` checks that
//! no two top-level modules depend on each other in a cycle):
//!
//! | Layer | Modules | What |
//! |---|---|---|
//! | 1 | [`clock`], [`deadline`], [`failure`], [`identity`], [`policy`], [`protobuf`] | time, the run's deadline, typed failures and their hints, a cluster's account/Region/name, the pure keep/delete policy, the Kubernetes protobuf messages read |
//! | 2 | [`config`] | settings and the Lambda input → one validated `Config` (the policy's `Settings` among them) |
//! | 3 | [`eks`] | DescribeCluster, discovery, Fargate profiles, the token, the Kubernetes client |
//! | 4 | [`api`], [`headroom`] | Kubernetes requests bounded by the deadline; subnet headroom and the forecast |
//! | 5 | [`report`] | the report's types, the JSON report and summary line |
//! | 6 | [`prune`] | one cluster's pipeline: passes, scans, deletions, tallies |
//! | 7 | [`metrics`] | the report's figures as CloudWatch metrics or EMF lines |
//! | 8 | [`run`] | the whole run over every cluster |
//! | 9 | [`fanout`] | with a queue: one message per cluster (plan), one cluster per message (consume) |
//! | 10 | [`lambda`], [`cli`] | entry points: the Lambda runtime; `run`, `plan`, `headroom`, `token` and their tables |

#![deny(missing_docs)]

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod deadline;
pub mod eks;
pub mod failure;
pub mod fanout;
pub mod headroom;
pub mod identity;
pub mod lambda;
pub mod metrics;
pub mod policy;
pub mod protobuf;
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

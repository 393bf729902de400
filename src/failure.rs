//! What went wrong, named the way the report, the logs and Lambda's `errorType` name it:
//! why a cluster was skipped or failed ([`ClusterFailure`]) and why one deletion failed
//! ([`DeleteFailure`]); and how a failure reads: one line, what failed, the cause, what to
//! do ([`hint`]), from AWS errors ([`aws`]) and error chains ([`chain`]).

pub mod aws;
pub mod chain;
pub mod hint;

use std::fmt;

use serde::Serialize;

/// Why a cluster was skipped or could not be processed (the report's `errorKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ClusterFailure {
    /// The cluster is not `ACTIVE` (skipped, not failed).
    NotActive,
    /// No region for the cluster.
    NoRegion,
    /// No AWS credentials, or they could not be resolved or were refused.
    AwsCredentials,
    /// `DescribeCluster` found no such cluster.
    ClusterNotFound,
    /// An AWS call was denied.
    AccessDenied,
    /// `DescribeCluster` failed otherwise.
    DescribeClusterFailed,
    /// `DescribeCluster` returned an unusable endpoint or CA.
    ClusterData,
    /// The EKS token could not be built.
    Token,
    /// A call got no answer before the deadline or its time limit.
    Timeout,
    /// The Kubernetes client could not be built.
    KubeClient,
    /// Still throttled (429) after every retry while listing.
    Throttled,
    /// The API server could not be reached.
    Unreachable,
    /// The API server answered 401 to a list.
    Unauthorized,
    /// The API server answered 403 to a list.
    Forbidden,
    /// The API server answered another error to a list.
    ApiError,
    /// A list page could not be parsed.
    Decode,
    /// A list's continue token expired too many times.
    ContinueExpired,
    /// The identity could list but its deletions were refused (403/401).
    DeleteForbidden,
    /// The API server runs a Kubernetes older than supported (`GET /version`).
    UnsupportedVersion,
    /// An emergency run's alarm names a cluster (name, Region, account) that this function
    /// does not prune: nothing is touched.
    NotConfigured,
}

impl ClusterFailure {
    /// The name used in the report, the logs and Lambda's `errorType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterFailure::NotActive => "NotActive",
            ClusterFailure::NoRegion => "NoRegion",
            ClusterFailure::AwsCredentials => "AwsCredentials",
            ClusterFailure::ClusterNotFound => "ClusterNotFound",
            ClusterFailure::AccessDenied => "AccessDenied",
            ClusterFailure::DescribeClusterFailed => "DescribeClusterFailed",
            ClusterFailure::ClusterData => "ClusterData",
            ClusterFailure::Token => "Token",
            ClusterFailure::Timeout => "Timeout",
            ClusterFailure::KubeClient => "KubeClient",
            ClusterFailure::Throttled => "Throttled",
            ClusterFailure::Unreachable => "Unreachable",
            ClusterFailure::Unauthorized => "Unauthorized",
            ClusterFailure::Forbidden => "Forbidden",
            ClusterFailure::ApiError => "ApiError",
            ClusterFailure::Decode => "Decode",
            ClusterFailure::ContinueExpired => "ContinueExpired",
            ClusterFailure::DeleteForbidden => "DeleteForbidden",
            ClusterFailure::UnsupportedVersion => "UnsupportedVersion",
            ClusterFailure::NotConfigured => "NotConfigured",
        }
    }
}

impl fmt::Display for ClusterFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one DELETE failed (the report's `errors` and `errorSamples` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DeleteFailure {
    /// Refused by admission (a webhook or a ValidatingAdmissionPolicy): per object.
    AdmissionDenied,
    /// Another error status.
    ApiError,
    /// 403 from RBAC (or unexplained): the identity may not delete.
    Forbidden,
    /// 400 or 422.
    Rejected,
    /// 5xx.
    ServerError,
    /// Still 429 after every retry.
    Throttled,
    /// Sent but unanswered by the deadline: it may have been applied.
    TimedOut,
    /// 401.
    Unauthorized,
    /// The API server could not be reached.
    Unreachable,
}

impl DeleteFailure {
    /// The report key (`forbidden`, `admissionDenied`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteFailure::AdmissionDenied => "admissionDenied",
            DeleteFailure::ApiError => "apiError",
            DeleteFailure::Forbidden => "forbidden",
            DeleteFailure::Rejected => "rejected",
            DeleteFailure::ServerError => "serverError",
            DeleteFailure::Throttled => "throttled",
            DeleteFailure::TimedOut => "timedOut",
            DeleteFailure::Unauthorized => "unauthorized",
            DeleteFailure::Unreachable => "unreachable",
        }
    }

    /// An RBAC refusal: the identity may list but not delete, which fails the cluster.
    pub fn is_refusal(self) -> bool {
        matches!(self, DeleteFailure::Forbidden | DeleteFailure::Unauthorized)
    }
}

impl fmt::Display for DeleteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Logs a failure once: its kind and cluster as fields (`errorKind`, `cluster`) and the
/// one-line message as `error`. When the caller prints the failure itself on the same
/// stream (the CLI with text logs), at debug level only, so a person reads it once.
pub fn log(printed: bool, cluster: Option<&str>, kind: &str, error: &str, what: &'static str) {
    if printed {
        tracing::debug!(cluster, errorKind = kind, error, "{what}");
    } else {
        tracing::warn!(cluster, errorKind = kind, error, "{what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialised_keys() {
        for f in [
            DeleteFailure::AdmissionDenied,
            DeleteFailure::ApiError,
            DeleteFailure::Forbidden,
            DeleteFailure::Rejected,
            DeleteFailure::ServerError,
            DeleteFailure::Throttled,
            DeleteFailure::TimedOut,
            DeleteFailure::Unauthorized,
            DeleteFailure::Unreachable,
        ] {
            assert_eq!(serde_json::to_value(f).expect("json"), f.as_str());
        }
        for f in [
            ClusterFailure::NotActive,
            ClusterFailure::ClusterNotFound,
            ClusterFailure::DeleteForbidden,
            ClusterFailure::ContinueExpired,
            ClusterFailure::UnsupportedVersion,
        ] {
            assert_eq!(serde_json::to_value(f).expect("json"), f.as_str());
        }
    }
}

//! The run report: the Lambda's return value, the CLI's `--output json` (and, drawn by the
//! CLI, its table), and the one JSON summary log line per run.
//!
//! Keys are camelCase. In a dry run, `deleted` counts what would have been deleted (the
//! report's `dryRun` says which mode).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use tracing::info;

mod concurrency;

pub use concurrency::{ConcurrencyReport, spread};

use crate::config::{DryRun, Emergency};
use crate::failure::{ClusterFailure, DeleteFailure};
use crate::headroom::{Forecast, Headroom};

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `ok` when every cluster was processed (or skipped), else `failed`.
    pub status: RunStatus,
    /// Dry-run mode: `off`, `client` or `server`.
    pub dry_run: DryRun,
    /// When the run started.
    pub started_at: Timestamp,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// One entry per cluster, in configuration order, then the discovered ones.
    pub clusters: Vec<ClusterReport>,
    /// What cluster discovery found (absent without `REAPER_CLUSTER_TAG`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryReport>,
    /// The alarm that asked for this run, when it is an emergency run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emergency: Option<Emergency>,
    /// What publishing the metrics did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsOutcome>,
}

/// What cluster discovery did this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryReport {
    /// The tag searched for (`key=value`).
    pub tag: String,
    /// The regions searched.
    pub regions: Vec<String>,
    /// Clusters found with the tag, as `name@region` (named ones are not repeated).
    pub found: Vec<String>,
    /// Clusters the identity may not describe, as `name@region`: without the tag the
    /// deployed role's tag condition requires, or refused by a policy above it. Not pruned.
    pub denied: Vec<String>,
    /// Regions that could not be searched, and why: the run is then `failed`.
    pub errors: Vec<String>,
}

/// What publishing the metrics did. A failure is recorded, never raised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsOutcome {
    /// Sink name (`cloudwatch`, `emf`, `none`).
    pub sink: &'static str,
    /// Metric values delivered (accepted by `PutMetricData`, or written as EMF).
    pub metrics: usize,
    /// `PutMetricData` operations attempted (SDK retries not counted), or EMF documents
    /// written.
    pub calls: usize,
    /// Metric values built but not delivered.
    pub failed: usize,
    /// The first error, if any; publishing stops there.
    pub error: Option<String>,
}

impl MetricsOutcome {
    /// True when every metric value was delivered.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Deletions in one namespace, for the per-namespace metrics opt-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceDeletions {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Jobs deleted in it.
    pub jobs_deleted: u64,
    /// Pods deleted in it (Fargate ones included).
    pub pods_deleted: u64,
    /// Fargate pods deleted in it.
    pub fargate_pods_deleted: u64,
}

/// Overall outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RunStatus {
    /// Every cluster processed or skipped.
    Ok,
    /// At least one cluster could not be processed.
    Failed,
}

/// Outcome of one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ClusterStatus {
    /// Processed (per-object errors may still be counted).
    Ok,
    /// Not touched on purpose (cluster not ACTIVE).
    Skipped,
    /// Could not be processed.
    Failed,
}

impl ClusterStatus {
    /// The status as the report spells it (`ok`, `skipped`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Ok => "ok",
            ClusterStatus::Skipped => "skipped",
            ClusterStatus::Failed => "failed",
        }
    }
}

/// Counts for Jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobCounts {
    /// Jobs listed.
    pub seen: u64,
    /// Of which finished (`Complete` or `Failed`).
    pub finished: u64,
    /// Deleted (or, in a dry run, would be).
    pub deleted: u64,
    /// Deleted by reason.
    pub deleted_by_reason: BTreeMap<&'static str, u64>,
    /// Kept by reason.
    pub kept_by_reason: BTreeMap<&'static str, u64>,
    /// Kept as `ownedByController`, by the controller's `group/Kind`.
    pub kept_by_owner: BTreeMap<String, u64>,
}

/// Counts for Pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCounts {
    /// Finished pods listed (pods are listed in terminal phases only, except Fargate pods:
    /// the running or pending ones are counted in `fargate_running` alone).
    pub seen: u64,
    /// Of which in `Succeeded` or `Failed`.
    pub terminated: u64,
    /// Deleted (or, in a dry run, would be).
    pub deleted: u64,
    /// Finished Fargate pods seen.
    pub fargate_finished: u64,
    /// Of which deleted.
    pub fargate_deleted: u64,
    /// Finished Fargate pods still holding a node and an IP after this run.
    pub fargate_holding_ips: u64,
    /// Fargate pods not finished (pending, running, unknown phase): never deleted, listed
    /// only for the forecast (their creation times count).
    pub fargate_running: u64,
    /// Deleted by reason.
    pub deleted_by_reason: BTreeMap<&'static str, u64>,
    /// Kept by reason.
    pub kept_by_reason: BTreeMap<&'static str, u64>,
    /// Kept as `ownedByController`, by the controller's `group/Kind`.
    pub kept_by_owner: BTreeMap<String, u64>,
}

/// Jobs and pods stuck terminating: `deletionTimestamp` set longer than
/// `REAPER_STUCK_AFTER` ago, held by a finalizer nobody removes (or, a pod without any, by a
/// kubelet that never confirmed its end). eks-reaper never removes finalizers: these are
/// for a person (`docs/runbook.md#stuck-objects`).
///
/// Only the objects the passes list are seen: every Job, every Fargate pod, and the other
/// pods in a terminal phase (a non-Fargate pod stuck while `Running` is not listed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StuckCounts {
    /// Jobs stuck terminating.
    pub jobs: u64,
    /// Pods stuck terminating (Fargate ones included).
    pub pods: u64,
    /// Fargate pods stuck terminating: each keeps its Fargate node and its subnet IP.
    pub fargate_pods: u64,
    /// How long the longest-stuck object has been terminating, in seconds (0: none).
    pub oldest_seconds: u64,
    /// Stuck objects per namespace; at most [`MAX_STUCK_KEYS`] namespaces, the rest counted
    /// under [`OTHER_KEY`].
    pub by_namespace: BTreeMap<String, u64>,
    /// Stuck objects per finalizer they carry (an object with two counts under both, one
    /// with none under [`NO_FINALIZER_KEY`]); at most [`MAX_STUCK_KEYS`] finalizers, the
    /// rest counted under [`OTHER_KEY`].
    pub by_finalizer: BTreeMap<String, u64>,
}

/// Most keys [`StuckCounts`]' maps hold: the report is also one log line (a CloudWatch Logs
/// event is at most 256 KB), and `kubectl` lists the rest (`docs/runbook.md`).
pub const MAX_STUCK_KEYS: usize = 20;

/// The key counting what did not fit in a [`StuckCounts`] map: never a namespace or a
/// finalizer name (neither may hold parentheses).
pub const OTHER_KEY: &str = "(other)";

/// The `byFinalizer` key of stuck objects that carry no finalizer (pods whose kubelet never
/// confirmed their end): never a finalizer name.
pub const NO_FINALIZER_KEY: &str = "(none)";

impl StuckCounts {
    /// Whether nothing is stuck.
    pub fn is_empty(&self) -> bool {
        self.jobs == 0 && self.pods == 0
    }
}

/// Adds one to `key` in `map`, or to [`OTHER_KEY`] once `map` holds [`MAX_STUCK_KEYS`]
/// other keys.
pub fn count_bounded(map: &mut BTreeMap<String, u64>, key: &str) {
    let key = if map.contains_key(key) || map.len() < MAX_STUCK_KEYS {
        key
    } else {
        OTHER_KEY
    };
    *map.entry(key.to_owned()).or_default() += 1;
}

/// The report for one cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    /// Cluster name.
    pub cluster: String,
    /// Region.
    pub region: Option<String>,
    /// The account the cluster is reached in: the assumed role's, or `self` (the function's
    /// own; [`crate::identity`]). With `region` and `cluster`, the cluster's identity.
    pub account: String,
    /// Found by its tag (cluster discovery), not named in the configuration.
    pub discovered: bool,
    /// The API server's Kubernetes version (`GET /version`; absent when not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Set when that version is newer than eks-reaper was tested on (pruned all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_warning: Option<String>,
    /// ok, skipped or failed.
    pub status: ClusterStatus,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Classification of `error` (`Forbidden`, `ClusterNotFound`, `Unauthorized`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ClusterFailure>,
    /// Whether nothing was really deleted.
    pub dry_run: bool,
    /// Low-headroom mode was in force (shorter retention for finished Fargate pods).
    pub low_headroom: bool,
    /// Job counts.
    pub jobs: JobCounts,
    /// Pod counts.
    pub pods: PodCounts,
    /// Per-object failures by kind (`forbidden`, `admissionDenied`, `throttled`,
    /// `serverError`...).
    pub errors: BTreeMap<DeleteFailure, u64>,
    /// The first message of each kind in `errors` (the API server's `Status` message).
    pub error_samples: BTreeMap<DeleteFailure, String>,
    /// Deletions answered 404: already gone.
    pub already_gone: u64,
    /// Deletions answered 409: the object changed since listed (uid/resourceVersion
    /// precondition), skipped.
    pub conflicts: u64,
    /// 429 answers received.
    pub throttled: u64,
    /// The adaptive limit of DELETEs in flight: the one most were sent under, its range,
    /// and why it came down.
    pub concurrency: ConcurrencyReport,
    /// API requests sent.
    pub requests: u64,
    /// Due objects left for the next run (deadline reached).
    pub backlog: u64,
    /// Whether every pass listed every page; `false` when listing stopped early (the
    /// deadline, or a list that failed): more may be due than reported.
    pub listing_complete: bool,
    /// Lists resumed after a 410 (expired continue token).
    pub list_restarts: u64,
    /// Wall time for this cluster.
    pub duration_ms: u64,
    /// Subnet IPv4 headroom, read before pruning (`null`: not read, see `subnetsError`).
    pub subnets: Option<Headroom>,
    /// Why the subnets could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnets_error: Option<String>,
    /// IP exhaustion forecast (`null` without subnet figures).
    pub forecast: Option<Forecast>,
    /// Jobs and pods stuck terminating.
    pub stuck: StuckCounts,
    /// Response bytes received from the API server this run, as sent (gzip-compressed list
    /// pages, mostly): the run's cost to the cluster's control plane, with `requests`.
    pub bytes_received: u64,
    /// The cluster's ARN (`DescribeCluster`): its identity across accounts and Regions,
    /// where `cluster` is only its name. `null` when it was not reached through EKS.
    pub arn: Option<String>,
    /// Seconds until the soonest kept object becomes due (`null`: none is waiting out a
    /// retention).
    pub next_due_seconds: Option<u64>,
    /// Deletions per namespace (metrics with `REAPER_METRICS_PER_NAMESPACE`; not serialised).
    #[serde(skip)]
    pub deleted_by_namespace: BTreeMap<String, NamespaceDeletions>,
    /// Fargate pod creation instants seen this run (forecast input; not serialised).
    #[serde(skip)]
    pub fargate_pod_creations: Vec<Timestamp>,
    /// The run connected to the cluster (described it ACTIVE and signed a token): the
    /// counts mean something. Not serialised: `status` and `errorKind` say why not.
    #[serde(skip)]
    pub reached: bool,
    /// What the namespaces' `eks-reaper/*` annotations said (absent when the cluster was
    /// not reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_annotations: Option<NamespaceAnnotationsReport>,
    /// The Events summarising each namespace's deletions (absent unless
    /// `REAPER_NAMESPACE_EVENTS` is on, the run deletes for real and reached the cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_events: Option<NamespaceEventsReport>,
    /// Deletions per namespace by kind and reason (the namespaces' Events; not serialised).
    #[serde(skip)]
    pub deleted_reasons_by_namespace: BTreeMap<String, NamespaceReasons>,
}

/// Whether the namespaces' annotations were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NamespaceAnnotationsStatus {
    /// Every namespace listed and its annotations read.
    Read,
    /// Not read (`REAPER_NAMESPACE_ANNOTATIONS=false`): the cluster settings apply
    /// everywhere.
    #[default]
    Off,
    /// The namespaces could not be listed: every object was kept
    /// (`namespaceAnnotationsUnknown`), and the cluster failed.
    Unknown,
}

/// What the run read of the namespaces' `eks-reaper/*` annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceAnnotationsReport {
    /// `read`, `off` or `unknown`.
    pub status: NamespaceAnnotationsStatus,
    /// Namespaces listed.
    pub namespaces: u64,
    /// Of which set something: an opt-out, a retention, or a value that cannot be read.
    pub annotated: u64,
    /// Of which opted out (`eks-reaper/keep` true).
    pub opted_out: u64,
    /// Of which carry a value that cannot be read (every object in them kept).
    pub invalid: u64,
    /// The first of those, with the annotation and its value.
    pub invalid_samples: Vec<InvalidNamespaceAnnotation>,
    /// Why the namespaces could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A namespace annotation the policy cannot read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidNamespaceAnnotation {
    /// The namespace.
    pub namespace: String,
    /// The annotation.
    pub annotation: String,
    /// Its value.
    pub value: String,
}

/// The Events summarising each namespace's deletions. A failure is counted, never raised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceEventsReport {
    /// Events created (one per namespace with deletions).
    pub sent: u64,
    /// Events not created (refused, failed, or no time left before the deadline).
    pub failed: u64,
    /// The first failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Deletions in one namespace by reason label, Jobs and Pods apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceReasons {
    /// Jobs deleted, by reason.
    pub jobs: BTreeMap<&'static str, u64>,
    /// Pods deleted, by reason.
    pub pods: BTreeMap<&'static str, u64>,
}

impl ClusterReport {
    /// An empty report for `cluster`.
    pub fn new(cluster: &str, region: Option<String>, dry_run: bool) -> Self {
        Self {
            cluster: cluster.to_owned(),
            region,
            account: crate::identity::OWN_ACCOUNT.to_owned(),
            discovered: false,
            kubernetes_version: None,
            version_warning: None,
            status: ClusterStatus::Ok,
            error: None,
            error_kind: None,
            dry_run,
            low_headroom: false,
            jobs: JobCounts::default(),
            pods: PodCounts::default(),
            errors: BTreeMap::new(),
            error_samples: BTreeMap::new(),
            already_gone: 0,
            conflicts: 0,
            throttled: 0,
            concurrency: ConcurrencyReport::default(),
            requests: 0,
            backlog: 0,
            listing_complete: true,
            list_restarts: 0,
            duration_ms: 0,
            subnets: None,
            subnets_error: None,
            forecast: None,
            stuck: StuckCounts::default(),
            arn: None,
            bytes_received: 0,
            next_due_seconds: None,
            deleted_by_namespace: BTreeMap::new(),
            fargate_pod_creations: Vec::new(),
            reached: false,
            namespace_annotations: None,
            namespace_events: None,
            deleted_reasons_by_namespace: BTreeMap::new(),
        }
    }

    /// Marks the cluster failed.
    pub fn fail(&mut self, kind: ClusterFailure, error: String) {
        self.status = ClusterStatus::Failed;
        self.error_kind = Some(kind);
        self.error = Some(error);
    }

    /// Marks the cluster skipped.
    pub fn skip(&mut self, kind: ClusterFailure, why: String) {
        self.status = ClusterStatus::Skipped;
        self.error_kind = Some(kind);
        self.error = Some(why);
    }
}

impl Report {
    /// Whether any cluster failed.
    pub fn failed_clusters(&self) -> impl Iterator<Item = &ClusterReport> {
        self.clusters
            .iter()
            .filter(|c| c.status == ClusterStatus::Failed)
    }

    /// Emits the run's one summary log line: its totals, and with JSON logs
    /// (`AWS_LAMBDA_LOG_FORMAT=JSON`, as in Lambda) the whole report as a JSON object under
    /// `fields.report`, so CloudWatch Logs Insights can filter on any of its fields
    /// (`fields.report.clusters.0.status`, ...). A text log line carries the totals only: the
    /// CLI prints the report itself.
    pub fn log_summary(&self, json_logs: bool) {
        let sum = |f: fn(&ClusterReport) -> u64| self.clusters.iter().map(f).sum::<u64>();
        let mut sent_at = BTreeMap::new();
        for c in &self.clusters {
            for (limit, n) in &c.concurrency.sent_at {
                *sent_at.entry(*limit).or_insert(0u64) += n;
            }
        }
        let (concurrency_settled, concurrency_min, concurrency_max) = spread(&sent_at);
        let totals = Totals {
            status: self.status,
            dry_run: self.dry_run,
            clusters: self.clusters.len(),
            failed_clusters: self.failed_clusters().count(),
            jobs_deleted: sum(|c| c.jobs.deleted),
            pods_deleted: sum(|c| c.pods.deleted),
            fargate_pods_deleted: sum(|c| c.pods.fargate_deleted),
            errors: sum(|c| c.errors.values().sum()),
            throttled: sum(|c| c.throttled),
            backlog: sum(|c| c.backlog),
            stuck: sum(|c| c.stuck.jobs + c.stuck.pods),
            concurrency_settled,
            concurrency_min,
            concurrency_max,
            duration_ms: self.duration_ms,
        };
        if json_logs {
            let line = SummaryLine {
                timestamp: Timestamp::now(),
                level: "INFO",
                fields: SummaryFields {
                    message: SUMMARY_MESSAGE,
                    totals,
                    report: self,
                },
                target: module_path!(),
            };
            match serde_json::to_string(&line) {
                Ok(line) => eprintln!("{line}"),
                Err(e) => tracing::warn!(error = %e, "cannot serialise the run summary"),
            }
            return;
        }
        info!(
            status = ?totals.status,
            dry_run = totals.dry_run.as_str(),
            clusters = totals.clusters,
            failed_clusters = totals.failed_clusters,
            jobs_deleted = totals.jobs_deleted,
            pods_deleted = totals.pods_deleted,
            fargate_pods_deleted = totals.fargate_pods_deleted,
            errors = totals.errors,
            throttled = totals.throttled,
            backlog = totals.backlog,
            stuck = totals.stuck,
            concurrency_settled = totals.concurrency_settled,
            concurrency_min = totals.concurrency_min,
            concurrency_max = totals.concurrency_max,
            duration_ms = totals.duration_ms,
            "{SUMMARY_MESSAGE}"
        );
    }
}

/// Whether the environment asks for JSON log lines (`AWS_LAMBDA_LOG_FORMAT=JSON`, as the
/// Lambda runtime and the CLI read it).
pub fn json_logs_from_env() -> bool {
    std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
}

/// The summary log line's message.
pub const SUMMARY_MESSAGE: &str = "eks-reaper run summary";

/// The JSON summary line: the shape of the JSON lines tracing writes, with the report
/// nested as an object. Fields in this order: Logs Insights discovers the first 200 fields
/// of a JSON event, and the totals come before the report.
#[derive(Serialize)]
struct SummaryLine<'a> {
    timestamp: Timestamp,
    level: &'static str,
    fields: SummaryFields<'a>,
    target: &'static str,
}

#[derive(Serialize)]
struct SummaryFields<'a> {
    message: &'static str,
    totals: Totals,
    report: &'a Report,
}

/// The run's totals over all clusters, as the summary log line gives them.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
struct Totals {
    status: RunStatus,
    dry_run: DryRun,
    clusters: usize,
    failed_clusters: usize,
    jobs_deleted: u64,
    pods_deleted: u64,
    fargate_pods_deleted: u64,
    errors: u64,
    throttled: u64,
    backlog: u64,
    /// Jobs and pods stuck terminating, all clusters.
    stuck: u64,
    /// The limit most DELETEs of the run were sent under (all clusters), and its range.
    concurrency_settled: usize,
    concurrency_min: usize,
    concurrency_max: usize,
    duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_maps_hold_at_most_their_cap_and_count_the_rest_as_other() {
        let mut map = BTreeMap::new();
        for i in 0..MAX_STUCK_KEYS + 5 {
            count_bounded(&mut map, &format!("ns-{i:02}"));
        }
        count_bounded(&mut map, "ns-00");
        assert_eq!(map.len(), MAX_STUCK_KEYS + 1);
        assert_eq!(map[OTHER_KEY], 5);
        assert_eq!(map["ns-00"], 2, "a key already there still counts");
        assert_eq!(map.values().sum::<u64>(), MAX_STUCK_KEYS as u64 + 6);
    }
}

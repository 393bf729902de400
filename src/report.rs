//! The run report: the Lambda's return value, the CLI's `--output json`, a table on a
//! terminal, and the one JSON summary log line per run.
//!
//! Keys are camelCase. In a dry run, `deleted` counts what would have been deleted (the
//! report's `dryRun` says which mode).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use serde::Serialize;
use tracing::info;

use crate::forecast::Forecast;
use crate::metrics::{self, ClusterFigures, NamespaceDeletions};
use crate::policy::{Decision, Delete, Keep};
use crate::scan::Kind;
use crate::subnets::Headroom;

/// How many Fargate pod creation instants are kept for the forecast.
const MAX_FARGATE_CREATIONS: usize = 100_000;

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `ok` when every cluster was processed (or skipped), else `failed`.
    pub status: RunStatus,
    /// Dry-run mode: `off`, `client` or `server`.
    pub dry_run: &'static str,
    /// When the run started.
    pub started_at: Timestamp,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// One entry per cluster, in configuration order.
    pub clusters: Vec<ClusterReport>,
    /// What publishing the metrics did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<metrics::Outcome>,
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

/// The report for one cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    /// Cluster name.
    pub cluster: String,
    /// Region.
    pub region: Option<String>,
    /// ok, skipped or failed.
    pub status: ClusterStatus,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Classification of `error` (`Forbidden`, `ClusterNotFound`, `Unauthorized`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
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
    pub errors: BTreeMap<String, u64>,
    /// The first message of each kind in `errors` (the API server's `Status` message).
    pub error_samples: BTreeMap<String, String>,
    /// Deletions answered 404: already gone.
    pub already_gone: u64,
    /// Deletions answered 409: the object changed since listed (uid/resourceVersion
    /// precondition), skipped.
    pub conflicts: u64,
    /// 429 answers received.
    pub throttled: u64,
    /// API requests sent.
    pub requests: u64,
    /// Due objects left for the next run (deadline reached).
    pub backlog: u64,
    /// Whether listing stopped early (deadline): more may be due than reported.
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
    /// Deletions per namespace (metrics with `REAPER_METRICS_PER_NAMESPACE`; not serialised).
    #[serde(skip)]
    pub deleted_by_namespace: BTreeMap<String, NamespaceDeletions>,
    /// Fargate pod creation instants seen this run (forecast input; not serialised).
    #[serde(skip)]
    pub fargate_pod_creations: Vec<Timestamp>,
}

impl ClusterReport {
    /// An empty report for `cluster`.
    pub fn new(cluster: &str, region: Option<String>, dry_run: bool) -> Self {
        Self {
            cluster: cluster.to_owned(),
            region,
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
            requests: 0,
            backlog: 0,
            listing_complete: true,
            list_restarts: 0,
            duration_ms: 0,
            subnets: None,
            subnets_error: None,
            forecast: None,
            deleted_by_namespace: BTreeMap::new(),
            fargate_pod_creations: Vec::new(),
        }
    }

    /// The figures the metrics step publishes for this cluster. A dry run deleted nothing,
    /// so its deletion figures are 0.
    pub fn figures(&self, per_namespace: bool) -> ClusterFigures {
        let real = |n: u64| if self.dry_run { 0 } else { n };
        let mut f = ClusterFigures {
            cluster: self.cluster.clone(),
            jobs_deleted: real(self.jobs.deleted),
            pods_deleted: real(self.pods.deleted),
            fargate_pods_deleted: real(self.pods.fargate_deleted),
            delete_errors: self.errors.values().sum(),
            throttled: self.throttled,
            finished_jobs: self.jobs.finished,
            retained_jobs: self.jobs.finished.saturating_sub(real(self.jobs.deleted)),
            terminated_pods: self.pods.terminated,
            fargate_pods_holding_ips: self.pods.fargate_holding_ips,
            backlog: self.backlog,
            run_duration: std::time::Duration::from_millis(self.duration_ms),
            // Only a pruned cluster is a heartbeat: a cluster skipped because it is not
            // ACTIVE (FAILED, DELETING, a long UPDATING) was not cleaned either, and the
            // heartbeat alarm should say so once that lasts several runs.
            run_succeeded: self.status == ClusterStatus::Ok,
            low_headroom_mode: self.low_headroom,
            per_namespace: per_namespace.then(|| {
                self.deleted_by_namespace
                    .values()
                    .map(|n| NamespaceDeletions {
                        namespace: n.namespace.clone(),
                        jobs_deleted: real(n.jobs_deleted),
                        pods_deleted: real(n.pods_deleted),
                        fargate_pods_deleted: real(n.fargate_pods_deleted),
                    })
                    .collect()
            }),
            ip_exhaustion_hours: self.forecast.as_ref().and_then(|f| f.hours_to_exhaustion),
            ..ClusterFigures::default()
        };
        if let Some(h) = &self.subnets {
            f.set_headroom(h);
        }
        f
    }

    /// Marks the cluster failed.
    pub fn fail(&mut self, kind: &str, error: String) {
        self.status = ClusterStatus::Failed;
        self.error_kind = Some(kind.to_owned());
        self.error = Some(error);
    }

    /// Marks the cluster skipped.
    pub fn skip(&mut self, kind: &str, why: String) {
        self.status = ClusterStatus::Skipped;
        self.error_kind = Some(kind.to_owned());
        self.error = Some(why);
    }

    /// Folds the counts gathered during the run in.
    pub fn absorb(&mut self, tally: Tally) {
        let t = tally.0.into_inner().unwrap_or_else(|p| p.into_inner());
        self.jobs = t.jobs;
        self.pods = t.pods;
        self.errors = t.errors;
        self.error_samples = t.error_samples;
        self.already_gone = t.already_gone;
        self.conflicts = t.conflicts;
        self.backlog = t.backlog;
        self.list_restarts = t.list_restarts;
        self.fargate_pod_creations = t.fargate_creations;
        self.deleted_by_namespace = t.by_namespace;
        let really_deleted = if self.dry_run {
            0
        } else {
            self.pods.fargate_deleted
        };
        self.pods.fargate_holding_ips = self
            .pods
            .fargate_finished
            .saturating_sub(really_deleted + t.fargate_already_gone);
    }
}

/// Process-wide progress of the current run (all clusters): objects found due and objects
/// dealt with (deleted, gone, skipped, failed or left as backlog). Read by the CLI's
/// progress line; nothing else depends on it.
#[derive(Debug, Default)]
pub struct Progress {
    due: AtomicU64,
    done: AtomicU64,
}

impl Progress {
    /// `(done, due)` so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.due.load(Ordering::Relaxed),
        )
    }
}

/// The progress counters.
pub static PROGRESS: Progress = Progress {
    due: AtomicU64::new(0),
    done: AtomicU64::new(0),
};

/// Counters shared by the scanner and the deleters of one cluster.
#[derive(Debug, Default)]
pub struct Tally(Mutex<Counts>);

#[derive(Debug, Default)]
struct Counts {
    jobs: JobCounts,
    pods: PodCounts,
    errors: BTreeMap<String, u64>,
    error_samples: BTreeMap<String, String>,
    already_gone: u64,
    /// Finished Fargate pods found already gone (404): they hold no IP either.
    fargate_already_gone: u64,
    conflicts: u64,
    backlog: u64,
    list_restarts: u64,
    fargate_creations: Vec<Timestamp>,
    by_namespace: BTreeMap<String, NamespaceDeletions>,
}

/// What became of one due object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Deleted (or accepted by a server-side dry run, or would be in a client dry run).
    Deleted,
    /// 404: already gone.
    AlreadyGone,
    /// 409: changed since it was listed (uid/resourceVersion precondition); skipped.
    Conflict,
    /// Not attempted: the deadline came first.
    Backlog,
    /// Failed.
    Failed {
        /// The kind of failure (`forbidden`, `admissionDenied`, `unreachable`...).
        kind: String,
        /// What the API server (or the transport) said.
        message: String,
    },
}

impl Tally {
    fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Records one listed object and the policy's decision. `created` is kept for the
    /// forecast for every Fargate pod, finished or not.
    pub fn saw(
        &self,
        kind: Kind,
        finished: bool,
        fargate: bool,
        created: Option<Timestamp>,
        decision: &Decision,
    ) {
        if matches!(decision, Decision::Delete(_)) {
            PROGRESS.due.fetch_add(1, Ordering::Relaxed);
        }
        self.with(|c| match kind {
            Kind::Job => {
                c.jobs.seen += 1;
                c.jobs.finished += u64::from(finished);
                if let Decision::Keep(k) = decision {
                    *c.jobs.kept_by_reason.entry(k.label()).or_default() += 1;
                    if let Keep::OwnedByController { owner } = k {
                        *c.jobs.kept_by_owner.entry(owner.to_string()).or_default() += 1;
                    }
                }
            }
            Kind::Pod => {
                if fargate
                    && let Some(t) = created
                    && c.fargate_creations.len() < MAX_FARGATE_CREATIONS
                {
                    c.fargate_creations.push(t);
                }
                if fargate && !finished {
                    // Listed for the forecast only: not part of the finished-pod counts.
                    c.pods.fargate_running += 1;
                    return;
                }
                c.pods.seen += 1;
                c.pods.terminated += u64::from(finished);
                c.pods.fargate_finished += u64::from(fargate && finished);
                if let Decision::Keep(k) = decision {
                    *c.pods.kept_by_reason.entry(k.label()).or_default() += 1;
                    if let Keep::OwnedByController { owner } = k {
                        *c.pods.kept_by_owner.entry(owner.to_string()).or_default() += 1;
                    }
                }
            }
        });
    }

    /// Records what became of one due object in `namespace`.
    pub fn outcome(
        &self,
        kind: Kind,
        namespace: &str,
        fargate: bool,
        reason: &Delete,
        outcome: &Outcome,
    ) {
        PROGRESS.done.fetch_add(1, Ordering::Relaxed);
        self.with(|c| {
            if *outcome == Outcome::Deleted {
                let n = c
                    .by_namespace
                    .entry(namespace.to_owned())
                    .or_insert_with(|| NamespaceDeletions {
                        namespace: namespace.to_owned(),
                        ..NamespaceDeletions::default()
                    });
                match kind {
                    Kind::Job => n.jobs_deleted += 1,
                    Kind::Pod => {
                        n.pods_deleted += 1;
                        n.fargate_pods_deleted += u64::from(fargate);
                    }
                }
            }
        });
        self.with(|c| match outcome {
            Outcome::Deleted => match kind {
                Kind::Job => {
                    c.jobs.deleted += 1;
                    *c.jobs.deleted_by_reason.entry(reason.label()).or_default() += 1;
                }
                Kind::Pod => {
                    c.pods.deleted += 1;
                    c.pods.fargate_deleted += u64::from(fargate);
                    *c.pods.deleted_by_reason.entry(reason.label()).or_default() += 1;
                }
            },
            Outcome::AlreadyGone => {
                c.already_gone += 1;
                c.fargate_already_gone += u64::from(kind == Kind::Pod && fargate);
            }
            Outcome::Conflict => c.conflicts += 1,
            Outcome::Backlog => c.backlog += 1,
            Outcome::Failed { kind, message } => {
                *c.errors.entry(kind.clone()).or_default() += 1;
                c.error_samples
                    .entry(kind.clone())
                    .or_insert_with(|| message.clone());
            }
        });
    }

    /// Records a list restart after 410.
    pub fn list_restarted(&self) {
        self.with(|c| c.list_restarts += 1);
    }
}

impl Report {
    /// Whether any cluster failed.
    pub fn failed_clusters(&self) -> impl Iterator<Item = &ClusterReport> {
        self.clusters
            .iter()
            .filter(|c| c.status == ClusterStatus::Failed)
    }

    /// Emits the one JSON summary log line of the run.
    pub fn log_summary(&self) {
        let sum = |f: fn(&ClusterReport) -> u64| self.clusters.iter().map(f).sum::<u64>();
        let report = serde_json::to_string(self).unwrap_or_default();
        info!(
            status = ?self.status,
            dry_run = self.dry_run,
            clusters = self.clusters.len(),
            failed_clusters = self.failed_clusters().count(),
            jobs_deleted = sum(|c| c.jobs.deleted),
            pods_deleted = sum(|c| c.pods.deleted),
            fargate_pods_deleted = sum(|c| c.pods.fargate_deleted),
            errors = sum(|c| c.errors.values().sum()),
            throttled = sum(|c| c.throttled),
            backlog = sum(|c| c.backlog),
            duration_ms = self.duration_ms,
            report = %report,
            "eks-reaper run summary"
        );
    }

    /// A human-readable table (the CLI's default on a terminal).
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<24} {:<14} {:<8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "CLUSTER",
            "REGION",
            "STATUS",
            "JOBS",
            "JOB DEL",
            "PODS",
            "POD DEL",
            "FARGATE",
            "ERRORS",
            "429s",
            "BACKLOG"
        );
        for c in &self.clusters {
            let _ = writeln!(
                out,
                "{:<24} {:<14} {:<8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
                c.cluster,
                c.region.as_deref().unwrap_or("-"),
                format!("{:?}", c.status).to_lowercase(),
                c.jobs.seen,
                c.jobs.deleted,
                c.pods.seen,
                c.pods.deleted,
                c.pods.fargate_deleted,
                c.errors.values().sum::<u64>(),
                c.throttled,
                c.backlog,
            );
            if let Some(e) = &c.error {
                let _ = writeln!(out, "  {}: {e}", c.error_kind.as_deref().unwrap_or("error"));
            }
            for (label, kept) in [
                ("jobs kept", &c.jobs.kept_by_reason),
                ("pods kept", &c.pods.kept_by_reason),
            ] {
                if !kept.is_empty() {
                    let parts: Vec<String> = kept.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let _ = writeln!(out, "  {label}: {}", parts.join(" "));
                }
            }
        }
        let _ = writeln!(
            out,
            "{} in {} ms{}",
            match self.status {
                RunStatus::Ok => "ok",
                RunStatus::Failed => "FAILED",
            },
            self.duration_ms,
            if self.dry_run == "off" {
                String::new()
            } else {
                format!(" (dry run: {}, nothing deleted)", self.dry_run)
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::OwnerKind;

    #[test]
    fn tally_counts_decisions_and_outcomes_into_camel_case_json() {
        let t = Tally::default();
        let reason = Delete::FargatePodPastTtl {
            age: Duration::from_secs(1200),
        };
        t.saw(Kind::Pod, true, true, None, &Decision::Delete(reason));
        t.saw(Kind::Pod, true, true, None, &Decision::Keep(Keep::OptedOut));
        t.saw(
            Kind::Job,
            true,
            false,
            None,
            &Decision::Keep(Keep::WithinRetention {
                remaining: Duration::from_secs(5),
            }),
        );
        t.outcome(Kind::Pod, "etl", true, &reason, &Outcome::Deleted);
        for message in ["jobs.batch \"x\" is forbidden", "a later message"] {
            let failed = Outcome::Failed {
                kind: "forbidden".to_owned(),
                message: message.to_owned(),
            };
            t.outcome(Kind::Job, "etl", false, &reason, &failed);
        }
        let owner = OwnerKind::parse("jobset.x-k8s.io/JobSet").expect("owner");
        t.saw(
            Kind::Job,
            true,
            false,
            None,
            &Decision::Keep(Keep::OwnedByController { owner }),
        );
        let mut r = ClusterReport::new("etl", Some("eu-west-1".to_owned()), false);
        r.absorb(t);
        assert_eq!(r.pods.fargate_finished, 2);
        assert_eq!(r.pods.fargate_deleted, 1);
        assert_eq!(r.pods.fargate_holding_ips, 1);
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["pods"]["fargateDeleted"], 1);
        assert_eq!(v["pods"]["keptByReason"]["optedOut"], 1);
        assert_eq!(v["jobs"]["keptByReason"]["withinRetention"], 1);
        assert_eq!(v["errors"]["forbidden"], 2);
        assert_eq!(
            v["errorSamples"]["forbidden"],
            "jobs.batch \"x\" is forbidden"
        );
        assert_eq!(v["jobs"]["keptByReason"]["ownedByController"], 1);
        assert_eq!(v["jobs"]["keptByOwner"]["jobset.x-k8s.io/JobSet"], 1);
        assert_eq!(v["status"], "ok");
        assert!(v.get("error").is_none());
    }

    #[test]
    fn running_fargate_pods_feed_the_forecast_but_not_the_finished_pod_counts() {
        let t = Tally::default();
        let created: Timestamp = "2026-11-28T12:00:00Z".parse().expect("ts");
        let running = Decision::Keep(Keep::NotFinished {
            phase: "Running".to_owned(),
        });
        t.saw(Kind::Pod, false, true, Some(created), &running);
        t.saw(
            Kind::Pod,
            true,
            true,
            Some(created),
            &Decision::Keep(Keep::OptedOut),
        );
        t.saw(
            Kind::Pod,
            true,
            false,
            Some(created),
            &Decision::Keep(Keep::OptedOut),
        );
        let mut r = ClusterReport::new("etl", None, false);
        r.absorb(t);
        assert_eq!(r.fargate_pod_creations, vec![created; 2]);
        assert_eq!(r.pods.fargate_running, 1);
        assert_eq!((r.pods.seen, r.pods.terminated), (2, 2));
        assert_eq!(r.pods.fargate_finished, 1);
        assert_eq!(r.pods.fargate_holding_ips, 1);
        assert_eq!(r.pods.kept_by_reason.get("notFinished"), None);
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["pods"]["fargateRunning"], 1);
    }

    #[test]
    fn dry_run_pods_still_hold_their_ips() {
        let t = Tally::default();
        let reason = Delete::FargatePodPastTtl {
            age: Duration::from_secs(1200),
        };
        t.saw(Kind::Pod, true, true, None, &Decision::Delete(reason));
        t.outcome(Kind::Pod, "etl", true, &reason, &Outcome::Deleted);
        let mut r = ClusterReport::new("etl", None, true);
        r.absorb(t);
        assert_eq!(r.pods.fargate_holding_ips, 1);
        let f = r.figures(true);
        assert_eq!(f.fargate_pods_deleted, 0, "a dry run deletes nothing");
        assert_eq!(f.per_namespace.expect("per namespace")[0].pods_deleted, 0);
    }

    #[test]
    fn only_a_pruned_cluster_counts_as_a_heartbeat() {
        let ok = ClusterReport::new("etl", None, false);
        assert!(ok.figures(false).run_succeeded);
        let mut skipped = ClusterReport::new("etl", None, false);
        skipped.skip("NotActive", "cluster status is UPDATING".to_owned());
        assert!(!skipped.figures(false).run_succeeded);
        let mut failed = ClusterReport::new("etl", None, false);
        failed.fail("Forbidden", "HTTP 403".to_owned());
        assert!(!failed.figures(false).run_succeeded);
    }

    #[test]
    fn fargate_pods_already_gone_do_not_hold_ips() {
        let t = Tally::default();
        let reason = Delete::FargatePodPastTtl {
            age: Duration::from_secs(1200),
        };
        for _ in 0..3 {
            t.saw(Kind::Pod, true, true, None, &Decision::Delete(reason));
        }
        t.outcome(Kind::Pod, "etl", true, &reason, &Outcome::Deleted);
        t.outcome(Kind::Pod, "etl", true, &reason, &Outcome::AlreadyGone);
        t.outcome(Kind::Pod, "etl", true, &reason, &Outcome::Conflict);
        let mut r = ClusterReport::new("etl", None, false);
        r.absorb(t);
        assert_eq!(r.pods.fargate_finished, 3);
        assert_eq!(
            r.pods.fargate_holding_ips, 1,
            "only the pod skipped on 409 may still hold one"
        );
    }
}

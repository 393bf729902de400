//! Listing Jobs and Pods page by page (`limit` + `continue`), deciding each object with the
//! policy as the page arrives, and handing the due ones to the deleter.
//!
//! Memory stays bounded by a page: objects are dropped once decided; only a small
//! [`Candidate`] (kind, namespace, name, uid, reason) travels on, through a bounded channel.
//!
//! Pods are listed in two passes split by the Fargate label (see [`Pass`]): every Fargate
//! pod, whatever its phase (running and pending ones only feed the forecast their creation
//! time: each took an IP), then the other pods filtered server-side by `status.phase`, so
//! running non-Fargate pods never cross the wire.
//!
//! A 410 Gone on a continue token (etcd compacted the snapshot) is logged and handled: the
//! `Status` usually carries a fresh continue token for an inconsistent continuation; if it
//! does not, the list restarts from the beginning and skips objects already handled.

pub mod lean;

use std::collections::HashSet;
use std::sync::RwLock;

use http::StatusCode;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::core::params::ListParams;
use kube::core::{ObjectList, Request};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::api::{self, ApiStats, CallError};
use crate::deadline::Deadline;
use crate::eks::ClusterAccess;
use crate::policy::{self, Decision, Delete, FARGATE_PROFILE_LABEL, JobIndex, Settings};
use crate::report::Tally;

/// Field selector keeping only terminal pods (evaluated by the API server).
pub const FINISHED_PODS: &str = "status.phase!=Pending,status.phase!=Running,status.phase!=Unknown";

/// How many times one list may restart after 410 before the cluster is failed.
const MAX_LIST_RESTARTS: u32 = 5;

/// Which resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// batch/v1 Job.
    Job,
    /// core/v1 Pod.
    Pod,
}

impl Kind {
    /// `"job"` or `"pod"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Job => "job",
            Kind::Pod => "pod",
        }
    }

    /// Resource name in API paths and RBAC (`jobs`, `pods`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Job => "jobs",
            Kind::Pod => "pods",
        }
    }

    /// Collection path, cluster-wide or in one namespace.
    pub fn url_path(self, namespace: Option<&str>) -> String {
        match self {
            Kind::Job => <Job as kube::Resource>::url_path(&(), namespace),
            Kind::Pod => <Pod as kube::Resource>::url_path(&(), namespace),
        }
    }
}

/// One list pass: a resource, and the part of it the API server sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pass {
    /// Every Job in scope.
    Jobs,
    /// Every pod labelled `eks.amazonaws.com/fargate-profile`, in any phase: finished ones
    /// are planned, the others only give the forecast their creation time (and are kept).
    FargatePods,
    /// Finished pods without that label (server-side phase filter). A pod with the
    /// `fargate-scheduler` but no label lands here and is still classified Fargate.
    OtherPods,
}

impl Pass {
    /// The resource listed.
    pub fn kind(self) -> Kind {
        match self {
            Pass::Jobs => Kind::Job,
            Pass::FargatePods | Pass::OtherPods => Kind::Pod,
        }
    }

    /// Name in logs: `jobs`, `fargatePods`, `otherPods`.
    pub fn as_str(self) -> &'static str {
        match self {
            Pass::Jobs => "jobs",
            Pass::FargatePods => "fargatePods",
            Pass::OtherPods => "otherPods",
        }
    }

    /// The pass's label selector ANDed (`,`) with the user's, if any.
    pub fn label_selector(self, user: Option<&str>) -> Option<String> {
        let own = match self {
            Pass::Jobs => None,
            Pass::FargatePods => Some(FARGATE_PROFILE_LABEL.to_owned()),
            Pass::OtherPods => Some(format!("!{FARGATE_PROFILE_LABEL}")),
        };
        let user = user.map(str::trim).filter(|s| !s.is_empty());
        match (user, own) {
            (Some(u), Some(o)) => Some(format!("{u},{o}")),
            (Some(u), None) => Some(u.to_owned()),
            (None, own) => own,
        }
    }

    /// The pass's field selector: the phase filter for non-Fargate pods only.
    pub fn field_selector(self) -> Option<&'static str> {
        (self == Pass::OtherPods).then_some(FINISHED_PODS)
    }
}

/// A due object: everything the deleter needs, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Job or Pod.
    pub kind: Kind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID, sent as a deletion precondition (names are reused).
    pub uid: String,
    /// The resourceVersion the policy judged, also sent as a precondition: an object changed
    /// since (a keep annotation added, another run already deleting it) is answered 409 and
    /// left for the next run instead of being deleted on a stale decision.
    pub resource_version: String,
    /// Why it is due.
    pub reason: Delete,
    /// A Fargate pod (its deletion frees a subnet IP).
    pub fargate: bool,
}

/// Why listing failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The call itself failed (throttled out, unreachable, credentials).
    #[error("listing {resource}: {source}")]
    Call {
        /// `jobs` or `pods`.
        resource: &'static str,
        /// What failed.
        #[source]
        source: CallError,
    },
    /// The API server answered with an error status.
    #[error("listing {resource}: HTTP {code}: {message}")]
    Status {
        /// `jobs` or `pods`.
        resource: &'static str,
        /// HTTP status code.
        code: u16,
        /// The Status message.
        message: String,
    },
    /// A page could not be parsed.
    #[error("listing {resource}: unreadable page: {source}")]
    Decode {
        /// `jobs` or `pods`.
        resource: &'static str,
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
    /// Too many 410 restarts.
    #[error("listing {resource}: continue token expired {restarts} times")]
    Expired {
        /// `jobs` or `pods`.
        resource: &'static str,
        /// Restarts so far.
        restarts: u32,
    },
}

impl ScanError {
    /// Short classification.
    pub fn kind(&self) -> &'static str {
        match self {
            ScanError::Call {
                source: CallError::Throttled { .. },
                ..
            } => "Throttled",
            ScanError::Call {
                source: CallError::Access(e),
                ..
            } => e.kind(),
            ScanError::Call {
                source: CallError::TimedOut(_),
                ..
            } => "Timeout",
            ScanError::Call { .. } => "Unreachable",
            ScanError::Status { code: 401, .. } => "Unauthorized",
            ScanError::Status { code: 403, .. } => "Forbidden",
            ScanError::Status { .. } => "ApiError",
            ScanError::Decode { .. } => "Decode",
            ScanError::Expired { .. } => "ContinueExpired",
        }
    }
}

/// What one scan needs.
pub struct ScanContext<'a> {
    /// Cluster access.
    pub access: &'a ClusterAccess,
    /// Request counters.
    pub stats: &'a ApiStats,
    /// Run deadline.
    pub deadline: &'a Deadline,
    /// Policy settings.
    pub settings: &'a Settings,
    /// Server-side label selector.
    pub label_selector: Option<&'a str>,
    /// `limit` per page.
    pub page_size: u32,
    /// Where counts go.
    pub tally: &'a Tally,
    /// Jobs listed so far, filled by the Jobs pass and read by the pod passes.
    pub jobs: &'a RwLock<JobIndex>,
    /// The clock (read once per page).
    pub clock: &'a (dyn Fn() -> Timestamp + Sync),
}

/// Whether the scan went through every page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Every page listed.
    Complete,
    /// Stopped early (deadline, or the deleter is gone).
    Stopped,
}

/// Lists every object of `pass` in scope and sends the due ones to `tx`.
pub async fn scan(
    pass: Pass,
    ctx: &ScanContext<'_>,
    tx: &mpsc::Sender<Candidate>,
) -> Result<Completion, ScanError> {
    let namespaces: Vec<Option<&str>> = if ctx.settings.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.settings
            .namespaces
            .iter()
            .map(|n| Some(n.as_str()))
            .collect()
    };
    for ns in namespaces {
        if let Some(ns) = ns
            && !ctx.settings.namespace_in_scope(ns)
        {
            continue;
        }
        let done = match pass.kind() {
            Kind::Job => {
                scan_collection::<lean::LeanJob, Job>(pass, ns, ctx, tx, |job, now, s| {
                    if let Some(uid) = job.metadata.uid.as_deref() {
                        write(ctx.jobs).record(uid, policy::job_keeps_its_pods(job));
                    }
                    let decision = policy::plan_job(job, now, s);
                    (decision, policy::is_finished_job(job), false, None)
                })
                .await?
            }
            Kind::Pod => {
                scan_collection::<lean::LeanPod, Pod>(pass, ns, ctx, tx, |pod, now, s| {
                    let decision = policy::plan_pod(pod, now, s, &read(ctx.jobs));
                    let fargate = policy::is_fargate_pod(pod);
                    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
                    (decision, policy::is_finished_pod(pod), fargate, created)
                })
                .await?
            }
        };
        if done == Completion::Stopped {
            return Ok(Completion::Stopped);
        }
    }
    Ok(Completion::Complete)
}

// The index is only written by the Jobs pass and read by the pod passes, which run one after
// the other; a poisoned lock (a panic elsewhere) still holds consistent data.
fn write(jobs: &RwLock<JobIndex>) -> std::sync::RwLockWriteGuard<'_, JobIndex> {
    jobs.write().unwrap_or_else(|p| p.into_inner())
}

fn read(jobs: &RwLock<JobIndex>) -> std::sync::RwLockReadGuard<'_, JobIndex> {
    jobs.read().unwrap_or_else(|p| p.into_inner())
}

/// (decision, finished, fargate, creation time)
type Assessment = (Decision, bool, bool, Option<Timestamp>);

async fn scan_collection<L, K>(
    pass: Pass,
    namespace: Option<&str>,
    ctx: &ScanContext<'_>,
    tx: &mpsc::Sender<Candidate>,
    assess: impl Fn(&K, Timestamp, &Settings) -> Assessment,
) -> Result<Completion, ScanError>
where
    L: DeserializeOwned + Clone + Into<K>,
    K: kube::Resource,
{
    let kind = pass.kind();
    let resource = kind.plural();
    let cluster = ctx.access.cluster();
    let path = kind.url_path(namespace);
    let label_selector = pass.label_selector(ctx.label_selector);
    let mut continue_token: Option<String> = None;
    let mut restarts = 0u32;
    // Hashes of UIDs handled so far, so a restarted list skips them (8 bytes each).
    let mut handled: HashSet<u64> = HashSet::new();
    let mut pages = 0u64;
    loop {
        if ctx.deadline.reached() {
            warn!(
                cluster,
                resource, pages, "deadline reached; listing stopped"
            );
            return Ok(Completion::Stopped);
        }
        let params = ListParams {
            label_selector: label_selector.clone(),
            field_selector: pass.field_selector().map(str::to_owned),
            limit: Some(ctx.page_size),
            continue_token: continue_token.clone(),
            ..ListParams::default()
        };
        let request = Request::new(path.as_str());
        let response = match api::call(ctx.access, ctx.stats, ctx.deadline, || {
            request.list(&params)
        })
        .await
        {
            Ok(r) => r,
            Err(CallError::Deadline) => {
                warn!(
                    cluster,
                    resource,
                    pages,
                    "deadline reached before the next page could be requested; listing stopped"
                );
                return Ok(Completion::Stopped);
            }
            Err(source) => return Err(ScanError::Call { resource, source }),
        };

        if response.status == StatusCode::GONE {
            restarts += 1;
            let fresh = response.status_object().and_then(|s| s.metadata.continue_);
            warn!(
                cluster,
                resource,
                restarts,
                inconsistent_continue = fresh.is_some(),
                detail = %response.message(),
                "continue token expired (410); resuming the list"
            );
            ctx.tally.list_restarted();
            if restarts > MAX_LIST_RESTARTS {
                return Err(ScanError::Expired { resource, restarts });
            }
            continue_token = fresh;
            continue;
        }
        if !response.status.is_success() {
            return Err(ScanError::Status {
                resource,
                code: response.status.as_u16(),
                message: response.message(),
            });
        }
        let page: ObjectList<L> = serde_json::from_slice(response.body())
            .map_err(|source| ScanError::Decode { resource, source })?;
        drop(response);
        pages += 1;
        let now = (ctx.clock)();
        let next = page.metadata.continue_.filter(|c| !c.is_empty());
        for item in page.items {
            let object: K = item.into();
            let meta = object.meta();
            let uid = meta.uid.clone().unwrap_or_default();
            let h = policy::uid_hash(&uid);
            if !handled.insert(h) {
                // Seen before a 410 restart (or twice in an inconsistent continuation).
                continue;
            }
            let (decision, finished, fargate, created) = assess(&object, now, ctx.settings);
            ctx.tally.saw(kind, finished, fargate, created, &decision);
            if let Decision::Delete(reason) = decision {
                let candidate = Candidate {
                    kind,
                    namespace: meta.namespace.clone().unwrap_or_default(),
                    name: meta.name.clone().unwrap_or_default(),
                    uid,
                    resource_version: meta.resource_version.clone().unwrap_or_default(),
                    reason,
                    fargate,
                };
                debug!(
                    cluster,
                    kind = kind.as_str(),
                    namespace = %candidate.namespace,
                    name = %candidate.name,
                    reason = %reason,
                    "due for deletion"
                );
                if tx.send(candidate).await.is_err() {
                    return Ok(Completion::Stopped);
                }
            }
        }
        continue_token = next;
        if continue_token.is_none() {
            info!(
                cluster,
                resource,
                pass = pass.as_str(),
                pages,
                "listing complete"
            );
            return Ok(Completion::Complete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_paths_are_the_batch_and_core_ones() {
        assert_eq!(Kind::Job.url_path(None), "/apis/batch/v1/jobs");
        assert_eq!(
            Kind::Job.url_path(Some("etl")),
            "/apis/batch/v1/namespaces/etl/jobs"
        );
        assert_eq!(Kind::Pod.url_path(None), "/api/v1/pods");
    }

    fn query(pass: Pass, user: Option<&str>) -> String {
        let params = ListParams {
            label_selector: pass.label_selector(user),
            field_selector: pass.field_selector().map(str::to_owned),
            limit: Some(500),
            continue_token: Some("tok".to_owned()),
            ..ListParams::default()
        };
        let r = Request::new(pass.kind().url_path(None))
            .list(&params)
            .expect("request");
        r.uri().query().expect("query").to_owned()
    }

    #[test]
    fn other_pods_list_carries_limit_continue_the_phase_filter_and_no_fargate_label() {
        let q = query(Pass::OtherPods, None);
        assert!(q.contains("limit=500"), "{q}");
        assert!(q.contains("continue=tok"), "{q}");
        assert!(q.contains("fieldSelector=status.phase%21%3DPending"), "{q}");
        assert!(
            q.contains("labelSelector=%21eks.amazonaws.com%2Ffargate-profile"),
            "{q}"
        );
    }

    #[test]
    fn fargate_pods_list_has_the_label_and_no_phase_filter() {
        let q = query(Pass::FargatePods, None);
        assert!(
            q.contains("labelSelector=eks.amazonaws.com%2Ffargate-profile"),
            "{q}"
        );
        assert!(
            !q.contains("fieldSelector"),
            "running Fargate pods count: {q}"
        );
    }

    #[test]
    fn jobs_list_has_only_the_users_selector() {
        let q = query(Pass::Jobs, None);
        assert!(
            !q.contains("labelSelector") && !q.contains("fieldSelector"),
            "{q}"
        );
        assert_eq!(
            Pass::Jobs.label_selector(Some(" app=etl ")).as_deref(),
            Some("app=etl")
        );
    }

    #[test]
    fn pod_passes_and_their_label_with_the_users_selector() {
        let user = Some("app=etl,tier in (a,b)");
        assert_eq!(
            Pass::FargatePods.label_selector(user).as_deref(),
            Some("app=etl,tier in (a,b),eks.amazonaws.com/fargate-profile")
        );
        assert_eq!(
            Pass::OtherPods.label_selector(user).as_deref(),
            Some("app=etl,tier in (a,b),!eks.amazonaws.com/fargate-profile")
        );
        assert_eq!(
            Pass::OtherPods.label_selector(Some("  ")).as_deref(),
            Some("!eks.amazonaws.com/fargate-profile")
        );
    }
}

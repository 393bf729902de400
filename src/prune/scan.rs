//! Listing Jobs and Pods page by page (`limit` + `continue`), deciding each object with the
//! policy as the page arrives, and handing the due ones to the deleter.
//!
//! Memory stays bounded by a page: objects are dropped once decided; only a small
//! [`Candidate`] (kind, namespace, name, uid, reason) travels on, through a bounded channel.
//!
//! Pods are listed in three passes filtered server-side by the Fargate label and
//! `status.phase` (see [`Pass`]): unfinished Fargate pods as metadata only (their creation
//! times feed the forecast; without a status the policy keeps them), finished Fargate pods
//! and other finished pods whole. Running non-Fargate pods never cross the wire.
//!
//! A 410 Gone on a continue token (etcd compacted the snapshot) is logged and handled: the
//! `Status` usually carries a fresh continue token for an inconsistent continuation; if it
//! does not, the list restarts from the beginning and skips objects already handled.

use std::collections::HashSet;
use std::sync::RwLock;

use http::StatusCode;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::core::params::ListParams;
use kube::core::{ObjectList, Request};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::observe::Observer;
use super::pass::{Candidate, Kind, Pass};
use super::tally::{Seen, Tally};
use super::{lean, lean_protobuf};
use crate::api::{self, ApiStats, CallError};
use crate::clock::Clock;
use crate::deadline::Deadline;
use crate::eks::ClusterAccess;
use crate::failure::{ClusterFailure, chain, hint};
use crate::policy::keep_last::{self, Finished, History, KeepLast};
use crate::policy::{
    self, Decision, Delete, JobContext, JobIndex, Keep, Mode, NamespaceIndex, PodContext, Settings,
};

/// How many times one list may restart after 410 before the cluster is failed.
const MAX_LIST_RESTARTS: u32 = 5;

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
        source: lean_protobuf::PageError,
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
    pub fn kind(&self) -> ClusterFailure {
        match self {
            ScanError::Call {
                source: CallError::Throttled { .. },
                ..
            } => ClusterFailure::Throttled,
            ScanError::Call {
                source: CallError::Access(e),
                ..
            } => e.kind(),
            ScanError::Call {
                source: CallError::TimedOut(_),
                ..
            } => ClusterFailure::Timeout,
            ScanError::Call {
                source: CallError::Compressed(_),
                ..
            } => ClusterFailure::Decode,
            ScanError::Call { .. } => ClusterFailure::Unreachable,
            ScanError::Status { code: 401, .. } => ClusterFailure::Unauthorized,
            ScanError::Status { code: 403, .. } => ClusterFailure::Forbidden,
            ScanError::Status { .. } => ClusterFailure::ApiError,
            ScanError::Decode { .. } => ClusterFailure::Decode,
            ScanError::Expired { .. } => ClusterFailure::ContinueExpired,
        }
    }

    /// The one-line message ([`hint`]): what failed, the cause, what to do, naming the
    /// cluster's endpoint where the cause is on the way to it or in its answer.
    pub fn explain(&self, access: &ClusterAccess) -> String {
        let endpoint = &access.endpoint_url();
        match self {
            ScanError::Call {
                resource,
                source: CallError::Transport(e),
            } => {
                let doing = format!("listing {resource}");
                let e: &kube::Error = e;
                let cause = chain::root_cause(e);
                let text = chain::Chain(e).to_string().to_ascii_lowercase();
                if ["certificate", "tls", "handshake"]
                    .iter()
                    .any(|w| text.contains(w))
                {
                    hint::endpoint_tls(&doing, endpoint, &cause)
                } else {
                    hint::endpoint_unreachable(&doing, endpoint, &cause)
                }
            }
            ScanError::Status {
                resource,
                code: 401,
                ..
            } => hint::unauthorized(
                &format!("listing {resource}"),
                endpoint,
                access.cluster(),
                access.region(),
            ),
            ScanError::Status {
                resource,
                code: 403,
                message,
            } => {
                let refusal = hint::Refusal::from_message(message, "list", kubectl_name(resource));
                hint::forbidden(&format!("listing {resource}"), &refusal, message)
            }
            other => other.to_string(),
        }
    }
}

/// The resource as kubectl names it (`jobs.batch`, `pods`).
pub fn kubectl_name(resource: &str) -> &str {
    match resource {
        "jobs" => "jobs.batch",
        other => other,
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
    /// Normal or low-headroom mode.
    pub mode: Mode,
    /// Server-side label selector.
    pub label_selector: Option<&'a str>,
    /// `limit` per page.
    pub page_size: u32,
    /// Where counts go.
    pub tally: &'a Tally<'a>,
    /// Jobs listed so far, filled by the Jobs pass and read by the pod passes.
    pub jobs: &'a RwLock<JobIndex>,
    /// The clock (read once per page).
    pub clock: &'a dyn Clock,
    /// Told of each page and each due object.
    pub observer: &'a dyn Observer,
    /// What the namespaces' annotations say, read before the passes.
    pub namespaces: &'a NamespaceIndex,
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
    let mut last = KeepLast::new(ctx.settings);
    let result = scan_namespaces(pass, ctx, tx, &mut last).await;
    // Whatever is still held is among its owner's last ones (or the list stopped before
    // that was known): kept either way.
    for candidate in last.kept() {
        ctx.tally.saw(Seen {
            kind: candidate.kind,
            finished: true,
            fargate: candidate.fargate,
            created: None,
            decision: &Decision::Keep(Keep::LastOfOwner),
            namespace: &candidate.namespace,
        });
    }
    result
}

async fn scan_namespaces(
    pass: Pass,
    ctx: &ScanContext<'_>,
    tx: &mpsc::Sender<Candidate>,
    last: &mut KeepLast<Candidate>,
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
                let assess = |job: &Job, now, s: &Settings| {
                    if let Some(uid) = job.metadata.uid.as_deref() {
                        write(ctx.jobs).record(uid, policy::job_keeps_its_pods(job));
                    }
                    let context = JobContext {
                        namespaces: ctx.namespaces,
                    };
                    Assessment {
                        decision: policy::plan_job(job, now, s, context),
                        finished: policy::is_finished_job(job),
                        fargate: false,
                        created: None,
                        history: policy::finish_of(job).and_then(|(succeeded, at)| {
                            Some((keep_last::history_of(job, succeeded, s)?, at))
                        }),
                    }
                };
                scan_collection::<lean::LeanJob, Job>(pass, ns, ctx, tx, last, assess).await?
            }
            Kind::Pod => {
                scan_collection::<lean::LeanPod, Pod>(pass, ns, ctx, tx, last, |pod, now, s| {
                    let jobs = read(ctx.jobs);
                    let context = PodContext {
                        jobs: &jobs,
                        mode: ctx.mode,
                        namespaces: ctx.namespaces,
                    };
                    Assessment {
                        decision: policy::plan_pod(pod, now, s, context),
                        finished: policy::is_finished_pod(pod),
                        fargate: policy::is_fargate_pod(pod),
                        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
                        history: None,
                    }
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

/// One listed object as judged: the decision and what the counters need besides.
struct Assessment {
    decision: Decision,
    finished: bool,
    fargate: bool,
    created: Option<Timestamp>,
    /// A finished Job's owner history and finish time, when its owner's last ones are kept.
    history: Option<(History, Timestamp)>,
}

/// One list's pages as the API server serves them (`limit` + `continue`): the deadline
/// checked before each request, a 410 on a continue token resumed (with the fresh token the
/// `Status` carries, else from the start), error answers and undecodable pages as errors.
struct PageSource<'a> {
    pass: Pass,
    path: String,
    params: ListParams,
    ctx: &'a ScanContext<'a>,
    restarts: u32,
    /// Pages served so far.
    served: u64,
    /// The last page had no continue token.
    exhausted: bool,
}

/// What the next request for a page gave.
enum Fetched<L: Clone> {
    /// A page of objects.
    Page(ObjectList<L>),
    /// The previous page was the last.
    End,
    /// The deadline came first.
    Stopped,
}

impl<'a> PageSource<'a> {
    fn new(pass: Pass, namespace: Option<&str>, ctx: &'a ScanContext<'a>) -> Self {
        Self {
            pass,
            path: pass.kind().url_path(namespace),
            params: ListParams {
                label_selector: pass.label_selector(ctx.label_selector),
                field_selector: pass.field_selector().map(str::to_owned),
                limit: Some(ctx.page_size),
                ..ListParams::default()
            },
            ctx,
            restarts: 0,
            served: 0,
            exhausted: false,
        }
    }

    async fn next<L: lean_protobuf::Item>(&mut self) -> Result<Fetched<L>, ScanError> {
        let ctx = self.ctx;
        let cluster = ctx.access.cluster();
        let resource = self.pass.kind().plural();
        let pages = self.served;
        loop {
            if self.exhausted {
                return Ok(Fetched::End);
            }
            if ctx.deadline.reached() {
                warn!(
                    cluster,
                    resource, pages, "deadline reached; listing stopped"
                );
                return Ok(Fetched::Stopped);
            }
            let request = Request::new(self.path.as_str());
            let params = &self.params;
            let response = match api::call(ctx.access, ctx.stats, ctx.deadline, || {
                self.pass.list_request(&request, params)
            })
            .await
            {
                Ok(response) => response,
                Err(CallError::Deadline) => {
                    warn!(
                        cluster,
                        resource,
                        pages,
                        "deadline reached before the next page could be requested; listing stopped"
                    );
                    return Ok(Fetched::Stopped);
                }
                Err(source) => return Err(ScanError::Call { resource, source }),
            };
            if response.status == StatusCode::GONE {
                self.restarts += 1;
                let fresh = response.status_object().and_then(|s| s.metadata.continue_);
                warn!(
                    cluster,
                    resource,
                    restarts = self.restarts,
                    inconsistent_continue = fresh.is_some(),
                    detail = %response.message(),
                    "continue token expired (410); resuming the list"
                );
                ctx.tally.list_restarted();
                if self.restarts > MAX_LIST_RESTARTS {
                    return Err(ScanError::Expired {
                        resource,
                        restarts: self.restarts,
                    });
                }
                self.params.continue_token = fresh;
                continue;
            }
            if !response.status.is_success() {
                return Err(ScanError::Status {
                    resource,
                    code: response.status.as_u16(),
                    message: response.message(),
                });
            }
            let page: ObjectList<L> = lean_protobuf::decode_page(&response)
                .map_err(|source| ScanError::Decode { resource, source })?;
            self.served += 1;
            self.params.continue_token = page.metadata.continue_.clone().filter(|c| !c.is_empty());
            self.exhausted = self.params.continue_token.is_none();
            return Ok(Fetched::Page(page));
        }
    }
}

/// Lists one collection page by page and judges each object as its page arrives.
async fn scan_collection<L, K>(
    pass: Pass,
    namespace: Option<&str>,
    ctx: &ScanContext<'_>,
    tx: &mpsc::Sender<Candidate>,
    last: &mut KeepLast<Candidate>,
    assess: impl Fn(&K, Timestamp, &Settings) -> Assessment,
) -> Result<Completion, ScanError>
where
    L: lean_protobuf::Item + Into<K>,
    K: kube::Resource,
{
    let cluster = ctx.access.cluster();
    let mut source = PageSource::new(pass, namespace, ctx);
    // Hashes of UIDs handled so far, so a restarted list skips them (8 bytes each).
    let mut handled: HashSet<u64> = HashSet::new();
    loop {
        let page = match source.next::<L>().await? {
            Fetched::Page(page) => page,
            Fetched::Stopped => return Ok(Completion::Stopped),
            Fetched::End => {
                info!(
                    cluster,
                    resource = pass.kind().plural(),
                    pass = pass.as_str(),
                    pages = source.served,
                    "listing complete"
                );
                return Ok(Completion::Complete);
            }
        };
        ctx.observer.page_listed(
            cluster,
            pass,
            page.items.len() as u64,
            page.metadata
                .remaining_item_count
                .and_then(|n| u64::try_from(n).ok()),
        );
        let now = ctx.clock.now();
        for item in page.items {
            let object: K = item.into();
            let uid = object.meta().uid.as_deref().unwrap_or_default();
            // Seen before a 410 restart (or twice in an inconsistent continuation).
            if !handled.insert(policy::uid_hash(uid)) {
                continue;
            }
            let assessment = assess(&object, now, ctx.settings);
            if !judge(pass, &object, assessment, ctx, tx, last).await {
                return Ok(Completion::Stopped);
            }
        }
    }
}

/// Counts one judged object and sends it to the deleters when it is due; `false` when the
/// deleters are gone. A due Job among its owner's last ones waits in `last` instead; the
/// one it pushes out of them is sent.
async fn judge<K: kube::Resource>(
    pass: Pass,
    object: &K,
    assessment: Assessment,
    ctx: &ScanContext<'_>,
    tx: &mpsc::Sender<Candidate>,
    last: &mut KeepLast<Candidate>,
) -> bool {
    let kind = pass.kind();
    let meta = object.meta();
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    if let Decision::Keep(Keep::StuckTerminating {
        terminating_for,
        finalizers,
    }) = &assessment.decision
    {
        // The report counts them; this line names them (docs/runbook.md#stuck-objects).
        info!(
            cluster = ctx.access.cluster(),
            kind = kind.as_str(),
            namespace,
            name = meta.name.as_deref().unwrap_or_default(),
            fargate = assessment.fargate,
            terminating_seconds = terminating_for.as_secs(),
            finalizers = %finalizers.join(","),
            "stuck terminating"
        );
    }
    let due = match &assessment.decision {
        Decision::Delete(reason) => Some(candidate(kind, object, *reason, assessment.fargate)),
        Decision::Keep(_) => None,
    };
    // A due Job whose owner keeps its last ones is counted once its fate is known.
    let held = due.is_some() && assessment.history.is_some();
    if !held {
        ctx.tally.saw(Seen {
            kind,
            finished: assessment.finished,
            fargate: assessment.fargate,
            created: assessment.created,
            decision: &assessment.decision,
            namespace,
        });
    }
    let Some((history, at)) = assessment.history else {
        return match due {
            Some(candidate) => send(pass, candidate, ctx, tx).await,
            None => true,
        };
    };
    let offered = Finished {
        history,
        at,
        uid: meta.uid.clone().unwrap_or_default(),
        due,
    };
    let Some(released) = last.offer(offered) else {
        return true;
    };
    ctx.tally.saw(Seen {
        kind,
        finished: true,
        fargate: released.fargate,
        created: None,
        decision: &Decision::Delete(released.reason),
        namespace: &released.namespace,
    });
    send(pass, released, ctx, tx).await
}

/// The small record of a due object that travels to the deleters.
fn candidate<K: kube::Resource>(
    kind: Kind,
    object: &K,
    reason: Delete,
    fargate: bool,
) -> Candidate {
    let meta = object.meta();
    Candidate {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        resource_version: meta.resource_version.clone().unwrap_or_default(),
        reason,
        fargate,
    }
}

/// Hands one due object to the deleters; `false` when they are gone.
async fn send(
    pass: Pass,
    candidate: Candidate,
    ctx: &ScanContext<'_>,
    tx: &mpsc::Sender<Candidate>,
) -> bool {
    let cluster = ctx.access.cluster();
    debug!(
        cluster,
        kind = candidate.kind.as_str(),
        namespace = %candidate.namespace,
        name = %candidate.name,
        reason = %candidate.reason,
        "due for deletion"
    );
    ctx.observer.due(cluster, pass);
    tx.send(candidate).await.is_ok()
}

//! One Kubernetes Event per namespace and run summarising what the run deleted there
//! (`REAPER_NAMESPACE_EVENTS`), so a tenant sees what was removed from their namespace with
//! `kubectl get events -n NS`, without the reaper's logs. One per namespace, not one per
//! object: a drain of 100,000 Jobs would otherwise double its writes.
//!
//! A core/v1 Event about the Namespace (reason `EksReaperPruned`, type `Normal`, source and
//! reporting component `eks-reaper`), created in that namespace: the API server's validation
//! wants an Event's `involvedObject.namespace` to be its own namespace (or the Event to live
//! in `default`), so the Namespace is named with its own name as namespace, where tenants
//! can read it. The name (`eks-reaper.<run instant in hex nanoseconds>`) is fixed per run, so
//! a create retried after a lost answer finds it there (409) instead of making a second one.
//!
//! Sent after the passes, a few at a time, each through [`api::call`] and so bounded by the
//! run's deadline. A failure is counted in the report, never fails the cluster. A dry run
//! sends none: it writes nothing.

use std::collections::BTreeMap;

use futures::StreamExt;
use http::StatusCode;
use jiff::Timestamp;
use kube::core::Request;
use kube::core::params::PostParams;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::api::{self, ApiStats, CallError};
use crate::deadline::Deadline;
use crate::eks::ClusterAccess;
use crate::report::{NamespaceEventsReport, NamespaceReasons};

/// The Events' `reason`.
pub const REASON: &str = "EksReaperPruned";
/// The Events' `source.component` and `reportingComponent`.
pub const COMPONENT: &str = "eks-reaper";
/// Creates in flight at once.
const IN_FLIGHT: usize = 4;

/// `eks-reaper deleted 12 Job(s) (succeededPastTtl=10, failedPastTtl=2) and 3 Pod(s)
/// (fargatePodPastTtl=3)`: each kind present, its reasons by count (most first).
pub fn message(reasons: &NamespaceReasons) -> String {
    let part = |noun: &str, by_reason: &BTreeMap<&'static str, u64>| {
        let total: u64 = by_reason.values().sum();
        (total > 0).then(|| {
            let mut sorted: Vec<(&str, u64)> = by_reason.iter().map(|(r, n)| (*r, *n)).collect();
            sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let listed: Vec<String> = sorted.iter().map(|(r, n)| format!("{r}={n}")).collect();
            format!("{total} {noun}(s) ({})", listed.join(", "))
        })
    };
    let parts: Vec<String> = [part("Job", &reasons.jobs), part("Pod", &reasons.pods)]
        .into_iter()
        .flatten()
        .collect();
    format!("eks-reaper deleted {}", parts.join(" and "))
}

/// The Event's name for a run at `now`.
pub fn name(now: Timestamp) -> String {
    format!("{COMPONENT}.{:x}", now.as_nanosecond().max(0))
}

/// The Event summarising `message` for `namespace`.
pub fn event(namespace: &str, name: &str, message: &str, now: Timestamp) -> Value {
    let at = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": "v1", "kind": "Namespace", "name": namespace, "namespace": namespace,
        },
        "reason": REASON,
        "message": message,
        "type": "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
    })
}

/// Sends one Event per namespace of `deletions`, while the deadline allows.
pub async fn announce(
    access: &ClusterAccess,
    stats: &ApiStats,
    deadline: &Deadline,
    now: Timestamp,
    deletions: &BTreeMap<String, NamespaceReasons>,
) -> NamespaceEventsReport {
    let cluster = access.cluster();
    let name = name(now);
    let results: Vec<(&String, Result<(), String>)> = futures::stream::iter(deletions)
        .map(|(namespace, reasons)| {
            let body = event(namespace, &name, &message(reasons), now);
            async move {
                (
                    namespace,
                    create(access, stats, deadline, namespace, &body).await,
                )
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut report = NamespaceEventsReport::default();
    for (namespace, result) in results {
        match result {
            Ok(()) => report.sent += 1,
            Err(error) => {
                debug!(cluster, namespace = %namespace, error = %error, "namespace event not sent");
                report.failed += 1;
                report.error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = &report.error {
        warn!(
            cluster,
            sent = report.sent,
            failed = report.failed,
            error = %error,
            "namespace events not all sent"
        );
    } else if report.sent > 0 {
        info!(cluster, sent = report.sent, "namespace events sent");
    }
    report
}

/// Creates one Event; `Err` says why it is not there.
async fn create(
    access: &ClusterAccess,
    stats: &ApiStats,
    deadline: &Deadline,
    namespace: &str,
    body: &Value,
) -> Result<(), String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let request = Request::new(format!("/api/v1/namespaces/{namespace}/events"));
    let doing = format!("creating the Event in namespace {namespace}");
    let response = match api::call(access, stats, deadline, || {
        request.create(&PostParams::default(), bytes.clone())
    })
    .await
    {
        Ok(response) => response,
        Err(CallError::Deadline) => {
            return Err(format!("{doing}: no time left before the deadline"));
        }
        Err(e) => return Err(format!("{doing}: {e}")),
    };
    // 409: a create retried after a lost answer; the Event is there.
    if response.status.is_success() || response.status == StatusCode::CONFLICT {
        Ok(())
    } else {
        Err(format!(
            "{doing}: HTTP {}: {}",
            response.status.as_u16(),
            response.message()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(jobs: &[(&'static str, u64)], pods: &[(&'static str, u64)]) -> NamespaceReasons {
        NamespaceReasons {
            jobs: jobs.iter().copied().collect(),
            pods: pods.iter().copied().collect(),
        }
    }

    #[test]
    fn the_message_counts_each_kind_by_reason_most_first() {
        let r = reasons(
            &[("failedPastTtl", 2), ("succeededPastTtl", 10)],
            &[("fargatePodPastTtl", 3)],
        );
        assert_eq!(
            message(&r),
            "eks-reaper deleted 12 Job(s) (succeededPastTtl=10, failedPastTtl=2) and 3 Pod(s) \
             (fargatePodPastTtl=3)"
        );
    }

    #[test]
    fn the_message_names_only_the_kinds_deleted() {
        assert_eq!(
            message(&reasons(
                &[],
                &[("barePodPastTtl", 1), ("evictedPastTtl", 1)]
            )),
            "eks-reaper deleted 2 Pod(s) (barePodPastTtl=1, evictedPastTtl=1)"
        );
        assert_eq!(
            message(&reasons(&[("failedPastTtl", 4)], &[])),
            "eks-reaper deleted 4 Job(s) (failedPastTtl=4)"
        );
    }

    #[test]
    fn the_event_is_about_the_namespace_and_lives_in_it() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().expect("now");
        let n = name(now);
        assert!(n.starts_with("eks-reaper."), "{n}");
        assert!(
            n.len() <= 253
                && n.chars()
                    .all(|c| c.is_ascii_hexdigit() || "eks-rap.".contains(c))
        );
        let e = event(
            "etl",
            &n,
            "eks-reaper deleted 1 Job(s) (succeededPastTtl=1)",
            now,
        );
        assert_eq!(e["metadata"]["namespace"], "etl");
        assert_eq!(e["involvedObject"]["kind"], "Namespace");
        assert_eq!(e["involvedObject"]["name"], "etl");
        assert_eq!(e["involvedObject"]["namespace"], "etl");
        assert_eq!(e["reason"], "EksReaperPruned");
        assert_eq!(e["type"], "Normal");
        assert_eq!(e["source"]["component"], "eks-reaper");
        assert_eq!(e["reportingComponent"], "eks-reaper");
        assert_eq!(e["firstTimestamp"], "2026-11-28T12:00:00Z");
        assert_eq!(e["count"], 1);
    }
}

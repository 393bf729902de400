//! Deleting due objects: adaptive concurrency, preconditions, propagation, deadline.
//!
//! - How many DELETEs are in flight is decided by an [`AdaptiveLimit`]
//!   (`super::concurrency`): it grows while answers come back quick and unthrottled, comes
//!   down on 429s and rising latency, and never exceeds `REAPER_CONCURRENCY`. One limit per
//!   cluster, carried from pass to pass.
//! - Jobs go with `propagationPolicy: Background` (without it the API orphans their pods).
//! - Every DELETE carries the listed `uid` and `resourceVersion` as preconditions: a
//!   re-created object of the same name (workflow engines reuse names) survives, and so does
//!   one changed since it was judged (a keep annotation added meanwhile). They also make
//!   "deleted" mean "deleted by this run": two overlapping runs racing for one pod would
//!   otherwise both get 200 (the API server's graceful path sets `deletionTimestamp`, then
//!   deletes, and answers 200 to a second DELETE that lost the race); with the
//!   `resourceVersion` precondition the loser gets 409.
//! - 404 is "already gone", 409 "changed, skipped": neither is an error.
//! - 429 is retried by [`crate::api::call`] with `Retry-After` and jitter.
//! - Once the deadline is near, nothing new starts: the rest is counted as backlog.
//! - A DELETE sent but left unanswered at the deadline may still have been applied (the
//!   API server got it): it is counted under `errors.timedOut`, never as deleted; the next
//!   run finds the object gone or deletes it.
//! - Client-side dry run sends nothing; server-side sends `dryRun=All`.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use http::StatusCode;
use kube::core::Request;
use kube::core::params::{DeleteParams, Preconditions, PropagationPolicy};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::concurrency::{AdaptiveLimit, Sample};
use super::observe::Observer;
use super::pass::{Candidate, Kind, Pass};
use super::tally::{Outcome, Tally};
use crate::api::{self, ApiStats, CallError, Response};
use crate::config::DryRun;
use crate::deadline::Deadline;
use crate::eks::ClusterAccess;
use crate::failure::DeleteFailure;

/// What the deleters need.
pub struct DeleteContext<'a> {
    /// Cluster access.
    pub access: &'a ClusterAccess,
    /// Request counters.
    pub stats: &'a ApiStats,
    /// Run deadline.
    pub deadline: &'a Deadline,
    /// Dry-run mode.
    pub dry_run: DryRun,
    /// Where outcomes go.
    pub tally: &'a Tally<'a>,
    /// Told of each object dealt with, and of what a client-side dry run would delete.
    pub observer: &'a dyn Observer,
}

/// Deletes every candidate of `pass` received until the channel closes, as many at once as
/// `limit` allows; every answer goes back to `limit`.
pub async fn drain(
    mut rx: mpsc::Receiver<Candidate>,
    pass: Pass,
    ctx: &DeleteContext<'_>,
    limit: &mut AdaptiveLimit,
) {
    let mut running = FuturesUnordered::new();
    let mut open = true;
    loop {
        let room = open && limit.has_room();
        tokio::select! {
            // Answers first: each may change the limit before the next DELETE starts.
            biased;
            Some((ticket, sample)) = running.next(), if !running.is_empty() => {
                limit.finish(ticket, sample);
            }
            received = rx.recv(), if room => match received {
                Some(candidate) => {
                    let ticket = limit.start();
                    running.push(async move {
                        let (outcome, sample) = delete_one(&candidate, ctx).await;
                        ctx.tally.outcome(
                            candidate.kind,
                            &candidate.namespace,
                            candidate.fargate,
                            &candidate.reason,
                            &outcome,
                        );
                        ctx.observer.handled(ctx.access.cluster(), pass);
                        (ticket, sample)
                    });
                }
                None => open = false,
            },
            else => break,
        }
    }
}

/// The DELETE options for a candidate.
pub fn delete_params(candidate: &Candidate, dry_run: DryRun) -> DeleteParams {
    DeleteParams {
        dry_run: dry_run == DryRun::Server,
        propagation_policy: (candidate.kind == Kind::Job).then_some(PropagationPolicy::Background),
        preconditions: Some(Preconditions {
            uid: Some(candidate.uid.clone()),
            resource_version: Some(candidate.resource_version.clone()).filter(|rv| !rv.is_empty()),
        }),
        ..DeleteParams::default()
    }
}

/// Sends one DELETE; returns what became of the object, and what the answer says about the
/// server's load.
async fn delete_one(c: &Candidate, ctx: &DeleteContext<'_>) -> (Outcome, Sample) {
    let cluster = ctx.access.cluster();
    let kind = c.kind.as_str();
    if ctx.deadline.reached() {
        return (Outcome::Backlog, Sample::Nothing);
    }
    if ctx.dry_run == DryRun::Client {
        info!(cluster, kind, namespace = %c.namespace, name = %c.name, fargate = c.fargate, reason = %c.reason, "would delete (dry run)");
        ctx.observer.would_delete(cluster, c);
        return (Outcome::Deleted, Sample::Nothing);
    }
    let params = delete_params(c, ctx.dry_run);
    let request = Request::new(c.kind.url_path(Some(&c.namespace)));
    let sent = Instant::now();
    let response = match api::call(ctx.access, ctx.stats, ctx.deadline, || {
        request.delete(&c.name, &params)
    })
    .await
    {
        Ok(r) => r,
        Err(CallError::Deadline) => {
            debug!(cluster, kind, namespace = %c.namespace, name = %c.name, "deadline reached before the delete could be sent; left for the next run");
            return (Outcome::Backlog, Sample::Nothing);
        }
        Err(CallError::TimedOut(cut)) => {
            warn!(cluster, kind, namespace = %c.namespace, name = %c.name, error = %cut, "delete got no answer in time; it may have been applied");
            return (
                failed(DeleteFailure::TimedOut, cut.to_string()),
                Sample::Overloaded,
            );
        }
        Err(e @ CallError::Throttled { .. }) => {
            warn!(cluster, kind, namespace = %c.namespace, name = %c.name, error = %e, "still throttled after every retry; delete failed");
            return (
                failed(DeleteFailure::Throttled, e.to_string()),
                Sample::Overloaded,
            );
        }
        Err(e) => {
            warn!(cluster, kind, namespace = %c.namespace, name = %c.name, error = %e, "delete failed");
            return (
                failed(DeleteFailure::Unreachable, e.to_string()),
                Sample::Nothing,
            );
        }
    };
    let sample = load_sample(response.throttled_before(), sent.elapsed());
    let outcome = answered(&response);
    match &outcome {
        Outcome::Deleted => info!(
            cluster,
            kind,
            namespace = %c.namespace,
            name = %c.name,
            fargate = c.fargate,
            reason = %c.reason,
            server_dry_run = ctx.dry_run == DryRun::Server,
            "deleted"
        ),
        Outcome::Conflict => {
            info!(cluster, kind, namespace = %c.namespace, name = %c.name, detail = %response.message(), "changed since listed (uid/resourceVersion precondition); skipped");
        }
        Outcome::Failed {
            kind: refusal,
            message,
        } => {
            warn!(cluster, kind, namespace = %c.namespace, name = %c.name, status = response.status.as_u16(), refusal = refusal.as_str(), detail = %message, "delete refused");
        }
        Outcome::AlreadyGone | Outcome::Backlog => {}
    }
    (outcome, sample)
}

fn failed(kind: DeleteFailure, message: String) -> Outcome {
    Outcome::Failed { kind, message }
}

/// What an answered DELETE did to the object: 2xx deleted (or accepted by a server-side dry
/// run), 404 already gone, 409 changed since it was listed; any other status is a failure
/// of the kind [`refusal_kind`] tells.
pub fn answered(response: &Response) -> Outcome {
    match response.status {
        s if s.is_success() => Outcome::Deleted,
        StatusCode::NOT_FOUND => Outcome::AlreadyGone,
        StatusCode::CONFLICT => Outcome::Conflict,
        s => {
            let message = response.message();
            failed(refusal_kind(s, &message), message)
        }
    }
}

/// What an answer says about the server's load: a call that met a 429 on its way is an
/// overload even when it ended well; otherwise its latency is the sample.
fn load_sample(throttled_before: u32, latency: Duration) -> Sample {
    if throttled_before > 0 {
        Sample::Overloaded
    } else {
        Sample::Answered(latency)
    }
}

/// Classifies a refused DELETE. An admission refusal (a validating webhook, or a
/// ValidatingAdmissionPolicy protecting some objects) is told from missing RBAC by its
/// message, since both can answer 403: RBAC says `... cannot delete resource ...`, admission
/// names the webhook or the policy. Admission refusals are per object and do not fail the
/// cluster; RBAC refusals (`forbidden`, `unauthorized`) do. A 403 that is neither is counted
/// as `forbidden`: unknown means loud.
pub fn refusal_kind(status: StatusCode, message: &str) -> DeleteFailure {
    let admission = message.contains("admission webhook")
        || message.contains("ValidatingAdmissionPolicy")
        || message.contains("denied the request");
    let rbac = message.contains(" cannot delete resource ");
    match status {
        StatusCode::FORBIDDEN if admission && !rbac => DeleteFailure::AdmissionDenied,
        StatusCode::FORBIDDEN => DeleteFailure::Forbidden,
        StatusCode::UNAUTHORIZED => DeleteFailure::Unauthorized,
        _ if admission => DeleteFailure::AdmissionDenied,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => DeleteFailure::Rejected,
        s if s.is_server_error() => DeleteFailure::ServerError,
        _ => DeleteFailure::ApiError,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::Delete;

    fn candidate(kind: Kind) -> Candidate {
        Candidate {
            kind,
            namespace: "etl".to_owned(),
            name: "run-1".to_owned(),
            uid: "1234".to_owned(),
            resource_version: "5678".to_owned(),
            reason: Delete::SucceededPastTtl {
                age: Duration::from_secs(1200),
            },
            fargate: false,
        }
    }

    fn body(kind: Kind, dry_run: DryRun) -> (String, serde_json::Value) {
        let c = candidate(kind);
        let r = Request::new(kind.url_path(Some("etl")))
            .delete(&c.name, &delete_params(&c, dry_run))
            .expect("request");
        let uri = r.uri().to_string();
        (uri, serde_json::from_slice(r.body()).expect("json body"))
    }

    #[test]
    fn job_delete_propagates_in_background_with_uid_and_version_preconditions() {
        let (uri, b) = body(Kind::Job, DryRun::Off);
        assert_eq!(uri, "/apis/batch/v1/namespaces/etl/jobs/run-1?");
        assert_eq!(b["propagationPolicy"], "Background");
        assert_eq!(b["preconditions"]["uid"], "1234");
        assert_eq!(b["preconditions"]["resourceVersion"], "5678");
        assert!(b.get("dryRun").is_none());
    }

    #[test]
    fn pod_delete_has_uid_and_version_preconditions_and_no_propagation() {
        let (uri, b) = body(Kind::Pod, DryRun::Off);
        assert!(
            uri.starts_with("/api/v1/namespaces/etl/pods/run-1"),
            "{uri}"
        );
        assert_eq!(b["preconditions"]["uid"], "1234");
        assert_eq!(b["preconditions"]["resourceVersion"], "5678");
        assert!(b.get("propagationPolicy").is_none());
    }

    #[test]
    fn rbac_denial_is_forbidden_and_admission_denials_are_told_apart() {
        let rbac = "jobs.batch \"run-1\" is forbidden: User \"eks-reaper\" cannot delete \
                    resource \"jobs\" in API group \"batch\" in the namespace \"etl\"";
        assert_eq!(
            refusal_kind(StatusCode::FORBIDDEN, rbac),
            DeleteFailure::Forbidden
        );
        let webhook = "admission webhook \"guard.example.com\" denied the request: protected";
        assert_eq!(
            refusal_kind(StatusCode::FORBIDDEN, webhook),
            DeleteFailure::AdmissionDenied
        );
        let vap = "pods \"p\" is forbidden: ValidatingAdmissionPolicy 'guard' with binding \
                   'guard' denied request: protected";
        assert_eq!(
            refusal_kind(StatusCode::FORBIDDEN, vap),
            DeleteFailure::AdmissionDenied
        );
        let vap_invalid = "ValidatingAdmissionPolicy 'guard' with binding 'guard' denied \
                           request: protected";
        assert_eq!(
            refusal_kind(StatusCode::UNPROCESSABLE_ENTITY, vap_invalid),
            DeleteFailure::AdmissionDenied
        );
        assert_eq!(
            refusal_kind(StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            DeleteFailure::Rejected
        );
        assert_eq!(
            refusal_kind(StatusCode::FORBIDDEN, "forbidden"),
            DeleteFailure::Forbidden,
            "an unexplained 403 stays a loud RBAC-style failure"
        );
    }

    #[test]
    fn a_401_is_unauthorized_whatever_the_message() {
        assert_eq!(
            refusal_kind(StatusCode::UNAUTHORIZED, "Unauthorized"),
            DeleteFailure::Unauthorized
        );
    }

    #[test]
    fn a_400_without_an_admission_message_is_rejected() {
        assert_eq!(
            refusal_kind(StatusCode::BAD_REQUEST, "invalid preconditions"),
            DeleteFailure::Rejected
        );
    }

    #[test]
    fn a_5xx_is_a_server_error_and_any_other_status_an_api_error() {
        for status in [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            assert_eq!(
                refusal_kind(status, "etcdserver: request timed out"),
                DeleteFailure::ServerError,
                "{status}"
            );
        }
        for status in [StatusCode::METHOD_NOT_ALLOWED, StatusCode::GONE] {
            assert_eq!(
                refusal_kind(status, "unexpected"),
                DeleteFailure::ApiError,
                "{status}"
            );
        }
    }

    /// The outcome of a DELETE answered with `status` and a `metav1.Status` saying
    /// `message`.
    fn answer(status: StatusCode, message: &str) -> Outcome {
        let body = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "code": status.as_u16(),
        });
        answered(&Response::new(
            status,
            serde_json::to_vec(&body).expect("json"),
        ))
    }

    #[test]
    fn an_answered_delete_is_deleted_gone_or_changed_by_its_status() {
        assert_eq!(answer(StatusCode::OK, ""), Outcome::Deleted);
        assert_eq!(answer(StatusCode::ACCEPTED, ""), Outcome::Deleted);
        assert_eq!(
            answer(StatusCode::NOT_FOUND, "jobs.batch \"run-1\" not found"),
            Outcome::AlreadyGone
        );
        assert_eq!(
            answer(
                StatusCode::CONFLICT,
                "Precondition failed: UID in precondition: 1234, UID in object meta: 9"
            ),
            Outcome::Conflict
        );
    }

    #[test]
    fn a_refused_delete_is_a_failure_of_its_kind_carrying_the_servers_message() {
        let webhook = "admission webhook \"guard.example.com\" denied the request: protected";
        assert_eq!(
            answer(StatusCode::FORBIDDEN, webhook),
            Outcome::Failed {
                kind: DeleteFailure::AdmissionDenied,
                message: webhook.to_owned(),
            }
        );
        assert_eq!(
            answered(&Response::new(StatusCode::BAD_GATEWAY, Vec::new())),
            Outcome::Failed {
                kind: DeleteFailure::ServerError,
                message: "502 Bad Gateway".to_owned(),
            },
            "without a Status body the status line is the message"
        );
    }

    #[test]
    fn an_answer_after_a_429_reports_overload_and_any_other_its_latency() {
        let latency = Duration::from_millis(40);
        assert_eq!(load_sample(0, latency), Sample::Answered(latency));
        assert_eq!(load_sample(1, latency), Sample::Overloaded);
        assert_eq!(load_sample(3, latency), Sample::Overloaded);
    }

    #[test]
    fn server_dry_run_sends_dry_run_all() {
        let (_, b) = body(Kind::Job, DryRun::Server);
        assert_eq!(b["dryRun"], serde_json::json!(["All"]));
    }
}

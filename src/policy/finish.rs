//! When a Job or Pod finished: the instant its retention counts from.

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;

pub(super) fn terminal_condition(job: &Job) -> Option<&JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

/// `Some((succeeded, finish time))` when the Job is finished, `None` while it is not.
///
/// Finished means a `Complete=True` or `Failed=True` condition and no pods active or
/// terminating; the finish time is that condition's `lastTransitionTime` (what the native TTL
/// controller uses), with `status.completionTime` as a fallback for successes.
pub(super) fn job_finish(job: &Job) -> Option<(bool, Option<Timestamp>)> {
    let status = job.status.as_ref()?;
    if status.active.unwrap_or(0) > 0 || status.terminating.unwrap_or(0) > 0 {
        return None;
    }
    let terminal = terminal_condition(job)?;
    let succeeded = terminal.type_ == "Complete";
    let at = terminal
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
        .or_else(|| {
            succeeded
                .then(|| status.completion_time.as_ref().map(|t| t.0))
                .flatten()
        });
    Some((succeeded, at))
}

/// When a finished pod became terminal: the latest of every container's termination (init,
/// sidecar, regular, ephemeral) and every condition transition, so an early container end
/// never makes a pod look older than it is. Only when the pod recorded neither (a pod
/// rejected before it ran) does its start time stand in.
pub(super) fn pod_finish(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref()?;
    let terminations = status
        .init_container_statuses
        .iter()
        .chain(status.container_statuses.iter())
        .chain(status.ephemeral_container_statuses.iter())
        .flatten()
        .filter_map(|cs| cs.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref());
    let transitions = status
        .conditions
        .iter()
        .flatten()
        .filter_map(|c| c.last_transition_time.as_ref());
    terminations
        .chain(transitions)
        .map(|t| t.0)
        .max()
        .or_else(|| status.start_time.as_ref().map(|t| t.0))
}

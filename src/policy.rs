//! The pruning policy: a pure function from one Job or Pod, the current time, the
//! [`Settings`], what the namespaces' annotations say ([`NamespaceIndex`]) and (for pods)
//! what the Jobs pass learned ([`JobIndex`]) to a [`Decision`] that always carries its
//! reason.
//!
//! Nothing here performs I/O or reads a clock: the scanner passes `now` in, so every rule is
//! table-tested below with fixed instants. Whatever the policy does not understand (a keep
//! annotation it cannot read, an owner it does not know, a Job it did not list, a namespace
//! annotation it cannot read or a namespace it could not list) keeps the object, with a
//! reason.
//!
//! Rules, in the order they are checked (the first that applies gives the reason):
//!
//! | Object | Rule | Decision |
//! |---|---|---|
//! | both | namespace excluded, not included, or protected and not named | `Keep::ExcludedNamespace` |
//! | both | `metadata.deletionTimestamp` set | `Keep::BeingDeleted` |
//! | both | `eks-reaper/keep` true (`true`/`yes`/`1`/`on`) | `Keep::OptedOut` |
//! | both | `eks-reaper/keep` neither true nor false | `Keep::InvalidKeepAnnotation` |
//! | both | the namespace's annotations are unknown (list failed, or it was not listed) | `Keep::NamespaceAnnotationsUnknown` |
//! | both | the namespace's `eks-reaper/keep` is true | `Keep::NamespaceOptedOut` |
//! | both | a namespace annotation the policy cannot read | `Keep::InvalidNamespaceAnnotation` |
//! | Job | no `Complete=True`/`Failed=True` condition, suspended | `Keep::Suspended` |
//! | Job | no `Complete=True`/`Failed=True` condition, or pods still active or terminating | `Keep::Active` |
//! | Job | controller is a `batch` CronJob and CronJob Jobs are skipped | `Keep::OwnedByCronJob` |
//! | Job | controller neither a `batch` CronJob nor in `prune_owners` | `Keep::OwnedByController` |
//! | Job | `ttlSecondsAfterFinished` set and the native controller respected | `Keep::NativeTtl` |
//! | Job | finished longer ago than its retention | `Delete::SucceededPastTtl` / `Delete::FailedPastTtl` |
//! | Pod | phase not `Succeeded`/`Failed` | `Keep::NotFinished` |
//! | Pod | still carries the Job controller's `batch.kubernetes.io/job-tracking` finalizer | `Keep::NotCounted` |
//! | Pod | its `batch` Job keeps its pods (`eks-reaper/keep` on the Job) | `Keep::JobOptedOut` |
//! | Pod | of a `batch` Job, neither Fargate nor Evicted | `Keep::OwnedByJob` (goes with its Job) |
//! | Pod | of a `batch` Job this run did not list | `Keep::JobNotListed` |
//! | Pod | controller neither a `batch` Job nor in `prune_owners`, not Evicted | `Keep::OwnedByController` |
//! | Pod | Fargate pod finished longer ago than the Fargate retention | `Delete::FargatePodPastTtl` |
//! | Pod | Evicted pod past the bare-pod retention | `Delete::EvictedPastTtl` |
//! | Pod | no controller (or one in `prune_owners`), past the bare-pod retention | `Delete::BarePodPastTtl` |
//!
//! A Job is finished once it has a `Complete=True` or `Failed=True` condition, even if it
//! was suspended afterwards: the native TTL-after-finished controller decides the same way.
//!
//! Retention of a due-able object is, by precedence (the first that is set wins):
//!
//! | # | Source | Jobs | Pods |
//! |---|---|---|---|
//! | 1 | the object's annotation | `eks-reaper/ttl` | `eks-reaper/ttl` |
//! | 2 | its namespace's per-class annotation | `eks-reaper/succeeded-job-ttl`, `eks-reaper/failed-job-ttl` | `eks-reaper/fargate-pod-ttl`, `eks-reaper/bare-pod-ttl` (Evicted pods too) |
//! | 3 | its namespace's `eks-reaper/ttl` | every class | every class |
//! | 4 | the Job's own `ttlSecondsAfterFinished`, when the native TTL controller is not respected (when it is, the Job is `Keep::NativeTtl` whatever the annotations say) | yes | — |
//! | 5 | the cluster setting ([`Settings`]) | `succeeded_job_ttl`, `failed_job_ttl` | `fargate_pod_ttl`, `bare_pod_ttl` |
//!
//! In low-headroom mode a Fargate pod's retention, wherever it came from, is capped by
//! `low_headroom_fargate_ttl`: the subnet IP matters more than a wish to linger. Opting out
//! works at either level: a true `eks-reaper/keep` on the object or on its namespace keeps
//! it, and a false one on the object does not undo its namespace's. An object is due when
//! `now >= finish + retention`, as the native TTL controller decides.

mod job_index;
mod namespace;
mod owner;
mod reason;

pub use job_index::{JobIndex, OwnerJob, uid_hash};
pub use namespace::{
    BARE_POD_TTL_ANNOTATION, FAILED_JOB_TTL_ANNOTATION, FARGATE_POD_TTL_ANNOTATION,
    NAMESPACE_ANNOTATIONS, NamespaceIndex, NamespaceOverrides, NamespaceRule,
    SUCCEEDED_JOB_TTL_ANNOTATION,
};
pub use owner::{OwnerKind, controller_of};
pub use reason::{Decision, Delete, Keep};

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Annotation that opts an object out of pruning when set to `"true"`.
pub const KEEP_ANNOTATION: &str = "eks-reaper/keep";
/// Annotation overriding an object's retention (a `humantime` duration such as `2h`).
pub const TTL_ANNOTATION: &str = "eks-reaper/ttl";
/// Label EKS puts on every pod scheduled onto Fargate.
pub const FARGATE_PROFILE_LABEL: &str = "eks.amazonaws.com/fargate-profile";
/// Scheduler name EKS sets on Fargate pods.
pub const FARGATE_SCHEDULER: &str = "fargate-scheduler";
/// Finalizer the Job controller puts on its pods until it has counted them.
pub const JOB_TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Namespaces never pruned unless named in [`Settings::namespaces`]: the cluster's own.
pub const PROTECTED_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Reads a yes/no value the way every setting and annotation is read: `true`, `yes`, `1`,
/// `on` or `false`, `no`, `0`, `off`, any ASCII case, surrounding whitespace ignored.
/// `None` for anything else.
pub fn parse_flag(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// Everything the policy needs besides the object and the clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Retention after `Complete=True`.
    pub succeeded_job_ttl: Duration,
    /// Retention after `Failed=True`.
    pub failed_job_ttl: Duration,
    /// Retention of a finished Fargate pod, whatever happens to its Job.
    pub fargate_pod_ttl: Duration,
    /// Retention of finished pods without a controller, and of Evicted pods.
    pub bare_pod_ttl: Duration,
    /// Only these namespaces (empty: all but the [`PROTECTED_NAMESPACES`]). A protected
    /// namespace is pruned only when named here.
    pub namespaces: Vec<String>,
    /// Never these namespaces, besides the protected ones.
    pub exclude_namespaces: Vec<String>,
    /// Controllers (group and kind) whose finished Jobs and pods the user hands over to the
    /// reaper; any other controller's are kept.
    pub prune_owners: Vec<OwnerKind>,
    /// Leave Jobs with `ttlSecondsAfterFinished` to the native TTL controller.
    pub respect_native_ttl: bool,
    /// Leave CronJob-owned Jobs to the CronJob's history limits.
    pub skip_cronjob_jobs: bool,
    /// Fargate pod retention ceiling while in low-headroom mode.
    pub low_headroom_fargate_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            succeeded_job_ttl: Duration::from_secs(15 * 60),
            failed_job_ttl: Duration::from_secs(24 * 3600),
            fargate_pod_ttl: Duration::from_secs(15 * 60),
            bare_pod_ttl: Duration::from_secs(3600),
            namespaces: Vec::new(),
            exclude_namespaces: Vec::new(),
            prune_owners: Vec::new(),
            respect_native_ttl: true,
            skip_cronjob_jobs: false,
            low_headroom_fargate_ttl: Duration::from_secs(60),
        }
    }
}

impl Settings {
    /// Whether objects in `namespace` are in scope at all.
    pub fn namespace_in_scope(&self, namespace: &str) -> bool {
        if self.exclude_namespaces.iter().any(|n| n == namespace) {
            return false;
        }
        if self.namespaces.is_empty() {
            !PROTECTED_NAMESPACES.contains(&namespace)
        } else {
            self.namespaces.iter().any(|n| n == namespace)
        }
    }

    /// Whether the user handed this controller's objects over (`prune_owners`).
    pub fn handed_over(&self, owner: &OwnerKind) -> bool {
        self.prune_owners.contains(owner)
    }

    /// The Fargate pod retention in force (lowered in low-headroom mode, never raised).
    pub fn effective_fargate_pod_ttl(&self, mode: Mode) -> Duration {
        match mode {
            Mode::Normal => self.fargate_pod_ttl,
            Mode::LowHeadroom => self.fargate_pod_ttl.min(self.low_headroom_fargate_ttl),
        }
    }
}

/// The run's state the pod rules depend on, decided from the subnets before pruning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// The configured retentions.
    #[default]
    Normal,
    /// The cluster's subnets are nearly full of IPs: finished Fargate pods get at most
    /// `low_headroom_fargate_ttl`.
    LowHeadroom,
}

/// What the run knows when it judges a pod: the Jobs it listed, the mode, and the
/// namespaces' annotations.
#[derive(Debug, Clone, Copy)]
pub struct PodContext<'a> {
    /// What the Jobs pass learned about the Jobs of pods.
    pub jobs: &'a JobIndex,
    /// Normal or low-headroom.
    pub mode: Mode,
    /// What the namespaces' annotations say.
    pub namespaces: &'a NamespaceIndex,
}

/// What the run knows when it judges a Job besides the Job: the namespaces' annotations.
#[derive(Debug, Clone, Copy)]
pub struct JobContext<'a> {
    /// What the namespaces' annotations say.
    pub namespaces: &'a NamespaceIndex,
}

/// Decides what to do with one Job at instant `now`.
pub fn plan_job(
    job: &Job,
    now: Timestamp,
    settings: &Settings,
    context: JobContext<'_>,
) -> Decision {
    let namespace = match guards(&job.metadata, settings, context.namespaces) {
        Ok(overrides) => overrides,
        Err(keep) => return Decision::Keep(keep),
    };
    let spec = job.spec.as_ref();
    let Some((succeeded, finished_at)) = job_finish(job) else {
        return Decision::Keep(if spec.and_then(|s| s.suspend) == Some(true) {
            Keep::Suspended
        } else {
            Keep::Active
        });
    };
    if let Some(owner) = controller_of(&job.metadata).map(OwnerKind::of) {
        if owner.is_batch_cronjob() {
            if settings.skip_cronjob_jobs {
                return Decision::Keep(Keep::OwnedByCronJob);
            }
        } else if !settings.handed_over(&owner) {
            return Decision::Keep(Keep::OwnedByController { owner });
        }
    }
    let native_ttl = spec.and_then(|s| s.ttl_seconds_after_finished);
    if native_ttl.is_some() && settings.respect_native_ttl {
        return Decision::Keep(Keep::NativeTtl);
    }
    let Some(finished_at) = finished_at else {
        return Decision::Keep(Keep::UnknownFinishTime);
    };
    let default_ttl = match (namespace.job_ttl(succeeded), native_ttl) {
        (Some(ttl), _) => ttl,
        // Reached only when the native controller is not respected: honour the Job's own TTL
        // as that controller would.
        (None, Some(secs)) => Duration::from_secs(u64::try_from(secs).unwrap_or(0)),
        (None, None) if succeeded => settings.succeeded_job_ttl,
        (None, None) => settings.failed_job_ttl,
    };
    let ttl = match annotation_ttl(&job.metadata) {
        Ok(Some(ttl)) => ttl,
        Ok(None) => default_ttl,
        Err(value) => return Decision::Keep(Keep::InvalidTtlAnnotation { value }),
    };
    due(finished_at, ttl, now, |age| {
        if succeeded {
            Delete::SucceededPastTtl { age }
        } else {
            Delete::FailedPastTtl { age }
        }
    })
}

/// Whether a Job's pods must stay with it: its `eks-reaper/keep` is an opt-out, or a value
/// the policy cannot read. Read by the Jobs pass into the [`JobIndex`].
pub fn job_keeps_its_pods(job: &Job) -> bool {
    matches!(
        keep_annotation(&job.metadata),
        Some(Keep::OptedOut | Keep::InvalidKeepAnnotation { .. })
    )
}

/// How a finished pod is pruned, once it is known to be ours.
enum PodClass {
    Fargate,
    Evicted,
    Bare,
}

/// Decides what to do with one Pod at instant `now`; `jobs` says what the Jobs pass learned
/// about the Jobs that own pods.
pub fn plan_pod(
    pod: &Pod,
    now: Timestamp,
    settings: &Settings,
    context: PodContext<'_>,
) -> Decision {
    let PodContext {
        jobs,
        mode,
        namespaces,
    } = context;
    let namespace = match guards(&pod.metadata, settings, namespaces) {
        Ok(overrides) => overrides,
        Err(keep) => return Decision::Keep(keep),
    };
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    if phase != "Succeeded" && phase != "Failed" {
        return Decision::Keep(Keep::NotFinished {
            phase: phase.to_owned(),
        });
    }
    let counting = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == JOB_TRACKING_FINALIZER);
    if counting {
        return Decision::Keep(Keep::NotCounted);
    }
    let evicted = phase == "Failed" && status.and_then(|s| s.reason.as_deref()) == Some("Evicted");
    let fargate = is_fargate_pod(pod);
    let own_class = if fargate {
        PodClass::Fargate
    } else if evicted {
        PodClass::Evicted
    } else {
        PodClass::Bare
    };
    let class = match controller_of(&pod.metadata) {
        None => own_class,
        Some(reference) => {
            let owner = OwnerKind::of(reference);
            if owner.is_batch_job() {
                match jobs.owner(&reference.uid) {
                    OwnerJob::KeepsItsPods => return Decision::Keep(Keep::JobOptedOut),
                    _ if !fargate && !evicted => return Decision::Keep(Keep::OwnedByJob),
                    OwnerJob::NotListed => return Decision::Keep(Keep::JobNotListed),
                    OwnerJob::Listed => own_class,
                }
            } else if evicted || settings.handed_over(&owner) {
                own_class
            } else {
                return Decision::Keep(Keep::OwnedByController { owner });
            }
        }
    };
    let Some(finished_at) = pod_finish(pod) else {
        return Decision::Keep(Keep::UnknownFinishTime);
    };
    let ttl = match pod_retention(pod, &class, namespace, settings, mode) {
        Ok(ttl) => ttl,
        Err(keep) => return Decision::Keep(keep),
    };
    due(finished_at, ttl, now, |age| match class {
        PodClass::Fargate => Delete::FargatePodPastTtl { age },
        PodClass::Evicted => Delete::EvictedPastTtl { age },
        PodClass::Bare => Delete::BarePodPastTtl { age },
    })
}

/// A finished pod's retention, by precedence: its `eks-reaper/ttl`, its namespace's, the
/// cluster setting. In low-headroom mode the Fargate ceiling caps it wherever it came from:
/// the IP matters more than a wish to linger. `Err` when its own annotation cannot be read.
fn pod_retention(
    pod: &Pod,
    class: &PodClass,
    namespace: &NamespaceOverrides,
    settings: &Settings,
    mode: Mode,
) -> Result<Duration, Keep> {
    let ttl = match annotation_ttl(&pod.metadata) {
        Ok(Some(ttl)) => ttl,
        Ok(None) => match class {
            PodClass::Fargate => namespace.fargate_ttl().unwrap_or(settings.fargate_pod_ttl),
            PodClass::Evicted | PodClass::Bare => {
                namespace.bare_ttl().unwrap_or(settings.bare_pod_ttl)
            }
        },
        Err(value) => return Err(Keep::InvalidTtlAnnotation { value }),
    };
    Ok(match class {
        PodClass::Fargate if mode == Mode::LowHeadroom => {
            ttl.min(settings.low_headroom_fargate_ttl)
        }
        _ => ttl,
    })
}

/// Whether the pod runs on Fargate, judged from the pod alone (no `nodes` permission needed).
pub fn is_fargate_pod(pod: &Pod) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(FARGATE_PROFILE_LABEL))
        || pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()) == Some(FARGATE_SCHEDULER)
}

/// Whether the pod is in a terminal phase.
pub fn is_finished_pod(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Whether the Job has a terminal (`Complete=True` or `Failed=True`) condition.
pub fn is_finished_job(job: &Job) -> bool {
    terminal_condition(job).is_some()
}

/// The guards every object passes ([`common_guards`]), then its namespace's annotations: the
/// overrides in force, or why the object is kept.
fn guards<'n>(
    meta: &ObjectMeta,
    settings: &Settings,
    namespaces: &'n NamespaceIndex,
) -> Result<&'n NamespaceOverrides, Keep> {
    if let Some(keep) = common_guards(meta, settings) {
        return Err(keep);
    }
    namespaces.overrides(meta.namespace.as_deref().unwrap_or(""))
}

fn common_guards(meta: &ObjectMeta, settings: &Settings) -> Option<Keep> {
    if !settings.namespace_in_scope(meta.namespace.as_deref().unwrap_or("")) {
        return Some(Keep::ExcludedNamespace);
    }
    if meta.deletion_timestamp.is_some() {
        return Some(Keep::BeingDeleted);
    }
    keep_annotation(meta)
}

/// `eks-reaper/keep`: a true value opts out; a false value is as if it were absent; anything
/// else keeps the object, since its author clearly meant something.
fn keep_annotation(meta: &ObjectMeta) -> Option<Keep> {
    let value = annotation(meta, KEEP_ANNOTATION)?;
    match parse_flag(value) {
        Some(true) => Some(Keep::OptedOut),
        Some(false) => None,
        None => Some(Keep::InvalidKeepAnnotation {
            value: value.to_owned(),
        }),
    }
}

fn terminal_condition(job: &Job) -> Option<&JobCondition> {
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
fn job_finish(job: &Job) -> Option<(bool, Option<Timestamp>)> {
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
fn pod_finish(pod: &Pod) -> Option<Timestamp> {
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

fn due(
    finished_at: Timestamp,
    ttl: Duration,
    now: Timestamp,
    reason: impl FnOnce(Duration) -> Delete,
) -> Decision {
    let age = now.duration_since(finished_at);
    let ttl = SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX);
    if age >= ttl {
        Decision::Delete(reason(to_std(age)))
    } else {
        // A finish time in the future (clock skew) leaves more than the whole retention.
        Decision::Keep(Keep::WithinRetention {
            remaining: to_std(ttl.saturating_sub(age)),
        })
    }
}

fn to_std(d: SignedDuration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

fn annotation<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// `Ok(Some)` for a valid `eks-reaper/ttl`, `Ok(None)` when absent, `Err(value)` when invalid.
fn annotation_ttl(meta: &ObjectMeta) -> Result<Option<Duration>, String> {
    match annotation(meta, TTL_ANNOTATION) {
        None => Ok(None),
        Some(v) => humantime::parse_duration(v.trim())
            .map(Some)
            .map_err(|_| v.to_owned()),
    }
}

#[cfg(test)]
mod tests;

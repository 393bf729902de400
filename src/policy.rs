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
//! | both | `metadata.deletionTimestamp` set, for longer than `stuck_after` | `Keep::StuckTerminating` |
//! | both | `metadata.deletionTimestamp` set, for `stuck_after` or less | `Keep::BeingDeleted` |
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
//! | Job | due, but among its owner's last `keep_last_failed` / `keep_last_succeeded` ([`keep_last`], applied by the scanner over the whole list) | `Keep::LastOfOwner` |
//! | Pod | phase not `Succeeded`/`Failed` | `Keep::NotFinished` |
//! | Pod | still carries the Job controller's `batch.kubernetes.io/job-tracking` finalizer | `Keep::NotCounted` |
//! | Pod | its `batch` Job keeps its pods (`eks-reaper/keep` on the Job) | `Keep::JobOptedOut` |
//! | Pod | of a `batch` Job, neither Fargate nor Evicted | `Keep::OwnedByJob` (goes with its Job) |
//! | Pod | of a `batch` Job this run did not list | `Keep::JobNotListed` |
//! | Pod | controller neither a `batch` Job nor in `prune_owners`, not Evicted | `Keep::OwnedByController` |
//! | Pod | a workflow engine's ([`engine`]) Fargate pod marked done, in low-headroom mode | `Delete::EngineDone` (at once) |
//! | Pod | an Argo or Spark-operator pod (handed over, or Evicted) without the engine's done marker | `Keep::EngineNotDone` |
//! | Pod | another engine's pod without its done marker, past its class retention but not `engine_pod_grace` | `Keep::EngineGrace` |
//! | Pod | Fargate pod finished longer ago than the Fargate retention | `Delete::FargatePodPastTtl` |
//! | Pod | Evicted pod past the bare-pod retention | `Delete::EvictedPastTtl` |
//! | Pod | no controller (or one in `prune_owners`), past the bare-pod retention | `Delete::BarePodPastTtl` |
//!
//! A Job is finished once it has a `Complete=True` or `Failed=True` condition, even if it
//! was suspended afterwards: the native TTL-after-finished controller decides the same way.
//!
//! An object being deleted is never deleted again, and its finalizers are never removed:
//! whoever added a finalizer owns that step, and only a person can decide it will never be
//! taken (`docs/runbook.md#stuck-objects`). How long it has been terminating is
//! `now − deletionTimestamp`; for a pod the API server sets `deletionTimestamp` to the end
//! of its grace period, so the time counts from when its kubelet should have been done.
//! Past `stuck_after` the reason says so, with the finalizers holding the object.
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

mod engine;
mod finish;
mod job_index;
pub mod keep_last;
mod namespace;
mod owner;
mod reason;

pub use engine::{Engine, EnginePod, engine_pod};
pub use job_index::{JobIndex, OwnerJob, uid_hash};
pub use namespace::{
    BARE_POD_TTL_ANNOTATION, FAILED_JOB_TTL_ANNOTATION, FARGATE_POD_TTL_ANNOTATION,
    NAMESPACE_ANNOTATIONS, NamespaceIndex, NamespaceOverrides, NamespaceRule,
    SUCCEEDED_JOB_TTL_ANNOTATION,
};
pub use owner::{OwnerKind, controller_of};
pub use reason::{Decision, Delete, Keep};

use finish::{job_finish, pod_finish, terminal_condition};

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::Job;
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
    /// The least time after it finished that a workflow engine's pod without the engine's
    /// "done" marker is kept, whatever the mode, the class retention or the annotation.
    pub engine_pod_grace: Duration,
    /// The newest failed Jobs of each owner kept whatever their retention (0: off).
    pub keep_last_failed: usize,
    /// The newest succeeded Jobs of each owner kept whatever their retention (0: off).
    pub keep_last_succeeded: usize,
    /// The label naming the owner (workflow, task) of Jobs no CronJob controls, for
    /// keeping their last ones.
    pub keep_last_label: Option<String>,
    /// An object being deleted for longer than this is stuck terminating.
    pub stuck_after: Duration,
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
            engine_pod_grace: Duration::from_secs(5 * 60),
            keep_last_failed: 1,
            keep_last_succeeded: 0,
            keep_last_label: None,
            stuck_after: Duration::from_secs(10 * 60),
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
    let namespace = match guards(&job.metadata, now, settings, context.namespaces) {
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

/// `Some((succeeded, finish time))` of a finished Job whose finish time is known.
pub fn finish_of(job: &Job) -> Option<(bool, Timestamp)> {
    match job_finish(job)? {
        (succeeded, Some(at)) => Some((succeeded, at)),
        (_, None) => None,
    }
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
#[derive(Clone, Copy, PartialEq, Eq)]
enum PodClass {
    Fargate,
    Evicted,
    Bare,
}

impl PodClass {
    fn reason(self, age: Duration) -> Delete {
        match self {
            PodClass::Fargate => Delete::FargatePodPastTtl { age },
            PodClass::Evicted => Delete::EvictedPastTtl { age },
            PodClass::Bare => Delete::BarePodPastTtl { age },
        }
    }
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
    let judged = guards(&pod.metadata, now, settings, namespaces).and_then(|namespace| {
        unfinished(pod)?;
        let class = pod_class(pod, settings, jobs)?;
        let finished_at = pod_finish(pod).ok_or(Keep::UnknownFinishTime)?;
        let ttl = pod_retention(pod, class, namespace, mode, settings)?;
        Ok((class, finished_at, ttl))
    });
    match judged {
        Ok((class, finished_at, ttl)) => {
            for_engine(pod, class, mode, settings, (finished_at, ttl, now))
        }
        Err(keep) => Decision::Keep(keep),
    }
}

/// Keeps a pod that has not finished, or that the Job controller has not counted yet (it
/// still carries the `batch.kubernetes.io/job-tracking` finalizer).
fn unfinished(pod: &Pod) -> Result<(), Keep> {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    if phase != "Succeeded" && phase != "Failed" {
        return Err(Keep::NotFinished {
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
        return Err(Keep::NotCounted);
    }
    Ok(())
}

/// How a finished pod is pruned, or why it is not ours to prune: its controller decides.
fn pod_class(pod: &Pod, settings: &Settings, jobs: &JobIndex) -> Result<PodClass, Keep> {
    let status = pod.status.as_ref();
    let evicted = status.and_then(|s| s.phase.as_deref()) == Some("Failed")
        && status.and_then(|s| s.reason.as_deref()) == Some("Evicted");
    let fargate = is_fargate_pod(pod);
    let own_class = if fargate {
        PodClass::Fargate
    } else if evicted {
        PodClass::Evicted
    } else {
        PodClass::Bare
    };
    let Some(reference) = controller_of(&pod.metadata) else {
        return Ok(own_class);
    };
    let owner = OwnerKind::of(reference);
    if owner.is_batch_job() {
        match jobs.owner(&reference.uid) {
            OwnerJob::KeepsItsPods => Err(Keep::JobOptedOut),
            _ if !fargate && !evicted => Err(Keep::OwnedByJob),
            OwnerJob::NotListed => Err(Keep::JobNotListed),
            OwnerJob::Listed => Ok(own_class),
        }
    } else if evicted || settings.handed_over(&owner) {
        Ok(own_class)
    } else {
        Err(Keep::OwnedByController { owner })
    }
}

/// A finished pod's retention, by precedence: its `eks-reaper/ttl`, its namespace's, the
/// cluster setting. In low-headroom mode the Fargate ceiling caps it wherever it came from:
/// the IP matters more than a wish to linger. `Err` when its own annotation cannot be read.
fn pod_retention(
    pod: &Pod,
    class: PodClass,
    namespace: &NamespaceOverrides,
    mode: Mode,
    settings: &Settings,
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

/// The decision for a finished pod of ours past its guards, `(finished_at, ttl, now)`
/// given: a workflow engine's pod ([`engine`]) is judged by its engine's marks first.
fn for_engine(
    pod: &Pod,
    class: PodClass,
    mode: Mode,
    settings: &Settings,
    (finished_at, ttl, now): (Timestamp, Duration, Timestamp),
) -> Decision {
    let by_class = |age| class.reason(age);
    let Some(EnginePod { engine, done }) = engine_pod(&pod.metadata) else {
        return due(finished_at, ttl, now, by_class);
    };
    if done {
        // Nothing will read the pod again: in low-headroom mode its IP is worth more than
        // the retention. Otherwise the class retention holds: the marker is also written
        // on pods their users asked the engine to keep for troubleshooting.
        if class == PodClass::Fargate && mode == Mode::LowHeadroom {
            return due(finished_at, Duration::ZERO, now, |age| Delete::EngineDone {
                age,
            });
        }
        return due(finished_at, ttl, now, by_class);
    }
    if engine.waits_for_marker() {
        return Decision::Keep(Keep::EngineNotDone { engine });
    }
    match due(
        finished_at,
        ttl.max(settings.engine_pod_grace),
        now,
        by_class,
    ) {
        // Inside the grace but past what the class alone would keep: the grace keeps it.
        Decision::Keep(Keep::WithinRetention { remaining })
            if matches!(due(finished_at, ttl, now, by_class), Decision::Delete(_)) =>
        {
            Decision::Keep(Keep::EngineGrace { engine, remaining })
        }
        decision => decision,
    }
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
    now: Timestamp,
    settings: &Settings,
    namespaces: &'n NamespaceIndex,
) -> Result<&'n NamespaceOverrides, Keep> {
    if let Some(keep) = common_guards(meta, now, settings) {
        return Err(keep);
    }
    namespaces.overrides(meta.namespace.as_deref().unwrap_or(""))
}

fn common_guards(meta: &ObjectMeta, now: Timestamp, settings: &Settings) -> Option<Keep> {
    if !settings.namespace_in_scope(meta.namespace.as_deref().unwrap_or("")) {
        return Some(Keep::ExcludedNamespace);
    }
    if let Some(keep) = being_deleted(meta, now, settings) {
        return Some(keep);
    }
    keep_annotation(meta)
}

/// For an object being deleted (`deletionTimestamp` set): [`Keep::StuckTerminating`] once
/// it has been terminating for longer than [`Settings::stuck_after`], else
/// [`Keep::BeingDeleted`]. `None` for an object nobody is deleting. Also read by
/// `eks-reaper headroom` for the Fargate pods it lists.
pub fn being_deleted(meta: &ObjectMeta, now: Timestamp, settings: &Settings) -> Option<Keep> {
    let since = meta.deletion_timestamp.as_ref()?.0;
    // A pod's deletionTimestamp is the end of its grace period: in the future while the
    // kubelet still has time, then nothing is late yet.
    let terminating_for = to_std(now.duration_since(since));
    if terminating_for <= settings.stuck_after {
        return Some(Keep::BeingDeleted);
    }
    Some(Keep::StuckTerminating {
        terminating_for,
        finalizers: meta.finalizers.clone().unwrap_or_default(),
    })
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

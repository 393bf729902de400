//! What the policy decides and why: a [`Decision`] always carries a [`Keep`] or a
//! [`Delete`] reason, with a stable camelCase label for the report, logs and metrics.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::OwnerKind;
use super::engine::Engine;

/// The outcome for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Leave the object alone.
    Keep(Keep),
    /// Delete the object.
    Delete(Delete),
}

impl Decision {
    /// The reason's stable camelCase label (report keys, log fields).
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Keep(k) => k.label(),
            Decision::Delete(d) => d.label(),
        }
    }
}

/// Why an object is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// The namespace is outside the configured include/exclude lists.
    ExcludedNamespace,
    /// `metadata.deletionTimestamp` is set: someone is already deleting it.
    BeingDeleted,
    /// Annotated `eks-reaper/keep` with a true value.
    OptedOut,
    /// `eks-reaper/keep` is neither a true nor a false value; kept to be safe.
    InvalidKeepAnnotation {
        /// The annotation's value.
        value: String,
    },
    /// The Job is suspended (not finished).
    Suspended,
    /// The Job has no terminal condition yet, or pods still active or terminating.
    Active,
    /// The Job sets `ttlSecondsAfterFinished`: the native TTL controller owns its deletion.
    NativeTtl,
    /// The Job belongs to a CronJob whose history limits own its deletion.
    OwnedByCronJob,
    /// The pod has not finished (phase shown).
    NotFinished {
        /// `status.phase`, or `""` when absent.
        phase: String,
    },
    /// A non-Fargate pod of a Job: it goes when its Job goes (garbage collector).
    OwnedByJob,
    /// A finished pod the Job controller has not counted yet (it still carries the
    /// `batch.kubernetes.io/job-tracking` finalizer).
    NotCounted,
    /// A pod whose Job is kept by `eks-reaper/keep`: its logs are what the user kept it for.
    JobOptedOut,
    /// A pod of a Job this run did not list: whether that Job keeps its pods is unknown.
    JobNotListed,
    /// Controlled by something the policy does not prune (a JobSet, a training operator, a
    /// workflow engine, a ReplicaSet...): that controller may re-create or read it.
    OwnedByController {
        /// The controller's `group/Kind`.
        owner: OwnerKind,
    },
    /// The object is finished but still inside its retention.
    WithinRetention {
        /// Time left until it is due.
        remaining: Duration,
    },
    /// The finish time cannot be determined (no terminal condition timestamp).
    UnknownFinishTime,
    /// The `eks-reaper/ttl` annotation is not a duration; the object is kept to be safe.
    InvalidTtlAnnotation {
        /// The annotation's value.
        value: String,
    },
    /// A workflow engine's pod without its "done" marker, inside the engine grace
    /// (`engine_pod_grace`): the engine may still read it, its log, or its status.
    EngineGrace {
        /// The engine that made the pod.
        engine: Engine,
        /// Time left until the grace ends.
        remaining: Duration,
    },
    /// A Job the retentions would delete, kept as one of its owner's (CronJob's, or
    /// `keep_last_label`'s) last failed or succeeded Jobs.
    LastOfOwner,
    /// A pod of an engine whose only "done" signal is a marker the pod does not carry yet
    /// (Argo's `completed=true`), or that has none on the pod (the Spark operator's).
    EngineNotDone {
        /// The engine that made the pod.
        engine: Engine,
    },
    /// Being deleted for longer than `REAPER_STUCK_AFTER`: a finalizer nobody removes (or,
    /// with none, a kubelet that never confirmed the pod's end) holds it. Never deleted
    /// again, its finalizers never removed: a person decides (`docs/runbook.md#stuck-objects`).
    StuckTerminating {
        /// Time since `deletionTimestamp`.
        terminating_for: Duration,
        /// `metadata.finalizers`, as the object carries them (may be empty).
        finalizers: Vec<String>,
    },
    /// The namespace is annotated `eks-reaper/keep` with a true value.
    NamespaceOptedOut,
    /// A namespace annotation the policy cannot read; every object of the namespace is kept
    /// to be safe.
    InvalidNamespaceAnnotation {
        /// The annotation (`eks-reaper/ttl`, `eks-reaper/fargate-pod-ttl`...).
        annotation: &'static str,
        /// Its value.
        value: String,
    },
    /// The namespace's annotations are unknown (the namespaces could not be listed, or this
    /// one was not in the list): an opt-out might be missed, so the object is kept.
    NamespaceAnnotationsUnknown,
}

impl Keep {
    /// Stable camelCase label.
    pub fn label(&self) -> &'static str {
        match self {
            Keep::ExcludedNamespace => "excludedNamespace",
            Keep::BeingDeleted => "beingDeleted",
            Keep::OptedOut => "optedOut",
            Keep::InvalidKeepAnnotation { .. } => "invalidKeepAnnotation",
            Keep::Suspended => "suspended",
            Keep::Active => "active",
            Keep::NativeTtl => "nativeTtl",
            Keep::OwnedByCronJob => "ownedByCronJob",
            Keep::NotFinished { .. } => "notFinished",
            Keep::OwnedByJob => "ownedByJob",
            Keep::NotCounted => "notCounted",
            Keep::JobOptedOut => "jobOptedOut",
            Keep::JobNotListed => "jobNotListed",
            Keep::OwnedByController { .. } => "ownedByController",
            Keep::WithinRetention { .. } => "withinRetention",
            Keep::UnknownFinishTime => "unknownFinishTime",
            Keep::InvalidTtlAnnotation { .. } => "invalidTtlAnnotation",
            Keep::EngineGrace { .. } => "engineGrace",
            Keep::EngineNotDone { .. } => "engineNotDone",
            Keep::LastOfOwner => "lastOfOwner",
            Keep::StuckTerminating { .. } => "stuckTerminating",
            Keep::NamespaceOptedOut => "namespaceOptedOut",
            Keep::InvalidNamespaceAnnotation { .. } => "invalidNamespaceAnnotation",
            Keep::NamespaceAnnotationsUnknown => "namespaceAnnotationsUnknown",
        }
    }
}

/// Why an object is deleted; `age` is the time since it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum Delete {
    /// A Job with `Complete=True` past its retention.
    SucceededPastTtl {
        /// Time since it finished.
        age: Duration,
    },
    /// A Job with `Failed=True` past its retention.
    FailedPastTtl {
        /// Time since it finished.
        age: Duration,
    },
    /// A finished Fargate pod past the Fargate retention (frees its node and IP).
    FargatePodPastTtl {
        /// Time since it finished.
        age: Duration,
    },
    /// An Evicted pod past the bare-pod retention.
    EvictedPastTtl {
        /// Time since it finished.
        age: Duration,
    },
    /// A finished pod without controller past the bare-pod retention.
    BarePodPastTtl {
        /// Time since it finished.
        age: Duration,
    },
    /// A finished Fargate pod its workflow engine marked done with, in low-headroom mode:
    /// due at once, since nothing will read it again and its IP is short.
    EngineDone {
        /// Time since it finished.
        age: Duration,
    },
}

impl Delete {
    /// Stable camelCase label.
    pub fn label(&self) -> &'static str {
        match self {
            Delete::SucceededPastTtl { .. } => "succeededPastTtl",
            Delete::FailedPastTtl { .. } => "failedPastTtl",
            Delete::FargatePodPastTtl { .. } => "fargatePodPastTtl",
            Delete::EvictedPastTtl { .. } => "evictedPastTtl",
            Delete::BarePodPastTtl { .. } => "barePodPastTtl",
            Delete::EngineDone { .. } => "engineDone",
        }
    }

    /// Time since the object finished.
    pub fn age(&self) -> Duration {
        match *self {
            Delete::SucceededPastTtl { age }
            | Delete::FailedPastTtl { age }
            | Delete::FargatePodPastTtl { age }
            | Delete::EvictedPastTtl { age }
            | Delete::BarePodPastTtl { age }
            | Delete::EngineDone { age } => age,
        }
    }
}

impl fmt::Display for Delete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} ago)",
            self.label(),
            humantime::format_duration(Duration::from_secs(self.age().as_secs()))
        )
    }
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::WithinRetention { remaining } => write!(
                f,
                "withinRetention ({} left)",
                humantime::format_duration(Duration::from_secs(remaining.as_secs()))
            ),
            Keep::NotFinished { phase } => write!(f, "notFinished ({phase})"),
            Keep::InvalidTtlAnnotation { value } => write!(f, "invalidTtlAnnotation ({value:?})"),
            Keep::InvalidKeepAnnotation { value } => {
                write!(f, "invalidKeepAnnotation ({value:?})")
            }
            Keep::OwnedByController { owner } => write!(f, "ownedByController ({owner})"),
            Keep::EngineGrace { engine, remaining } => write!(
                f,
                "engineGrace ({}, {} left)",
                engine.label(),
                humantime::format_duration(Duration::from_secs(remaining.as_secs()))
            ),
            Keep::EngineNotDone { engine } => write!(f, "engineNotDone ({})", engine.label()),
            Keep::StuckTerminating {
                terminating_for,
                finalizers,
            } => write!(
                f,
                "stuckTerminating ({} terminating, finalizers: {})",
                humantime::format_duration(Duration::from_secs(terminating_for.as_secs())),
                if finalizers.is_empty() {
                    "none".to_owned()
                } else {
                    finalizers.join(", ")
                }
            ),
            Keep::InvalidNamespaceAnnotation { annotation, value } => {
                write!(f, "invalidNamespaceAnnotation ({annotation}={value:?})")
            }
            other => f.write_str(other.label()),
        }
    }
}

//! What a namespace's annotations say about the objects in it: a tenant sets their
//! namespace's retentions, or opts it out, without a redeploy.
//!
//! The run lists the cluster's Namespaces once (metadata only) and reads each one's
//! `eks-reaper/*` annotations into a [`NamespaceRule`]; the [`NamespaceIndex`] holds them for
//! the passes, as the [`JobIndex`](super::JobIndex) holds what the Jobs pass learned. Reading
//! an annotation is pure; the listing is the run's.
//!
//! | Namespace annotation | Value | Effect on every Job and Pod in the namespace |
//! |---|---|---|
//! | `eks-reaper/keep` | true (`true`/`yes`/`1`/`on`) | kept: `namespaceOptedOut` |
//! | `eks-reaper/ttl` | a duration (`2h`, `7d`) | the retention of every class |
//! | `eks-reaper/succeeded-job-ttl` | a duration | retention after `Complete=True` |
//! | `eks-reaper/failed-job-ttl` | a duration | retention after `Failed=True` |
//! | `eks-reaper/fargate-pod-ttl` | a duration | retention of finished Fargate pods |
//! | `eks-reaper/bare-pod-ttl` | a duration | retention of bare and Evicted pods |
//!
//! A per-class annotation beats `eks-reaper/ttl` in the same namespace. A value the policy
//! cannot read keeps every object of the namespace (`invalidNamespaceAnnotation`, naming the
//! annotation and the value): its owner meant something, and guessing could delete what they
//! wanted kept. Other `eks-reaper/` keys are not read.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::{KEEP_ANNOTATION, Keep, TTL_ANNOTATION, parse_flag};

/// Namespace annotation: retention of its Jobs after `Complete=True`.
pub const SUCCEEDED_JOB_TTL_ANNOTATION: &str = "eks-reaper/succeeded-job-ttl";
/// Namespace annotation: retention of its Jobs after `Failed=True`.
pub const FAILED_JOB_TTL_ANNOTATION: &str = "eks-reaper/failed-job-ttl";
/// Namespace annotation: retention of its finished Fargate pods.
pub const FARGATE_POD_TTL_ANNOTATION: &str = "eks-reaper/fargate-pod-ttl";
/// Namespace annotation: retention of its finished bare and Evicted pods.
pub const BARE_POD_TTL_ANNOTATION: &str = "eks-reaper/bare-pod-ttl";

/// Every annotation the policy reads on a namespace, in the order it reads them.
pub const NAMESPACE_ANNOTATIONS: [&str; 6] = [
    KEEP_ANNOTATION,
    TTL_ANNOTATION,
    SUCCEEDED_JOB_TTL_ANNOTATION,
    FAILED_JOB_TTL_ANNOTATION,
    FARGATE_POD_TTL_ANNOTATION,
    BARE_POD_TTL_ANNOTATION,
];

/// The retentions a namespace sets, and whether it opted out. `None`: not set there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceOverrides {
    /// `eks-reaper/keep` is true: nothing in the namespace is pruned.
    pub opted_out: bool,
    /// `eks-reaper/ttl`: every class.
    pub ttl: Option<Duration>,
    /// `eks-reaper/succeeded-job-ttl`.
    pub succeeded_job_ttl: Option<Duration>,
    /// `eks-reaper/failed-job-ttl`.
    pub failed_job_ttl: Option<Duration>,
    /// `eks-reaper/fargate-pod-ttl`.
    pub fargate_pod_ttl: Option<Duration>,
    /// `eks-reaper/bare-pod-ttl` (Evicted pods too).
    pub bare_pod_ttl: Option<Duration>,
}

impl NamespaceOverrides {
    /// A namespace without annotations: the cluster settings apply.
    pub const NONE: NamespaceOverrides = NamespaceOverrides {
        opted_out: false,
        ttl: None,
        succeeded_job_ttl: None,
        failed_job_ttl: None,
        fargate_pod_ttl: None,
        bare_pod_ttl: None,
    };

    /// The namespace's retention of a succeeded (or failed) Job, if it sets one.
    pub fn job_ttl(&self, succeeded: bool) -> Option<Duration> {
        if succeeded {
            self.succeeded_job_ttl
        } else {
            self.failed_job_ttl
        }
        .or(self.ttl)
    }

    /// The namespace's retention of finished Fargate pods, if it sets one.
    pub fn fargate_ttl(&self) -> Option<Duration> {
        self.fargate_pod_ttl.or(self.ttl)
    }

    /// The namespace's retention of bare and Evicted pods, if it sets one.
    pub fn bare_ttl(&self) -> Option<Duration> {
        self.bare_pod_ttl.or(self.ttl)
    }

    /// Whether it says anything at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::NONE
    }
}

/// What one namespace's annotations say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceRule {
    /// Read: its retentions and opt-out.
    Overrides(NamespaceOverrides),
    /// An annotation the policy cannot read: every object of the namespace is kept.
    Invalid {
        /// The annotation.
        annotation: &'static str,
        /// Its value.
        value: String,
    },
}

impl NamespaceRule {
    /// Reads a namespace's annotations. A true `eks-reaper/keep` opts it out whatever the
    /// others say; otherwise the first unreadable value (in [`NAMESPACE_ANNOTATIONS`] order)
    /// makes the rule [`NamespaceRule::Invalid`].
    pub fn from_annotations(annotations: Option<&BTreeMap<String, String>>) -> NamespaceRule {
        let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
        let invalid = |annotation: &'static str, value: &str| NamespaceRule::Invalid {
            annotation,
            value: value.to_owned(),
        };
        let mut o = NamespaceOverrides::NONE;
        if let Some(value) = get(KEEP_ANNOTATION) {
            match parse_flag(value) {
                Some(true) => {
                    o.opted_out = true;
                    return NamespaceRule::Overrides(o);
                }
                Some(false) => {}
                None => return invalid(KEEP_ANNOTATION, value),
            }
        }
        let slots = [
            (TTL_ANNOTATION, &mut o.ttl),
            (SUCCEEDED_JOB_TTL_ANNOTATION, &mut o.succeeded_job_ttl),
            (FAILED_JOB_TTL_ANNOTATION, &mut o.failed_job_ttl),
            (FARGATE_POD_TTL_ANNOTATION, &mut o.fargate_pod_ttl),
            (BARE_POD_TTL_ANNOTATION, &mut o.bare_pod_ttl),
        ];
        for (annotation, slot) in slots {
            if let Some(value) = get(annotation) {
                match humantime::parse_duration(value.trim()) {
                    Ok(d) => *slot = Some(d),
                    Err(_) => return invalid(annotation, value),
                }
            }
        }
        NamespaceRule::Overrides(o)
    }

    /// Whether the namespace sets anything (an opt-out, a retention, or an unreadable value).
    pub fn is_annotated(&self) -> bool {
        !matches!(self, NamespaceRule::Overrides(o) if o.is_empty())
    }
}

/// What the run knows of the namespaces' annotations when it judges an object.
#[derive(Debug, Clone, Default)]
pub enum NamespaceIndex {
    /// Namespace annotations are not read (turned off): the cluster settings apply
    /// everywhere.
    #[default]
    Ignored,
    /// Every namespace listed, by name, with what its annotations say.
    Listed(HashMap<String, NamespaceRule>),
    /// The namespaces could not be listed: an opt-out might be missed, so every object is
    /// kept.
    Unknown,
}

impl NamespaceIndex {
    /// The overrides in force for objects of `namespace`, or why every object there is kept:
    /// the namespace opted out, carries an unreadable annotation, or its annotations are
    /// unknown (the list failed, or the namespace was not in it).
    pub fn overrides(&self, namespace: &str) -> Result<&NamespaceOverrides, Keep> {
        let rule = match self {
            NamespaceIndex::Ignored => return Ok(&NamespaceOverrides::NONE),
            NamespaceIndex::Unknown => return Err(Keep::NamespaceAnnotationsUnknown),
            NamespaceIndex::Listed(rules) => rules
                .get(namespace)
                .ok_or(Keep::NamespaceAnnotationsUnknown)?,
        };
        match rule {
            NamespaceRule::Overrides(o) if o.opted_out => Err(Keep::NamespaceOptedOut),
            NamespaceRule::Overrides(o) => Ok(o),
            NamespaceRule::Invalid { annotation, value } => Err(Keep::InvalidNamespaceAnnotation {
                annotation,
                value: value.clone(),
            }),
        }
    }
}

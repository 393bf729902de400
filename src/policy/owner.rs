//! Who controls an object, matched on API group **and** kind: `batch/v1 Job` is the Job
//! controller's; a `Job` of any other group is some other controller's.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// An owner's API group and kind, written `group/Kind` (`core/Kind` for the core group).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerKind {
    /// API group: `batch`, `argoproj.io`; empty for the core group.
    pub group: String,
    /// Kind, case as in the API: `Job`, `Workflow`.
    pub kind: String,
}

impl OwnerKind {
    /// The group and kind of an owner reference (`apiVersion` is `group/version` or, for the
    /// core group, `version` alone).
    pub fn of(owner: &OwnerReference) -> Self {
        let group = owner
            .api_version
            .split_once('/')
            .map(|(group, _version)| group)
            .unwrap_or("");
        Self {
            group: group.to_owned(),
            kind: owner.kind.clone(),
        }
    }

    /// Parses `group/Kind` (`core/Kind` for the core group); `None` when malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let (group, kind) = text.trim().split_once('/')?;
        let group_ok = !group.is_empty()
            && group
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
        let kind_ok = kind.starts_with(|c: char| c.is_ascii_uppercase())
            && kind.chars().all(|c| c.is_ascii_alphanumeric());
        (group_ok && kind_ok).then(|| Self {
            group: if group == "core" { "" } else { group }.to_owned(),
            kind: kind.to_owned(),
        })
    }

    fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }

    /// `batch/Job`.
    pub fn is_batch_job(&self) -> bool {
        self.is("batch", "Job")
    }

    /// `batch/CronJob`.
    pub fn is_batch_cronjob(&self) -> bool {
        self.is("batch", "CronJob")
    }
}

impl fmt::Display for OwnerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{group}/{}", self.kind)
    }
}

/// The owner reference with `controller: true`, if any. Other owner references only make the
/// object a garbage-collection dependent; they do not manage it.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(api_version: &str, kind: &str) -> OwnerReference {
        OwnerReference {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            ..OwnerReference::default()
        }
    }

    #[test]
    fn group_comes_from_the_api_version() {
        assert!(OwnerKind::of(&owner("batch/v1", "Job")).is_batch_job());
        assert!(!OwnerKind::of(&owner("example.com/v1", "Job")).is_batch_job());
        assert!(!OwnerKind::of(&owner("v1", "Job")).is_batch_job());
        assert_eq!(
            OwnerKind::of(&owner("v1", "ReplicationController")).to_string(),
            "core/ReplicationController"
        );
        assert_eq!(
            OwnerKind::of(&owner("jobset.x-k8s.io/v1alpha2", "JobSet")).to_string(),
            "jobset.x-k8s.io/JobSet"
        );
    }

    #[test]
    fn parse_reads_group_and_kind_and_core() {
        assert_eq!(
            OwnerKind::parse(" argoproj.io/Workflow "),
            Some(OwnerKind {
                group: "argoproj.io".to_owned(),
                kind: "Workflow".to_owned()
            })
        );
        assert_eq!(
            OwnerKind::parse("core/ReplicationController").map(|o| o.group),
            Some(String::new())
        );
        for bad in [
            "Workflow",
            "/Workflow",
            "argoproj.io/",
            "argoproj.io/workflow",
            "Argo.io/Workflow",
            "a/b/C",
            "argoproj.io/Work flow",
        ] {
            assert_eq!(OwnerKind::parse(bad), None, "{bad:?}");
        }
    }
}

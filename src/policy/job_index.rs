//! What the Jobs pass learned that the pod passes need: which Jobs this run listed, and
//! which of them keep their pods (an `eks-reaper/keep` that is an opt-out, or a value the
//! policy does not understand). A pod of a Job is judged against this index: the user who
//! kept a Job to look at it wants its logs, which live in its pods.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// What the index knows about a pod's Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerJob {
    /// Listed, and it does not keep its pods.
    Listed,
    /// Listed, and it keeps its pods.
    KeepsItsPods,
    /// Not listed by this run (created since, outside the label selector, or already gone):
    /// unknown, so the pod is kept.
    NotListed,
}

/// Jobs listed by this run, by UID. Listed UIDs are kept as 64-bit hashes (8 bytes each: a
/// 100,000-Job cluster costs under 2 MB); the few Jobs that keep their pods by full UID, so a
/// hash collision could only ever keep a pod, never delete one.
#[derive(Debug, Default)]
pub struct JobIndex {
    listed: HashSet<u64>,
    keeping: HashSet<String>,
}

impl JobIndex {
    /// Records a listed Job.
    pub fn record(&mut self, uid: &str, keeps_its_pods: bool) {
        self.listed.insert(uid_hash(uid));
        if keeps_its_pods {
            self.keeping.insert(uid.to_owned());
        }
    }

    /// What is known about the Job with `uid`.
    pub fn owner(&self, uid: &str) -> OwnerJob {
        if self.keeping.contains(uid) {
            OwnerJob::KeepsItsPods
        } else if self.listed.contains(&uid_hash(uid)) {
            OwnerJob::Listed
        } else {
            OwnerJob::NotListed
        }
    }

    /// Jobs recorded.
    pub fn len(&self) -> usize {
        self.listed.len()
    }

    /// Whether no Job was recorded.
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }
}

/// A UID's 64-bit hash: 8 bytes to remember that an object was seen.
pub fn uid_hash(uid: &str) -> u64 {
    let mut h = DefaultHasher::new();
    uid.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_listed_and_keeping_jobs_are_told_apart() {
        let mut index = JobIndex::default();
        assert!(index.is_empty());
        index.record("a", false);
        index.record("b", true);
        assert_eq!(index.owner("a"), OwnerJob::Listed);
        assert_eq!(index.owner("b"), OwnerJob::KeepsItsPods);
        assert_eq!(index.owner("c"), OwnerJob::NotListed);
        assert_eq!(index.len(), 2);
        assert!(!index.is_empty());
    }
}

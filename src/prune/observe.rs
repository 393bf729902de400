//! What a caller may watch of a run as it happens, besides the [`Progress`](super::tally::Progress)
//! counters: the CLI's `plan` collects the objects a client-side dry run would delete, its
//! progress bars follow the passes. The Lambda watches nothing ([`Unobserved`]).
//!
//! Every method has an empty default, is called from the run's tasks, and must return at
//! once: an observer records, it never decides or waits.

use super::pass::{Candidate, Pass};

/// Receives a run's events.
pub trait Observer: Sync {
    /// A pass of `cluster` starts listing.
    fn pass_started(&self, _cluster: &str, _pass: Pass) {}

    /// A page of `objects` of the pass arrived; `remaining` is the API server's estimate of
    /// the objects still to list (sent only for lists without a selector).
    fn page_listed(&self, _cluster: &str, _pass: Pass, _objects: u64, _remaining: Option<u64>) {}

    /// One object of the pass was found due for deletion.
    fn due(&self, _cluster: &str, _pass: Pass) {}

    /// One due object of the pass was dealt with (deleted, gone, skipped, failed, backlog).
    fn handled(&self, _cluster: &str, _pass: Pass) {}

    /// The pass's list and deletions are over.
    fn pass_finished(&self, _cluster: &str, _pass: Pass) {}

    /// A client-side dry run would delete `candidate` now (the policy's decision, with its
    /// reason and age).
    fn would_delete(&self, _cluster: &str, _candidate: &Candidate) {}
}

/// Watches nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}

/// Two observers, each told everything.
#[derive(Clone, Copy)]
pub struct Both<'a>(pub &'a dyn Observer, pub &'a dyn Observer);

impl Observer for Both<'_> {
    fn pass_started(&self, cluster: &str, pass: Pass) {
        self.0.pass_started(cluster, pass);
        self.1.pass_started(cluster, pass);
    }

    fn page_listed(&self, cluster: &str, pass: Pass, objects: u64, remaining: Option<u64>) {
        self.0.page_listed(cluster, pass, objects, remaining);
        self.1.page_listed(cluster, pass, objects, remaining);
    }

    fn due(&self, cluster: &str, pass: Pass) {
        self.0.due(cluster, pass);
        self.1.due(cluster, pass);
    }

    fn handled(&self, cluster: &str, pass: Pass) {
        self.0.handled(cluster, pass);
        self.1.handled(cluster, pass);
    }

    fn pass_finished(&self, cluster: &str, pass: Pass) {
        self.0.pass_finished(cluster, pass);
        self.1.pass_finished(cluster, pass);
    }

    fn would_delete(&self, cluster: &str, candidate: &Candidate) {
        self.0.would_delete(cluster, candidate);
        self.1.would_delete(cluster, candidate);
    }
}

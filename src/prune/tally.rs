//! The live counters of one cluster's run, shared by the scanner (what was listed and how
//! the policy judged it) and the deleters (what became of each due object); folded into the
//! cluster's report at the end. The run-wide [`Progress`] is passed in, so a caller (the
//! CLI's progress bar) can watch it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;

use super::pass::Kind;
use crate::failure::DeleteFailure;
use crate::policy::{Decision, Delete, Keep};
use crate::report::{
    self, ClusterReport, JobCounts, NO_FINALIZER_KEY, NamespaceDeletions, NamespaceReasons,
    PodCounts, StuckCounts,
};

/// How many Fargate pod creation instants are kept for the forecast.
const MAX_FARGATE_CREATIONS: usize = 100_000;

/// Progress of one run (all clusters): objects found due and objects dealt with (deleted,
/// gone, skipped, failed or left as backlog).
#[derive(Debug, Default)]
pub struct Progress {
    due: AtomicU64,
    done: AtomicU64,
}

impl Progress {
    /// `(done, due)` so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.due.load(Ordering::Relaxed),
        )
    }
}

/// One listed object, as the scanner saw it.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'d> {
    /// Job or Pod.
    pub kind: Kind,
    /// A finished Job (`Complete`/`Failed`) or a terminated pod.
    pub finished: bool,
    /// A Fargate pod.
    pub fargate: bool,
    /// Creation time (kept for the forecast for every Fargate pod, finished or not).
    pub created: Option<Timestamp>,
    /// The policy's decision.
    pub decision: &'d Decision,
    /// Its namespace.
    pub namespace: &'d str,
}

/// What became of one due object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Deleted (or accepted by a server-side dry run, or would be in a client dry run).
    Deleted,
    /// 404: already gone.
    AlreadyGone,
    /// 409: changed since it was listed (uid/resourceVersion precondition); skipped.
    Conflict,
    /// Not attempted: the deadline came first.
    Backlog,
    /// Failed.
    Failed {
        /// The kind of failure.
        kind: DeleteFailure,
        /// What the API server (or the transport) said.
        message: String,
    },
}

/// Counters shared by the scanner and the deleters of one cluster.
#[derive(Debug)]
pub struct Tally<'p> {
    counts: Mutex<Counts>,
    progress: &'p Progress,
}

#[derive(Debug, Default)]
struct Counts {
    jobs: JobCounts,
    pods: PodCounts,
    errors: BTreeMap<DeleteFailure, u64>,
    error_samples: BTreeMap<DeleteFailure, String>,
    already_gone: u64,
    /// Finished Fargate pods found already gone (404): they hold no IP either.
    fargate_already_gone: u64,
    conflicts: u64,
    backlog: u64,
    list_restarts: u64,
    fargate_creations: Vec<Timestamp>,
    by_namespace: BTreeMap<String, NamespaceDeletions>,
    stuck: StuckCounts,
    reasons_by_namespace: BTreeMap<String, NamespaceReasons>,
    /// The soonest a kept object becomes due (inside its retention or engine grace).
    next_due: Option<std::time::Duration>,
}

impl<'p> Tally<'p> {
    /// Empty counters feeding `progress`.
    pub fn new(progress: &'p Progress) -> Self {
        Tally {
            counts: Mutex::default(),
            progress,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
        let mut guard = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Records one listed object and the policy's decision.
    pub fn saw(&self, seen: Seen<'_>) {
        let Seen {
            kind,
            finished,
            fargate,
            created,
            decision,
            namespace,
        } = seen;
        if matches!(decision, Decision::Delete(_)) {
            self.progress.due.fetch_add(1, Ordering::Relaxed);
        }
        if let Decision::Keep(
            Keep::WithinRetention { remaining } | Keep::EngineGrace { remaining, .. },
        ) = decision
        {
            self.with(|c| c.next_due = Some(c.next_due.map_or(*remaining, |n| n.min(*remaining))));
        }
        if let Decision::Keep(stuck @ Keep::StuckTerminating { .. }) = decision {
            // Whatever the phase: a stuck Fargate pod holds its IP, running or not.
            self.with(|c| count_stuck(&mut c.stuck, kind, fargate, namespace, stuck));
        }
        self.with(|c| match kind {
            Kind::Job => {
                c.jobs.seen += 1;
                c.jobs.finished += u64::from(finished);
                if let Decision::Keep(k) = decision {
                    *c.jobs.kept_by_reason.entry(k.label()).or_default() += 1;
                    if let Keep::OwnedByController { owner } = k {
                        *c.jobs.kept_by_owner.entry(owner.to_string()).or_default() += 1;
                    }
                }
            }
            Kind::Pod => {
                if fargate
                    && let Some(t) = created
                    && c.fargate_creations.len() < MAX_FARGATE_CREATIONS
                {
                    c.fargate_creations.push(t);
                }
                if fargate && !finished {
                    // Listed for the forecast only: not part of the finished-pod counts.
                    c.pods.fargate_running += 1;
                    return;
                }
                c.pods.seen += 1;
                c.pods.terminated += u64::from(finished);
                c.pods.fargate_finished += u64::from(fargate && finished);
                if let Decision::Keep(k) = decision {
                    *c.pods.kept_by_reason.entry(k.label()).or_default() += 1;
                    if let Keep::OwnedByController { owner } = k {
                        *c.pods.kept_by_owner.entry(owner.to_string()).or_default() += 1;
                    }
                }
            }
        });
    }

    /// Records what became of one due object in `namespace`.
    pub fn outcome(
        &self,
        kind: Kind,
        namespace: &str,
        fargate: bool,
        reason: &Delete,
        outcome: &Outcome,
    ) {
        self.progress.done.fetch_add(1, Ordering::Relaxed);
        self.with(|c| match outcome {
            Outcome::Deleted => {
                let n = c
                    .by_namespace
                    .entry(namespace.to_owned())
                    .or_insert_with(|| NamespaceDeletions {
                        namespace: namespace.to_owned(),
                        ..NamespaceDeletions::default()
                    });
                match kind {
                    Kind::Job => {
                        n.jobs_deleted += 1;
                        c.jobs.deleted += 1;
                        *c.jobs.deleted_by_reason.entry(reason.label()).or_default() += 1;
                    }
                    Kind::Pod => {
                        n.pods_deleted += 1;
                        n.fargate_pods_deleted += u64::from(fargate);
                        c.pods.deleted += 1;
                        c.pods.fargate_deleted += u64::from(fargate);
                        *c.pods.deleted_by_reason.entry(reason.label()).or_default() += 1;
                    }
                }
                let reasons = c
                    .reasons_by_namespace
                    .entry(namespace.to_owned())
                    .or_default();
                let by_reason = match kind {
                    Kind::Job => &mut reasons.jobs,
                    Kind::Pod => &mut reasons.pods,
                };
                *by_reason.entry(reason.label()).or_default() += 1;
            }
            Outcome::AlreadyGone => {
                c.already_gone += 1;
                c.fargate_already_gone += u64::from(kind == Kind::Pod && fargate);
            }
            Outcome::Conflict => c.conflicts += 1,
            Outcome::Backlog => c.backlog += 1,
            Outcome::Failed { kind, message } => {
                *c.errors.entry(*kind).or_default() += 1;
                c.error_samples
                    .entry(*kind)
                    .or_insert_with(|| message.clone());
            }
        });
    }

    /// Records a list restart after 410.
    pub fn list_restarted(&self) {
        self.with(|c| c.list_restarts += 1);
    }

    /// Folds the counts into the cluster's report.
    pub fn into_report(self, report: &mut ClusterReport) {
        let t = self.counts.into_inner().unwrap_or_else(|p| p.into_inner());
        report.jobs = t.jobs;
        report.pods = t.pods;
        report.errors = t.errors;
        report.error_samples = t.error_samples;
        report.already_gone = t.already_gone;
        report.conflicts = t.conflicts;
        report.backlog = t.backlog;
        report.list_restarts = t.list_restarts;
        report.fargate_pod_creations = t.fargate_creations;
        report.deleted_by_namespace = t.by_namespace;
        report.stuck = t.stuck;
        report.deleted_reasons_by_namespace = t.reasons_by_namespace;
        report.next_due_seconds = t.next_due.map(|d| d.as_secs());
        let really_deleted = if report.dry_run {
            0
        } else {
            report.pods.fargate_deleted
        };
        report.pods.fargate_holding_ips = report
            .pods
            .fargate_finished
            .saturating_sub(really_deleted + t.fargate_already_gone);
    }
}

/// Counts one object the policy found stuck terminating.
fn count_stuck(stuck: &mut StuckCounts, kind: Kind, fargate: bool, namespace: &str, keep: &Keep) {
    let Keep::StuckTerminating {
        terminating_for,
        finalizers,
    } = keep
    else {
        return;
    };
    match kind {
        Kind::Job => stuck.jobs += 1,
        Kind::Pod => {
            stuck.pods += 1;
            stuck.fargate_pods += u64::from(fargate);
        }
    }
    stuck.oldest_seconds = stuck.oldest_seconds.max(terminating_for.as_secs());
    report::count_bounded(&mut stuck.by_namespace, namespace);
    if finalizers.is_empty() {
        report::count_bounded(&mut stuck.by_finalizer, NO_FINALIZER_KEY);
    }
    let mut counted: Vec<&str> = Vec::with_capacity(finalizers.len());
    for f in finalizers {
        // An object listing a finalizer twice is held by it once.
        if !counted.contains(&f.as_str()) {
            counted.push(f);
            report::count_bounded(&mut stuck.by_finalizer, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::policy::OwnerKind;
    use crate::report::{MAX_STUCK_KEYS, OTHER_KEY};

    impl<'d> Seen<'d> {
        fn in_namespace(self, namespace: &'d str) -> Self {
            Seen { namespace, ..self }
        }
    }

    const PAST_TTL: Delete = Delete::FargatePodPastTtl {
        age: Duration::from_secs(1200),
    };

    fn pod(
        finished: bool,
        fargate: bool,
        created: Option<Timestamp>,
        decision: &Decision,
    ) -> Seen<'_> {
        Seen {
            kind: Kind::Pod,
            finished,
            fargate,
            created,
            decision,
            namespace: "etl",
        }
    }

    fn report_of(tally: Tally<'_>, dry_run: bool) -> ClusterReport {
        let mut r = ClusterReport::new("etl", Some("eu-west-1".to_owned()), dry_run);
        tally.into_report(&mut r);
        r
    }

    #[test]
    fn counts_decisions_and_outcomes_into_camel_case_json() {
        let progress = Progress::default();
        let t = Tally::new(&progress);
        t.saw(pod(true, true, None, &Decision::Delete(PAST_TTL)));
        t.saw(pod(true, true, None, &Decision::Keep(Keep::OptedOut)));
        let within = Decision::Keep(Keep::WithinRetention {
            remaining: Duration::from_secs(5),
        });
        t.saw(Seen {
            kind: Kind::Job,
            finished: true,
            fargate: false,
            created: None,
            decision: &within,
            namespace: "etl",
        });
        t.outcome(Kind::Pod, "etl", true, &PAST_TTL, &Outcome::Deleted);
        for message in ["jobs.batch \"x\" is forbidden", "a later message"] {
            let failed = Outcome::Failed {
                kind: DeleteFailure::Forbidden,
                message: message.to_owned(),
            };
            t.outcome(Kind::Job, "etl", false, &PAST_TTL, &failed);
        }
        let owner = OwnerKind::parse("jobset.x-k8s.io/JobSet").expect("owner");
        let owned = Decision::Keep(Keep::OwnedByController { owner });
        t.saw(Seen {
            kind: Kind::Job,
            finished: true,
            fargate: false,
            created: None,
            decision: &owned,
            namespace: "etl",
        });
        assert_eq!(progress.get(), (3, 1), "three outcomes, one due object");
        let r = report_of(t, false);
        assert_eq!(r.pods.fargate_finished, 2);
        assert_eq!(r.pods.fargate_deleted, 1);
        assert_eq!(r.pods.fargate_holding_ips, 1);
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["pods"]["fargateDeleted"], 1);
        assert_eq!(v["pods"]["keptByReason"]["optedOut"], 1);
        assert_eq!(v["jobs"]["keptByReason"]["withinRetention"], 1);
        assert_eq!(v["errors"]["forbidden"], 2);
        assert_eq!(
            v["errorSamples"]["forbidden"],
            "jobs.batch \"x\" is forbidden"
        );
        assert_eq!(v["jobs"]["keptByReason"]["ownedByController"], 1);
        assert_eq!(v["jobs"]["keptByOwner"]["jobset.x-k8s.io/JobSet"], 1);
        assert_eq!(v["status"], "ok");
        assert!(v.get("error").is_none());
    }

    #[test]
    fn the_soonest_a_kept_object_becomes_due_is_reported() {
        let progress = Progress::default();
        let t = Tally::new(&progress);
        assert_eq!(
            report_of(Tally::new(&progress), false).next_due_seconds,
            None
        );
        let within = |s| {
            Decision::Keep(Keep::WithinRetention {
                remaining: Duration::from_secs(s),
            })
        };
        let grace = Decision::Keep(Keep::EngineGrace {
            engine: crate::policy::Engine::Digdag,
            remaining: Duration::from_secs(90),
        });
        for d in [
            within(900),
            grace,
            within(300),
            Decision::Keep(Keep::OptedOut),
        ] {
            t.saw(pod(true, false, None, &d));
        }
        let r = report_of(t, false);
        assert_eq!(r.next_due_seconds, Some(90));
        assert_eq!(
            serde_json::to_value(&r).expect("json")["nextDueSeconds"],
            90
        );
    }

    #[test]
    fn running_fargate_pods_feed_the_forecast_but_not_the_finished_pod_counts() {
        let progress = Progress::default();
        let t = Tally::new(&progress);
        let created: Timestamp = "2026-11-28T12:00:00Z".parse().expect("ts");
        let running = Decision::Keep(Keep::NotFinished {
            phase: "Running".to_owned(),
        });
        let opted_out = Decision::Keep(Keep::OptedOut);
        t.saw(pod(false, true, Some(created), &running));
        t.saw(pod(true, true, Some(created), &opted_out));
        t.saw(pod(true, false, Some(created), &opted_out));
        let r = report_of(t, false);
        assert_eq!(r.fargate_pod_creations, vec![created; 2]);
        assert_eq!(r.pods.fargate_running, 1);
        assert_eq!((r.pods.seen, r.pods.terminated), (2, 2));
        assert_eq!(r.pods.fargate_finished, 1);
        assert_eq!(r.pods.fargate_holding_ips, 1);
        assert_eq!(r.pods.kept_by_reason.get("notFinished"), None);
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["pods"]["fargateRunning"], 1);
    }

    #[test]
    fn deletions_are_counted_per_namespace_by_kind_and_reason_for_its_event() {
        let progress = Progress::default();
        let t = Tally::new(&progress);
        let succeeded = Delete::SucceededPastTtl {
            age: Duration::from_secs(1200),
        };
        t.outcome(Kind::Job, "etl", false, &succeeded, &Outcome::Deleted);
        t.outcome(Kind::Job, "etl", false, &succeeded, &Outcome::Deleted);
        t.outcome(Kind::Pod, "etl", true, &PAST_TTL, &Outcome::Deleted);
        t.outcome(Kind::Pod, "web", true, &PAST_TTL, &Outcome::Deleted);
        // Only what was deleted: a 404 or a 409 is not news for the namespace.
        t.outcome(Kind::Pod, "ml", true, &PAST_TTL, &Outcome::AlreadyGone);
        t.outcome(Kind::Job, "ml", false, &succeeded, &Outcome::Conflict);
        let r = report_of(t, false);
        let etl = &r.deleted_reasons_by_namespace["etl"];
        assert_eq!(etl.jobs, BTreeMap::from([("succeededPastTtl", 2)]));
        assert_eq!(etl.pods, BTreeMap::from([("fargatePodPastTtl", 1)]));
        let web = &r.deleted_reasons_by_namespace["web"];
        assert!(web.jobs.is_empty());
        assert_eq!(web.pods, BTreeMap::from([("fargatePodPastTtl", 1)]));
        assert!(!r.deleted_reasons_by_namespace.contains_key("ml"));
    }

    #[test]
    fn dry_run_pods_still_hold_their_ips() {
        let progress = Progress::default();
        let t = Tally::new(&progress);
        t.saw(pod(true, true, None, &Decision::Delete(PAST_TTL)));
        t.outcome(Kind::Pod, "etl", true, &PAST_TTL, &Outcome::Deleted);
        let r = report_of(t, true);
        assert_eq!(r.pods.fargate_holding_ips, 1);
    }

    fn stuck(secs: u64, finalizers: &[&str]) -> Decision {
        Decision::Keep(Keep::StuckTerminating {
            terminating_for: Duration::from_secs(secs),
            finalizers: finalizers.iter().map(|f| (*f).to_owned()).collect(),
        })
    }

    #[test]
    fn stuck_objects_are_counted_by_kind_namespace_and_finalizer() {
        let progress = Progress::default();
        let t = Tally::new(&progress);
        let tracking = "batch.kubernetes.io/job-tracking";
        let hold = "example.com/hold";
        // GIVEN a stuck Job, a stuck finished Fargate pod, a stuck running Fargate pod, a
        // stuck pod without finalizers (another namespace), and one only being deleted
        let seen = [
            (
                Kind::Job,
                true,
                false,
                "etl",
                stuck(700, &["orphan", "orphan"]),
            ),
            (
                Kind::Pod,
                true,
                true,
                "etl",
                stuck(10_800, &[tracking, hold]),
            ),
            (Kind::Pod, false, true, "etl", stuck(900, &[tracking])),
            (Kind::Pod, true, false, "web", stuck(601, &[])),
            (
                Kind::Pod,
                true,
                false,
                "web",
                Decision::Keep(Keep::BeingDeleted),
            ),
        ];
        for (kind, finished, fargate, namespace, decision) in &seen {
            t.saw(Seen {
                kind: *kind,
                finished: *finished,
                fargate: *fargate,
                created: None,
                decision,
                namespace,
            });
        }
        let r = report_of(t, false);
        // THEN the report counts the four stuck ones
        let s = &r.stuck;
        assert_eq!((s.jobs, s.pods, s.fargate_pods), (1, 3, 2));
        assert_eq!(s.oldest_seconds, 10_800);
        assert_eq!(
            s.by_namespace,
            BTreeMap::from([("etl".to_owned(), 3), ("web".to_owned(), 1)])
        );
        assert_eq!(
            s.by_finalizer,
            BTreeMap::from([
                (tracking.to_owned(), 2),
                (hold.to_owned(), 1),
                ("orphan".to_owned(), 1),
                (NO_FINALIZER_KEY.to_owned(), 1),
            ])
        );
        // AND the running Fargate pod stays out of the finished-pod counts
        assert_eq!(r.pods.fargate_running, 1);
        assert_eq!(r.pods.kept_by_reason.get("stuckTerminating"), Some(&2));
        assert_eq!(r.pods.kept_by_reason.get("beingDeleted"), Some(&1));
        assert_eq!(r.jobs.kept_by_reason.get("stuckTerminating"), Some(&1));
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["stuck"]["fargatePods"], 2);
        assert_eq!(v["stuck"]["oldestSeconds"], 10_800);
        assert_eq!(v["stuck"]["byNamespace"]["etl"], 3);
        assert_eq!(v["stuck"]["byFinalizer"][hold], 1);
    }

    #[test]
    fn stuck_namespaces_past_the_cap_are_counted_as_other() {
        let progress = Progress::default();
        let t = Tally::new(&progress);
        let decision = stuck(3600, &["example.com/hold"]);
        let namespaces: Vec<String> = (0..MAX_STUCK_KEYS + 3)
            .map(|i| format!("ns-{i:02}"))
            .collect();
        for namespace in &namespaces {
            t.saw(pod(true, false, None, &decision).in_namespace(namespace));
        }
        let r = report_of(t, false);
        assert_eq!(r.stuck.pods, namespaces.len() as u64);
        assert_eq!(r.stuck.by_namespace.len(), MAX_STUCK_KEYS + 1);
        assert_eq!(r.stuck.by_namespace[OTHER_KEY], 3);
        assert_eq!(
            r.stuck.by_finalizer["example.com/hold"],
            namespaces.len() as u64
        );
    }

    #[test]
    fn nothing_stuck_is_an_empty_section() {
        let progress = Progress::default();
        let t = Tally::new(&progress);
        t.saw(pod(true, true, None, &Decision::Keep(Keep::BeingDeleted)));
        let r = report_of(t, false);
        assert!(r.stuck.is_empty());
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(
            v["stuck"],
            serde_json::json!({"jobs": 0, "pods": 0, "fargatePods": 0, "oldestSeconds": 0,
                               "byNamespace": {}, "byFinalizer": {}})
        );
    }

    #[test]
    fn fargate_pods_already_gone_do_not_hold_ips() {
        let progress = Progress::default();
        let t = Tally::new(&progress);
        for _ in 0..3 {
            t.saw(pod(true, true, None, &Decision::Delete(PAST_TTL)));
        }
        t.outcome(Kind::Pod, "etl", true, &PAST_TTL, &Outcome::Deleted);
        t.outcome(Kind::Pod, "etl", true, &PAST_TTL, &Outcome::AlreadyGone);
        t.outcome(Kind::Pod, "etl", true, &PAST_TTL, &Outcome::Conflict);
        let r = report_of(t, false);
        assert_eq!(r.pods.fargate_finished, 3);
        assert_eq!(
            r.pods.fargate_holding_ips, 1,
            "only the pod skipped on 409 may still hold one"
        );
    }
}

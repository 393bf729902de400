//! Table tests of the policy. Fixtures are builder methods on the real k8s-openapi types.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::Metadata;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodCondition, PodSpec,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::*;

// ---- clock -------------------------------------------------------------------------------

fn now() -> Timestamp {
    "2026-11-28T12:00:00Z".parse().expect("fixed instant")
}

fn ago(d: &str) -> Timestamp {
    now() - jiff::SignedDuration::try_from(dur(d)).expect("small")
}

fn after(d: &str) -> Timestamp {
    now() + jiff::SignedDuration::try_from(dur(d)).expect("small")
}

fn dur(d: &str) -> Duration {
    humantime::parse_duration(d).expect("test duration")
}

// ---- fixtures ----------------------------------------------------------------------------

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some("etl".to_owned()),
        uid: Some(format!("uid-{name}")),
        creation_timestamp: Some(Time(ago("48h"))),
        ..ObjectMeta::default()
    }
}

/// Builders shared by Jobs and Pods.
trait MetaExt: Metadata<Ty = ObjectMeta> + Sized {
    fn annotate(mut self, key: &str, value: &str) -> Self {
        self.metadata_mut()
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }
    fn in_namespace(mut self, ns: &str) -> Self {
        self.metadata_mut().namespace = Some(ns.to_owned());
        self
    }
    fn deleting(mut self) -> Self {
        self.metadata_mut().deletion_timestamp = Some(Time(ago("1s")));
        self
    }
    fn controlled_by(mut self, kind: &str) -> Self {
        self.metadata_mut().owner_references = Some(vec![OwnerReference {
            api_version: if kind == "Job" || kind == "CronJob" {
                "batch/v1"
            } else {
                "apps/v1"
            }
            .to_owned(),
            kind: kind.to_owned(),
            name: "owner".to_owned(),
            uid: "uid-owner".to_owned(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        self
    }
    fn owned_not_controller(mut self, kind: &str) -> Self {
        self = self.controlled_by(kind);
        if let Some(refs) = self.metadata_mut().owner_references.as_mut() {
            refs[0].controller = None;
        }
        self
    }
}
impl MetaExt for Job {}
impl MetaExt for Pod {}

fn job() -> Job {
    Job {
        metadata: meta("etl-run"),
        spec: Some(JobSpec::default()),
        status: Some(JobStatus {
            start_time: Some(Time(ago("30h"))),
            ..JobStatus::default()
        }),
    }
}

fn cond(type_: &str, at: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.to_owned(),
        status: "True".to_owned(),
        last_transition_time: Some(Time(at)),
        ..JobCondition::default()
    }
}

trait JobExt: Sized {
    fn status(&mut self) -> &mut JobStatus;
    fn spec(&mut self) -> &mut JobSpec;
    fn with_condition(mut self, c: JobCondition) -> Self {
        self.status()
            .conditions
            .get_or_insert_with(Vec::new)
            .push(c);
        self
    }
    /// `SuccessCriteriaMet` then `Complete`, as the 1.31+ controller writes them.
    fn complete(self, at: Timestamp) -> Self {
        let mut j = self
            .with_condition(cond("SuccessCriteriaMet", at))
            .with_condition(cond("Complete", at));
        j.status().completion_time = Some(Time(at));
        j.status().succeeded = Some(1);
        j
    }
    /// `FailureTarget` then `Failed`.
    fn failed(self, at: Timestamp) -> Self {
        let mut j = self
            .with_condition(cond("FailureTarget", at))
            .with_condition(cond("Failed", at));
        j.status().failed = Some(1);
        j
    }
    fn active(mut self, n: i32) -> Self {
        self.status().active = Some(n);
        self
    }
    fn suspended(mut self) -> Self {
        self.spec().suspend = Some(true);
        self
    }
    fn ttl_after_finished(mut self, secs: i32) -> Self {
        self.spec().ttl_seconds_after_finished = Some(secs);
        self
    }
}
impl JobExt for Job {
    fn status(&mut self) -> &mut JobStatus {
        self.status.get_or_insert_with(JobStatus::default)
    }
    fn spec(&mut self) -> &mut JobSpec {
        self.spec.get_or_insert_with(JobSpec::default)
    }
}

fn pod() -> Pod {
    Pod {
        metadata: meta("etl-run-abcde"),
        spec: Some(PodSpec {
            scheduler_name: Some("default-scheduler".to_owned()),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".to_owned()),
            start_time: Some(Time(ago("30h"))),
            ..PodStatus::default()
        }),
    }
}

trait PodExt: Sized {
    fn status(&mut self) -> &mut PodStatus;
    fn phase(mut self, phase: &str) -> Self {
        self.status().phase = Some(phase.to_owned());
        self
    }
    fn terminated_at(mut self, at: Timestamp) -> Self {
        self.status()
            .container_statuses
            .get_or_insert_with(Vec::new)
            .push(terminated("main", at));
        self
    }
    fn succeeded(self, at: Timestamp) -> Self {
        self.phase("Succeeded").terminated_at(at)
    }
    fn failed(self, at: Timestamp) -> Self {
        self.phase("Failed").terminated_at(at)
    }
    /// Evicted: Failed with reason Evicted and no container termination recorded.
    fn evicted(mut self, at: Timestamp) -> Self {
        let s = self.status();
        s.phase = Some("Failed".to_owned());
        s.reason = Some("Evicted".to_owned());
        s.start_time = Some(Time(at));
        self
    }
    fn fargate(self) -> Self;
    fn fargate_scheduler_only(self) -> Self;
}
impl PodExt for Pod {
    fn status(&mut self) -> &mut PodStatus {
        self.status.get_or_insert_with(PodStatus::default)
    }
    fn fargate(mut self) -> Self {
        self.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(FARGATE_PROFILE_LABEL.to_owned(), "etl".to_owned());
        self.spec
            .get_or_insert_with(PodSpec::default)
            .scheduler_name = Some(FARGATE_SCHEDULER.to_owned());
        self
    }
    fn fargate_scheduler_only(mut self) -> Self {
        self.spec
            .get_or_insert_with(PodSpec::default)
            .scheduler_name = Some(FARGATE_SCHEDULER.to_owned());
        self
    }
}

fn settings() -> Settings {
    Settings::default()
}

fn decide_job(j: &Job) -> Decision {
    plan(Object::Job(j), now(), &settings())
}

fn decide_pod(p: &Pod) -> Decision {
    plan(Object::Pod(p), now(), &settings())
}

fn delete(d: Decision) -> Delete {
    match d {
        Decision::Delete(d) => d,
        Decision::Keep(k) => panic!("expected Delete, got Keep::{k:?}"),
    }
}

fn keep(d: Decision) -> Keep {
    match d {
        Decision::Keep(k) => k,
        Decision::Delete(d) => panic!("expected Keep, got Delete::{d:?}"),
    }
}

fn within(remaining: &str) -> Keep {
    Keep::WithinRetention {
        remaining: dur(remaining),
    }
}

// ---- Jobs: the basic retentions ---------------------------------------------------------

#[test]
fn succeeded_job_past_ttl_is_deleted() {
    let d = delete(decide_job(&job().complete(ago("20m"))));
    assert_eq!(d, Delete::SucceededPastTtl { age: dur("20m") });
}

#[test]
fn succeeded_job_inside_ttl_is_kept_with_time_left() {
    assert_eq!(keep(decide_job(&job().complete(ago("10m")))), within("5m"));
}

#[test]
fn succeeded_job_exactly_at_ttl_is_deleted() {
    assert_eq!(
        delete(decide_job(&job().complete(ago("15m")))),
        Delete::SucceededPastTtl { age: dur("15m") }
    );
}

#[test]
fn succeeded_job_one_second_before_ttl_is_kept() {
    assert_eq!(
        keep(decide_job(&job().complete(ago("14m 59s")))),
        within("1s")
    );
}

#[test]
fn failed_job_inside_retention_is_kept() {
    assert_eq!(
        keep(decide_job(&job().failed(ago("20m")))),
        within("23h 40m")
    );
}

#[test]
fn failed_job_past_retention_is_deleted() {
    assert_eq!(
        delete(decide_job(&job().failed(ago("25h")))),
        Delete::FailedPastTtl { age: dur("25h") }
    );
}

#[test]
fn job_finished_in_the_future_is_kept_for_more_than_its_whole_retention() {
    assert_eq!(
        keep(decide_job(&job().complete(after("5m")))),
        within("20m")
    );
}

#[test]
fn finish_time_is_the_terminal_conditions_transition_not_completion_time() {
    let mut j = job().complete(ago("1h"));
    // completionTime can differ from the Complete condition; the native TTL controller uses
    // the condition.
    j.status().completion_time = Some(Time(ago("2h")));
    j.status().conditions.as_mut().expect("conditions")[1].last_transition_time =
        Some(Time(ago("10m")));
    assert_eq!(keep(decide_job(&j)), within("5m"));
}

#[test]
fn succeeded_job_without_transition_time_falls_back_to_completion_time() {
    let mut j = job().complete(ago("1h"));
    for c in j.status().conditions.as_mut().expect("conditions") {
        c.last_transition_time = None;
    }
    assert_eq!(
        delete(decide_job(&j)),
        Delete::SucceededPastTtl { age: dur("1h") }
    );
}

#[test]
fn failed_job_without_any_finish_time_is_kept() {
    let mut j = job().failed(ago("48h"));
    for c in j.status().conditions.as_mut().expect("conditions") {
        c.last_transition_time = None;
    }
    assert_eq!(keep(decide_job(&j)), Keep::UnknownFinishTime);
}

// ---- Jobs: not finished -----------------------------------------------------------------

#[test]
fn running_job_is_kept_as_active() {
    assert_eq!(keep(decide_job(&job().active(1))), Keep::Active);
}

#[test]
fn job_without_status_is_kept_as_active() {
    let mut j = job();
    j.status = None;
    assert_eq!(keep(decide_job(&j)), Keep::Active);
}

#[test]
fn job_with_only_success_criteria_met_is_not_finished() {
    let j = job().with_condition(cond("SuccessCriteriaMet", ago("2h")));
    assert_eq!(keep(decide_job(&j)), Keep::Active);
}

#[test]
fn job_with_only_failure_target_is_not_finished() {
    let j = job().with_condition(cond("FailureTarget", ago("2d")));
    assert_eq!(keep(decide_job(&j)), Keep::Active);
}

#[test]
fn terminal_condition_with_status_false_is_not_finished() {
    let mut c = cond("Complete", ago("2h"));
    c.status = "False".to_owned();
    assert_eq!(keep(decide_job(&job().with_condition(c))), Keep::Active);
}

#[test]
fn job_with_active_pods_is_kept_even_with_a_terminal_condition() {
    assert_eq!(
        keep(decide_job(&job().complete(ago("2h")).active(1))),
        Keep::Active
    );
}

#[test]
fn suspended_job_is_kept() {
    let j = job()
        .suspended()
        .with_condition(cond("Suspended", ago("3d")));
    assert_eq!(keep(decide_job(&j)), Keep::Suspended);
}

#[test]
fn suspended_job_is_kept_even_with_a_terminal_condition() {
    assert_eq!(
        keep(decide_job(&job().failed(ago("3d")).suspended())),
        Keep::Suspended
    );
}

// ---- Jobs: guards ------------------------------------------------------------------------

#[test]
fn job_being_deleted_is_kept() {
    assert_eq!(
        keep(decide_job(&job().complete(ago("2h")).deleting())),
        Keep::BeingDeleted
    );
}

#[test]
fn job_annotated_keep_true_is_kept() {
    let j = job().complete(ago("2h")).annotate(KEEP_ANNOTATION, "true");
    assert_eq!(keep(decide_job(&j)), Keep::OptedOut);
}

#[test]
fn keep_annotation_other_than_true_does_not_opt_out() {
    let j = job().complete(ago("2h")).annotate(KEEP_ANNOTATION, "false");
    assert!(matches!(decide_job(&j), Decision::Delete(_)));
}

#[test]
fn ttl_annotation_lengthens_a_jobs_retention() {
    let j = job().complete(ago("2h")).annotate(TTL_ANNOTATION, "3h");
    assert_eq!(keep(decide_job(&j)), within("1h"));
}

#[test]
fn ttl_annotation_shortens_a_failed_jobs_retention() {
    let j = job().failed(ago("2h")).annotate(TTL_ANNOTATION, "1h 30m");
    assert_eq!(
        delete(decide_job(&j)),
        Delete::FailedPastTtl { age: dur("2h") }
    );
}

#[test]
fn invalid_ttl_annotation_keeps_the_job() {
    let j = job().complete(ago("2h")).annotate(TTL_ANNOTATION, "soon");
    assert_eq!(
        keep(decide_job(&j)),
        Keep::InvalidTtlAnnotation {
            value: "soon".to_owned()
        }
    );
}

#[test]
fn job_in_excluded_namespace_is_kept() {
    let j = job().complete(ago("2h")).in_namespace("kube-system");
    assert_eq!(keep(decide_job(&j)), Keep::ExcludedNamespace);
}

#[test]
fn job_outside_the_included_namespaces_is_kept() {
    let s = Settings {
        namespaces: vec!["etl".to_owned()],
        ..settings()
    };
    let j = job().complete(ago("2h")).in_namespace("web");
    assert_eq!(
        keep(plan(Object::Job(&j), now(), &s)),
        Keep::ExcludedNamespace
    );
    let j = job().complete(ago("2h"));
    assert!(matches!(
        plan(Object::Job(&j), now(), &s),
        Decision::Delete(_)
    ));
}

#[test]
fn exclusion_wins_over_inclusion() {
    let s = Settings {
        namespaces: vec!["etl".to_owned()],
        exclude_namespaces: vec!["etl".to_owned()],
        ..settings()
    };
    let j = job().complete(ago("2h"));
    assert_eq!(
        keep(plan(Object::Job(&j), now(), &s)),
        Keep::ExcludedNamespace
    );
}

// ---- Jobs: CronJob ownership -------------------------------------------------------------

#[test]
fn cronjob_job_is_pruned_by_default() {
    let j = job().complete(ago("2h")).controlled_by("CronJob");
    assert!(matches!(decide_job(&j), Decision::Delete(_)));
}

#[test]
fn cronjob_job_is_left_to_history_limits_when_configured() {
    let s = Settings {
        skip_cronjob_jobs: true,
        ..settings()
    };
    let j = job().complete(ago("2h")).controlled_by("CronJob");
    assert_eq!(keep(plan(Object::Job(&j), now(), &s)), Keep::OwnedByCronJob);
}

#[test]
fn job_with_non_controller_cronjob_owner_is_not_treated_as_cronjob_owned() {
    let s = Settings {
        skip_cronjob_jobs: true,
        ..settings()
    };
    let j = job().complete(ago("2h")).owned_not_controller("CronJob");
    assert!(matches!(
        plan(Object::Job(&j), now(), &s),
        Decision::Delete(_)
    ));
}

// ---- Jobs: the native TTL controller's cases ---------------------------------------------
// Same matrix as the TTL-after-finished controller's own tests: complete/failed × no TTL,
// 0s, 10s, and 10s ago with 15s.

#[test]
fn native_ttl_jobs_are_left_to_the_native_controller_by_default() {
    for secs in [0, 10, 15] {
        for finished in [job().complete(ago("10s")), job().failed(ago("10s"))] {
            let j = finished.ttl_after_finished(secs);
            assert_eq!(keep(decide_job(&j)), Keep::NativeTtl, "ttl {secs}s");
        }
    }
}

#[test]
fn native_ttl_matrix_when_we_act_in_place_of_the_native_controller() {
    let s = Settings {
        respect_native_ttl: false,
        ..settings()
    };
    let decide = |j: Job| plan(Object::Job(&j), now(), &s);
    // No TTL: our own retentions.
    assert_eq!(keep(decide(job().complete(ago("10s")))), within("14m 50s"));
    assert_eq!(
        keep(decide(job().failed(ago("10s")))),
        within("23h 59m 50s")
    );
    // TTL 0s: due the moment it finishes.
    assert_eq!(
        delete(decide(job().complete(ago("10s")).ttl_after_finished(0))),
        Delete::SucceededPastTtl { age: dur("10s") }
    );
    assert_eq!(
        delete(decide(job().failed(now()).ttl_after_finished(0))),
        Delete::FailedPastTtl { age: dur("0s") }
    );
    // TTL 10s, finished 10s ago: due (exactly at TTL).
    assert_eq!(
        delete(decide(job().complete(ago("10s")).ttl_after_finished(10))),
        Delete::SucceededPastTtl { age: dur("10s") }
    );
    assert_eq!(
        delete(decide(job().failed(ago("10s")).ttl_after_finished(10))),
        Delete::FailedPastTtl { age: dur("10s") }
    );
    // TTL 15s, finished 10s ago: 5s left.
    assert_eq!(
        keep(decide(job().complete(ago("10s")).ttl_after_finished(15))),
        within("5s")
    );
    assert_eq!(
        keep(decide(job().failed(ago("10s")).ttl_after_finished(15))),
        within("5s")
    );
}

#[test]
fn native_ttl_does_not_apply_to_unfinished_jobs() {
    let j = job().active(1).ttl_after_finished(0);
    assert_eq!(keep(decide_job(&j)), Keep::Active);
}

#[test]
fn ttl_annotation_wins_over_the_jobs_own_ttl_when_we_act_for_the_native_controller() {
    let s = Settings {
        respect_native_ttl: false,
        ..settings()
    };
    let j = job()
        .complete(ago("10s"))
        .ttl_after_finished(0)
        .annotate(TTL_ANNOTATION, "1m");
    assert_eq!(keep(plan(Object::Job(&j), now(), &s)), within("50s"));
}

// ---- Pods ------------------------------------------------------------------------------

#[test]
fn pending_running_and_unknown_pods_are_kept() {
    for phase in ["Pending", "Running", "Unknown"] {
        let p = pod().phase(phase).fargate();
        assert_eq!(
            keep(decide_pod(&p)),
            Keep::NotFinished {
                phase: phase.to_owned()
            }
        );
    }
}

#[test]
fn pod_without_phase_is_kept() {
    let mut p = pod();
    p.status = None;
    assert_eq!(
        keep(decide_pod(&p)),
        Keep::NotFinished {
            phase: String::new()
        }
    );
}

#[test]
fn finished_pod_of_a_job_goes_with_its_job() {
    let p = pod().succeeded(ago("3d")).controlled_by("Job");
    assert_eq!(keep(decide_pod(&p)), Keep::OwnedByJob);
}

#[test]
fn finished_fargate_pod_past_its_ttl_is_deleted_even_while_its_failed_job_is_kept() {
    // GIVEN a failed Job 20 minutes old (kept 24 h) and its Fargate pod
    let j = job().failed(ago("20m"));
    let p = pod().failed(ago("20m")).controlled_by("Job").fargate();
    // THEN the Job stays for troubleshooting and the pod (with its IP) goes
    assert!(matches!(
        decide_job(&j),
        Decision::Keep(Keep::WithinRetention { .. })
    ));
    assert_eq!(
        delete(decide_pod(&p)),
        Delete::FargatePodPastTtl { age: dur("20m") }
    );
}

#[test]
fn finished_fargate_pod_inside_its_ttl_is_kept() {
    let p = pod().succeeded(ago("5m")).controlled_by("Job").fargate();
    assert_eq!(keep(decide_pod(&p)), within("10m"));
}

#[test]
fn pod_with_only_the_fargate_scheduler_is_recognised_as_fargate() {
    let p = pod()
        .succeeded(ago("16m"))
        .controlled_by("Job")
        .fargate_scheduler_only();
    assert_eq!(
        delete(decide_pod(&p)),
        Delete::FargatePodPastTtl { age: dur("16m") }
    );
}

#[test]
fn low_headroom_lowers_the_fargate_pod_retention() {
    let s = Settings {
        low_headroom: true,
        ..settings()
    };
    let p = pod().succeeded(ago("2m")).controlled_by("Job").fargate();
    assert_eq!(
        delete(plan(Object::Pod(&p), now(), &s)),
        Delete::FargatePodPastTtl { age: dur("2m") }
    );
    let p = pod().succeeded(ago("30s")).controlled_by("Job").fargate();
    assert_eq!(keep(plan(Object::Pod(&p), now(), &s)), within("30s"));
}

#[test]
fn low_headroom_never_raises_a_shorter_fargate_retention() {
    let s = Settings {
        low_headroom: true,
        fargate_pod_ttl: dur("10s"),
        ..settings()
    };
    assert_eq!(s.effective_fargate_pod_ttl(), dur("10s"));
}

#[test]
fn low_headroom_caps_an_annotated_fargate_pods_retention() {
    let s = Settings {
        low_headroom: true,
        ..settings()
    };
    let p = pod()
        .succeeded(ago("5m"))
        .fargate()
        .annotate(TTL_ANNOTATION, "2h");
    assert!(matches!(
        plan(Object::Pod(&p), now(), &s),
        Decision::Delete(_)
    ));
    // but an explicit opt-out still wins
    let p = p.annotate(KEEP_ANNOTATION, "true");
    assert_eq!(keep(plan(Object::Pod(&p), now(), &s)), Keep::OptedOut);
}

#[test]
fn low_headroom_does_not_touch_job_retention() {
    let s = Settings {
        low_headroom: true,
        ..settings()
    };
    let j = job().failed(ago("20m"));
    assert_eq!(keep(plan(Object::Job(&j), now(), &s)), within("23h 40m"));
}

#[test]
fn bare_finished_pod_past_an_hour_is_deleted() {
    assert_eq!(
        delete(decide_pod(&pod().succeeded(ago("61m")))),
        Delete::BarePodPastTtl { age: dur("61m") }
    );
}

#[test]
fn bare_finished_pod_inside_an_hour_is_kept() {
    assert_eq!(keep(decide_pod(&pod().failed(ago("59m")))), within("1m"));
}

#[test]
fn pod_with_a_non_controller_owner_counts_as_bare() {
    let p = pod().succeeded(ago("2h")).owned_not_controller("ConfigMap");
    assert!(matches!(
        decide_pod(&p),
        Decision::Delete(Delete::BarePodPastTtl { .. })
    ));
}

#[test]
fn evicted_pod_past_an_hour_is_deleted_whoever_owns_it() {
    let p = pod().evicted(ago("2h")).controlled_by("ReplicaSet");
    assert_eq!(
        delete(decide_pod(&p)),
        Delete::EvictedPastTtl { age: dur("2h") }
    );
}

#[test]
fn evicted_pod_inside_an_hour_is_kept() {
    let p = pod().evicted(ago("10m"));
    assert_eq!(keep(decide_pod(&p)), within("50m"));
}

#[test]
fn evicted_job_pod_is_pruned_as_evicted_not_kept_with_its_job() {
    let p = pod().evicted(ago("2h")).controlled_by("Job");
    assert!(matches!(
        decide_pod(&p),
        Decision::Delete(Delete::EvictedPastTtl { .. })
    ));
}

#[test]
fn finished_pod_of_another_controller_is_kept() {
    let p = pod().succeeded(ago("3d")).controlled_by("ReplicaSet");
    assert_eq!(keep(decide_pod(&p)), Keep::OwnedByController);
}

#[test]
fn pod_finish_time_is_its_last_container_termination() {
    let p = pod()
        .phase("Succeeded")
        .terminated_at(ago("3h"))
        .terminated_at(ago("30m"));
    assert_eq!(keep(decide_pod(&p)), within("30m"));
}

#[test]
fn pod_being_deleted_is_kept() {
    let p = pod().succeeded(ago("3h")).fargate().deleting();
    assert_eq!(keep(decide_pod(&p)), Keep::BeingDeleted);
}

#[test]
fn pod_annotated_keep_true_is_kept() {
    let p = pod()
        .succeeded(ago("3h"))
        .fargate()
        .annotate(KEEP_ANNOTATION, "true");
    assert_eq!(keep(decide_pod(&p)), Keep::OptedOut);
}

#[test]
fn ttl_annotation_sets_a_fargate_pods_retention() {
    let p = pod()
        .succeeded(ago("20m"))
        .fargate()
        .annotate(TTL_ANNOTATION, "1h");
    assert_eq!(keep(decide_pod(&p)), within("40m"));
}

#[test]
fn invalid_ttl_annotation_keeps_the_pod() {
    let p = pod()
        .succeeded(ago("20m"))
        .fargate()
        .annotate(TTL_ANNOTATION, "-5m");
    assert_eq!(
        keep(decide_pod(&p)),
        Keep::InvalidTtlAnnotation {
            value: "-5m".to_owned()
        }
    );
}

#[test]
fn pod_in_excluded_namespace_is_kept() {
    let p = pod().succeeded(ago("3h")).in_namespace("kube-system");
    assert_eq!(keep(decide_pod(&p)), Keep::ExcludedNamespace);
}

#[test]
fn reasons_have_stable_labels() {
    assert_eq!(Keep::NativeTtl.label(), "nativeTtl");
    assert_eq!(
        Delete::FargatePodPastTtl { age: dur("1s") }.label(),
        "fargatePodPastTtl"
    );
    assert_eq!(
        Delete::SucceededPastTtl { age: dur("20m") }.to_string(),
        "succeededPastTtl (20m ago)"
    );
}

// ---- property ---------------------------------------------------------------------------
//
// Issue 7's invariants over random Jobs and Pods, random settings *and* a random clock. Each
// object also gets a verdict from an oracle written from the README's rules (in the order of
// `policy.rs`'s rule table): `Err(label)` when a rule keeps it, or the finish time the fixture
// recorded and the retention that applies. The plan must then
// - never select what the oracle keeps (the message names the rule: `active`, `suspended`,
//   `notFinished`, `beingDeleted`, `optedOut`, `excludedNamespace`...);
// - select exactly what is past its retention, with a non-empty reason whose label is the
//   oracle's and whose age is `now − the fixture's finish time` (so never under the
//   retention), and keep the rest with the exact time left;
// - be unaffected by a keep annotation that is not an opt-out.
// `property_strategies_reach_every_reason` checks the strategies reach every reason, so no
// part of the property is vacuous.

/// Cases per property (proptest's default is 256): the two properties and the reach check
/// stay within a few seconds in a debug build on a loaded machine.
const CASES: u32 = 2048;

const DAY_MS: i64 = 86_400_000;

/// Namespaces that objects and the include/exclude lists draw from: few, so they often meet.
const NAMESPACES: [&str; 4] = ["etl", "web", "kube-system", "ml"];

/// `eks-reaper/keep` values: opt-outs in any case and padding, and look-alikes that are not.
const KEEP_VALUES: [&str; 14] = [
    "true", "TRUE", "True", " true ", "\ttrue\n", "false", "FALSE", "", " ", "yes", "1", "truee",
    "t rue", "garbage",
];

/// The opt-out: `"true"` as documented, which the policy reads forgiving ASCII case and
/// surrounding whitespace (the safe direction); nothing else opts out.
fn opts_out(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("true")
}

/// An instant within ±5 days of `now()`: anywhere at millisecond resolution, or on the minute
/// grid within ±2 days so that ages often equal a retention exactly.
fn arb_instant() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        (-5 * DAY_MS..=5 * DAY_MS).prop_map(|ms| now() + SignedDuration::from_millis(ms)),
        (-48 * 60i64..=48 * 60).prop_map(|m| now() + SignedDuration::from_mins(m)),
    ]
}

/// The clock of a run: drawn like object timestamps, so about half the time it is *before*
/// them (clock skew, a finish time in the future).
fn arb_clock() -> impl Strategy<Value = Timestamp> {
    arb_instant()
}

fn arb_retention() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..=200_000).prop_map(Duration::from_secs),
        prop::sample::select(vec![0u64, 60, 900, 3600, 86_400]).prop_map(Duration::from_secs),
    ]
}

/// A namespace list: empty, the default exclusion, or one or two of [`NAMESPACES`].
fn arb_namespace_list() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        Just(Vec::new()),
        Just(vec!["kube-system".to_owned()]),
        prop::sample::subsequence(NAMESPACES.to_vec(), 1..=2)
            .prop_map(|v| v.into_iter().map(str::to_owned).collect()),
    ]
}

prop_compose! {
    fn arb_settings()(
        (succeeded_job_ttl, failed_job_ttl, fargate_pod_ttl, bare_pod_ttl, low_headroom_fargate_ttl)
            in (arb_retention(), arb_retention(), arb_retention(), arb_retention(), arb_retention()),
        namespaces in prop_oneof![2 => Just(Vec::new()), 1 => arb_namespace_list()],
        exclude_namespaces in arb_namespace_list(),
        (respect_native_ttl, skip_cronjob_jobs, low_headroom) in any::<(bool, bool, bool)>(),
    ) -> Settings {
        Settings {
            succeeded_job_ttl,
            failed_job_ttl,
            fargate_pod_ttl,
            bare_pod_ttl,
            namespaces,
            exclude_namespaces,
            respect_native_ttl,
            skip_cronjob_jobs,
            low_headroom,
            low_headroom_fargate_ttl,
        }
    }
}

/// `eks-reaper/ttl` values: valid (as written by people, padding included) or not durations.
fn arb_ttl_annotation() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.4,
        prop_oneof![
            3 => arb_retention().prop_map(|d| format!("{}s", d.as_secs())),
            1 => arb_retention().prop_map(|d| format!(" {}m {}s ", d.as_secs() / 60, d.as_secs() % 60)),
            1 => prop::sample::select(vec!["soon", "-5m", "", " ", "10", "1 fortnight", "5x"])
                .prop_map(str::to_owned),
        ],
    )
}

/// Owner references with `controller: true`, `false` or missing.
fn arb_owners() -> impl Strategy<Value = Vec<OwnerReference>> {
    let owner = (
        prop::sample::select(vec!["Job", "CronJob", "ReplicaSet", "Workflow"]),
        prop::option::of(any::<bool>()),
    );
    prop::collection::vec(owner, 0..3).prop_map(|refs| {
        refs.into_iter()
            .enumerate()
            .map(|(i, (kind, controller))| OwnerReference {
                api_version: "v1".to_owned(),
                kind: kind.to_owned(),
                name: format!("owner-{i}"),
                uid: format!("uid-owner-{i}"),
                controller,
                block_owner_deletion: None,
            })
            .collect()
    })
}

prop_compose! {
    fn arb_meta()(
        namespace in prop::option::weighted(0.95, prop::sample::select(NAMESPACES.to_vec())),
        deleting in prop::bool::weighted(0.1),
        keep in prop::option::weighted(0.3, prop::sample::select(KEEP_VALUES.to_vec())),
        ttl in arb_ttl_annotation(),
        owners in arb_owners(),
    ) -> ObjectMeta {
        let mut m = meta("etl-run");
        m.namespace = namespace.map(str::to_owned);
        if deleting {
            m.deletion_timestamp = Some(Time(ago("1s")));
        }
        let mut annotations = BTreeMap::new();
        if let Some(v) = keep {
            annotations.insert(KEEP_ANNOTATION.to_owned(), v.to_owned());
        }
        if let Some(v) = ttl {
            annotations.insert(TTL_ANNOTATION.to_owned(), v);
        }
        m.annotations = (!annotations.is_empty()).then_some(annotations);
        m.owner_references = (!owners.is_empty()).then_some(owners);
        m
    }
}

/// Any condition type, status `True`, `False` or `Unknown`, `lastTransitionTime` or none.
fn arb_job_condition() -> impl Strategy<Value = JobCondition> {
    let type_ = prop_oneof![
        3 => Just("Complete"),
        3 => Just("Failed"),
        1 => Just("SuccessCriteriaMet"),
        1 => Just("FailureTarget"),
        1 => Just("Suspended"),
    ];
    let status = prop_oneof![4 => Just("True"), 1 => Just("False"), 1 => Just("Unknown")];
    (type_, status, prop::option::weighted(0.85, arb_instant())).prop_map(|(t, s, at)| {
        JobCondition {
            type_: t.to_owned(),
            status: s.to_owned(),
            last_transition_time: at.map(Time),
            ..JobCondition::default()
        }
    })
}

prop_compose! {
    /// Up to three conditions in any combination (Complete and Failed together included).
    fn arb_job_status()(
        conditions in prop::collection::vec(arb_job_condition(), 0..4),
        completion in prop::option::of(arb_instant()),
        active in prop::option::of(prop_oneof![3 => Just(0), 1 => 1i32..3]),
    ) -> JobStatus {
        JobStatus {
            conditions: (!conditions.is_empty()).then_some(conditions),
            completion_time: completion.map(Time),
            active,
            ..JobStatus::default()
        }
    }
}

prop_compose! {
    fn arb_job()(
        metadata in arb_meta(),
        suspend in prop::option::of(prop::bool::weighted(0.2)),
        native in prop::option::weighted(0.3, prop_oneof![0i32..200_000, Just(0), Just(900)]),
        status in prop::option::weighted(0.95, arb_job_status()),
    ) -> Job {
        Job {
            metadata,
            spec: Some(JobSpec {
                suspend,
                ttl_seconds_after_finished: native,
                ..JobSpec::default()
            }),
            status,
        }
    }
}

/// A generated pod with what its fixture was built to mean: whether it runs on Fargate and
/// the instant it finished (`None`: no timestamp recorded).
#[derive(Debug, Clone)]
struct PodCase {
    pod: Pod,
    fargate: bool,
    finished: Option<Timestamp>,
}

fn terminated(name: &str, at: Timestamp) -> ContainerStatus {
    ContainerStatus {
        name: name.to_owned(),
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                finished_at: Some(Time(at)),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

fn pod_condition(type_: &str, at: Option<Timestamp>) -> PodCondition {
    PodCondition {
        type_: type_.to_owned(),
        status: "False".to_owned(),
        last_transition_time: at.map(Time),
        ..PodCondition::default()
    }
}

prop_compose! {
    /// A pod status whose finish instant is `finished` by construction: the last container
    /// termination (init or main), else — no container terminated, as for Evicted pods — the
    /// last condition transition, else the start time; or no timestamp at all. Other records
    /// are earlier, except conditions next to container terminations, which may be anything.
    fn arb_pod_record()(
        finished in arb_instant(),
        record in 0u8..4,
        earlier in prop::collection::vec(1i64..=2 * DAY_MS, 0..3),
        last_in_init in prop::bool::weighted(0.2),
        noise in prop::collection::vec(prop::option::of(arb_instant()), 0..3),
        waiting in any::<bool>(),
    ) -> (PodStatus, Option<Timestamp>) {
        let before = |ms: &i64| finished - SignedDuration::from_millis(*ms);
        let mut s = PodStatus::default();
        let mut init = Vec::new();
        let mut main = Vec::new();
        let mut conditions: Vec<PodCondition> = Vec::new();
        if waiting {
            // A container status without a termination (never ran, or no state reported).
            main.push(ContainerStatus { name: "sidecar".to_owned(), ..ContainerStatus::default() });
        }
        let recorded = match record {
            0 => {
                let last = terminated("main", finished);
                if last_in_init { init.push(last) } else { main.push(last) }
                for (i, ms) in earlier.iter().enumerate() {
                    let c = terminated(&format!("c{i}"), before(ms));
                    if i % 2 == 0 { init.push(c) } else { main.push(c) }
                }
                conditions.extend(noise.iter().map(|at| pod_condition("Ready", *at)));
                s.start_time = Some(Time(before(&(2 * DAY_MS + 1))));
                Some(finished)
            }
            1 => {
                conditions.push(pod_condition("Ready", Some(finished)));
                conditions.extend(earlier.iter().map(|ms| pod_condition("PodScheduled", Some(before(ms)))));
                conditions.push(pod_condition("DisruptionTarget", None));
                s.start_time = Some(Time(before(&(2 * DAY_MS + 1))));
                Some(finished)
            }
            2 => {
                conditions.push(pod_condition("Ready", None));
                s.start_time = Some(Time(finished));
                Some(finished)
            }
            _ => {
                conditions.push(pod_condition("Ready", None));
                None
            }
        };
        s.init_container_statuses = (!init.is_empty()).then_some(init);
        s.container_statuses = (!main.is_empty()).then_some(main);
        s.conditions = (!conditions.is_empty()).then_some(conditions);
        (s, recorded)
    }
}

prop_compose! {
    fn arb_pod()(
        metadata in arb_meta(),
        fargate in prop_oneof![2 => Just((false, false)), 1 => any::<(bool, bool)>()],
        phase in prop_oneof![
            3 => Just(Some("Succeeded")),
            3 => Just(Some("Failed")),
            1 => prop::sample::select(vec![
                None, Some(""), Some("Pending"), Some("Running"), Some("Unknown"), Some("succeeded"),
            ]),
        ],
        reason in prop::option::weighted(0.5, prop_oneof![2 => Just("Evicted"), 1 => Just("OOMKilled"), 1 => Just("DeadlineExceeded")]),
        has_status in prop::bool::weighted(0.97),
        (status, recorded) in arb_pod_record(),
    ) -> PodCase {
        let (label, scheduler) = fargate;
        let mut pod = Pod { metadata, ..pod() };
        if label {
            pod.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(FARGATE_PROFILE_LABEL.to_owned(), "etl".to_owned());
        }
        if scheduler {
            pod = pod.fargate_scheduler_only();
        }
        let status = PodStatus {
            phase: phase.map(str::to_owned),
            reason: reason.map(str::to_owned),
            ..status
        };
        pod.status = has_status.then_some(status);
        PodCase {
            pod,
            fargate: label || scheduler,
            finished: if has_status { recorded } else { None },
        }
    }
}

/// The oracle's verdict: `Err(label of the keep reason)`, or the object is due-able.
type Verdict = Result<Due, &'static str>;

/// A finished object past every keep rule: deleted with `label` once `retention` has passed
/// since `finished`.
#[derive(Debug)]
struct Due {
    label: &'static str,
    finished: Timestamp,
    retention: Duration,
}

fn annotation_value<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Namespace scope, then deletion in progress, then the opt-out.
fn guard_verdict(meta: &ObjectMeta, s: &Settings) -> Result<(), &'static str> {
    let ns = meta.namespace.as_deref().unwrap_or("");
    let included = s.namespaces.is_empty() || s.namespaces.iter().any(|n| n == ns);
    if !included || s.exclude_namespaces.iter().any(|n| n == ns) {
        return Err("excludedNamespace");
    }
    if meta.deletion_timestamp.is_some() {
        return Err("beingDeleted");
    }
    if annotation_value(meta, KEEP_ANNOTATION).is_some_and(opts_out) {
        return Err("optedOut");
    }
    Ok(())
}

/// The `eks-reaper/ttl` override: a `humantime` duration, surrounding whitespace ignored.
fn ttl_override(meta: &ObjectMeta) -> Result<Option<Duration>, &'static str> {
    annotation_value(meta, TTL_ANNOTATION)
        .map(|v| humantime::parse_duration(v.trim()).map_err(|_| "invalidTtlAnnotation"))
        .transpose()
}

/// The kind of the owner reference with `controller: true` (`false` or missing: not one).
fn controller_of(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.kind.as_str())
}

fn job_verdict(j: &Job, s: &Settings) -> Verdict {
    guard_verdict(&j.metadata, s)?;
    let spec = j.spec.as_ref();
    if spec.and_then(|x| x.suspend) == Some(true) {
        return Err("suspended");
    }
    let status = j.status.as_ref().ok_or("active")?;
    if status.active.unwrap_or(0) > 0 {
        return Err("active");
    }
    // With both Complete=True and Failed=True (which the apiserver's Job status validation
    // rejects) the first decides, as in the native TTL controller.
    let terminal = status
        .conditions
        .iter()
        .flatten()
        .find(|c| matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True")
        .ok_or("active")?;
    let succeeded = terminal.type_ == "Complete";
    let native = spec.and_then(|x| x.ttl_seconds_after_finished);
    if native.is_some() && s.respect_native_ttl {
        return Err("nativeTtl");
    }
    if s.skip_cronjob_jobs && controller_of(&j.metadata) == Some("CronJob") {
        return Err("ownedByCronJob");
    }
    let finished = match (&terminal.last_transition_time, &status.completion_time) {
        (Some(t), _) => t.0,
        (None, Some(t)) if succeeded => t.0,
        _ => return Err("unknownFinishTime"),
    };
    let retention = match (ttl_override(&j.metadata)?, native) {
        (Some(ttl), _) => ttl,
        (None, Some(secs)) => Duration::from_secs(u64::try_from(secs).expect("generated ≥ 0")),
        (None, None) if succeeded => s.succeeded_job_ttl,
        (None, None) => s.failed_job_ttl,
    };
    Ok(Due {
        label: if succeeded {
            "succeededPastTtl"
        } else {
            "failedPastTtl"
        },
        finished,
        retention,
    })
}

fn pod_verdict(c: &PodCase, s: &Settings) -> Verdict {
    let p = &c.pod;
    guard_verdict(&p.metadata, s)?;
    let status = p.status.as_ref();
    let phase = status.and_then(|x| x.phase.as_deref());
    if !matches!(phase, Some("Succeeded" | "Failed")) {
        return Err("notFinished");
    }
    let evicted =
        phase == Some("Failed") && status.and_then(|x| x.reason.as_deref()) == Some("Evicted");
    let fargate_ttl = |ttl: Duration| {
        if s.low_headroom {
            ttl.min(s.low_headroom_fargate_ttl)
        } else {
            ttl
        }
    };
    let (label, default) = match (c.fargate, evicted, controller_of(&p.metadata)) {
        (true, _, _) => ("fargatePodPastTtl", fargate_ttl(s.fargate_pod_ttl)),
        (false, true, _) => ("evictedPastTtl", s.bare_pod_ttl),
        (false, false, None) => ("barePodPastTtl", s.bare_pod_ttl),
        (false, false, Some("Job")) => return Err("ownedByJob"),
        (false, false, Some(_)) => return Err("ownedByController"),
    };
    let finished = c.finished.ok_or("unknownFinishTime")?;
    let retention = match ttl_override(&p.metadata)? {
        Some(ttl) if c.fargate => fargate_ttl(ttl),
        Some(ttl) => ttl,
        None => default,
    };
    Ok(Due {
        label,
        finished,
        retention,
    })
}

/// Checks one decision against the oracle's verdict at clock `t`.
fn check(kind: &str, d: &Decision, verdict: Verdict, t: Timestamp) -> Result<(), TestCaseError> {
    prop_assert!(
        !d.label().is_empty(),
        "{} decided without a reason label: {:?}",
        kind,
        d
    );
    let due = match verdict {
        Err(kept) => {
            prop_assert!(
                matches!(d, Decision::Keep(_)),
                "selected a {} the rules keep as {}: {:?}",
                kind,
                kept,
                d
            );
            prop_assert_eq!(d.label(), kept, "{} kept for the wrong reason", kind);
            return Ok(());
        }
        Ok(due) => due,
    };
    // The fixture's finish time, not the policy's reading of it.
    let age = t.duration_since(due.finished);
    let past = Duration::try_from(age).ok().filter(|a| *a >= due.retention);
    match (d, past) {
        (Decision::Delete(r), Some(age)) => {
            prop_assert_eq!(
                r.label(),
                due.label,
                "{} selected for the wrong reason",
                kind
            );
            prop_assert_eq!(
                r.age(),
                age,
                "{} reason's age is not now − its finish time",
                kind
            );
            prop_assert!(r.age() >= due.retention);
            prop_assert!(!r.to_string().is_empty());
        }
        (Decision::Delete(r), None) => {
            return Err(TestCaseError::fail(format!(
                "selected a {kind} younger than its retention {:?} (finished {} at clock {t}): {r:?}",
                due.retention, due.finished
            )));
        }
        (Decision::Keep(k), None) => {
            let remaining = match Duration::try_from(age) {
                Ok(age) => due.retention - age,
                Err(_) => due.retention + Duration::try_from(-age).expect("negative age"),
            };
            prop_assert_eq!(
                k,
                &Keep::WithinRetention { remaining },
                "{} inside its retention",
                kind
            );
        }
        (Decision::Keep(k), Some(age)) => {
            return Err(TestCaseError::fail(format!(
                "kept a {kind} {age:?} past finishing, retention {:?}: {k:?}",
                due.retention
            )));
        }
    }
    Ok(())
}

/// A keep annotation that does not opt out must change nothing: `"false"` protects nothing.
fn check_non_opt_out_is_inert<T: Metadata<Ty = ObjectMeta> + Clone>(
    object: &T,
    decide: impl Fn(&T) -> Decision,
) -> Result<(), TestCaseError> {
    if let Some(v) = annotation_value(object.metadata(), KEEP_ANNOTATION).filter(|v| !opts_out(v)) {
        let mut without = object.clone();
        if let Some(a) = without.metadata_mut().annotations.as_mut() {
            a.remove(KEEP_ANNOTATION);
        }
        prop_assert_eq!(
            decide(object),
            decide(&without),
            "keep annotation {:?} changed the decision",
            v
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn selected_jobs_are_finished_idle_in_scope_not_opted_out_and_past_retention(
        j in arb_job(), t in arb_clock(), s in arb_settings(),
    ) {
        let d = plan(Object::Job(&j), t, &s);
        check("job", &d, job_verdict(&j, &s), t)?;
        check_non_opt_out_is_inert(&j, |j| plan(Object::Job(j), t, &s))?;
    }

    #[test]
    fn selected_pods_are_terminal_in_scope_not_opted_out_and_past_retention(
        c in arb_pod(), t in arb_clock(), s in arb_settings(),
    ) {
        let d = plan(Object::Pod(&c.pod), t, &s);
        check("pod", &d, pod_verdict(&c, &s), t)?;
        check_non_opt_out_is_inert(&c.pod, |p| plan(Object::Pod(p), t, &s))?;
    }
}

/// Without this the properties could pass vacuously: the strategies must reach every reason
/// (every delete, and every keep rule the oracle names), as many cases as a property runs.
#[test]
fn property_strategies_reach_every_reason() {
    let mut runner = TestRunner::deterministic();
    let cases = (arb_job(), arb_pod(), arb_clock(), arb_settings());
    let mut seen = BTreeMap::<&str, u32>::new();
    for _ in 0..CASES {
        let (j, c, t, s) = cases.new_tree(&mut runner).expect("case").current();
        *seen
            .entry(plan(Object::Job(&j), t, &s).label())
            .or_default() += 1;
        *seen
            .entry(plan(Object::Pod(&c.pod), t, &s).label())
            .or_default() += 1;
    }
    let every = [
        "succeededPastTtl",
        "failedPastTtl",
        "fargatePodPastTtl",
        "evictedPastTtl",
        "barePodPastTtl",
        "excludedNamespace",
        "beingDeleted",
        "optedOut",
        "suspended",
        "active",
        "nativeTtl",
        "ownedByCronJob",
        "notFinished",
        "ownedByJob",
        "ownedByController",
        "withinRetention",
        "unknownFinishTime",
        "invalidTtlAnnotation",
    ];
    let missing: Vec<_> = every.iter().filter(|l| !seen.contains_key(*l)).collect();
    assert!(
        missing.is_empty(),
        "never reached: {missing:?} (seen {seen:?})"
    );
}

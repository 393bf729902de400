//! Table tests of the policy. Fixtures are builder methods on the real k8s-openapi types.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::Metadata;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use proptest::prelude::*;

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
            .push(ContainerStatus {
                name: "main".to_owned(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        finished_at: Some(Time(at)),
                        ..ContainerStateTerminated::default()
                    }),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            });
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

fn arb_time() -> impl Strategy<Value = Timestamp> {
    // From 3 days ago to 1 hour in the future, second resolution.
    (-3 * 86_400i64..3_600).prop_map(|s| now() + jiff::SignedDuration::from_secs(s))
}

fn arb_settings() -> impl Strategy<Value = Settings> {
    (
        0u64..100_000,
        0u64..100_000,
        0u64..100_000,
        0u64..100_000,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u64..1_000,
    )
        .prop_map(|(s, f, fg, b, native, cron, low, lowttl)| Settings {
            succeeded_job_ttl: Duration::from_secs(s),
            failed_job_ttl: Duration::from_secs(f),
            fargate_pod_ttl: Duration::from_secs(fg),
            bare_pod_ttl: Duration::from_secs(b),
            respect_native_ttl: native,
            skip_cronjob_jobs: cron,
            low_headroom: low,
            low_headroom_fargate_ttl: Duration::from_secs(lowttl),
            ..Settings::default()
        })
}

prop_compose! {
    fn arb_job()(
        kind in 0u8..5,
        at in arb_time(),
        active in 0i32..3,
        suspended in any::<bool>(),
        deleting in any::<bool>(),
        opted_out in any::<bool>(),
        native in proptest::option::of(0i32..200_000),
        ttl_ann in proptest::option::of(0u64..200_000),
        cron in any::<bool>(),
    ) -> Job {
        let mut j = match kind {
            0 => job().complete(at),
            1 => job().failed(at),
            2 => job().with_condition(cond("SuccessCriteriaMet", at)),
            3 => job().with_condition(cond("FailureTarget", at)),
            _ => job(),
        };
        if active > 0 { j = j.active(active); }
        if suspended { j = j.suspended(); }
        if deleting { j = j.deleting(); }
        if opted_out { j = j.annotate(KEEP_ANNOTATION, "true"); }
        if let Some(n) = native { j = j.ttl_after_finished(n); }
        if let Some(t) = ttl_ann { j = j.annotate(TTL_ANNOTATION, &format!("{t}s")); }
        if cron { j = j.controlled_by("CronJob"); }
        j
    }
}

prop_compose! {
    fn arb_pod()(
        phase in prop::sample::select(vec!["Pending", "Running", "Unknown", "Succeeded", "Failed"]),
        at in arb_time(),
        evicted in any::<bool>(),
        fargate in any::<bool>(),
        owner in prop::sample::select(vec!["", "Job", "ReplicaSet"]),
        deleting in any::<bool>(),
        opted_out in any::<bool>(),
        ttl_ann in proptest::option::of(0u64..200_000),
    ) -> Pod {
        let mut p = if evicted && phase == "Failed" { pod().evicted(at) } else { pod().phase(phase).terminated_at(at) };
        if fargate { p = p.fargate(); }
        if !owner.is_empty() { p = p.controlled_by(owner); }
        if deleting { p = p.deleting(); }
        if opted_out { p = p.annotate(KEEP_ANNOTATION, "true"); }
        if let Some(t) = ttl_ann { p = p.annotate(TTL_ANNOTATION, &format!("{t}s")); }
        p
    }
}

/// The finish instant the fixtures recorded (independent of the policy's own reading).
fn fixture_finish_job(j: &Job) -> Option<Timestamp> {
    j.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Complete" || c.type_ == "Failed")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

proptest! {
    #[test]
    fn selected_jobs_are_finished_idle_unguarded_and_past_retention(j in arb_job(), s in arb_settings()) {
        let d = plan(Object::Job(&j), now(), &s);
        if let Decision::Delete(reason) = d {
            let status = j.status.as_ref().expect("status");
            prop_assert_eq!(status.active.unwrap_or(0), 0, "active job selected");
            prop_assert_ne!(j.spec.as_ref().and_then(|s| s.suspend), Some(true), "suspended job selected");
            prop_assert!(j.metadata.deletion_timestamp.is_none(), "deleting job selected");
            prop_assert!(annotation(&j.metadata, KEEP_ANNOTATION).is_none(), "opted-out job selected");
            let finished = fixture_finish_job(&j);
            prop_assert!(finished.is_some(), "unfinished job selected");
            let age = now().duration_since(finished.expect("checked"));
            prop_assert!(age >= jiff::SignedDuration::ZERO, "job finishing in the future selected");
            prop_assert_eq!(Duration::try_from(age).expect("non-negative"), reason.age());
            if s.respect_native_ttl {
                prop_assert!(j.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished).is_none());
            }
            // Never younger than the smallest retention that could apply.
            let retention = match annotation(&j.metadata, TTL_ANNOTATION) {
                Some(v) => humantime::parse_duration(v).expect("fixture ttl"),
                None => match j.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) {
                    Some(n) => Duration::from_secs(u64::try_from(n).expect("non-negative")),
                    None if matches!(reason, Delete::SucceededPastTtl { .. }) => s.succeeded_job_ttl,
                    None => s.failed_job_ttl,
                },
            };
            prop_assert!(reason.age() >= retention);
            prop_assert!(!reason.label().is_empty());
        }
    }

    #[test]
    fn selected_pods_are_terminal_unguarded_and_past_retention(p in arb_pod(), s in arb_settings()) {
        if let Decision::Delete(reason) = plan(Object::Pod(&p), now(), &s) {
            prop_assert!(is_finished_pod(&p), "non-terminal pod selected");
            prop_assert!(p.metadata.deletion_timestamp.is_none(), "deleting pod selected");
            prop_assert!(annotation(&p.metadata, KEEP_ANNOTATION).is_none(), "opted-out pod selected");
            let floor = match reason {
                Delete::FargatePodPastTtl { .. } => {
                    prop_assert!(is_fargate_pod(&p));
                    let base = match annotation(&p.metadata, TTL_ANNOTATION) {
                        Some(v) => humantime::parse_duration(v).expect("fixture ttl"),
                        None => s.fargate_pod_ttl,
                    };
                    if s.low_headroom { base.min(s.low_headroom_fargate_ttl) } else { base }
                }
                Delete::EvictedPastTtl { .. } | Delete::BarePodPastTtl { .. } => {
                    prop_assert!(!is_fargate_pod(&p));
                    match annotation(&p.metadata, TTL_ANNOTATION) {
                        Some(v) => humantime::parse_duration(v).expect("fixture ttl"),
                        None => s.bare_pod_ttl,
                    }
                }
                other => return Err(TestCaseError::fail(format!("job reason for a pod: {other:?}"))),
            };
            prop_assert!(reason.age() >= floor, "pod younger than its retention selected");
            if matches!(reason, Delete::BarePodPastTtl { .. }) {
                prop_assert!(controller_kind(&p.metadata).is_none());
            }
        }
    }
}

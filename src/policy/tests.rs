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
    /// Controlled by a `batch/v1` Job or CronJob, else by an `apps/v1` controller.
    fn controlled_by(self, kind: &str) -> Self {
        let api_version = if kind == "Job" || kind == "CronJob" {
            "batch/v1"
        } else {
            "apps/v1"
        };
        self.controlled_by_api(api_version, kind)
    }
    fn controlled_by_api(mut self, api_version: &str, kind: &str) -> Self {
        self.metadata_mut().owner_references = Some(vec![OwnerReference {
            api_version: api_version.to_owned(),
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

/// The Jobs pass listed the fixtures' owner Job (`uid-owner`), which keeps nothing.
fn listed_jobs() -> JobIndex {
    let mut index = JobIndex::default();
    index.record("uid-owner", false);
    index
}

fn decide_job(j: &Job) -> Decision {
    plan(Object::Job(j), now(), &settings())
}

fn decide_pod(p: &Pod) -> Decision {
    plan_pod_with(p, &settings())
}

fn plan_pod_with(p: &Pod, s: &Settings) -> Decision {
    plan(Object::Pod(p, &listed_jobs()), now(), s)
}

fn owned_by(group: &str, kind: &str) -> Keep {
    Keep::OwnedByController {
        owner: OwnerKind {
            group: group.to_owned(),
            kind: kind.to_owned(),
        },
    }
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
fn job_suspended_after_it_finished_is_finished_as_the_ttl_controller_decides() {
    assert_eq!(
        delete(decide_job(&job().failed(ago("3d")).suspended())),
        Delete::FailedPastTtl { age: dur("3d") }
    );
    assert_eq!(
        keep(decide_job(&job().complete(ago("5m")).suspended())),
        within("10m")
    );
}

#[test]
fn job_with_terminating_pods_is_kept_as_active() {
    let mut j = job().failed(ago("3d"));
    j.status().terminating = Some(1);
    assert_eq!(keep(decide_job(&j)), Keep::Active);
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
fn keep_annotation_true_spellings_opt_out() {
    for v in ["true", "TRUE", " yes ", "1", "on", "On"] {
        let j = job().complete(ago("2h")).annotate(KEEP_ANNOTATION, v);
        assert_eq!(keep(decide_job(&j)), Keep::OptedOut, "{v:?}");
    }
}

#[test]
fn keep_annotation_false_spellings_change_nothing() {
    for v in ["false", "FALSE", "no", "0", " off "] {
        let j = job().complete(ago("2h")).annotate(KEEP_ANNOTATION, v);
        assert!(matches!(decide_job(&j), Decision::Delete(_)), "{v:?}");
    }
}

#[test]
fn keep_annotation_the_policy_cannot_read_keeps_the_object() {
    for v in ["", " ", "maybe", "ture", "2", "keep", "true please"] {
        let want = Keep::InvalidKeepAnnotation {
            value: v.to_owned(),
        };
        let j = job().complete(ago("2h")).annotate(KEEP_ANNOTATION, v);
        assert_eq!(keep(decide_job(&j)), want, "{v:?}");
        let p = pod().succeeded(ago("2h")).annotate(KEEP_ANNOTATION, v);
        assert_eq!(keep(decide_pod(&p)), want, "{v:?}");
    }
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
fn protected_namespaces_are_kept_unless_named() {
    for ns in PROTECTED_NAMESPACES {
        let j = job().complete(ago("2h")).in_namespace(ns);
        assert_eq!(keep(decide_job(&j)), Keep::ExcludedNamespace, "{ns}");
        let p = pod().succeeded(ago("2h")).in_namespace(ns);
        assert_eq!(keep(decide_pod(&p)), Keep::ExcludedNamespace, "{ns}");
    }
    let s = Settings {
        namespaces: vec!["kube-system".to_owned()],
        ..settings()
    };
    let j = job().complete(ago("2h")).in_namespace("kube-system");
    assert!(matches!(
        plan(Object::Job(&j), now(), &s),
        Decision::Delete(_)
    ));
}

#[test]
fn exclude_list_adds_to_the_protected_namespaces() {
    let s = Settings {
        exclude_namespaces: vec!["ops".to_owned()],
        ..settings()
    };
    for ns in ["ops", "kube-system"] {
        let j = job().complete(ago("2h")).in_namespace(ns);
        assert_eq!(
            keep(plan(Object::Job(&j), now(), &s)),
            Keep::ExcludedNamespace,
            "{ns}"
        );
    }
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

// ---- Jobs: ownership ----------------------------------------------------------------------

#[test]
fn job_of_a_foreign_controller_is_kept_with_its_owner() {
    let j = job()
        .complete(ago("2h"))
        .controlled_by_api("jobset.x-k8s.io/v1alpha2", "JobSet");
    assert_eq!(keep(decide_job(&j)), owned_by("jobset.x-k8s.io", "JobSet"));
}

#[test]
fn cronjob_of_another_group_is_a_foreign_controller() {
    let j = job()
        .complete(ago("2h"))
        .controlled_by_api("example.com/v1", "CronJob");
    assert_eq!(keep(decide_job(&j)), owned_by("example.com", "CronJob"));
}

#[test]
fn job_of_a_handed_over_controller_is_pruned_by_its_retention() {
    let s = Settings {
        prune_owners: vec![OwnerKind::parse("jobset.x-k8s.io/JobSet").expect("owner")],
        ..settings()
    };
    let j = job()
        .complete(ago("2h"))
        .controlled_by_api("jobset.x-k8s.io/v1alpha2", "JobSet");
    assert_eq!(
        delete(plan(Object::Job(&j), now(), &s)),
        Delete::SucceededPastTtl { age: dur("2h") }
    );
    let other = job()
        .complete(ago("2h"))
        .controlled_by_api("kubeflow.org/v1", "PyTorchJob");
    assert_eq!(
        keep(plan(Object::Job(&other), now(), &s)),
        owned_by("kubeflow.org", "PyTorchJob")
    );
}

#[test]
fn running_job_of_a_foreign_controller_is_active() {
    let j = job()
        .active(1)
        .controlled_by_api("jobset.x-k8s.io/v1alpha2", "JobSet");
    assert_eq!(keep(decide_job(&j)), Keep::Active);
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
        delete(plan_pod_with(&p, &s)),
        Delete::FargatePodPastTtl { age: dur("2m") }
    );
    let p = pod().succeeded(ago("30s")).controlled_by("Job").fargate();
    assert_eq!(keep(plan_pod_with(&p, &s)), within("30s"));
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
    assert!(matches!(plan_pod_with(&p, &s), Decision::Delete(_)));
    // but an explicit opt-out still wins
    let p = p.annotate(KEEP_ANNOTATION, "true");
    assert_eq!(keep(plan_pod_with(&p, &s)), Keep::OptedOut);
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
    assert_eq!(keep(decide_pod(&p)), owned_by("apps", "ReplicaSet"));
}

#[test]
fn finished_fargate_pod_of_a_foreign_controller_is_kept() {
    let p = pod()
        .failed(ago("3d"))
        .fargate()
        .controlled_by_api("argoproj.io/v1alpha1", "Workflow");
    assert_eq!(keep(decide_pod(&p)), owned_by("argoproj.io", "Workflow"));
}

#[test]
fn pod_of_a_job_kind_from_another_group_is_not_a_job_pod() {
    let p = pod()
        .succeeded(ago("3d"))
        .fargate()
        .controlled_by_api("example.com/v1", "Job");
    assert_eq!(keep(decide_pod(&p)), owned_by("example.com", "Job"));
}

#[test]
fn pods_of_a_handed_over_controller_follow_the_pod_retentions() {
    let s = Settings {
        prune_owners: vec![OwnerKind::parse("argoproj.io/Workflow").expect("owner")],
        ..settings()
    };
    let argo = |p: Pod| p.controlled_by_api("argoproj.io/v1alpha1", "Workflow");
    assert_eq!(
        delete(plan_pod_with(&argo(pod().failed(ago("20m")).fargate()), &s)),
        Delete::FargatePodPastTtl { age: dur("20m") }
    );
    assert_eq!(
        delete(plan_pod_with(&argo(pod().failed(ago("2h"))), &s)),
        Delete::BarePodPastTtl { age: dur("2h") }
    );
}

#[test]
fn pods_of_a_job_kept_by_annotation_are_kept() {
    let mut index = JobIndex::default();
    index.record("uid-owner", true);
    for p in [
        pod().failed(ago("3d")).controlled_by("Job").fargate(),
        pod().evicted(ago("3d")).controlled_by("Job"),
        pod().succeeded(ago("3d")).controlled_by("Job"),
    ] {
        let d = plan(Object::Pod(&p, &index), now(), &settings());
        assert_eq!(keep(d), Keep::JobOptedOut);
    }
    let kept = job()
        .failed(ago("1h"))
        .annotate(KEEP_ANNOTATION, "not-a-flag");
    assert!(job_keeps_its_pods(&kept));
    assert!(!job_keeps_its_pods(
        &job().failed(ago("1h")).annotate(KEEP_ANNOTATION, "no")
    ));
}

#[test]
fn fargate_pod_of_a_job_this_run_did_not_list_is_kept() {
    let p = pod().failed(ago("3d")).controlled_by("Job").fargate();
    let d = plan(Object::Pod(&p, &JobIndex::default()), now(), &settings());
    assert_eq!(keep(d), Keep::JobNotListed);
}

#[test]
fn pod_the_job_controller_has_not_counted_is_kept() {
    let mut p = pod().failed(ago("3d")).controlled_by("Job").fargate();
    p.metadata.finalizers = Some(vec![JOB_TRACKING_FINALIZER.to_owned()]);
    assert_eq!(keep(decide_pod(&p)), Keep::NotCounted);
}

#[test]
fn pod_finish_time_is_the_latest_termination_of_any_container() {
    // The init container ended 3 h ago; the pod failed a minute ago.
    let mut p = pod().phase("Failed");
    p.status().init_container_statuses = Some(vec![terminated("init", ago("3h"))]);
    p.status().container_statuses = Some(vec![terminated("main", ago("1m"))]);
    assert_eq!(keep(decide_pod(&p)), within("59m"));
    // A sidecar (restartable init container) stopped after the main container.
    let mut p = pod().phase("Succeeded").terminated_at(ago("3h"));
    p.status().init_container_statuses = Some(vec![terminated("sidecar", ago("10m"))]);
    assert_eq!(keep(decide_pod(&p)), within("50m"));
    // An ephemeral debug container ended last.
    let mut p = pod().phase("Succeeded").terminated_at(ago("3h"));
    p.status().ephemeral_container_statuses = Some(vec![terminated("debug", ago("20m"))]);
    assert_eq!(keep(decide_pod(&p)), within("40m"));
}

#[test]
fn pod_finish_time_includes_a_later_condition_transition() {
    let mut p = pod().phase("Failed").terminated_at(ago("3h"));
    p.status().conditions = Some(vec![PodCondition {
        type_: "Ready".to_owned(),
        status: "False".to_owned(),
        last_transition_time: Some(Time(ago("5m"))),
        ..PodCondition::default()
    }]);
    assert_eq!(keep(decide_pod(&p)), within("55m"));
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

// ---- properties -------------------------------------------------------------------------
//
// Invariants over random Jobs, Pods, settings, clocks and Job indexes, each stated as what
// must never be deleted (the README's Safety list), not as a second copy of the policy:
// - never outside the namespace scope (excluded, not included, protected and not named);
// - never anything being deleted, or whose `eks-reaper/keep` is not a false spelling;
// - never an unfinished Job (no `Complete=True`/`Failed=True`, pods active or terminating),
//   nor a pod that is not `Succeeded`/`Failed` or that the Job controller has not counted;
// - never what a controller the policy does not understand manages (group *and* kind);
// - never a pod whose Job keeps its pods or was not listed, nor a non-Fargate pod of a Job;
// - never before its retention has passed since the latest instant it recorded finishing;
// and three relations: a deletion stays a deletion as time passes; longer retentions never
// delete more; a false `eks-reaper/keep` changes nothing.
// `property_strategies_reach_every_reason` checks the generators reach every reason, so no
// invariant holds vacuously.

/// Cases per property (proptest's default is 256): the properties and the reach check stay
/// within a few seconds in a debug build on a loaded machine.
const CASES: u32 = 2048;

const DAY_MS: i64 = 86_400_000;

/// Namespaces objects and the include/exclude lists draw from: few, so they often meet.
const NAMESPACES: [&str; 6] = [
    "etl",
    "web",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "ml",
];

/// `eks-reaper/keep` values that opt out.
const TRUE_SPELLINGS: [&str; 9] = [
    "true", "TRUE", "True", " true ", "\ttrue\n", "yes", "YES", "1", "on",
];
/// `eks-reaper/keep` values that do not.
const FALSE_SPELLINGS: [&str; 6] = ["false", "FALSE", "no", "0", "off", " Off "];
/// `eks-reaper/keep` values that are neither.
const UNREADABLE_SPELLINGS: [&str; 7] = ["", " ", "truee", "t rue", "maybe", "2", "keep"];

/// Controllers: `apiVersion` and kind, the Job controller's own among look-alikes of other
/// groups.
const CONTROLLERS: [(&str, &str); 8] = [
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("example.com/v1", "Job"),
    ("example.com/v1", "CronJob"),
    ("jobset.x-k8s.io/v1alpha2", "JobSet"),
    ("apps/v1", "ReplicaSet"),
    ("argoproj.io/v1alpha1", "Workflow"),
    ("v1", "ReplicationController"),
];

/// Owners a user may hand over with `prune_owners`.
const HANDABLE: [&str; 4] = [
    "jobset.x-k8s.io/JobSet",
    "argoproj.io/Workflow",
    "apps/ReplicaSet",
    "example.com/Job",
];

const FINALIZERS: [&str; 2] = [JOB_TRACKING_FINALIZER, "example.com/protect"];

/// An instant within ±5 days of `now()`: anywhere at millisecond resolution, or on the minute
/// grid within ±2 days so that ages often equal a retention exactly.
fn arb_instant() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        (-5 * DAY_MS..=5 * DAY_MS).prop_map(|ms| now() + SignedDuration::from_millis(ms)),
        (-48 * 60i64..=48 * 60).prop_map(|m| now() + SignedDuration::from_mins(m)),
    ]
}

fn arb_retention() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..=200_000).prop_map(Duration::from_secs),
        prop::sample::select(vec![0u64, 60, 900, 3600, 86_400]).prop_map(Duration::from_secs),
    ]
}

/// A namespace list: empty, or one to three of [`NAMESPACES`], maybe with a duplicate.
fn arb_namespace_list() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        Just(Vec::new()),
        prop::sample::subsequence(NAMESPACES.to_vec(), 1..=3).prop_map(|v| {
            let mut v: Vec<String> = v.into_iter().map(str::to_owned).collect();
            v.push(v[0].clone());
            v
        }),
    ]
}

prop_compose! {
    fn arb_settings()(
        (succeeded_job_ttl, failed_job_ttl, fargate_pod_ttl, bare_pod_ttl, low_headroom_fargate_ttl)
            in (arb_retention(), arb_retention(), arb_retention(), arb_retention(), arb_retention()),
        namespaces in prop_oneof![2 => Just(Vec::new()), 1 => arb_namespace_list()],
        exclude_namespaces in arb_namespace_list(),
        prune_owners in prop::sample::subsequence(HANDABLE.to_vec(), 0..=2),
        (respect_native_ttl, skip_cronjob_jobs, low_headroom) in any::<(bool, bool, bool)>(),
    ) -> Settings {
        Settings {
            succeeded_job_ttl,
            failed_job_ttl,
            fargate_pod_ttl,
            bare_pod_ttl,
            namespaces,
            exclude_namespaces,
            prune_owners: prune_owners
                .into_iter()
                .map(|o| OwnerKind::parse(o).expect("valid owner"))
                .collect(),
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

fn arb_keep_annotation() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::weighted(
        0.3,
        prop_oneof![
            prop::sample::select(TRUE_SPELLINGS.to_vec()),
            prop::sample::select(FALSE_SPELLINGS.to_vec()),
            prop::sample::select(UNREADABLE_SPELLINGS.to_vec()),
        ],
    )
}

/// Owner references with `controller: true`, `false` or missing; owner `i` has UID
/// `uid-owner-{i}`.
fn arb_owners() -> impl Strategy<Value = Vec<OwnerReference>> {
    let owner = (
        prop::sample::select(CONTROLLERS.to_vec()),
        prop_oneof![3 => Just(Some(true)), 1 => Just(Some(false)), 1 => Just(None)],
    );
    prop::collection::vec(owner, 0..3).prop_map(|refs| {
        refs.into_iter()
            .enumerate()
            .map(|(i, ((api_version, kind), controller))| OwnerReference {
                api_version: api_version.to_owned(),
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
        keep in arb_keep_annotation(),
        ttl in arb_ttl_annotation(),
        owners in arb_owners(),
        finalizers in prop::sample::subsequence(FINALIZERS.to_vec(), 0..=2),
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
        m.finalizers = (!finalizers.is_empty())
            .then(|| finalizers.into_iter().map(str::to_owned).collect());
        m
    }
}

/// What the Jobs pass learned about the three generated owner UIDs.
fn arb_job_index() -> impl Strategy<Value = JobIndex> {
    prop::collection::vec(0u8..3, 3).prop_map(|states| {
        let mut index = JobIndex::default();
        for (i, state) in states.into_iter().enumerate() {
            match state {
                0 => {}
                1 => index.record(&format!("uid-owner-{i}"), false),
                _ => index.record(&format!("uid-owner-{i}"), true),
            }
        }
        index
    })
}

/// A condition of any type, status `True`, `False` or `Unknown`, `lastTransitionTime` or none.
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

fn is_terminal(c: &JobCondition) -> bool {
    matches!(c.type_.as_str(), "Complete" | "Failed") && c.status == "True"
}

prop_compose! {
    /// Up to three conditions, at most one of them terminal (the apiserver's Job status
    /// validation refuses `Complete=True` with `Failed=True`).
    fn arb_job_status()(
        conditions in prop::collection::vec(arb_job_condition(), 0..4),
        completion in prop::option::of(arb_instant()),
        active in prop::option::of(prop_oneof![3 => Just(0), 1 => 1i32..3]),
        terminating in prop::option::of(prop_oneof![3 => Just(0), 1 => 1i32..3]),
    ) -> JobStatus {
        let mut terminal_seen = false;
        let conditions: Vec<JobCondition> = conditions
            .into_iter()
            .filter(|c| !(is_terminal(c) && std::mem::replace(&mut terminal_seen, true)))
            .collect();
        JobStatus {
            conditions: (!conditions.is_empty()).then_some(conditions),
            completion_time: completion.map(Time),
            active,
            terminating,
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

/// Which status list a generated container goes in.
#[derive(Debug, Clone, Copy)]
enum ContainerList {
    /// Init containers, sidecars (restartable init containers) among them.
    Init,
    Main,
    Ephemeral,
}

prop_compose! {
    /// A pod status with containers in every list (terminated at some instant, or not
    /// terminated at all), conditions with or without a transition time, maybe a start time.
    fn arb_pod_status()(
        containers in prop::collection::vec(
            (
                prop_oneof![Just(ContainerList::Init), Just(ContainerList::Main), Just(ContainerList::Ephemeral)],
                prop::option::weighted(0.8, arb_instant()),
            ),
            0..4,
        ),
        conditions in prop::collection::vec(prop::option::weighted(0.7, arb_instant()), 0..3),
        start in prop::option::weighted(0.8, arb_instant()),
    ) -> PodStatus {
        let mut s = PodStatus {
            start_time: start.map(Time),
            ..PodStatus::default()
        };
        for (i, (list, ended)) in containers.into_iter().enumerate() {
            let name = format!("c{i}");
            let status = match ended {
                Some(at) => terminated(&name, at),
                None => ContainerStatus { name, ..ContainerStatus::default() },
            };
            match list {
                ContainerList::Init => &mut s.init_container_statuses,
                ContainerList::Main => &mut s.container_statuses,
                ContainerList::Ephemeral => &mut s.ephemeral_container_statuses,
            }
            .get_or_insert_with(Vec::new)
            .push(status);
        }
        let conditions: Vec<_> = conditions.into_iter().map(|at| pod_condition("Ready", at)).collect();
        s.conditions = (!conditions.is_empty()).then_some(conditions);
        s
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
        status in prop::option::weighted(0.97, arb_pod_status()),
    ) -> Pod {
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
        pod.status = status.map(|s| PodStatus {
            phase: phase.map(str::to_owned),
            reason: reason.map(str::to_owned),
            ..s
        });
        pod
    }
}

fn annotation_value<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Asserts `d` keeps the object when `must_keep` holds; `why` names the rule.
fn never(d: &Decision, must_keep: bool, why: &str) -> Result<(), TestCaseError> {
    if must_keep {
        prop_assert!(
            matches!(d, Decision::Keep(_)),
            "deleted although {}: {:?}",
            why,
            d
        );
    }
    Ok(())
}

/// The invariants every object shares: namespace scope, deletion in progress, opt-out.
fn never_common(d: &Decision, meta: &ObjectMeta, s: &Settings) -> Result<(), TestCaseError> {
    let ns = meta.namespace.as_deref().unwrap_or("");
    let named = s.namespaces.iter().any(|n| n == ns);
    never(
        d,
        PROTECTED_NAMESPACES.contains(&ns) && !named,
        "in a protected namespace not named in the include list",
    )?;
    never(
        d,
        s.exclude_namespaces.iter().any(|n| n == ns),
        "in an excluded namespace",
    )?;
    never(
        d,
        !s.namespaces.is_empty() && !named,
        "outside the include list",
    )?;
    never(
        d,
        meta.deletion_timestamp.is_some(),
        "already being deleted",
    )?;
    let keep = annotation_value(meta, KEEP_ANNOTATION);
    never(
        d,
        keep.is_some_and(|v| !FALSE_SPELLINGS.contains(&v)),
        "its eks-reaper/keep is not a false spelling",
    )
}

/// The controller reference (`controller: true`), with its group.
fn controller(meta: &ObjectMeta) -> Option<(&str, &OwnerReference)> {
    let o = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    let group = o.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    Some((group, o))
}

fn handed_over(s: &Settings, group: &str, kind: &str) -> bool {
    s.prune_owners
        .iter()
        .any(|o| o.group == group && o.kind == kind)
}

/// The retention an object's own `eks-reaper/ttl` sets, if it is a valid duration.
fn annotated_ttl(meta: &ObjectMeta) -> Option<Duration> {
    annotation_value(meta, TTL_ANNOTATION).and_then(|v| humantime::parse_duration(v.trim()).ok())
}

/// A deletion must come `retention` or more after `finished`.
fn never_early(
    d: &Decision,
    finished: Option<Timestamp>,
    retention: Duration,
    t: Timestamp,
) -> Result<(), TestCaseError> {
    let Decision::Delete(reason) = d else {
        return Ok(());
    };
    let Some(finished) = finished else {
        return Err(TestCaseError::fail(format!(
            "deleted without any recorded finish instant: {reason:?}"
        )));
    };
    let age = Duration::try_from(t.duration_since(finished)).ok();
    prop_assert!(
        age.is_some_and(|a| a >= retention),
        "deleted {:?} after finishing {} (clock {}), retention {:?}: {:?}",
        age,
        finished,
        t,
        retention,
        reason
    );
    Ok(())
}

fn job_invariants(j: &Job, t: Timestamp, s: &Settings) -> Result<(), TestCaseError> {
    let d = plan(Object::Job(j), t, s);
    prop_assert!(!d.label().is_empty());
    never_common(&d, &j.metadata, s)?;
    let status = j.status.as_ref();
    let terminal = status
        .and_then(|x| x.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| is_terminal(c)));
    never(&d, terminal.is_none(), "the Job has not finished")?;
    never(
        &d,
        status.is_some_and(|x| x.active.unwrap_or(0) > 0 || x.terminating.unwrap_or(0) > 0),
        "the Job still has pods active or terminating",
    )?;
    if let Some((group, o)) = controller(&j.metadata) {
        let cronjob = group == "batch" && o.kind == "CronJob";
        never(
            &d,
            !cronjob && !handed_over(s, group, &o.kind),
            "another controller manages the Job",
        )?;
        never(
            &d,
            cronjob && s.skip_cronjob_jobs,
            "CronJob Jobs are left to their CronJob",
        )?;
    }
    let native = j.spec.as_ref().and_then(|x| x.ttl_seconds_after_finished);
    never(
        &d,
        native.is_some() && s.respect_native_ttl,
        "the native TTL controller owns it",
    )?;
    let Some(terminal) = terminal else {
        return Ok(());
    };
    let succeeded = terminal.type_ == "Complete";
    let finished = terminal
        .last_transition_time
        .as_ref()
        .map(|x| x.0)
        .or_else(|| {
            succeeded
                .then(|| status.and_then(|x| x.completion_time.as_ref()).map(|x| x.0))
                .flatten()
        });
    let retention = annotated_ttl(&j.metadata)
        .or_else(|| native.map(|n| Duration::from_secs(u64::try_from(n).unwrap_or(0))))
        .unwrap_or(if succeeded {
            s.succeeded_job_ttl
        } else {
            s.failed_job_ttl
        });
    never_early(&d, finished, retention, t)
}

/// The latest instant a pod recorded finishing: any container's termination, any condition's
/// transition; its start time only when it recorded neither.
fn latest_finish_evidence(p: &Pod) -> Option<Timestamp> {
    let s = p.status.as_ref()?;
    let ends = [
        &s.init_container_statuses,
        &s.container_statuses,
        &s.ephemeral_container_statuses,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref());
    let transitions = s
        .conditions
        .iter()
        .flatten()
        .filter_map(|c| c.last_transition_time.as_ref());
    ends.chain(transitions)
        .map(|x| x.0)
        .max()
        .or_else(|| s.start_time.as_ref().map(|x| x.0))
}

fn pod_invariants(
    p: &Pod,
    jobs: &JobIndex,
    t: Timestamp,
    s: &Settings,
) -> Result<(), TestCaseError> {
    let d = plan(Object::Pod(p, jobs), t, s);
    prop_assert!(!d.label().is_empty());
    never_common(&d, &p.metadata, s)?;
    let status = p.status.as_ref();
    let phase = status.and_then(|x| x.phase.as_deref());
    never(
        &d,
        !matches!(phase, Some("Succeeded" | "Failed")),
        "the pod has not finished",
    )?;
    never(
        &d,
        p.metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == JOB_TRACKING_FINALIZER),
        "the Job controller has not counted the pod",
    )?;
    let evicted =
        phase == Some("Failed") && status.and_then(|x| x.reason.as_deref()) == Some("Evicted");
    let fargate = is_fargate_pod(p);
    if let Some((group, o)) = controller(&p.metadata) {
        if group == "batch" && o.kind == "Job" {
            never(
                &d,
                jobs.owner(&o.uid) == OwnerJob::KeepsItsPods,
                "its Job keeps its pods",
            )?;
            never(
                &d,
                jobs.owner(&o.uid) == OwnerJob::NotListed,
                "its Job was not listed",
            )?;
            never(
                &d,
                !fargate && !evicted,
                "a non-Fargate pod goes with its Job",
            )?;
        } else {
            never(
                &d,
                !evicted && !handed_over(s, group, &o.kind),
                "another controller manages the pod",
            )?;
        }
    }
    let ceiling = |ttl: Duration| {
        if fargate && s.low_headroom {
            ttl.min(s.low_headroom_fargate_ttl)
        } else {
            ttl
        }
    };
    let default = if fargate {
        s.fargate_pod_ttl
    } else {
        s.bare_pod_ttl
    };
    let retention = ceiling(annotated_ttl(&p.metadata).unwrap_or(default));
    never_early(&d, latest_finish_evidence(p), retention, t)
}

/// Every retention one hour longer and doubled.
fn longer(s: &Settings) -> Settings {
    let l = |d: Duration| d * 2 + Duration::from_secs(3600);
    Settings {
        succeeded_job_ttl: l(s.succeeded_job_ttl),
        failed_job_ttl: l(s.failed_job_ttl),
        fargate_pod_ttl: l(s.fargate_pod_ttl),
        bare_pod_ttl: l(s.bare_pod_ttl),
        low_headroom_fargate_ttl: l(s.low_headroom_fargate_ttl),
        ..s.clone()
    }
}

/// A deletion stays one (same reason) later on, and longer retentions never delete more.
fn relations(
    decide: impl Fn(Timestamp, &Settings) -> Decision,
    t: Timestamp,
    later: Duration,
    s: &Settings,
) -> Result<(), TestCaseError> {
    let now = decide(t, s);
    if let Decision::Delete(r) = &now {
        let then = decide(t + SignedDuration::try_from(later).expect("small"), s);
        prop_assert_eq!(
            then.label(),
            r.label(),
            "deleted at {} but not {:?} later",
            t,
            later
        );
    }
    if matches!(decide(t, &longer(s)), Decision::Delete(_)) {
        prop_assert!(
            matches!(now, Decision::Delete(_)),
            "longer retentions deleted what the shorter kept: {:?}",
            now
        );
    }
    Ok(())
}

/// A keep annotation with a false spelling must change nothing.
fn check_false_keep_is_inert<T: Metadata<Ty = ObjectMeta> + Clone>(
    object: &T,
    decide: impl Fn(&T) -> Decision,
) -> Result<(), TestCaseError> {
    if let Some(v) =
        annotation_value(object.metadata(), KEEP_ANNOTATION).filter(|v| FALSE_SPELLINGS.contains(v))
    {
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

fn arb_later() -> impl Strategy<Value = Duration> {
    (0u64..=10 * 86_400).prop_map(Duration::from_secs)
}

prop_compose! {
    /// Settings at their defaults but for the owners handed over and the CronJob switch.
    fn arb_owner_settings()(
        prune_owners in prop::sample::subsequence(HANDABLE.to_vec(), 0..=2),
        skip_cronjob_jobs in any::<bool>(),
    ) -> Settings {
        Settings {
            prune_owners: prune_owners
                .into_iter()
                .map(|o| OwnerKind::parse(o).expect("valid owner"))
                .collect(),
            skip_cronjob_jobs,
            ..settings()
        }
    }
}

prop_compose! {
    /// A Job every other rule would delete (in scope, no annotations, failed two weeks ago):
    /// only its owners decide, so a wrong owner rule cannot hide behind another keep.
    fn arb_owned_job()(owners in arb_owners()) -> Job {
        let mut j = job().failed(ago("14d"));
        j.metadata.owner_references = (!owners.is_empty()).then_some(owners);
        j
    }
}

prop_compose! {
    /// A pod every other rule would delete (in scope, no annotations, finished two weeks
    /// ago): only its owners, the Job index, its finalizers and whether it is Fargate or
    /// Evicted decide.
    fn arb_owned_pod()(
        owners in arb_owners(),
        counting in prop::bool::weighted(0.2),
        fargate in any::<bool>(),
        evicted in any::<bool>(),
    ) -> Pod {
        let mut p = if evicted { pod().evicted(ago("14d")) } else { pod().failed(ago("14d")) };
        if fargate {
            p = p.fargate();
        }
        p.metadata.owner_references = (!owners.is_empty()).then_some(owners);
        if counting {
            p.metadata.finalizers = Some(vec![JOB_TRACKING_FINALIZER.to_owned()]);
        }
        p
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn no_job_is_deleted_that_the_safety_rules_protect(
        j in arb_job(), t in arb_instant(), s in arb_settings(), later in arb_later(),
    ) {
        job_invariants(&j, t, &s)?;
        relations(|t, s| plan(Object::Job(&j), t, s), t, later, &s)?;
        check_false_keep_is_inert(&j, |j| plan(Object::Job(j), t, &s))?;
    }

    #[test]
    fn no_pod_is_deleted_that_the_safety_rules_protect(
        p in arb_pod(), jobs in arb_job_index(), t in arb_instant(), s in arb_settings(),
        later in arb_later(),
    ) {
        pod_invariants(&p, &jobs, t, &s)?;
        relations(|t, s| plan(Object::Pod(&p, &jobs), t, s), t, later, &s)?;
        check_false_keep_is_inert(&p, |p| plan(Object::Pod(p, &jobs), t, &s))?;
    }

    #[test]
    fn no_job_of_a_controller_the_policy_does_not_understand_is_deleted(
        j in arb_owned_job(), s in arb_owner_settings(),
    ) {
        job_invariants(&j, now(), &s)?;
    }

    #[test]
    fn no_pod_of_a_controller_or_job_that_keeps_it_is_deleted(
        p in arb_owned_pod(), jobs in arb_job_index(), s in arb_owner_settings(),
    ) {
        pod_invariants(&p, &jobs, now(), &s)?;
    }
}

/// Without this the properties could pass vacuously: the generators must reach every reason
/// (every delete and every keep), as many cases as a property runs.
#[test]
fn property_strategies_reach_every_reason() {
    let mut runner = TestRunner::deterministic();
    let cases = (
        arb_job(),
        arb_pod(),
        arb_job_index(),
        arb_instant(),
        arb_settings(),
    );
    let mut seen = BTreeMap::<&str, u32>::new();
    for _ in 0..CASES {
        let (j, p, jobs, t, s) = cases.new_tree(&mut runner).expect("case").current();
        *seen
            .entry(plan(Object::Job(&j), t, &s).label())
            .or_default() += 1;
        *seen
            .entry(plan(Object::Pod(&p, &jobs), t, &s).label())
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
        "invalidKeepAnnotation",
        "suspended",
        "active",
        "nativeTtl",
        "ownedByCronJob",
        "notFinished",
        "notCounted",
        "ownedByJob",
        "jobOptedOut",
        "jobNotListed",
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

//! Fixtures shared by the unit tests: a fixed clock, and Job and Pod builders on the real
//! k8s-openapi types (builder methods through extension traits), and full metric figures.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::Metadata;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodCondition, PodSpec,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use crate::metrics::{ClusterFigures, SubnetFigures};
use crate::policy::{FARGATE_PROFILE_LABEL, FARGATE_SCHEDULER};
use crate::report::NamespaceDeletions;

// ---- clock -------------------------------------------------------------------------------

pub(crate) fn now() -> Timestamp {
    "2026-11-28T12:00:00Z".parse().expect("fixed instant")
}

pub(crate) fn ago(d: &str) -> Timestamp {
    now() - jiff::SignedDuration::try_from(dur(d)).expect("small")
}

pub(crate) fn after(d: &str) -> Timestamp {
    now() + jiff::SignedDuration::try_from(dur(d)).expect("small")
}

pub(crate) fn dur(d: &str) -> Duration {
    humantime::parse_duration(d).expect("test duration")
}

// ---- Jobs and Pods -----------------------------------------------------------------------

pub(crate) fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some("etl".to_owned()),
        uid: Some(format!("uid-{name}")),
        creation_timestamp: Some(Time(ago("48h"))),
        ..ObjectMeta::default()
    }
}

/// Builders shared by Jobs and Pods.
pub(crate) trait MetaExt: Metadata<Ty = ObjectMeta> + Sized {
    fn annotate(mut self, key: &str, value: &str) -> Self {
        self.metadata_mut()
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }
    fn label(mut self, key: &str, value: &str) -> Self {
        self.metadata_mut()
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }
    fn named(mut self, name: &str) -> Self {
        self.metadata_mut().name = Some(name.to_owned());
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
    /// Being deleted since `at` (for a pod, the end of its grace period).
    fn deleting_since(mut self, at: Timestamp) -> Self {
        self.metadata_mut().deletion_timestamp = Some(Time(at));
        self
    }
    fn with_finalizer(mut self, name: &str) -> Self {
        self.metadata_mut()
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(name.to_owned());
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

pub(crate) fn job() -> Job {
    Job {
        metadata: meta("etl-run"),
        spec: Some(JobSpec::default()),
        status: Some(JobStatus {
            start_time: Some(Time(ago("30h"))),
            ..JobStatus::default()
        }),
    }
}

pub(crate) fn cond(type_: &str, at: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.to_owned(),
        status: "True".to_owned(),
        last_transition_time: Some(Time(at)),
        ..JobCondition::default()
    }
}

pub(crate) trait JobExt: Sized {
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

pub(crate) fn pod() -> Pod {
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

pub(crate) trait PodExt: Sized {
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

pub(crate) fn terminated(name: &str, at: Timestamp) -> ContainerStatus {
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

pub(crate) fn pod_condition(type_: &str, at: Option<Timestamp>) -> PodCondition {
    PodCondition {
        type_: type_.to_owned(),
        status: "False".to_owned(),
        last_transition_time: at.map(Time),
        ..PodCondition::default()
    }
}

// ---- metric figures ----------------------------------------------------------------------

/// Figures with every optional part present.
pub(crate) fn full_figures(cluster: &str) -> ClusterFigures {
    ClusterFigures {
        cluster: cluster.to_owned(),
        region: "eu-west-1".to_owned(),
        account: "self".to_owned(),
        jobs_deleted: 3,
        pods_deleted: 5,
        fargate_pods_deleted: 2,
        delete_errors: 1,
        throttled: 4,
        finished_jobs: 10,
        retained_jobs: 7,
        terminated_pods: 6,
        fargate_pods_holding_ips: 1,
        backlog: 0,
        run_duration: Duration::from_millis(1500),
        run_succeeded: true,
        health_only: false,
        low_headroom_mode: false,
        subnets_read: true,
        per_namespace: Some(vec![NamespaceDeletions {
            namespace: "etl".into(),
            jobs_deleted: 3,
            pods_deleted: 5,
            fargate_pods_deleted: 2,
        }]),
        subnets: Some(vec![
            SubnetFigures {
                subnet_id: "subnet-a".into(),
                availability_zone: "eu-west-1a".into(),
                available: 4000,
                utilization_percent: 2.2,
            },
            SubnetFigures {
                subnet_id: "subnet-b".into(),
                availability_zone: "eu-west-1b".into(),
                available: 11,
                utilization_percent: 0.0,
            },
        ]),
        cluster_available_ips: Some(4011),
        min_subnet_available_ips: Some(11),
        min_subnet_free_percent: Some(100.0),
        ip_exhaustion_hours: Some(8.5),
        stuck_objects: 2,
        stuck_fargate_pods: 1,
        api_requests: 41,
        api_bytes_received: 2_900_000,
    }
}

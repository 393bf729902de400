//! What a list page is decoded into: only the fields the policy reads.
//!
//! A full `Job` or `Pod` carries `managedFields` (a JSON tree per field manager) and the pod
//! template or spec; decoded into k8s-openapi types a page of 500 Jobs takes tens of
//! megabytes. These mirrors let serde skip everything else while decoding, then convert to
//! the real types (with only those fields set), so the policy stays a function of the real
//! Kubernetes types.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodCondition, PodSpec,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Deserialize;

/// The metadata fields the policy and the deleter use.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    pub(super) name: Option<String>,
    pub(super) namespace: Option<String>,
    pub(super) uid: Option<String>,
    pub(super) resource_version: Option<String>,
    pub(super) labels: Option<BTreeMap<String, String>>,
    pub(super) annotations: Option<BTreeMap<String, String>>,
    pub(super) owner_references: Option<Vec<OwnerReference>>,
    pub(super) creation_timestamp: Option<Time>,
    pub(super) deletion_timestamp: Option<Time>,
    pub(super) finalizers: Option<Vec<String>>,
}

impl From<Meta> for ObjectMeta {
    fn from(m: Meta) -> Self {
        ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            labels: m.labels,
            annotations: m.annotations,
            owner_references: m.owner_references,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            ..ObjectMeta::default()
        }
    }
}

/// A Job, as far as the policy is concerned.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeanJob {
    pub(super) metadata: Meta,
    pub(super) spec: Option<LeanJobSpec>,
    pub(super) status: Option<LeanJobStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct LeanJobSpec {
    pub(super) suspend: Option<bool>,
    pub(super) ttl_seconds_after_finished: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct LeanJobStatus {
    pub(super) active: Option<i32>,
    pub(super) terminating: Option<i32>,
    pub(super) completion_time: Option<Time>,
    pub(super) conditions: Option<Vec<JobCondition>>,
}

impl From<LeanJob> for Job {
    fn from(j: LeanJob) -> Self {
        Job {
            metadata: j.metadata.into(),
            spec: j.spec.map(|s| JobSpec {
                suspend: s.suspend,
                ttl_seconds_after_finished: s.ttl_seconds_after_finished,
                ..JobSpec::default()
            }),
            status: j.status.map(|s| JobStatus {
                active: s.active,
                terminating: s.terminating,
                completion_time: s.completion_time,
                conditions: s.conditions,
                ..JobStatus::default()
            }),
        }
    }
}

/// A Pod, as far as the policy is concerned.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeanPod {
    pub(super) metadata: Meta,
    pub(super) spec: Option<LeanPodSpec>,
    pub(super) status: Option<LeanPodStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct LeanPodSpec {
    pub(super) scheduler_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct LeanPodStatus {
    pub(super) phase: Option<String>,
    pub(super) reason: Option<String>,
    pub(super) start_time: Option<Time>,
    pub(super) conditions: Option<Vec<PodCondition>>,
    pub(super) container_statuses: Option<Vec<LeanContainerStatus>>,
    pub(super) init_container_statuses: Option<Vec<LeanContainerStatus>>,
    pub(super) ephemeral_container_statuses: Option<Vec<LeanContainerStatus>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct LeanContainerStatus {
    pub(super) name: String,
    pub(super) state: Option<LeanContainerState>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct LeanContainerState {
    pub(super) terminated: Option<LeanTerminated>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct LeanTerminated {
    pub(super) finished_at: Option<Time>,
}

impl From<LeanContainerStatus> for ContainerStatus {
    fn from(c: LeanContainerStatus) -> Self {
        ContainerStatus {
            name: c.name,
            state: c.state.map(|s| ContainerState {
                terminated: s.terminated.map(|t| ContainerStateTerminated {
                    finished_at: t.finished_at,
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }
    }
}

impl From<LeanPod> for Pod {
    fn from(p: LeanPod) -> Self {
        let statuses = |v: Option<Vec<LeanContainerStatus>>| {
            v.map(|v| v.into_iter().map(Into::into).collect())
        };
        Pod {
            metadata: p.metadata.into(),
            spec: p.spec.map(|s| PodSpec {
                scheduler_name: s.scheduler_name,
                ..PodSpec::default()
            }),
            status: p.status.map(|s| PodStatus {
                phase: s.phase,
                reason: s.reason,
                start_time: s.start_time,
                conditions: s.conditions,
                container_statuses: statuses(s.container_statuses),
                init_container_statuses: statuses(s.init_container_statuses),
                ephemeral_container_statuses: statuses(s.ephemeral_container_statuses),
                ..PodStatus::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::{self, Decision, Settings};

    /// A Job as the API server returns it, managed fields and template included.
    fn full_job() -> serde_json::Value {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {
                "name": "etl-1", "namespace": "etl", "uid": "u-1",
                "creationTimestamp": "2026-11-28T10:00:00Z",
                "annotations": {"eks-reaper/ttl": "1h"},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "c",
                                     "uid": "u-c", "controller": true}],
                "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                                   "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:status": {"f:conditions": {}}}}]
            },
            "spec": {"suspend": false, "ttlSecondsAfterFinished": 30,
                     "template": {"spec": {"containers": [{"name": "t", "image": "busybox"}]}}},
            "status": {"active": 0, "terminating": 0, "completionTime": "2026-11-28T11:00:00Z",
                       "conditions": [{"type": "Complete", "status": "True",
                                       "lastTransitionTime": "2026-11-28T11:00:00Z"}]}
        })
    }

    #[test]
    fn lean_job_keeps_every_field_the_policy_reads() {
        let full: Job = serde_json::from_value(full_job()).expect("full");
        let lean: Job = serde_json::from_value::<LeanJob>(full_job())
            .expect("lean")
            .into();
        assert_eq!(lean.metadata.annotations, full.metadata.annotations);
        assert_eq!(
            lean.metadata.owner_references,
            full.metadata.owner_references
        );
        assert!(lean.metadata.managed_fields.is_none());
        let now = "2026-11-28T13:00:00Z".parse().expect("now");
        for s in [
            Settings::default(),
            Settings {
                respect_native_ttl: false,
                skip_cronjob_jobs: true,
                ..Settings::default()
            },
            Settings {
                respect_native_ttl: false,
                ..Settings::default()
            },
        ] {
            let context = policy::JobContext {
                namespaces: &policy::NamespaceIndex::Ignored,
            };
            assert_eq!(
                policy::plan_job(&lean, now, &s, context),
                policy::plan_job(&full, now, &s, context)
            );
        }
    }

    #[test]
    fn a_pod_listed_as_metadata_only_is_never_due() {
        // An item of a PartialObjectMetadataList: a finished-looking, long-gone Fargate pod
        // by its metadata alone. Without its status the policy cannot know it finished.
        let item = json!({
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": "p", "namespace": "etl", "uid": "u-p",
                         "resourceVersion": "7",
                         "creationTimestamp": "2026-11-20T10:00:00Z",
                         "labels": {"eks.amazonaws.com/fargate-profile": "fp"}}
        });
        let pod: Pod = serde_json::from_value::<LeanPod>(item)
            .expect("lean")
            .into();
        assert!(pod.status.is_none() && policy::is_fargate_pod(&pod));
        let now = "2026-11-28T11:45:00Z".parse().expect("now");
        let jobs = policy::JobIndex::default();
        for mode in [policy::Mode::Normal, policy::Mode::LowHeadroom] {
            let context = policy::PodContext {
                jobs: &jobs,
                mode,
                namespaces: &policy::NamespaceIndex::Ignored,
            };
            let decision = policy::plan_pod(&pod, now, &Settings::default(), context);
            assert!(matches!(decision, Decision::Keep(_)), "{decision:?}");
        }
    }

    #[test]
    fn lean_pod_keeps_every_field_the_policy_reads() {
        let v = json!({
            "metadata": {"name": "p", "namespace": "etl", "uid": "u-p",
                         "labels": {"eks.amazonaws.com/fargate-profile": "fp"},
                         "managedFields": [{"manager": "x", "fieldsV1": {"f:a": {}}}]},
            "spec": {"schedulerName": "fargate-scheduler", "containers": [{"name": "t"}]},
            "status": {"phase": "Failed", "reason": "Evicted", "startTime": "2026-11-28T10:00:00Z",
                       "conditions": [{"type": "Ready", "status": "False",
                                       "lastTransitionTime": "2026-11-28T11:00:00Z"}],
                       "containerStatuses": [{"name": "t", "image": "busybox", "imageID": "",
                                              "ready": false, "restartCount": 0,
                                              "state": {"terminated": {"exitCode": 1,
                                                        "finishedAt": "2026-11-28T11:30:00Z"}}}],
                       "initContainerStatuses": [{"name": "sidecar", "image": "busybox",
                                                  "imageID": "", "ready": false, "restartCount": 0,
                                                  "state": {"terminated": {"exitCode": 0,
                                                            "finishedAt": "2026-11-28T11:31:00Z"}}}],
                       "ephemeralContainerStatuses": [{"name": "debug", "image": "busybox",
                                                  "imageID": "", "ready": false, "restartCount": 0,
                                                  "state": {"terminated": {"exitCode": 0,
                                                            "finishedAt": "2026-11-28T11:35:00Z"}}}]}
        });
        let full: Pod = serde_json::from_value(v.clone()).expect("full");
        let lean: Pod = serde_json::from_value::<LeanPod>(v).expect("lean").into();
        // 10 minutes after the ephemeral container ended, 14 after the sidecar: kept under a
        // 12-minute retention only if the lean pod still carries the ephemeral status.
        let now = "2026-11-28T11:45:00Z".parse().expect("now");
        let s = Settings {
            fargate_pod_ttl: std::time::Duration::from_secs(12 * 60),
            ..Settings::default()
        };
        let jobs = policy::JobIndex::default();
        let context = policy::PodContext {
            jobs: &jobs,
            mode: policy::Mode::Normal,
            namespaces: &policy::NamespaceIndex::Ignored,
        };
        assert_eq!(
            policy::plan_pod(&lean, now, &s, context),
            policy::plan_pod(&full, now, &s, context)
        );
        assert!(matches!(
            policy::plan_pod(&lean, now, &s, context),
            Decision::Keep(_)
        ));
        assert!(policy::is_fargate_pod(&lean));
    }
}

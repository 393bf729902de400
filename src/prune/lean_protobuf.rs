//! The lean mirrors' protobuf twins: a list page of Jobs or Pods in Kubernetes protobuf,
//! decoded into the same [`LeanJob`] and [`LeanPod`] a JSON page gives, field by field.
//!
//! Field numbers are those of `k8s.io/api/{batch,core}/v1/generated.proto`; the Go type of
//! each field decides how its zero value reads (see [`crate::protobuf`]): `status.active`
//! is a plain `int32` (zero is absent, as in JSON), `status.terminating` and
//! `spec.ttlSecondsAfterFinished` are pointers (zero is a value and stays one).

use k8s_openapi::api::batch::v1::JobCondition;
use k8s_openapi::api::core::v1::PodCondition;
use kube::core::ObjectList;
use prost::Message;
use serde::de::DeserializeOwned;

use super::lean::{
    LeanContainerState, LeanContainerStatus, LeanJob, LeanJobSpec, LeanJobStatus, LeanPod,
    LeanPodSpec, LeanPodStatus, LeanTerminated, Meta,
};
use crate::api::Response;
use crate::protobuf::{self, ListMeta, ObjectMeta, Time, nonzero, some, text, time};

/// Why a list page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// A JSON page.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A protobuf page.
    #[error(transparent)]
    Protobuf(#[from] protobuf::Error),
}

/// The page in `response`, in the encoding its `Content-Type` names.
pub fn decode_page<L: Item>(response: &Response) -> Result<ObjectList<L>, PageError> {
    if response.is_protobuf() {
        Ok(L::protobuf_page(response.body())?)
    } else {
        Ok(serde_json::from_slice(response.body())?)
    }
}

/// A list item the reaper decodes from either encoding.
pub trait Item: DeserializeOwned + Clone {
    /// The list's items and metadata from a protobuf body.
    fn protobuf_page(body: &[u8]) -> Result<ObjectList<Self>, protobuf::Error>;
}

impl Item for LeanJob {
    fn protobuf_page(body: &[u8]) -> Result<ObjectList<Self>, protobuf::Error> {
        let list: JobList = protobuf::decode(body, &["JobList"])?;
        Ok(page(list.metadata, list.items))
    }
}

impl Item for LeanPod {
    /// A `PodList`, or the `PartialObjectMetadataList` of a metadata-only list: its items
    /// are `metadata` (field 1) alone, which decodes as a Pod with no spec and no status.
    fn protobuf_page(body: &[u8]) -> Result<ObjectList<Self>, protobuf::Error> {
        let list: PodList = protobuf::decode(body, &["PodList", "PartialObjectMetadataList"])?;
        Ok(page(list.metadata, list.items))
    }
}

fn page<P: Into<L>, L: Clone>(meta: Option<ListMeta>, items: Vec<P>) -> ObjectList<L> {
    let meta = meta.unwrap_or_default();
    ObjectList {
        types: Default::default(),
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta {
            continue_: text(meta.continue_),
            remaining_item_count: meta.remaining_item_count,
            ..Default::default()
        },
        items: items.into_iter().map(Into::into).collect(),
    }
}

impl From<ObjectMeta> for Meta {
    fn from(m: ObjectMeta) -> Self {
        Meta {
            name: text(m.name),
            namespace: text(m.namespace),
            uid: text(m.uid),
            resource_version: text(m.resource_version),
            labels: some(m.labels),
            annotations: some(m.annotations),
            owner_references: some(m.owner_references)
                .map(|o| o.into_iter().map(Into::into).collect()),
            creation_timestamp: time(m.creation_timestamp),
            deletion_timestamp: time(m.deletion_timestamp),
            finalizers: some(m.finalizers),
        }
    }
}

#[derive(Clone, PartialEq, Message)]
struct JobList {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ListMeta>,
    #[prost(message, repeated, tag = "2")]
    items: Vec<Job>,
}

#[derive(Clone, PartialEq, Message)]
struct Job {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<JobSpec>,
    #[prost(message, optional, tag = "3")]
    status: Option<JobStatus>,
}

#[derive(Clone, PartialEq, Message)]
struct JobSpec {
    #[prost(int32, optional, tag = "8")]
    ttl_seconds_after_finished: Option<i32>,
    #[prost(bool, optional, tag = "10")]
    suspend: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct JobStatus {
    #[prost(message, repeated, tag = "1")]
    conditions: Vec<Condition>,
    #[prost(message, optional, tag = "3")]
    completion_time: Option<Time>,
    #[prost(int32, optional, tag = "4")]
    active: Option<i32>,
    #[prost(int32, optional, tag = "11")]
    terminating: Option<i32>,
}

/// `JobCondition` and `PodCondition` share their field numbers (the pod's adds 7).
#[derive(Clone, PartialEq, Message)]
struct Condition {
    #[prost(string, optional, tag = "1")]
    type_: Option<String>,
    #[prost(string, optional, tag = "2")]
    status: Option<String>,
    #[prost(message, optional, tag = "3")]
    last_probe_time: Option<Time>,
    #[prost(message, optional, tag = "4")]
    last_transition_time: Option<Time>,
    #[prost(string, optional, tag = "5")]
    reason: Option<String>,
    #[prost(string, optional, tag = "6")]
    message: Option<String>,
    #[prost(int64, optional, tag = "7")]
    observed_generation: Option<i64>,
}

impl From<Condition> for JobCondition {
    fn from(c: Condition) -> Self {
        JobCondition {
            type_: c.type_.unwrap_or_default(),
            status: c.status.unwrap_or_default(),
            last_probe_time: time(c.last_probe_time),
            last_transition_time: time(c.last_transition_time),
            reason: text(c.reason),
            message: text(c.message),
        }
    }
}

impl From<Condition> for PodCondition {
    fn from(c: Condition) -> Self {
        PodCondition {
            type_: c.type_.unwrap_or_default(),
            status: c.status.unwrap_or_default(),
            last_probe_time: time(c.last_probe_time),
            last_transition_time: time(c.last_transition_time),
            reason: text(c.reason),
            message: text(c.message),
            observed_generation: nonzero(c.observed_generation),
        }
    }
}

fn conditions<C: From<Condition>>(c: Vec<Condition>) -> Option<Vec<C>> {
    some(c).map(|c| c.into_iter().map(Into::into).collect())
}

impl From<Job> for LeanJob {
    fn from(j: Job) -> Self {
        LeanJob {
            metadata: j.metadata.unwrap_or_default().into(),
            spec: j.spec.map(|s| LeanJobSpec {
                suspend: s.suspend,
                ttl_seconds_after_finished: s.ttl_seconds_after_finished,
            }),
            status: j.status.map(|s| LeanJobStatus {
                active: nonzero(s.active),
                terminating: s.terminating,
                completion_time: time(s.completion_time),
                conditions: conditions(s.conditions),
            }),
        }
    }
}

#[derive(Clone, PartialEq, Message)]
struct PodList {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ListMeta>,
    #[prost(message, repeated, tag = "2")]
    items: Vec<Pod>,
}

#[derive(Clone, PartialEq, Message)]
struct Pod {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<PodSpec>,
    #[prost(message, optional, tag = "3")]
    status: Option<PodStatus>,
}

#[derive(Clone, PartialEq, Message)]
struct PodSpec {
    #[prost(string, optional, tag = "19")]
    scheduler_name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct PodStatus {
    #[prost(string, optional, tag = "1")]
    phase: Option<String>,
    #[prost(message, repeated, tag = "2")]
    conditions: Vec<Condition>,
    #[prost(string, optional, tag = "4")]
    reason: Option<String>,
    #[prost(message, optional, tag = "7")]
    start_time: Option<Time>,
    #[prost(message, repeated, tag = "8")]
    container_statuses: Vec<ContainerStatus>,
    #[prost(message, repeated, tag = "10")]
    init_container_statuses: Vec<ContainerStatus>,
    #[prost(message, repeated, tag = "13")]
    ephemeral_container_statuses: Vec<ContainerStatus>,
}

#[derive(Clone, PartialEq, Message)]
struct ContainerStatus {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, optional, tag = "2")]
    state: Option<ContainerState>,
}

#[derive(Clone, PartialEq, Message)]
struct ContainerState {
    #[prost(message, optional, tag = "3")]
    terminated: Option<Terminated>,
}

#[derive(Clone, PartialEq, Message)]
struct Terminated {
    #[prost(message, optional, tag = "6")]
    finished_at: Option<Time>,
}

fn statuses(c: Vec<ContainerStatus>) -> Option<Vec<LeanContainerStatus>> {
    some(c).map(|c| {
        c.into_iter()
            .map(|c| LeanContainerStatus {
                name: c.name.unwrap_or_default(),
                state: c.state.map(|s| LeanContainerState {
                    terminated: s.terminated.map(|t| LeanTerminated {
                        finished_at: time(t.finished_at),
                    }),
                }),
            })
            .collect()
    })
}

impl From<Pod> for LeanPod {
    fn from(p: Pod) -> Self {
        LeanPod {
            metadata: p.metadata.unwrap_or_default().into(),
            spec: p.spec.map(|s| LeanPodSpec {
                scheduler_name: text(s.scheduler_name),
            }),
            status: p.status.map(|s| LeanPodStatus {
                phase: text(s.phase),
                reason: text(s.reason),
                start_time: time(s.start_time),
                conditions: conditions(s.conditions),
                container_statuses: statuses(s.container_statuses),
                init_container_statuses: statuses(s.init_container_statuses),
                ephemeral_container_statuses: statuses(s.ephemeral_container_statuses),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::Job as K8sJob;
    use k8s_openapi::api::core::v1::Pod as K8sPod;
    use serde_json::json;

    use super::*;
    use crate::protobuf::{at, envelope};

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("etl".to_owned()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("42".to_owned()),
            creation_timestamp: at(Some(1_764_000_000)),
            ..ObjectMeta::default()
        }
    }

    fn json_job(value: serde_json::Value) -> K8sJob {
        serde_json::from_value::<LeanJob>(value)
            .expect("json")
            .into()
    }

    #[test]
    fn go_zero_values_read_as_their_json_twins_do() {
        // As the API server encodes a Job: plain fields always, zero or empty; pointers
        // only when set.
        let job = Job {
            metadata: Some(ObjectMeta {
                labels: Default::default(),
                deletion_timestamp: None,
                ..meta("a")
            }),
            spec: Some(JobSpec {
                ttl_seconds_after_finished: Some(0),
                suspend: None,
            }),
            status: Some(JobStatus {
                conditions: vec![Condition {
                    type_: Some("Complete".to_owned()),
                    status: Some("True".to_owned()),
                    last_probe_time: at(None),
                    last_transition_time: at(Some(1_764_000_060)),
                    reason: Some(String::new()),
                    message: Some(String::new()),
                    observed_generation: None,
                }],
                completion_time: None,
                active: Some(0),
                terminating: Some(0),
            }),
        };
        let body = envelope(
            "JobList",
            JobList {
                metadata: Some(ListMeta {
                    continue_: Some(String::new()),
                    remaining_item_count: None,
                }),
                items: vec![job],
            }
            .encode_to_vec(),
            None,
        );
        let page = LeanJob::protobuf_page(&body).expect("page");
        assert_eq!(
            page.metadata.continue_, None,
            "an empty token is the last page"
        );
        let decoded: Vec<K8sJob> = page.items.into_iter().map(Into::into).collect();
        let twin = json_job(json!({
            "metadata": {"name": "a", "namespace": "etl", "uid": "uid-a", "resourceVersion": "42",
                         "creationTimestamp": "2025-11-24T16:00:00Z"},
            "spec": {"ttlSecondsAfterFinished": 0},
            "status": {"terminating": 0, "conditions": [{"type": "Complete", "status": "True",
                "lastProbeTime": null, "lastTransitionTime": "2025-11-24T16:01:00Z"}]}
        }));
        assert_eq!(decoded, vec![twin]);
    }

    #[test]
    fn a_metadata_only_page_gives_pods_without_spec_or_status() {
        let items = vec![Pod {
            metadata: Some(meta("p")),
            spec: None,
            status: None,
        }];
        let list = PodList {
            metadata: Some(ListMeta {
                continue_: Some("next".to_owned()),
                remaining_item_count: Some(7),
            }),
            items,
        };
        let body = envelope("PartialObjectMetadataList", list.encode_to_vec(), None);
        let page = LeanPod::protobuf_page(&body).expect("page");
        assert_eq!(page.metadata.continue_.as_deref(), Some("next"));
        assert_eq!(page.metadata.remaining_item_count, Some(7));
        let pod: K8sPod = page.items[0].clone().into();
        assert!(pod.spec.is_none() && pod.status.is_none());
        assert_eq!(pod.metadata.uid.as_deref(), Some("uid-p"));
        assert!(pod.metadata.creation_timestamp.is_some());
    }

    #[test]
    fn a_page_of_the_wrong_kind_is_refused() {
        let body = envelope("JobList", JobList::default().encode_to_vec(), None);
        assert!(matches!(
            LeanPod::protobuf_page(&body),
            Err(protobuf::Error::Kind { .. })
        ));
        let body = envelope("PodList", PodList::default().encode_to_vec(), None);
        assert!(LeanJob::protobuf_page(&body).is_err());
    }

    #[test]
    fn the_content_type_picks_the_decoder() {
        let json = br#"{"kind":"JobList","apiVersion":"batch/v1","metadata":{},"items":[]}"#;
        let as_json = Response::new(http::StatusCode::OK, json.to_vec());
        assert!(
            decode_page::<LeanJob>(&as_json)
                .expect("json")
                .items
                .is_empty()
        );
        let as_protobuf = Response::protobuf(http::StatusCode::OK, json.to_vec());
        assert!(matches!(
            decode_page::<LeanJob>(&as_protobuf),
            Err(PageError::Protobuf(protobuf::Error::NoMagic))
        ));
    }
}

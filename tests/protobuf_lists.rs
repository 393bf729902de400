//! A list page in Kubernetes protobuf decodes into the same objects as its JSON twin, on the
//! testbed's real API server: every field the policy reads, set and unset, for Jobs, Pods
//! and the metadata-only list of pods; and an error answer's `Status` reads from protobuf.
//!
//! The fixtures set every field the lean mirrors carry (the test checks that first, so a
//! fixture that stops setting one fails instead of comparing two empty fields), including
//! the zero values whose encodings differ: a `ttlSecondsAfterFinished` of 0 (a pointer: a
//! value), an `active` of 0 (a plain int: absent), an unset `lastProbeTime`.

mod common;

use std::time::Duration;

use common::{End, Fixtures, Testbed};
use eks_reaper::api::Response;
use eks_reaper::prune::lean::{LeanJob, LeanPod};
use eks_reaper::prune::lean_protobuf::{self, Item};
use eks_reaper::prune::pass::{Kind, Pass};
use http::header::{ACCEPT, CONTENT_TYPE};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::client::Body;
use kube::core::Request;
use kube::core::params::ListParams;
use serde_json::json;

/// Sends `request` as the admin; the answer as the reaper reads it.
async fn send(client: &kube::Client, request: http::Request<Vec<u8>>) -> Response {
    let response = client.send(request.map(Body::from)).await.expect("send");
    let status = response.status();
    let protobuf = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| eks_reaper::protobuf::is_media_type(v.as_bytes()));
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .expect("body")
        .to_vec();
    if protobuf {
        Response::protobuf(status, body)
    } else {
        Response::new(status, body)
    }
}

/// One pass's list in the namespace, in JSON and in protobuf, decoded and sorted by name.
async fn both<L, K>(f: &Fixtures, pass: Pass) -> (Vec<K>, Vec<K>)
where
    L: Item + Into<K>,
    K: kube::Resource,
{
    let params = ListParams {
        limit: Some(500),
        ..ListParams::default()
    };
    let request = Request::new(pass.kind().url_path(Some(&f.namespace)));
    let mut json = pass.list_request(&request, &params).expect("request");
    let accept = if pass.metadata_only() {
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    } else {
        "application/json"
    };
    json.headers_mut()
        .insert(ACCEPT, http::HeaderValue::from_static(accept));
    let json = send(&f.client, json).await;
    let protobuf = send(
        &f.client,
        pass.list_request(&request, &params).expect("request"),
    )
    .await;
    assert!(json.status.is_success() && protobuf.status.is_success());
    assert!(!json.is_protobuf(), "the JSON list came back in protobuf");
    assert!(
        protobuf.is_protobuf(),
        "the server did not answer in protobuf"
    );
    let decode = |r: &Response| {
        let mut items: Vec<K> = lean_protobuf::decode_page::<L>(r)
            .expect("page")
            .items
            .into_iter()
            .map(Into::into)
            .collect();
        items.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        items
    };
    (decode(&json), decode(&protobuf))
}

/// Jobs setting, between them, every field [`LeanJob`] reads.
async fn jobs(f: &Fixtures) {
    let running = f.active_job("running").await;
    // A finished Job with a TTL of 0 would be gone at once: the unfinished one carries it.
    f.jobs()
        .patch(
            "running",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"ttlSecondsAfterFinished": 0}})),
        )
        .await
        .expect("running ttl");
    f.jobs()
        .patch_status(
            "running",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"active": 2, "terminating": 1}})),
        )
        .await
        .expect("running status");
    // The owner must exist, or the garbage collector deletes its dependent.
    let owned = json!({"metadata": {
        "annotations": {"eks-reaper/ttl": "1h", "note": ""},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "running",
                             "uid": running.metadata.uid, "controller": true,
                             "blockOwnerDeletion": true}]},
        "spec": {"ttlSecondsAfterFinished": 86400, "suspend": false}});
    f.finished_job("done", End::Succeeded, Duration::from_secs(7200), owned)
        .await;
    let held = json!({"metadata": {"finalizers": ["eks-reaper.test/hold"]}});
    f.finished_job("failed-held", End::Failed, Duration::from_secs(60), held)
        .await;
    f.jobs()
        .delete("failed-held", &DeleteParams::background())
        .await
        .expect("delete held job");
    f.finished_job(
        "suspended",
        End::Succeeded,
        Duration::from_secs(60),
        json!({"spec": {"suspend": true}}),
    )
    .await;
}

/// Pods setting, between them, every field [`LeanPod`] reads.
async fn pods(f: &Fixtures) {
    f.finished_pod("plain", None, End::Succeeded, Duration::from_secs(600))
        .await;
    let shaped = json!({
        "metadata": {"labels": {"eks.amazonaws.com/fargate-profile": "etl"}},
        "spec": {"schedulerName": "fargate-scheduler",
                 "initContainers": [{"name": "setup", "image": "busybox:1.36"}]}});
    f.finished_pod_shaped("evicted", shaped, End::Failed, Duration::from_secs(600))
        .await;
    let status = json!({"status": {
        "reason": "Evicted",
        "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                        "message": "evicted", "observedGeneration": 1,
                        "lastTransitionTime": "2026-12-07T09:00:00Z"}],
        "initContainerStatuses": [{"name": "setup", "image": "busybox:1.36", "imageID": "",
                                   "ready": false, "restartCount": 0,
                                   "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                             "finishedAt": "2026-12-07T08:59:00Z"}}}]}});
    f.pods()
        .patch_status("evicted", &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("evicted status");
}

/// Fails naming every check no fixture met, so a fixture that stops setting a field fails
/// the test instead of comparing two empty fields.
fn all_set(what: &str, checks: &[(&str, bool)], objects: &dyn std::fmt::Debug) {
    let missing: Vec<_> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| n)
        .collect();
    assert!(
        missing.is_empty(),
        "no fixture {what} sets {missing:?}: {objects:#?}"
    );
}

fn every_job_field_is_exercised(jobs: &[Job]) {
    let spec = |j: &&Job| j.spec.clone().unwrap_or_default();
    let status = |j: &&Job| j.status.clone().unwrap_or_default();
    let conditions: Vec<_> = jobs
        .iter()
        .flat_map(|j| status(&j).conditions.unwrap_or_default())
        .collect();
    let checks: [(&str, bool); 14] = [
        ("labels", jobs.iter().any(|j| j.metadata.labels.is_some())),
        (
            "annotations",
            jobs.iter().any(|j| j.metadata.annotations.is_some()),
        ),
        (
            "owner",
            jobs.iter().any(|j| j.metadata.owner_references.is_some()),
        ),
        (
            "finalizers",
            jobs.iter().any(|j| j.metadata.finalizers.is_some()),
        ),
        (
            "deletion",
            jobs.iter().any(|j| j.metadata.deletion_timestamp.is_some()),
        ),
        (
            "creation",
            jobs.iter().all(|j| j.metadata.creation_timestamp.is_some()),
        ),
        (
            "uid+rv",
            jobs.iter()
                .all(|j| j.metadata.uid.is_some() && j.metadata.resource_version.is_some()),
        ),
        (
            "suspend",
            jobs.iter().any(|j| spec(&j).suspend == Some(true)),
        ),
        (
            "ttl 0",
            jobs.iter()
                .any(|j| spec(&j).ttl_seconds_after_finished == Some(0)),
        ),
        (
            "active",
            jobs.iter()
                .any(|j| status(&j).active.is_some_and(|a| a > 0)),
        ),
        (
            "terminating",
            jobs.iter()
                .any(|j| status(&j).terminating.is_some_and(|t| t > 0)),
        ),
        (
            "completion",
            jobs.iter().any(|j| status(&j).completion_time.is_some()),
        ),
        (
            "condition times",
            conditions
                .iter()
                .any(|c| c.last_probe_time.is_some() && c.last_transition_time.is_some()),
        ),
        (
            "condition texts",
            conditions
                .iter()
                .any(|c| c.reason.is_some() && c.message.is_some()),
        ),
    ];
    all_set("Job", &checks, &jobs);
}

/// `tracks_generation`: the server keeps a pod condition's `observedGeneration` (the
/// PodObservedGenerationTracking feature, on by default from Kubernetes 1.34; older
/// servers drop the field).
fn every_pod_field_is_exercised(pods: &[Pod], tracks_generation: bool) {
    let status = |p: &&Pod| p.status.clone().unwrap_or_default();
    let checks: [(&str, bool); 7] = [
        (
            "scheduler",
            pods.iter().any(|p| {
                p.spec.as_ref().and_then(|s| s.scheduler_name.as_deref())
                    == Some("fargate-scheduler")
            }),
        ),
        ("phase", pods.iter().all(|p| status(&p).phase.is_some())),
        ("reason", pods.iter().any(|p| status(&p).reason.is_some())),
        (
            "start",
            pods.iter().any(|p| status(&p).start_time.is_some()),
        ),
        (
            "observed generation",
            !tracks_generation
                || pods.iter().any(|p| {
                    status(&p)
                        .conditions
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.observed_generation.is_some())
                }),
        ),
        (
            "finished at",
            pods.iter().any(|p| {
                status(&p)
                    .container_statuses
                    .unwrap_or_default()
                    .iter()
                    .any(|c| {
                        c.state
                            .as_ref()
                            .and_then(|s| s.terminated.as_ref())
                            .and_then(|t| t.finished_at.as_ref())
                            .is_some()
                    })
            }),
        ),
        (
            "init statuses",
            pods.iter()
                .any(|p| status(&p).init_container_statuses.is_some()),
        ),
    ];
    all_set("pod", &checks, &pods);
}

#[tokio::test]
async fn protobuf_and_json_pages_decode_to_the_same_objects() {
    let tb = Testbed::connect().await;
    let f = tb.namespace("protobuf lists").await;
    jobs(&f).await;
    pods(&f).await;

    let (json, protobuf) = both::<LeanJob, Job>(&f, Pass::Jobs).await;
    assert_eq!(json.len(), 4);
    every_job_field_is_exercised(&json);
    assert_eq!(protobuf, json);

    let (json, protobuf) = both::<LeanPod, Pod>(&f, Pass::OtherPods).await;
    assert_eq!(json.len(), 2);
    let version = tb.admin.apiserver_version().await.expect("version");
    let minor: u32 = version.minor.trim_end_matches('+').parse().expect("minor");
    every_pod_field_is_exercised(&json, minor >= 34);
    assert_eq!(protobuf, json);

    // The metadata-only list: a PartialObjectMetadataList in either encoding.
    let (json, protobuf) = both::<LeanPod, Pod>(&f, Pass::FargateCreations).await;
    assert_eq!(json.len(), 2);
    assert!(json.iter().all(|p| p.spec.is_none() && p.status.is_none()));
    assert!(json.iter().any(|p| p.metadata.labels.is_some()));
    assert_eq!(protobuf, json);

    // Finalizers first: the held Job would keep the namespace terminating.
    f.jobs()
        .patch(
            "failed-held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release held job");
    f.cleanup().await;
}

#[tokio::test]
async fn an_error_status_in_protobuf_is_read() {
    let tb = Testbed::connect().await;
    let f = tb.namespace("protobuf status").await;
    let params = ListParams {
        limit: Some(1),
        continue_token: Some("not-a-continue-token".to_owned()),
        ..ListParams::default()
    };
    let request = Request::new(Kind::Job.url_path(Some(&f.namespace)));
    let answer = send(
        &f.client,
        Pass::Jobs.list_request(&request, &params).expect("request"),
    )
    .await;
    assert!(answer.is_protobuf(), "the error came back in JSON");
    assert_eq!(answer.status, http::StatusCode::BAD_REQUEST);
    let status = answer.status_object().expect("a Status");
    assert_eq!(status.reason.as_deref(), Some("BadRequest"), "{status:?}");
    assert!(
        answer.message().contains("continue"),
        "{}",
        answer.message()
    );
    f.cleanup().await;
}

//! Fargate through the Lambda entrypoint: a failed Job is kept for troubleshooting, but its
//! finished Fargate pod is deleted and its subnet IP returns (the testbed's Fargate
//! stand-in frees the node and the moto ENI when the pod object is gone).

mod common;

use std::time::Duration;

use common::{Lambda, RUN_LABEL, Testbed, eventually};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn fargate_pod_of_a_kept_failed_job_is_deleted_and_its_ip_returns() {
    let tb = Testbed::connect().await;
    let ns = tb.env["TESTBED_FARGATE_NAMESPACE"].clone();
    let run = format!("{:08x}", rand::random::<u32>());
    let selector = format!("{RUN_LABEL}={run}");
    let jobs: Api<Job> = Api::namespaced(tb.admin.clone(), &ns);
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(tb.admin.clone(), &ns);

    // GIVEN a real Job on Fargate whose only pod fails after a second
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": format!("etl-fails-{run}"), "labels": {RUN_LABEL: run}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {RUN_LABEL: run},
                             "annotations": {"testbed.eks-reaper/run-seconds": "1",
                                             "testbed.eks-reaper/exit-code": "1"}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "task", "image": "busybox:1.36",
                                         "command": ["sh", "-c", "exit 1"]}]}
            }
        }
    }))
    .expect("job");
    let name = job.metadata.name.clone().expect("name");
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create job");
    let by_run = ListParams::default().labels(&selector);
    eventually(
        Duration::from_secs(90),
        "the Job to fail on Fargate",
        || async {
            let j = jobs.get(&name).await.expect("job");
            j.status
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Failed" && c.status == "True"))
        },
    )
    .await;
    let pod = pods
        .list(&by_run)
        .await
        .expect("pods")
        .items
        .pop()
        .expect("the Job's pod");
    let pod_name = pod.metadata.name.clone().expect("pod name");
    assert_eq!(
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("eks.amazonaws.com/fargate-profile"))
            .map(String::as_str),
        Some(tb.env["TESTBED_FARGATE_PROFILE"].as_str()),
        "the pod must be a Fargate pod"
    );
    assert_eq!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed")
    );
    let before = tb.fargate_available_ips().await;
    // Past a short Fargate retention (the default 15 min is the same rule, not waitable here).
    tokio::time::sleep(Duration::from_secs(2)).await;

    // WHEN the Lambda runs with the default Job retentions
    let lambda = Lambda::start(&tb.lambda_env(&[
        ("REAPER_NAMESPACES", &ns),
        ("REAPER_LABEL_SELECTOR", &selector),
        ("REAPER_FARGATE_POD_TTL", "1s"),
    ]))
    .await;
    let inv = lambda.invoke(&json!({})).await;
    lambda.stop().await;

    // THEN the failed Job stays, its Fargate pod is gone and the subnet IP is free again
    let c = inv.cluster();
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["jobs"]["deleted"], 0, "{c}");
    assert_eq!(c["jobs"]["keptByReason"]["withinRetention"], 1, "{c}");
    assert_eq!(c["pods"]["fargateFinished"], 1, "{c}");
    assert_eq!(c["pods"]["fargateDeleted"], 1, "{c}");
    assert_eq!(c["pods"]["deletedByReason"]["fargatePodPastTtl"], 1, "{c}");
    assert_eq!(c["pods"]["fargateHoldingIps"], 0, "{c}");
    assert!(
        c["subnets"]["totalAvailable"].as_u64().is_some(),
        "headroom read: {c}"
    );
    assert!(
        jobs.get_opt(&name).await.expect("get job").is_some(),
        "the failed Job was deleted"
    );
    assert!(
        pods.get_opt(&pod_name).await.expect("get pod").is_none(),
        "the Fargate pod is still there"
    );
    eventually(
        Duration::from_secs(30),
        "the pod's IP to be free in moto",
        || async { tb.fargate_available_ips().await == before + 1 },
    )
    .await;

    let _ = jobs.delete(&name, &DeleteParams::background()).await;
}

//! IPs of pruned Fargate pods return: in moto, and in the next run's figures; a failed Job
//! is kept for troubleshooting while its finished Fargate pod goes.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use super::harness::*;
use crate::common::{Lambda, RUN_LABEL, Testbed, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn ips_of_pruned_fargate_pods_are_back_in_the_next_run() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let (run, f) = fresh_fargate(&tb).await;
    let cap = capacity(&fargate(&tb).await);

    // GIVEN 6 finished Fargate pods holding 6 IPs, past a 1 s Fargate retention
    f.burst(&run, 6).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settings = |ns: &str| f.settings("1s", &[("REAPER_METRICS_NAMESPACE", ns)]);

    // WHEN one run prunes them (its headroom is read before pruning) ...
    let ns_prune = metrics_namespace(&run, "prune");
    let first = invoke(&tb, &settings(&ns_prune)).await;
    let c1 = &first["clusters"][0];
    assert_eq!(c1["status"], "ok", "{c1}");
    assert_eq!(c1["pods"]["fargateDeleted"], 6, "{c1}");
    assert_eq!(c1["pods"]["fargateHoldingIps"], 0, "{c1}");
    assert_eq!(c1["jobs"]["deleted"], 0, "{c1}");
    let fargate_ids = tb.subnet_ids("TESTBED_FARGATE_SUBNETS");
    let before = reported(c1);
    let fargate_before: u64 = fargate_ids.iter().map(|id| before[id].1).sum();
    assert_eq!(
        fargate_before,
        cap - 6,
        "the first run read the burst's IPs: {c1}"
    );
    eventually(
        Duration::from_secs(30),
        "the stand-in to free the pruned pods' IPs in moto",
        || async { free(&fargate(&tb).await) == cap },
    )
    .await;
    assert_eq!(f.pod_count().await, 0);
    assert_eq!(f.job_count().await, 6, "the Jobs are kept");

    // ... and the next run reads the subnets again
    let ns_next = metrics_namespace(&run, "next");
    let second = invoke(&tb, &settings(&ns_next)).await;
    let c2 = &second["clusters"][0];
    assert_eq!(c2["status"], "ok", "{c2}");
    assert_eq!(c2["pods"]["fargateDeleted"], 0, "{c2}");

    // THEN it shows the 6 IPs back: report and published metrics, per subnet and in total
    let after = reported(c2);
    let moto = watched(&tb).await;
    let mut freed = 0;
    for id in &fargate_ids {
        assert_eq!(after[id].1, moto[id].available, "{id}");
        assert_eq!(after[id].1, after[id].2, "{id} is empty again: {c2}");
        freed += after[id].1 - before[id].1;
    }
    assert_eq!(freed, 6, "{c1}\n{c2}");
    let total1 = c1["subnets"]["totalAvailable"].as_u64().expect("total");
    assert_eq!(c2["subnets"]["totalAvailable"], total1 + 6, "{c2}");

    let cw = tb.cloudwatch().await;
    let cluster = tb.env["TESTBED_CLUSTER"].as_str();
    let by_cluster = || cluster_dims(&tb.env, cluster, &[]);
    let v = value(&cw, &ns_prune, "ClusterAvailableIps", by_cluster(), "Count").await;
    assert_eq!(v, total1 as f64);
    let v = value(&cw, &ns_next, "ClusterAvailableIps", by_cluster(), "Count").await;
    assert_eq!(v, (total1 + 6) as f64);
    let v = value(&cw, &ns_prune, "FargatePodsDeleted", by_cluster(), "Count").await;
    assert_eq!(v, 6.0);
    for id in &fargate_ids {
        let az = moto[id].az.as_str();
        let d = || {
            cluster_dims(
                &tb.env,
                cluster,
                &[("SubnetId", id.as_str()), ("AvailabilityZone", az)],
            )
        };
        let v1 = value(&cw, &ns_prune, "SubnetAvailableIps", d(), "Count").await;
        let v2 = value(&cw, &ns_next, "SubnetAvailableIps", d(), "Count").await;
        assert_eq!(v1, before[id].1 as f64, "{id}");
        assert_eq!(v2, moto[id].capacity as f64, "{id}");
    }

    clean_fargate(&tb).await;
}

/// The Lambda keeps a failed Job (within its retention) but deletes its finished Fargate
/// pod, and the pod's IP returns (the Fargate stand-in frees the node and the moto ENI when
/// the pod object is gone).
#[tokio::test(flavor = "multi_thread")]
async fn fargate_pod_of_a_kept_failed_job_is_deleted_and_its_ip_returns() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let ns = tb.env["TESTBED_FARGATE_NAMESPACE"].clone();
    let run = format!("{:08x}", rand::random::<u32>());
    let selector = format!("{RUN_LABEL}={run}");
    let jobs: Api<Job> = Api::namespaced(tb.admin.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(tb.admin.clone(), &ns);

    // GIVEN a real Job on Fargate whose only pod fails after a second
    let job = fargate_job(&tb.env, &format!("etl-fails-{run}"), &run, 1, 1);
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

//! Low headroom: finished Fargate pods are deleted early and their IPs freed.

use std::time::Duration;

use serde_json::json;

use super::harness::*;
use crate::common::{End, Testbed, eventually, mins};

#[tokio::test(flavor = "multi_thread")]
async fn low_headroom_deletes_finished_fargate_pods_early_and_frees_their_ips() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    clean_fargate(&tb).await;
    let fixtures = tb.namespace("low-headroom").await;
    let run = fixtures.run.clone();
    let f = Fargate::new(&tb, &run);
    let empty = fargate(&tb).await;

    // GIVEN the Fargate subnets filled with finished Fargate pods up to one free address
    // each (tightest free fraction 1/11 with /28s, under 0.10)
    let fill: u64 = empty.values().map(|s| s.capacity - 1).sum();
    f.burst(&run, usize::try_from(fill).expect("small")).await;
    let full = fargate(&tb).await;
    for (id, s) in &full {
        assert_eq!(s.available, 1, "{id}: the stand-in spreads pods evenly");
    }
    let tightest = 1.0 / full.values().map(|s| s.capacity).max().expect("subnets") as f64;
    // AND elsewhere a failed Job and a bare finished (non-Fargate) pod due for deletion, so
    // the deletion order shows
    let due = |name: &'static str| fixtures.finished_job(name, End::Failed, mins(10), json!({}));
    let bare = |name: &'static str| fixtures.finished_pod(name, None, End::Succeeded, mins(120));
    due("due-before-control").await;
    bare("bare-before-control").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let namespaces = format!("{},{}", f.namespace, fixtures.namespace);
    let settings = |fraction: &str, ns: &str| {
        vec![
            ("REAPER_NAMESPACES", namespaces.clone()),
            ("REAPER_LABEL_SELECTOR", f.selector.clone()),
            // Outside low-headroom mode every finished Fargate pod is kept
            ("REAPER_FARGATE_POD_TTL", "1h".to_owned()),
            ("REAPER_SUCCEEDED_JOB_TTL", "1h".to_owned()),
            ("REAPER_FAILED_JOB_TTL", "1m".to_owned()),
            ("REAPER_LOW_HEADROOM_FARGATE_TTL", "1s".to_owned()),
            ("REAPER_LOW_HEADROOM_FRACTION", fraction.to_owned()),
            // One deletion at a time: the log order is the deletion order
            ("REAPER_CONCURRENCY", "1".to_owned()),
            ("REAPER_METRICS_NAMESPACE", ns.to_owned()),
            // Every metric: LowHeadroomMode and FargatePodsDeleted are read back.
            ("REAPER_METRICS_DETAIL", "full".to_owned()),
        ]
    };
    let cw = tb.cloudwatch().await;
    let cluster = tb.env["TESTBED_CLUSTER"].as_str();
    let by_cluster = || cluster_dims(&tb.env, cluster, &[]);

    // WHEN (control) the threshold is 0: low-headroom mode can never trigger
    let ns_control = metrics_namespace(&run, "control");
    let (control, logs) = cli(&tb, &settings("0", &ns_control)).await;

    // THEN the same fixture is kept: only the due Job and bare pod go (Job first, as
    // outside low-headroom mode), no IP comes back
    let c = &control["clusters"][0];
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["lowHeadroom"], false, "{c}");
    assert_eq!(c["pods"]["fargateFinished"], fill, "{c}");
    assert_eq!(c["pods"]["fargateDeleted"], 0, "{c}");
    assert_eq!(c["pods"]["fargateHoldingIps"], fill, "{c}");
    assert_eq!(c["jobs"]["deleted"], 1, "{c}");
    assert_eq!(c["pods"]["deletedByReason"]["barePodPastTtl"], 1, "{c}");
    assert!(
        close(
            c["subnets"]["tightest"]["freeFraction"]
                .as_f64()
                .expect("tightest"),
            tightest
        ),
        "{c}"
    );
    assert_eq!(deletions(&logs), ["job", "pod"]);
    assert_eq!(f.pod_count().await as u64, fill);
    assert_eq!(
        fargate(&tb).await,
        full,
        "IPs moved without low-headroom mode"
    );
    let v = value(&cw, &ns_control, "LowHeadroomMode", by_cluster(), "None").await;
    assert_eq!(v, 0.0);

    // WHEN the threshold is 0.10 (the default)
    due("due-before-low").await;
    bare("bare-before-low").await;
    let ns_low = metrics_namespace(&run, "low");
    let (low, logs) = cli(&tb, &settings("0.10", &ns_low)).await;

    // THEN low-headroom mode is on, in the report and the metric
    let c = &low["clusters"][0];
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["lowHeadroom"], true, "{c}");
    let v = value(&cw, &ns_low, "LowHeadroomMode", by_cluster(), "None").await;
    assert_eq!(v, 1.0);
    // AND every finished Fargate pod went, under the low-headroom retention, after the Jobs
    // pass (it tells the pod passes which Jobs keep their pods); then the other finished pod
    assert_eq!(c["pods"]["fargateFinished"], fill, "{c}");
    assert_eq!(c["pods"]["fargateDeleted"], fill, "{c}");
    assert_eq!(
        c["pods"]["deletedByReason"]["fargatePodPastTtl"], fill,
        "{c}"
    );
    assert_eq!(c["pods"]["fargateHoldingIps"], 0, "{c}");
    assert_eq!(c["pods"]["deletedByReason"]["barePodPastTtl"], 1, "{c}");
    assert_eq!(c["jobs"]["deleted"], 1, "{c}");
    assert_eq!(c["jobs"]["keptByReason"]["withinRetention"], fill, "{c}");
    let order = deletions(&logs);
    let mut expected = vec!["job"];
    expected.extend(vec!["fargate pod"; usize::try_from(fill).expect("small")]);
    expected.push("pod");
    assert_eq!(
        order, expected,
        "Jobs, then Fargate pods, then other finished pods"
    );
    let v = value(&cw, &ns_low, "FargatePodsDeleted", by_cluster(), "Count").await;
    assert_eq!(v, fill as f64);
    // AND their IPs are back in moto; the Fargate Jobs themselves are kept
    eventually(
        Duration::from_secs(30),
        "the freed IPs back in moto",
        || async { free(&fargate(&tb).await) == capacity(&empty) },
    )
    .await;
    assert_eq!(f.pod_count().await, 0);
    assert_eq!(f.job_count().await as u64, fill);

    clean_fargate(&tb).await;
    fixtures.cleanup().await;
}

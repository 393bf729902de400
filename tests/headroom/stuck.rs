//! A Fargate pod stuck terminating keeps its node and its IP: the run reports and publishes
//! it (`StuckObjects`, `StuckFargatePods`), `eks-reaper headroom` shows the IP it holds, and
//! the IP comes back only once the finalizer is removed.
//!
//! The pod is released (its finalizer removed) before anything is asserted, so a failing
//! assertion never leaves the shared Fargate namespace holding an IP.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::harness::*;
use crate::common::{RUN_LABEL, Testbed, cli, eventually};

/// A finalizer no controller of the testbed knows: only the test removes it.
const HOLD: &str = "eks-reaper.test/hold";

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_fargate_pod_is_reported_published_and_shown_as_an_ip_held() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let (run, f) = fresh_fargate(&tb).await;
    let cap = capacity(&fargate(&tb).await);

    // GIVEN a bare pod on Fargate (the stand-in's webhook, node and ENI) that succeeded and
    // carries a finalizer nobody removes, deleted
    let name = format!("held-{run}");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "labels": {RUN_LABEL: run}, "finalizers": [HOLD],
            "annotations": {&tb.env["TESTBED_RUN_SECONDS_ANNOTATION"]: "0"}
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "task", "image": "busybox:1.36"}]}
    }))
    .expect("pod");
    f.pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create Fargate pod");
    eventually(
        Duration::from_secs(120),
        "the Fargate pod to succeed",
        || async {
            let p = f.pods.get(&name).await.expect("pod");
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
        },
    )
    .await;
    f.pods
        .delete(&name, &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // WHEN a run (full metrics) and `headroom` look with --stuck-after 1s
    let metrics = metrics_namespace(&run, "stuck");
    let (report, _) = cli(
        &tb,
        &f.settings(
            "1h",
            &[
                ("REAPER_STUCK_AFTER", "1s"),
                ("REAPER_METRICS_NAMESPACE", &metrics),
            ],
        ),
    )
    .await;
    let cluster = tb.env["TESTBED_CLUSTER"].clone();
    let headroom = |output: &'static str| {
        let (tb, cluster) = (&tb, cluster.clone());
        async move {
            let args = [
                "headroom",
                "--cluster",
                &cluster,
                "--stuck-after",
                "1s",
                "--output",
                output,
            ];
            cli::reaper(tb, &args, &[]).await
        }
    };
    let json_out = headroom("json").await;
    let table_out = headroom("table").await;
    let held = cap - free(&fargate(&tb).await);
    let cw = tb.cloudwatch().await;
    let by_cluster = || cluster_dims(&tb.env, &cluster, &[]);
    let stuck_objects = value(&cw, &metrics, "StuckObjects", by_cluster(), "Count").await;
    let stuck_fargate = value(&cw, &metrics, "StuckFargatePods", by_cluster(), "Count").await;
    let still_there = f.pods.get_opt(&name).await.expect("get pod").is_some();

    // (released before any assertion: the IP comes back, the namespace is clean)
    let _ = f
        .pods
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await;
    clean_fargate(&tb).await;

    // THEN the run counts it stuck, on Fargate, by namespace and finalizer, and left it
    let c = &report["clusters"][0];
    assert_eq!(c["status"], "ok", "{c:#}");
    let stuck = &c["stuck"];
    assert_eq!(
        (&stuck["jobs"], &stuck["pods"], &stuck["fargatePods"]),
        (&json!(0), &json!(1), &json!(1)),
        "{c:#}"
    );
    assert_eq!(
        stuck["byNamespace"],
        json!({f.namespace.as_str(): 1}),
        "{c:#}"
    );
    assert_eq!(stuck["byFinalizer"], json!({HOLD: 1}), "{c:#}");
    assert_eq!(c["pods"]["keptByReason"]["stuckTerminating"], 1, "{c:#}");
    assert_eq!(c["pods"]["fargateHoldingIps"], 1, "{c:#}");
    assert!(still_there, "the stuck pod was deleted");
    // AND its IP was still taken in moto while it was stuck
    assert_eq!(held, 1, "IPs held in the Fargate subnets");
    // AND the metrics say so
    assert_eq!((stuck_objects, stuck_fargate), (1.0, 1.0));
    // AND headroom shows the IP it holds
    assert!(json_out.status.success(), "{}", cli::shown(&json_out));
    let h: Value = cli::json(&json_out)["clusters"][0].clone();
    assert_eq!(h["stuckFargatePods"]["pods"], 1, "{h:#}");
    assert!(
        h["stuckFargatePods"]["oldestSeconds"].as_u64().unwrap_or(0) >= 2,
        "{h:#}"
    );
    assert!(table_out.status.success(), "{}", cli::shown(&table_out));
    let table = String::from_utf8_lossy(&table_out.stdout);
    assert!(
        table.contains("1 Fargate pod stuck terminating holds 1 IP; oldest "),
        "{table}"
    );
}

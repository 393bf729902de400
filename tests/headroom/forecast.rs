//! Running Fargate pods created in the forecast window count in the forecast, and are kept.

use std::time::Duration;

use super::harness::*;
use crate::common::{Testbed, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn running_fargate_pods_created_in_the_window_count_in_the_forecast_and_are_kept() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let (run, f) = fresh_fargate(&tb).await;
    let cap = capacity(&fargate(&tb).await);

    // GIVEN 2 finished Fargate pods past a 1 s retention and 3 Fargate pods still running,
    // all 5 created in the last minutes
    f.burst(&run, 2).await;
    let running = f.running(&run, 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // WHEN the CLI runs with that retention
    let ns = metrics_namespace(&run, "running");
    let (report, logs) = cli(&tb, &f.settings("1s", &[("REAPER_METRICS_NAMESPACE", &ns)])).await;

    // THEN the finished pods go, the running ones are kept and counted apart
    let c = &report["clusters"][0];
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["pods"]["fargateRunning"], 3, "{c}");
    assert_eq!(c["pods"]["fargateFinished"], 2, "{c}");
    assert_eq!(c["pods"]["fargateDeleted"], 2, "{c}");
    assert_eq!(c["pods"]["seen"], 2, "finished pods only: {c}");
    assert!(c["pods"]["keptByReason"]["notFinished"].is_null(), "{c}");
    assert_eq!(c["jobs"]["deleted"], 0, "{c}");
    assert_eq!(deletions(&logs), ["fargate pod", "fargate pod"]);
    // AND it took the namespaces' list page, four list pages (Jobs, unfinished Fargate pods'
    // metadata, finished Fargate pods, other finished pods) and the two DELETEs, nothing more
    let passes: Vec<_> = logs
        .iter()
        .filter(|l| l["fields"]["message"] == "listing complete")
        .map(|l| l["fields"]["pass"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(
        passes,
        ["jobs", "fargateCreations", "fargatePods", "otherPods"]
    );
    assert_eq!(c["requests"], 1 + 4 + 2, "{c}");

    // AND the forecast counts all 5 creations in the window: 20 an hour
    let pool = reported_fargate_pool(c);
    assert_eq!(c["forecast"]["available"], pool, "{c}");
    assert_eq!(c["forecast"]["podsInWindow"], 5, "{c}");
    assert_eq!(c["forecast"]["podsPerHour"], 20.0, "{c}");
    let hours = pool as f64 / 20.0;
    let reported_hours = c["forecast"]["hoursToExhaustion"]
        .as_f64()
        .expect("forecast");
    assert!(close(reported_hours, hours), "{c}");
    let cw = tb.cloudwatch().await;
    let cluster = tb.env["TESTBED_CLUSTER"].as_str();
    let v = value(
        &cw,
        &ns,
        "IpExhaustionHours",
        cluster_dims(&tb.env, cluster, &[]),
        "None",
    )
    .await;
    assert!(close(v, hours), "IpExhaustionHours {v} vs {hours}");

    // AND the running pods are untouched, still holding their IPs
    for name in &running {
        let pod = f.pods.get(name).await.expect("running pod kept");
        assert!(pod.metadata.deletion_timestamp.is_none(), "{name}");
        let phase = pod.status.and_then(|s| s.phase);
        assert_eq!(phase.as_deref(), Some("Running"), "{name}");
    }
    eventually(
        Duration::from_secs(30),
        "only the running pods' IPs held in moto",
        || async { free(&fargate(&tb).await) == cap - 3 },
    )
    .await;

    clean_fargate(&tb).await;
}

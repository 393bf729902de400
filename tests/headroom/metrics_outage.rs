//! CloudWatch down: Fargate IPs are still freed and the report says metrics failed.

use std::time::Duration;

use super::harness::*;
use crate::common::{Testbed, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn cloudwatch_down_still_frees_fargate_ips_and_reports_metrics_failed() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let (run, f) = fresh_fargate(&tb).await;
    let cap = capacity(&fargate(&tb).await);

    // GIVEN 2 finished Fargate pods past a 1 s retention, and nothing on the CloudWatch port
    f.burst(&run, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let closed = format!("http://{closed}");
    let total_before = free(&watched(&tb).await);

    // WHEN the Lambda runs
    let report = invoke(
        &tb,
        &f.settings("1s", &[("AWS_ENDPOINT_URL_CLOUDWATCH", &closed)]),
    )
    .await;

    // THEN pruning completed and the IPs are back, and the report says metrics failed
    let c = &report["clusters"][0];
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["pods"]["fargateDeleted"], 2, "{c}");
    assert_eq!(c["subnets"]["totalAvailable"], total_before, "{c}");
    let m = &report["metrics"];
    assert_eq!(m["sink"], "cloudwatch", "{m}");
    assert!(
        m["error"]
            .as_str()
            .is_some_and(|e| e.contains("PutMetricData")),
        "{m}"
    );
    assert!(m["failed"].as_u64().is_some_and(|n| n > 0), "{m}");
    assert_eq!(m["metrics"], 0, "{m}");
    eventually(Duration::from_secs(30), "the IPs back in moto", || async {
        free(&fargate(&tb).await) == cap
    })
    .await;
    assert_eq!(f.pod_count().await, 0);

    clean_fargate(&tb).await;
}

//! `eks-reaper headroom` through the real binary: the subnets' free IPs as moto has them,
//! the forecast from the Fargate pods just created, low-headroom mode against the
//! threshold, and nothing deleted.

use super::harness::*;
use crate::common::Testbed;
use crate::common::cli;

#[tokio::test(flavor = "multi_thread")]
async fn headroom_shows_moto_s_free_ips_the_forecast_and_the_low_headroom_decision() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let (run, f) = fresh_fargate(&tb).await;

    // GIVEN 3 finished Fargate pods, each still holding an IP of the Fargate /28s
    f.burst(&run, 3).await;
    let moto = watched(&tb).await;

    // WHEN headroom is asked for with the default threshold (10 %) and with 90 %
    let cluster = tb.env["TESTBED_CLUSTER"].clone();
    let default = cli::reaper(
        &tb,
        &["headroom", "--cluster", &cluster, "--output", "json"],
        &[],
    )
    .await;
    let high = cli::reaper(
        &tb,
        &[
            "headroom",
            "--cluster",
            &cluster,
            "--low-headroom-fraction",
            "0.9",
            "--output",
            "table",
        ],
        &[],
    )
    .await;

    // THEN every watched subnet shows moto's free addresses
    assert!(default.status.success(), "{}", cli::shown(&default));
    let c = cli::json(&default)["clusters"][0].clone();
    assert_eq!(c["status"], "ok", "{c:#}");
    let shown: Vec<(String, u64)> = c["subnets"]["subnets"]
        .as_array()
        .expect("subnets")
        .iter()
        .map(|s| {
            (
                s["subnetId"].as_str().expect("id").to_owned(),
                s["available"].as_u64().expect("available"),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = moto
        .iter()
        .map(|(id, s)| (id.clone(), s.available))
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(c["subnets"]["totalAvailable"].as_u64(), Some(free(&moto)));
    // AND the forecast counts the 3 pods created in the last 15 minutes
    assert_eq!(c["forecast"]["podsInWindow"], 3, "{c:#}");
    assert!(c["forecastError"].is_null(), "{c:#}");
    // AND low-headroom mode stays off at 10 %, would engage at 90 % (a /28 lost an IP)
    assert_eq!(c["lowHeadroom"], false, "{c:#}");
    assert!(high.status.success(), "{}", cli::shown(&high));
    let table = String::from_utf8_lossy(&high.stdout);
    assert!(
        table.contains("low-headroom mode: WOULD ENGAGE (under 90.0% free)"),
        "{table}"
    );
    for id in moto.keys() {
        assert!(table.contains(id.as_str()), "{id} missing from\n{table}");
    }
    // AND nothing was deleted
    assert_eq!(f.pod_count().await, 3);
    clean_fargate(&tb).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn headroom_of_an_unknown_cluster_exits_1() {
    let tb = Testbed::connect().await;
    let out = cli::reaper(
        &tb,
        &[
            "headroom",
            "--cluster",
            "no-such-cluster",
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", cli::shown(&out));
    let c = &cli::json(&out)["clusters"][0];
    assert_eq!(c["status"], "failed", "{c:#}");
    assert!(
        c["error"]
            .as_str()
            .is_some_and(|e| e.contains("ClusterNotFound")),
        "{c:#}"
    );
}

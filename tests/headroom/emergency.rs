//! An emergency run: a CloudWatch alarm event, as EventBridge delivers it to the function,
//! prunes the alarm's cluster in low-headroom mode whatever the subnets read.

use std::time::Duration;

use serde_json::{Value, json};

use super::harness::*;
use crate::common::{Lambda, Testbed, eventually};

/// A free-IP alarm's per-cluster event (`CloudWatch Alarm Contributor State Change`, the
/// shape CloudWatch documents for multi-time-series alarms): the contributor is the
/// cluster's identity, the query's `GROUP BY` keys.
fn contributor_event(cluster: &str, region: &str, state: &str) -> Value {
    json!({
        "version": "0",
        "id": "6d226bbc-07f0-9a31-3359-1736968f8ded",
        "detail-type": "CloudWatch Alarm Contributor State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-30T13:42:04Z",
        "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:reaper-subnet-free-percent-low"],
        "detail": {
            "alarmName": "reaper-subnet-free-percent-low",
            "alarmContributor": {
                "id": "6d442278dba546f6",
                "attributes": {"Account": "self", "Region": region, "ClusterName": cluster}
            },
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 1 datapoint was less than the threshold (10.0).",
                "timestamp": "2026-11-30T13:42:04.919+0000"
            },
            "configuration": {
                "metrics": [{
                    "id": "free",
                    "expression": "SELECT MIN(MinSubnetFreePercent) FROM SCHEMA(\"EKSReaper\", Account, ClusterName, Region) GROUP BY Account, Region, ClusterName",
                    "returnData": true,
                    "period": 300
                }]
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_event_prunes_its_cluster_in_low_headroom_mode() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let (run, f) = fresh_fargate(&tb).await;
    let empty = fargate(&tb).await;

    // GIVEN three finished Fargate pods, kept an hour outside low-headroom mode, and
    // subnets far from full (3 of their addresses used: no low headroom by the read)
    f.burst(&run, 3).await;
    let settings = f.settings(
        "1h",
        &[
            ("REAPER_LOW_HEADROOM_FARGATE_TTL", "1s"),
            (
                "REAPER_METRICS_NAMESPACE",
                &metrics_namespace(&run, "emergency"),
            ),
        ],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lambda = Lambda::start(&tb.lambda_env(&as_env(&settings))).await;
    let cluster = tb.env["TESTBED_CLUSTER"].as_str();
    let region = tb.env["AWS_REGION"].as_str();
    let elsewhere = if region == "eu-west-1" {
        "us-east-1"
    } else {
        "eu-west-1"
    };

    // WHEN the schedule's event invokes it: nothing is due
    let scheduled = lambda.invoke(&json!({})).await;
    let c = scheduled.cluster();
    assert_eq!(c["lowHeadroom"], false, "{c}");
    assert_eq!(c["pods"]["fargateDeleted"], 0, "{c}");
    assert!(scheduled.report().get("emergency").is_none());

    // WHEN alarm events that ask for nothing this function may do arrive: another
    // cluster, a state other than ALARM
    for (event, field) in [
        (
            contributor_event("not-a-cluster-we-prune", region, "ALARM"),
            "event.detail.alarmContributor.attributes.ClusterName",
        ),
        (
            contributor_event(cluster, region, "OK"),
            "event.detail.state.value",
        ),
    ] {
        // THEN each is a configuration error naming the field, and nothing is deleted
        let (kind, message) = lambda.invoke(&event).await.error();
        assert_eq!(kind, "ConfigError", "{message}");
        assert!(message.contains(field), "{message}");
    }
    assert_eq!(f.pod_count().await, 3);

    // WHEN the alarm names a cluster of this name in another Region (the function's
    // cluster has no Region of its own: it is compared once the run knows it)
    let (kind, message) = lambda
        .invoke(&contributor_event(cluster, elsewhere, "ALARM"))
        .await
        .error();
    // THEN the run fails as NotConfigured, naming both, and nothing is deleted
    assert_eq!(kind, "ClusterFailed.NotConfigured", "{message}");
    assert!(
        message.contains(&format!("{cluster}@{elsewhere} (account self)")),
        "{message}"
    );
    assert!(
        message.contains(&format!("{cluster}@the function's Region")),
        "{message}"
    );
    assert_eq!(f.pod_count().await, 3);

    // WHEN the free-IP alarm's contributor for this cluster goes to ALARM
    let emergency = lambda
        .invoke(&contributor_event(cluster, region, "ALARM"))
        .await;
    lambda.stop().await;

    // THEN the run is an emergency run of that cluster, in low-headroom mode
    let report = emergency.report();
    assert_eq!(
        report["emergency"],
        json!({
            "alarm": "reaper-subnet-free-percent-low",
            "cluster": cluster,
            "region": region,
            "account": "self"
        }),
        "{report}"
    );
    let c = emergency.cluster();
    assert_eq!(c["cluster"], cluster, "{c}");
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["lowHeadroom"], true, "{c}");
    // AND the finished Fargate pods went under the low-headroom retention, their Jobs kept
    assert_eq!(c["pods"]["fargateDeleted"], 3, "{c}");
    assert_eq!(c["pods"]["deletedByReason"]["fargatePodPastTtl"], 3, "{c}");
    assert_eq!(c["jobs"]["deleted"], 0, "{c}");
    assert_eq!(f.pod_count().await, 0);
    assert_eq!(f.job_count().await, 3);
    // AND their IPs are back
    eventually(
        Duration::from_secs(30),
        "the freed IPs back in moto",
        || async { free(&fargate(&tb).await) == capacity(&empty) },
    )
    .await;

    clean_fargate(&tb).await;
}

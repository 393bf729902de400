//! After a Fargate burst, the subnet figures the run reports and publishes equal moto's.

use super::harness::*;
use crate::common::Testbed;

#[tokio::test(flavor = "multi_thread")]
async fn published_subnet_figures_equal_moto_after_a_fargate_burst() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let (run, f) = fresh_fargate(&tb).await;
    let empty = fargate(&tb).await;

    // GIVEN a burst of 6 Fargate Jobs, finished, their pods still holding 6 IPs
    f.burst(&run, 6).await;
    let before = watched(&tb).await;
    assert_eq!(free(&fargate(&tb).await), capacity(&empty) - 6);

    // WHEN the Lambda runs with retentions that keep everything, metrics to CloudWatch
    let ns = metrics_namespace(&run, "burst");
    let report = invoke(
        &tb,
        &f.settings(
            "1h",
            &[
                ("REAPER_METRICS_SINK", "cloudwatch"),
                ("REAPER_METRICS_NAMESPACE", &ns),
            ],
        ),
    )
    .await;
    let after = watched(&tb).await;

    // THEN nothing moved in moto while the run read it
    assert_eq!(before, after, "moto's subnets changed during the run");
    let c = &report["clusters"][0];
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["lowHeadroom"], false, "{c}");
    assert_eq!(c["pods"]["fargateFinished"], 6, "{c}");
    assert_eq!(c["pods"]["fargateDeleted"], 0, "{c}");
    assert_eq!(c["pods"]["fargateHoldingIps"], 6, "{c}");
    assert_eq!(c["pods"]["fargateRunning"], 0, "{c}");
    assert_eq!(report["metrics"]["sink"], "cloudwatch", "{report}");
    assert!(report["metrics"]["error"].is_null(), "{report}");

    // AND the report's subnets section is moto's DescribeSubnets: the three cluster
    // subnets once each (the Fargate ones are also the profile's), with moto's figures
    let subnets = reported(c);
    assert_eq!(
        subnets.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (id, m) in &after {
        let (az, available, cap, util) = &subnets[id];
        assert_eq!(
            (az, *available, *cap),
            (&m.az, m.available, m.capacity),
            "{id}"
        );
        assert!(close(*util, m.utilization_percent()), "{id}: {util}");
    }
    let total = free(&after);
    let min = after.values().map(|s| s.available).min().expect("subnets");
    assert_eq!(c["subnets"]["totalAvailable"], total, "{c}");
    assert_eq!(c["subnets"]["totalCapacity"], capacity(&after), "{c}");
    assert_eq!(c["subnets"]["minAvailable"]["available"], min, "{c}");

    // AND the values in moto's CloudWatch, read back through the SDK and the bridge with
    // the exact dimensions, are moto's subnet figures
    let cw = tb.cloudwatch().await;
    let cluster = tb.env["TESTBED_CLUSTER"].as_str();
    for (id, m) in &after {
        let d = || {
            cluster_dims(
                &tb.env,
                cluster,
                &[
                    ("SubnetId", id.as_str()),
                    ("AvailabilityZone", m.az.as_str()),
                ],
            )
        };
        let available = value(&cw, &ns, "SubnetAvailableIps", d(), "Count").await;
        assert_eq!(available, m.available as f64, "SubnetAvailableIps {id}");
        let util = value(&cw, &ns, "SubnetIpUtilization", d(), "Percent").await;
        assert!(
            close(util, m.utilization_percent()),
            "SubnetIpUtilization {id}: {util} vs {}",
            m.utilization_percent()
        );
    }
    let expected = vec![
        "Account",
        "AvailabilityZone",
        "ClusterName",
        "Region",
        "SubnetId",
    ];
    for name in ["SubnetAvailableIps", "SubnetIpUtilization"] {
        assert_eq!(
            identities(&cw, &ns, name).await,
            vec![expected.clone(); after.len()],
            "{name}: one series per subnet, exactly these dimensions"
        );
    }
    let by_cluster = || cluster_dims(&tb.env, cluster, &[]);
    let v = value(&cw, &ns, "ClusterAvailableIps", by_cluster(), "Count").await;
    assert_eq!(v, total as f64);
    let v = value(&cw, &ns, "MinSubnetAvailableIps", by_cluster(), "Count").await;
    assert_eq!(v, min as f64);
    let v = value(&cw, &ns, "FargatePodsHoldingIps", by_cluster(), "Count").await;
    assert_eq!(v, 6.0);
    let v = value(&cw, &ns, "LowHeadroomMode", by_cluster(), "None").await;
    assert_eq!(v, 0.0);
    let v = value(&cw, &ns, "SubnetsRead", by_cluster(), "Count").await;
    assert_eq!(v, 1.0);
    // The tightest watched subnet: the least free share, as the report's `tightest` says.
    let tightest = c["subnets"]["tightest"]["freeFraction"]
        .as_f64()
        .expect("tightest");
    let v = value(&cw, &ns, "MinSubnetFreePercent", by_cluster(), "Percent").await;
    assert!(close(v, tightest * 100.0), "{v} vs {tightest}");

    // AND the forecast: 6 Fargate pods created in the 15-minute window = 24 an hour, so the
    // Fargate subnets' free addresses (not the cluster-only subnet's) last pool / 24 hours
    // — in the report and in moto
    let pool = free(&fargate(&tb).await);
    assert!(pool < total, "the cluster-only subnet is left out");
    assert_eq!(reported_fargate_pool(c), pool, "{c}");
    assert_eq!(c["forecast"]["available"], pool, "{c}");
    assert_eq!(c["forecast"]["podsInWindow"], 6, "{c}");
    assert_eq!(c["forecast"]["podsInLongWindow"], 6, "{c}");
    assert_eq!(c["forecast"]["podsPerHour"], 24.0, "{c}");
    let hours = pool as f64 / 24.0;
    let reported_hours = c["forecast"]["hoursToExhaustion"]
        .as_f64()
        .expect("forecast");
    assert!(close(reported_hours, hours), "{c}");
    let v = value(&cw, &ns, "IpExhaustionHours", by_cluster(), "None").await;
    assert!(close(v, hours), "IpExhaustionHours {v} vs {hours}");

    clean_fargate(&tb).await;
}

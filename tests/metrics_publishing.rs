//! The CloudWatch sink through the real SDK path: aws-sdk-cloudwatch (rpc-v2-cbor) →
//! `testbed/cbor_bridge.py` → moto, and the metrics read back the same way.
//!
//! Needs the testbed's Python venv (`scripts/lib/common.sh`); set `EKS_REAPER_PYTHON` to
//! use another interpreter with `moto[server]` and `cbor2`. `CBOR_BRIDGE_RECORD_DIR` makes
//! the bridge save the SDK's requests (that is how the bridge's pytest fixtures were made).

mod common;

use common::moto;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, Metric, MetricDataQuery, MetricStat, Statistic,
};
use common::moto::{Process, sdk_config};
use common::{free_port, root};
use eks_reaper::config::{MetricsDetail, MetricsSinkKind};
use eks_reaper::deadline::Deadline;
use eks_reaper::metrics::{self, ClusterFigures, Sink, SubnetFigures};
use eks_reaper::report::NamespaceDeletions;
use jiff::Timestamp;

/// moto on a free port, and the bridge in front of it; returns the bridge URL.
fn start_moto_and_bridge() -> (Process, Process, String) {
    let (moto, moto_port) = moto::start();
    let mut command = Command::new(moto::python());
    command
        .arg(root().join("testbed/cbor_bridge.py"))
        .args([
            "--moto-url",
            &format!("http://127.0.0.1:{moto_port}"),
            "--port",
            "0",
        ])
        .stdout(Stdio::piped());
    if let Ok(dir) = std::env::var("CBOR_BRIDGE_RECORD_DIR") {
        command.args(["--record-dir", &dir]);
    }
    let mut bridge = Process(command.spawn().expect("bridge starts"));
    let mut url = String::new();
    BufReader::new(bridge.0.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    (moto, bridge, url.trim().to_owned())
}

/// The figures of `cluster` in eu-west-1, reached through a role of account 222222222222.
fn figures(cluster: &str) -> ClusterFigures {
    ClusterFigures {
        cluster: cluster.into(),
        region: "eu-west-1".into(),
        account: ACCOUNT.into(),
        jobs_deleted: 12,
        pods_deleted: 30,
        fargate_pods_deleted: 18,
        finished_jobs: 40,
        retained_jobs: 28,
        terminated_pods: 35,
        fargate_pods_holding_ips: 2,
        run_duration: Duration::from_millis(2345),
        run_succeeded: true,
        per_namespace: Some(vec![NamespaceDeletions {
            namespace: "etl".into(),
            jobs_deleted: 12,
            pods_deleted: 30,
            fargate_pods_deleted: 18,
        }]),
        subnets: Some(vec![
            SubnetFigures {
                subnet_id: "subnet-0a".into(),
                availability_zone: "eu-west-1a".into(),
                available: 4000,
                utilization_percent: 2.223,
            },
            SubnetFigures {
                subnet_id: "subnet-0b".into(),
                availability_zone: "eu-west-1b".into(),
                available: 7,
                utilization_percent: 36.36,
            },
        ]),
        subnets_read: true,
        cluster_available_ips: Some(4007),
        min_subnet_available_ips: Some(7),
        min_subnet_free_percent: Some(63.64),
        ip_exhaustion_hours: Some(12.5),
        ..ClusterFigures::default()
    }
}

const ACCOUNT: &str = "222222222222";

fn dim(name: &str, value: &str) -> Dimension {
    Dimension::builder().name(name).value(value).build()
}

/// The dimensions of `cluster`'s metrics ([`figures`]): its identity, then `extra`.
fn of_cluster(cluster: &str, extra: &[(&str, &str)]) -> Vec<Dimension> {
    let identity = [
        ("ClusterName", cluster),
        ("Region", "eu-west-1"),
        ("Account", ACCOUNT),
    ];
    identity
        .iter()
        .chain(extra)
        .map(|(n, v)| dim(n, v))
        .collect()
}

async fn latest_value(
    client: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dims: Vec<Dimension>,
) -> Vec<f64> {
    let now = std::time::SystemTime::now();
    let out = client
        .get_metric_data()
        .start_time(DateTime::from(now - Duration::from_secs(600)))
        .end_time(DateTime::from(now + Duration::from_secs(600)))
        .metric_data_queries(
            MetricDataQuery::builder()
                .id("q")
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace(namespace)
                                .metric_name(name)
                                .set_dimensions(Some(dims))
                                .build(),
                        )
                        .period(60)
                        .stat("Maximum")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("GetMetricData through the bridge");
    out.metric_data_results()[0].values().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn published_metrics_read_back_from_moto_through_the_sdk() {
    // GIVEN moto behind the CBOR bridge, and a CloudWatch sink pointed at the bridge
    let (_moto, _bridge, url) = start_moto_and_bridge();
    let sdk = sdk_config(&url).await;
    let namespace = "EKSReaperIT";
    let sink = Sink::new(
        MetricsSinkKind::CloudWatch,
        namespace,
        MetricsDetail::Full,
        &sdk,
    );

    // WHEN a run's figures for two clusters are published
    let outcome = metrics::publish(
        &sink,
        &[figures("prod"), figures("staging")],
        Timestamp::now(),
        &Deadline::none(),
    )
    .await;

    // THEN every datum went out in one call, and moto lists each metric identity
    assert_eq!(outcome.error, None);
    assert_eq!(
        (outcome.sink, outcome.metrics, outcome.calls),
        ("cloudwatch", 62, 1)
    );

    let client = aws_sdk_cloudwatch::Client::new(&sdk);
    let mut listed = Vec::new();
    let mut pages = client
        .list_metrics()
        .namespace(namespace)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        listed.extend(
            page.expect("ListMetrics through the bridge")
                .metrics()
                .to_vec(),
        );
    }
    assert_eq!(listed.len(), 62);
    let subnet_metric = listed
        .iter()
        .find(|m| {
            m.metric_name() == Some("SubnetAvailableIps")
                && m.dimensions()
                    .iter()
                    .any(|d| d.value() == Some("subnet-0b"))
                && m.dimensions().iter().any(|d| d.value() == Some("prod"))
        })
        .expect("per-subnet metric listed");
    let mut names: Vec<_> = subnet_metric
        .dimensions()
        .iter()
        .filter_map(|d| d.name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Account",
            "AvailabilityZone",
            "ClusterName",
            "Region",
            "SubnetId"
        ]
    );

    // AND the values read back equal what was published
    let values = latest_value(
        &client,
        namespace,
        "SubnetAvailableIps",
        of_cluster(
            "prod",
            &[
                ("SubnetId", "subnet-0b"),
                ("AvailabilityZone", "eu-west-1b"),
            ],
        ),
    )
    .await;
    assert_eq!(values, [7.0]);
    let values = latest_value(
        &client,
        namespace,
        "IpExhaustionHours",
        of_cluster("staging", &[]),
    )
    .await;
    assert_eq!(values, [12.5]);
    let values = latest_value(
        &client,
        namespace,
        "JobsDeleted",
        of_cluster("prod", &[("Namespace", "etl")]),
    )
    .await;
    assert_eq!(values, [12.0]);

    // AND units survive the trip
    let now = std::time::SystemTime::now();
    let stats = client
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name("RunDuration")
        .set_dimensions(Some(of_cluster("prod", &[])))
        .start_time(DateTime::from(now - Duration::from_secs(600)))
        .end_time(DateTime::from(now + Duration::from_secs(600)))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .expect("GetMetricStatistics through the bridge");
    let point = &stats.datapoints()[0];
    assert_eq!(point.maximum(), Some(2345.0));
    assert_eq!(point.unit().map(|u| u.as_str()), Some("Milliseconds"));

    // AND a filter on the Namespace dimension finds only the opt-in metrics
    let per_namespace = client
        .list_metrics()
        .namespace(namespace)
        .dimensions(DimensionFilter::builder().name("Namespace").build())
        .send()
        .await
        .expect("ListMetrics with a dimension filter");
    assert_eq!(per_namespace.metrics().len(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_cloudwatch_is_reported_not_raised() {
    // GIVEN a CloudWatch endpoint where nothing listens
    let sdk = sdk_config(&format!("http://127.0.0.1:{}", free_port())).await;
    let sink = Sink::new(
        MetricsSinkKind::CloudWatch,
        "EKSReaperIT",
        MetricsDetail::Full,
        &sdk,
    );
    let started = Instant::now();

    // WHEN the run publishes
    let outcome = metrics::publish(
        &sink,
        &[figures("prod")],
        Timestamp::now(),
        &Deadline::none(),
    )
    .await;

    // THEN the outcome carries the failure, after the SDK's retries, well inside a run
    assert_eq!(outcome.metrics, 0);
    assert_eq!(outcome.failed, 31);
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("PutMetricData")
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn large_metric_set_goes_compressed_and_arrives_whole() {
    // GIVEN a cluster with 150 watched subnets: a PutMetricData body the SDK gzips (≥ 10 KiB)
    let (_moto, _bridge, url) = start_moto_and_bridge();
    let sdk = sdk_config(&url).await;
    let namespace = "EKSReaperLarge";
    let mut big = figures("prod");
    big.per_namespace = None;
    big.subnets = Some(
        (0..150)
            .map(|i| SubnetFigures {
                subnet_id: format!("subnet-{i:04}"),
                availability_zone: format!("eu-west-1{}", ['a', 'b', 'c'][i % 3]),
                available: i as u64,
                utilization_percent: 50.0,
            })
            .collect(),
    );
    let sink = Sink::new(
        MetricsSinkKind::CloudWatch,
        namespace,
        MetricsDetail::Full,
        &sdk,
    );

    // WHEN it is published
    let outcome = metrics::publish(&sink, &[big], Timestamp::now(), &Deadline::none()).await;

    // THEN one call carried all 323 values and moto has every one of them
    assert_eq!(outcome.error, None);
    assert_eq!((outcome.metrics, outcome.calls), (23 + 300, 1));
    let client = aws_sdk_cloudwatch::Client::new(&sdk);
    let mut count = 0;
    let mut pages = client
        .list_metrics()
        .namespace(namespace)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        count += page
            .expect("ListMetrics through the bridge")
            .metrics()
            .len();
    }
    assert_eq!(count, 323);
    let values = latest_value(
        &client,
        namespace,
        "SubnetAvailableIps",
        of_cluster(
            "prod",
            &[
                ("SubnetId", "subnet-0149"),
                ("AvailabilityZone", "eu-west-1c"),
            ],
        ),
    )
    .await;
    assert_eq!(values, [149.0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_errors_reach_the_sdk_as_modelled_errors() {
    // GIVEN the bridge, and a datum CloudWatch refuses (Value and Values together)
    let (_moto, _bridge, url) = start_moto_and_bridge();
    let client = aws_sdk_cloudwatch::Client::new(&sdk_config(&url).await);
    let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
        .metric_name("Bad")
        .value(1.0)
        .values(2.0)
        .build();

    // WHEN it is sent
    let err = client
        .put_metric_data()
        .namespace("EKSReaperIT")
        .metric_data(datum)
        .send()
        .await
        .expect_err("CloudWatch refuses Value with Values");

    // THEN the SDK decodes the CBOR error into the modelled exception, code from the
    // awsQueryCompatible header
    let service = err.into_service_error();
    assert!(
        service.is_invalid_parameter_value_exception(),
        "{service:?}"
    );
    assert!(
        service.to_string().contains("mutually exclusive"),
        "{service}"
    );
}

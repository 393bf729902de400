//! Subnet IP headroom end to end on the testbed: real Fargate Jobs (the stand-in takes one
//! moto ENI per pod from the two Fargate /28s), the real binary, and the figures it
//! publishes read back from moto through aws-sdk-cloudwatch → CBOR bridge → moto.
//!
//! The Fargate namespace and moto's subnets are shared by every test here, so the tests
//! take turns ([`SERIAL`]) and each starts by waiting for the Fargate subnets to be empty.
//! Every run publishes into its own metrics namespace, so a value read back belongs to
//! exactly one run.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use common::{End, Lambda, RUN_LABEL, Testbed, eventually, mins};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

/// One test at a time: they all fill and drain the same Fargate subnets.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A watched subnet as moto describes it.
#[derive(Debug, Clone, PartialEq)]
struct MotoSubnet {
    az: String,
    available: u64,
    capacity: u64,
}

impl MotoSubnet {
    fn utilization_percent(&self) -> f64 {
        (self.capacity - self.available) as f64 * 100.0 / self.capacity as f64
    }
}

fn ids(tb: &Testbed, key: &str) -> Vec<String> {
    tb.env[key].split(',').map(str::to_owned).collect()
}

/// moto's `DescribeSubnets` for the given subnet IDs: AZ, free addresses, 2^(32-p) - 5.
async fn moto_subnets(tb: &Testbed, ids: Vec<String>) -> BTreeMap<String, MotoSubnet> {
    let out = tb
        .ec2()
        .await
        .describe_subnets()
        .set_subnet_ids(Some(ids))
        .send()
        .await
        .expect("DescribeSubnets");
    out.subnets()
        .iter()
        .map(|s| {
            let prefix: u32 = s
                .cidr_block()
                .and_then(|c| c.split_once('/'))
                .and_then(|(_, p)| p.parse().ok())
                .expect("IPv4 CIDR");
            let subnet = MotoSubnet {
                az: s.availability_zone().expect("AZ").to_owned(),
                available: u64::try_from(s.available_ip_address_count().expect("count"))
                    .expect("non-negative"),
                capacity: (1u64 << (32 - prefix)) - 5,
            };
            (s.subnet_id().expect("id").to_owned(), subnet)
        })
        .collect()
}

/// Every watched subnet of the testbed cluster (cluster subnets include the Fargate ones).
async fn watched(tb: &Testbed) -> BTreeMap<String, MotoSubnet> {
    moto_subnets(tb, ids(tb, "TESTBED_SUBNETS")).await
}

async fn fargate(tb: &Testbed) -> BTreeMap<String, MotoSubnet> {
    moto_subnets(tb, ids(tb, "TESTBED_FARGATE_SUBNETS")).await
}

fn free(subnets: &BTreeMap<String, MotoSubnet>) -> u64 {
    subnets.values().map(|s| s.available).sum()
}

fn capacity(subnets: &BTreeMap<String, MotoSubnet>) -> u64 {
    subnets.values().map(|s| s.capacity).sum()
}

/// Empties the shared Fargate namespace and labels this test's objects with a fresh run id.
async fn fresh_fargate(tb: &Testbed) -> (String, Fargate) {
    clean_fargate(tb).await;
    let run = format!("{:08x}", rand::random::<u32>());
    let f = Fargate::new(tb, &run);
    (run, f)
}

/// The shared Fargate namespace, for one test run id.
struct Fargate {
    namespace: String,
    selector: String,
    jobs: Api<Job>,
    pods: Api<Pod>,
}

impl Fargate {
    fn new(tb: &Testbed, run: &str) -> Fargate {
        let namespace = tb.env["TESTBED_FARGATE_NAMESPACE"].clone();
        Fargate {
            selector: format!("{RUN_LABEL}={run}"),
            jobs: Api::namespaced(tb.admin.clone(), &namespace),
            pods: Api::namespaced(tb.admin.clone(), &namespace),
            namespace,
        }
    }

    /// The run's scope (this namespace, this run's label), Jobs kept for 1 h, finished
    /// Fargate pods for `fargate_ttl`, plus `more`.
    fn settings(
        &self,
        fargate_ttl: &str,
        more: &[(&'static str, &str)],
    ) -> Vec<(&'static str, String)> {
        let mut settings = vec![
            ("REAPER_NAMESPACES", self.namespace.clone()),
            ("REAPER_LABEL_SELECTOR", self.selector.clone()),
            ("REAPER_FARGATE_POD_TTL", fargate_ttl.to_owned()),
            ("REAPER_SUCCEEDED_JOB_TTL", "1h".to_owned()),
        ];
        settings.extend(more.iter().map(|(k, v)| (*k, (*v).to_owned())));
        settings
    }

    /// `n` real Jobs named `<prefix>-<run>-<i>` whose single pod runs on Fargate for
    /// `run_seconds` (negative: until deleted).
    async fn create_jobs(&self, run: &str, prefix: &str, n: usize, run_seconds: i32) {
        for i in 0..n {
            let job: Job = serde_json::from_value(json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": format!("{prefix}-{run}-{i:03}"), "labels": {RUN_LABEL: run}},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": {RUN_LABEL: run},
                                     "annotations": {"testbed.eks-reaper/run-seconds":
                                                     run_seconds.to_string()}},
                        "spec": {"restartPolicy": "Never",
                                 "containers": [{"name": "task", "image": "busybox:1.36"}]}
                    }
                }
            }))
            .expect("job");
            self.jobs
                .create(&PostParams::default(), &job)
                .await
                .expect("create Fargate job");
        }
    }

    /// `n` real Jobs whose single pod runs on Fargate and succeeds at once; returns when
    /// every pod has Succeeded and every Job is Complete (each pod keeps its IP).
    async fn burst(&self, run: &str, n: usize) {
        self.create_jobs(run, "etl", n, 0).await;
        let by_run = ListParams::default().labels(&self.selector);
        eventually(
            Duration::from_secs(120),
            &format!("{n} Fargate pods Succeeded and their Jobs Complete"),
            || async {
                let pods = self.pods.list(&by_run).await.expect("pods").items;
                let succeeded = pods
                    .iter()
                    .filter(|p| {
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
                    })
                    .count();
                let complete = self
                    .jobs
                    .list(&by_run)
                    .await
                    .expect("jobs")
                    .items
                    .iter()
                    .filter(|j| {
                        j.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|cs| {
                                cs.iter()
                                    .any(|c| c.type_ == "Complete" && c.status == "True")
                            })
                    })
                    .count();
                pods.len() == n && succeeded == n && complete == n
            },
        )
        .await;
        for pod in self.pods.list(&by_run).await.expect("pods").items {
            assert!(
                pod.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("eks.amazonaws.com/fargate-profile")),
                "not a Fargate pod: {:?}",
                pod.metadata.name
            );
        }
    }

    /// `n` real Jobs whose Fargate pod runs until deleted; returns when they are Running
    /// (their pods' names).
    async fn running(&self, run: &str, n: usize) -> Vec<String> {
        self.create_jobs(run, "svc", n, -1).await;
        let by_run = ListParams::default().labels(&self.selector);
        let running = || async {
            self.pods
                .list(&by_run)
                .await
                .expect("pods")
                .items
                .into_iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter_map(|p| p.metadata.name)
                .filter(|name| name.starts_with("svc-"))
                .collect::<Vec<_>>()
        };
        eventually(
            Duration::from_secs(120),
            &format!("{n} Fargate pods Running"),
            || async { running().await.len() == n },
        )
        .await;
        running().await
    }

    async fn pod_count(&self) -> usize {
        let by_run = ListParams::default().labels(&self.selector);
        self.pods.list(&by_run).await.expect("pods").items.len()
    }

    async fn job_count(&self) -> usize {
        let by_run = ListParams::default().labels(&self.selector);
        self.jobs.list(&by_run).await.expect("jobs").items.len()
    }
}

/// Labels of test-made objects in the Fargate namespace: this harness's and the workload
/// generator's (`tests/testbed/workload.py`, Python self-tests).
const TEST_LABELS: [&str; 2] = [RUN_LABEL, "testbed.eks-reaper/run"];

/// Deletes every test-made Job and pod in the Fargate namespace (any run id, by label) and
/// waits until the Fargate subnets are empty again: the clean state every test starts from.
async fn clean_fargate(tb: &Testbed) {
    let f = Fargate::new(tb, "none");
    for label in TEST_LABELS {
        let ours = ListParams::default().labels(label);
        let _ = f
            .jobs
            .delete_collection(&DeleteParams::background(), &ours)
            .await;
        let _ = f
            .pods
            .delete_collection(&DeleteParams::default().grace_period(0), &ours)
            .await;
    }
    let cap = capacity(&fargate(tb).await);
    let end = tokio::time::Instant::now() + Duration::from_secs(90);
    while free(&fargate(tb).await) != cap {
        if tokio::time::Instant::now() > end {
            let left: Vec<_> = f
                .pods
                .list(&ListParams::default())
                .await
                .expect("pods")
                .items
                .into_iter()
                .filter_map(|p| p.metadata.name)
                .collect();
            panic!(
                "{} is not clean: Fargate subnets still hold IPs after 90 s; pods: {left:?}",
                f.namespace
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The testbed's CloudWatch (the CBOR bridge in front of moto), as the product reaches it.
async fn cloudwatch(tb: &Testbed) -> aws_sdk_cloudwatch::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new(tb.env["AWS_REGION"].clone()))
        .endpoint_url(tb.env["AWS_ENDPOINT_URL_CLOUDWATCH"].clone())
        .credentials_provider(aws_credential_types::Credentials::new(
            tb.env["AWS_ACCESS_KEY_ID"].clone(),
            tb.env["AWS_SECRET_ACCESS_KEY"].clone(),
            None,
            None,
            "testbed",
        ))
        .load()
        .await;
    aws_sdk_cloudwatch::Client::new(&conf)
}

fn dims(pairs: &[(&str, &str)]) -> Vec<Dimension> {
    pairs
        .iter()
        .map(|(n, v)| Dimension::builder().name(*n).value(*v).build())
        .collect()
}

/// The one value a run published for a metric identity (namespace, name, dimensions),
/// read from moto with GetMetricStatistics, and its unit. Asserts there was exactly one
/// datum: one publish per run, each run in its own namespace.
///
/// Not GetMetricData: moto 5.2.5 drops the namespace filter from a GetMetricData query
/// that has dimensions, so it returns other runs' values too.
async fn metric(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dimensions: Vec<Dimension>,
) -> (f64, String) {
    let now = std::time::SystemTime::now();
    let out = cw
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(name)
        .set_dimensions(Some(dimensions.clone()))
        .start_time(DateTime::from(now - Duration::from_secs(900)))
        .end_time(DateTime::from(now + Duration::from_secs(300)))
        .period(60)
        .statistics(Statistic::SampleCount)
        .statistics(Statistic::Maximum)
        .statistics(Statistic::Minimum)
        .send()
        .await
        .expect("GetMetricStatistics through the bridge");
    let points = out.datapoints();
    assert_eq!(
        points.len(),
        1,
        "{namespace} {name} {dimensions:?}: one datapoint expected, got {points:?}"
    );
    let p = &points[0];
    assert_eq!(p.sample_count(), Some(1.0), "{name}: {p:?}");
    assert_eq!(p.maximum(), p.minimum(), "{name}: {p:?}");
    (
        p.maximum().expect("maximum"),
        p.unit().map(|u| u.as_str().to_owned()).unwrap_or_default(),
    )
}

/// [`metric`]'s value, checking the unit.
async fn value(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dimensions: Vec<Dimension>,
    unit: &str,
) -> f64 {
    let (v, u) = metric(cw, namespace, name, dimensions).await;
    assert_eq!(u, unit, "{name} unit");
    v
}

/// Dimension names of every identity of `name` in `namespace`, sorted, per identity.
async fn identities(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
) -> Vec<Vec<String>> {
    let out = cw
        .list_metrics()
        .namespace(namespace)
        .metric_name(name)
        .send()
        .await
        .expect("ListMetrics through the bridge");
    out.metrics()
        .iter()
        .map(|m| {
            let mut names: Vec<String> = m
                .dimensions()
                .iter()
                .filter_map(|d| d.name().map(str::to_owned))
                .collect();
            names.sort();
            names
        })
        .collect()
}

fn metrics_namespace(run: &str, step: &str) -> String {
    format!("EKSReaperIT/headroom/{run}/{step}")
}

/// `(name, value)` settings as the harness takes them.
fn as_env<'a, S: AsRef<str>>(settings: &'a [(&'static str, S)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_ref())).collect()
}

/// The Lambda, started for one invocation with `settings`, and its report.
async fn invoke<S: AsRef<str>>(tb: &Testbed, settings: &[(&'static str, S)]) -> Value {
    let lambda = Lambda::start(&tb.lambda_env(&as_env(settings))).await;
    let inv = lambda.invoke(&json!({})).await;
    lambda.stop().await;
    inv.report().clone()
}

/// The report's subnet figures by ID: (AZ, available, capacity, utilisation).
fn reported(cluster: &Value) -> BTreeMap<String, (String, u64, u64, f64)> {
    cluster["subnets"]["subnets"]
        .as_array()
        .unwrap_or_else(|| panic!("no subnets in the report: {cluster}"))
        .iter()
        .map(|s| {
            (
                s["subnetId"].as_str().expect("subnetId").to_owned(),
                (
                    s["availabilityZone"].as_str().expect("az").to_owned(),
                    s["available"].as_u64().expect("available"),
                    s["capacity"].as_u64().expect("capacity"),
                    s["utilizationPercent"].as_f64().expect("utilization"),
                ),
            )
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

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
    let cw = cloudwatch(&tb).await;
    let cluster = tb.env["TESTBED_CLUSTER"].as_str();
    for (id, m) in &after {
        let d = [
            ("ClusterName", cluster),
            ("SubnetId", id.as_str()),
            ("AvailabilityZone", m.az.as_str()),
        ];
        let available = value(&cw, &ns, "SubnetAvailableIps", dims(&d), "Count").await;
        assert_eq!(available, m.available as f64, "SubnetAvailableIps {id}");
        let util = value(&cw, &ns, "SubnetIpUtilization", dims(&d), "Percent").await;
        assert!(
            close(util, m.utilization_percent()),
            "SubnetIpUtilization {id}: {util} vs {}",
            m.utilization_percent()
        );
    }
    let three = vec!["AvailabilityZone", "ClusterName", "SubnetId"];
    for name in ["SubnetAvailableIps", "SubnetIpUtilization"] {
        assert_eq!(
            identities(&cw, &ns, name).await,
            vec![three.clone(); after.len()],
            "{name}: one identity per subnet, exactly these dimensions"
        );
    }
    let by_cluster = || dims(&[("ClusterName", cluster)]);
    let v = value(&cw, &ns, "ClusterAvailableIps", by_cluster(), "Count").await;
    assert_eq!(v, total as f64);
    let v = value(&cw, &ns, "MinSubnetAvailableIps", by_cluster(), "Count").await;
    assert_eq!(v, min as f64);
    let v = value(&cw, &ns, "FargatePodsHoldingIps", by_cluster(), "Count").await;
    assert_eq!(v, 6.0);
    let v = value(&cw, &ns, "LowHeadroomMode", by_cluster(), "None").await;
    assert_eq!(v, 0.0);

    // AND the forecast: 6 Fargate pods created in the 15-minute window = 24 an hour, so the
    // free addresses last total / 24 hours — in the report and in moto
    assert_eq!(c["forecast"]["available"], total, "{c}");
    assert_eq!(c["forecast"]["podsInWindow"], 6, "{c}");
    assert_eq!(c["forecast"]["podsPerHour"], 24.0, "{c}");
    let hours = total as f64 / 24.0;
    let reported_hours = c["forecast"]["hoursToExhaustion"]
        .as_f64()
        .expect("forecast");
    assert!(close(reported_hours, hours), "{c}");
    let v = value(&cw, &ns, "IpExhaustionHours", by_cluster(), "None").await;
    assert!(close(v, hours), "IpExhaustionHours {v} vs {hours}");

    clean_fargate(&tb).await;
}

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
    // AND it took three list pages (Jobs, every Fargate pod, other finished pods) and the
    // two DELETEs, nothing more
    let passes: Vec<_> = logs
        .iter()
        .filter(|l| l["fields"]["message"] == "listing complete")
        .map(|l| l["fields"]["pass"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(passes, ["jobs", "fargatePods", "otherPods"]);
    assert_eq!(c["requests"], 3 + 2, "{c}");

    // AND the forecast counts all 5 creations in the window: 20 an hour
    let total = c["subnets"]["totalAvailable"].as_u64().expect("total");
    assert_eq!(c["forecast"]["podsInWindow"], 5, "{c}");
    assert_eq!(c["forecast"]["podsPerHour"], 20.0, "{c}");
    let hours = total as f64 / 20.0;
    let reported_hours = c["forecast"]["hoursToExhaustion"]
        .as_f64()
        .expect("forecast");
    assert!(close(reported_hours, hours), "{c}");
    let cw = cloudwatch(&tb).await;
    let cluster = tb.env["TESTBED_CLUSTER"].as_str();
    let v = value(
        &cw,
        &ns,
        "IpExhaustionHours",
        dims(&[("ClusterName", cluster)]),
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
    let fargate_ids = ids(&tb, "TESTBED_FARGATE_SUBNETS");
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

    let cw = cloudwatch(&tb).await;
    let cluster = tb.env["TESTBED_CLUSTER"].as_str();
    let by_cluster = || dims(&[("ClusterName", cluster)]);
    let v = value(&cw, &ns_prune, "ClusterAvailableIps", by_cluster(), "Count").await;
    assert_eq!(v, total1 as f64);
    let v = value(&cw, &ns_next, "ClusterAvailableIps", by_cluster(), "Count").await;
    assert_eq!(v, (total1 + 6) as f64);
    let v = value(&cw, &ns_prune, "FargatePodsDeleted", by_cluster(), "Count").await;
    assert_eq!(v, 6.0);
    for id in &fargate_ids {
        let az = moto[id].az.as_str();
        let d = || {
            dims(&[
                ("ClusterName", cluster),
                ("SubnetId", id.as_str()),
                ("AvailabilityZone", az),
            ])
        };
        let v1 = value(&cw, &ns_prune, "SubnetAvailableIps", d(), "Count").await;
        let v2 = value(&cw, &ns_next, "SubnetAvailableIps", d(), "Count").await;
        assert_eq!(v1, before[id].1 as f64, "{id}");
        assert_eq!(v2, moto[id].capacity as f64, "{id}");
    }

    clean_fargate(&tb).await;
}

/// The CLI run: its JSON report (stdout) and its JSON log lines (stderr).
async fn cli<S: AsRef<str>>(tb: &Testbed, settings: &[(&'static str, S)]) -> (Value, Vec<Value>) {
    let mut env = tb.lambda_env(&as_env(settings));
    env.retain(|(k, _)| !k.starts_with("AWS_LAMBDA_FUNCTION"));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_eks-reaper"))
        .args(["run", "--output", "json"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run eks-reaper");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "eks-reaper failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("report: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    let logs = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (report, logs)
}

/// What every "deleted" log line deleted, in log order: `job`, `pod` or `fargate pod`.
fn deletions(logs: &[Value]) -> Vec<String> {
    logs.iter()
        .filter(|l| l["fields"]["message"] == "deleted")
        .map(|l| {
            let kind = l["fields"]["kind"].as_str().unwrap_or("?");
            if l["fields"]["fargate"] == true {
                format!("fargate {kind}")
            } else {
                kind.to_owned()
            }
        })
        .collect()
}

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
        ]
    };
    let cw = cloudwatch(&tb).await;
    let cluster = tb.env["TESTBED_CLUSTER"].as_str();
    let by_cluster = || dims(&[("ClusterName", cluster)]);

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

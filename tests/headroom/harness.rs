//! What the headroom scenarios share: moto's view of the subnets, the shared Fargate
//! namespace (real Jobs on the Fargate stand-in), reading published metrics back, and
//! running the binary.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};

use crate::common::{Lambda, RUN_LABEL, Testbed, eventually};

/// One test at a time: they all fill and drain the same Fargate subnets.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A watched subnet as moto describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MotoSubnet {
    pub(crate) az: String,
    pub(crate) available: u64,
    pub(crate) capacity: u64,
}

impl MotoSubnet {
    pub(crate) fn utilization_percent(&self) -> f64 {
        (self.capacity - self.available) as f64 * 100.0 / self.capacity as f64
    }
}

/// moto's `DescribeSubnets` for the subnets env.json lists under `key`: AZ, free
/// addresses, 2^(32-p) - 5.
pub(crate) async fn moto_subnets(tb: &Testbed, key: &str) -> BTreeMap<String, MotoSubnet> {
    tb.subnets(key)
        .await
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
pub(crate) async fn watched(tb: &Testbed) -> BTreeMap<String, MotoSubnet> {
    moto_subnets(tb, "TESTBED_SUBNETS").await
}

pub(crate) async fn fargate(tb: &Testbed) -> BTreeMap<String, MotoSubnet> {
    moto_subnets(tb, "TESTBED_FARGATE_SUBNETS").await
}

pub(crate) fn free(subnets: &BTreeMap<String, MotoSubnet>) -> u64 {
    subnets.values().map(|s| s.available).sum()
}

pub(crate) fn capacity(subnets: &BTreeMap<String, MotoSubnet>) -> u64 {
    subnets.values().map(|s| s.capacity).sum()
}

/// Empties the shared Fargate namespace and labels this test's objects with a fresh run id.
pub(crate) async fn fresh_fargate(tb: &Testbed) -> (String, Fargate) {
    clean_fargate(tb).await;
    let run = format!("{:08x}", rand::random::<u32>());
    let f = Fargate::new(tb, &run);
    (run, f)
}

/// The shared Fargate namespace, for one test run id.
pub(crate) struct Fargate {
    pub(crate) env: HashMap<String, String>,
    pub(crate) namespace: String,
    pub(crate) selector: String,
    pub(crate) jobs: Api<Job>,
    pub(crate) pods: Api<Pod>,
}

impl Fargate {
    pub(crate) fn new(tb: &Testbed, run: &str) -> Fargate {
        let namespace = tb.env["TESTBED_FARGATE_NAMESPACE"].clone();
        Fargate {
            env: tb.env.clone(),
            selector: format!("{RUN_LABEL}={run}"),
            jobs: Api::namespaced(tb.admin.clone(), &namespace),
            pods: Api::namespaced(tb.admin.clone(), &namespace),
            namespace,
        }
    }

    /// The run's scope (this namespace, this run's label), Jobs kept for 1 h, finished
    /// Fargate pods for `fargate_ttl`, every metric (the scenarios read the per-subnet
    /// figures back), plus `more`.
    pub(crate) fn settings(
        &self,
        fargate_ttl: &str,
        more: &[(&'static str, &str)],
    ) -> Vec<(&'static str, String)> {
        let mut settings = vec![
            ("REAPER_NAMESPACES", self.namespace.clone()),
            ("REAPER_LABEL_SELECTOR", self.selector.clone()),
            ("REAPER_FARGATE_POD_TTL", fargate_ttl.to_owned()),
            ("REAPER_SUCCEEDED_JOB_TTL", "1h".to_owned()),
            ("REAPER_METRICS_DETAIL", "full".to_owned()),
        ];
        settings.extend(more.iter().map(|(k, v)| (*k, (*v).to_owned())));
        settings
    }

    /// `n` real Jobs named `<prefix>-<run>-<i>` whose single pod runs on Fargate for
    /// `run_seconds` (negative: until deleted).
    pub(crate) async fn create_jobs(&self, run: &str, prefix: &str, n: usize, run_seconds: i32) {
        for i in 0..n {
            let name = format!("{prefix}-{run}-{i:03}");
            let job = fargate_job(&self.env, &name, run, run_seconds, 0);
            self.jobs
                .create(&PostParams::default(), &job)
                .await
                .expect("create Fargate job");
        }
    }

    /// `n` real Jobs whose single pod runs on Fargate and succeeds at once; returns when
    /// every pod has Succeeded and every Job is Complete (each pod keeps its IP).
    pub(crate) async fn burst(&self, run: &str, n: usize) {
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
    pub(crate) async fn running(&self, run: &str, n: usize) -> Vec<String> {
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

    pub(crate) async fn pod_count(&self) -> usize {
        let by_run = ListParams::default().labels(&self.selector);
        self.pods.list(&by_run).await.expect("pods").items.len()
    }

    pub(crate) async fn job_count(&self) -> usize {
        let by_run = ListParams::default().labels(&self.selector);
        self.jobs.list(&by_run).await.expect("jobs").items.len()
    }
}

/// Deletes every test-made Job and pod in the Fargate namespace (any run id, by label) and
/// waits until the Fargate subnets are empty again: the clean state every test starts from.
pub(crate) async fn clean_fargate(tb: &Testbed) {
    let f = Fargate::new(tb, "none");
    // Labels of test-made objects in the Fargate namespace: this harness's and the workload
    // generator's (`testbed/workload.py`, Python self-tests).
    for label in [RUN_LABEL, &tb.env["TESTBED_WORKLOAD_RUN_LABEL"]] {
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

/// The dimensions of `cluster`'s metrics: its identity (name, the testbed's Region, the
/// function's own account: no role is assumed) and `extra`.
pub(crate) fn cluster_dims(
    env: &std::collections::HashMap<String, String>,
    cluster: &str,
    extra: &[(&str, &str)],
) -> Vec<Dimension> {
    let mut pairs = vec![
        ("ClusterName", cluster),
        ("Region", env["AWS_REGION"].as_str()),
        ("Account", "self"),
    ];
    pairs.extend_from_slice(extra);
    dims(&pairs)
}

pub(crate) fn dims(pairs: &[(&str, &str)]) -> Vec<Dimension> {
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
pub(crate) async fn metric(
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
pub(crate) async fn value(
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
pub(crate) async fn identities(
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

pub(crate) fn metrics_namespace(run: &str, step: &str) -> String {
    format!("EKSReaperIT/headroom/{run}/{step}")
}

/// `(name, value)` settings as the harness takes them.
pub(crate) fn as_env<'a, S: AsRef<str>>(
    settings: &'a [(&'static str, S)],
) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_ref())).collect()
}

/// The Lambda, started for one invocation with `settings`, and its report.
pub(crate) async fn invoke<S: AsRef<str>>(tb: &Testbed, settings: &[(&'static str, S)]) -> Value {
    let lambda = Lambda::start(&tb.lambda_env(&as_env(settings))).await;
    let inv = lambda.invoke(&json!({})).await;
    lambda.stop().await;
    inv.report().clone()
}

/// The report's subnet figures by ID: (AZ, available, capacity, utilisation).
pub(crate) fn reported(cluster: &Value) -> BTreeMap<String, (String, u64, u64, f64)> {
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

/// Free addresses of the reported subnets that a Fargate profile lists: what the forecast
/// starts from.
pub(crate) fn reported_fargate_pool(cluster: &Value) -> u64 {
    cluster["subnets"]["subnets"]
        .as_array()
        .expect("subnets")
        .iter()
        .filter(|s| {
            s["sources"]
                .as_array()
                .is_some_and(|src| src.iter().any(|x| x["kind"] == "fargateProfile"))
        })
        .map(|s| s["available"].as_u64().expect("available"))
        .sum()
}

pub(crate) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The CLI run: its JSON report (stdout) and its JSON log lines (stderr).
pub(crate) async fn cli<S: AsRef<str>>(
    tb: &Testbed,
    settings: &[(&'static str, S)],
) -> (Value, Vec<Value>) {
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
pub(crate) fn deletions(logs: &[Value]) -> Vec<String> {
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

/// A real Job of run `run` whose single pod runs on Fargate (the stand-in) for
/// `run_seconds` (negative: until deleted), then exits with `exit_code`.
pub(crate) fn fargate_job(
    env: &HashMap<String, String>,
    name: &str,
    run: &str,
    run_seconds: i32,
    exit_code: i32,
) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": {RUN_LABEL: run}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {RUN_LABEL: run},
                             "annotations": {&env["TESTBED_RUN_SECONDS_ANNOTATION"]: run_seconds.to_string(),
                                             &env["TESTBED_EXIT_CODE_ANNOTATION"]: exit_code.to_string()}},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "task", "image": "busybox:1.36"}]}
            }
        }
    }))
    .expect("job")
}

//! Metrics: a run's figures as CloudWatch metrics, through the sink chosen by config.
//!
//! [`data`] turns [`ClusterFigures`] into a fixed set of [`Datum`]s (pure, tested); a
//! [`Sink`] delivers them: `PutMetricData` ([`cloudwatch`]) or Embedded Metric Format log
//! lines ([`emf`]). [`publish`] never fails the run: whatever happens is an [`Outcome`].
//!
//! ## Metric set (README)
//!
//! Namespace `REAPER_METRICS_NAMESPACE` (default `EKSReaper`). Every metric is published
//! once per cluster per run, with the same names, units and dimensions every time, so
//! alarms and dashboards can rely on them. Standard resolution (60 s).
//!
//! | Metric | Unit | Dimensions | Meaning (statistic to use) |
//! |---|---|---|---|
//! | `JobsDeleted` | Count | ClusterName | Jobs deleted by this run (Sum) |
//! | `PodsDeleted` | Count | ClusterName | Pods deleted by this run, Fargate ones included (Sum) |
//! | `FargatePodsDeleted` | Count | ClusterName | Fargate pods deleted by this run (Sum) |
//! | `DeleteErrors` | Count | ClusterName | Deletions that failed (Sum) |
//! | `Throttled` | Count | ClusterName | 429 answers from the API server (Sum) |
//! | `FinishedJobs` | Count | ClusterName | Finished Jobs seen by this run (Maximum) |
//! | `RetainedJobs` | Count | ClusterName | Finished Jobs kept: retention not over, opted out, native TTL (Maximum) |
//! | `TerminatedPods` | Count | ClusterName | Pods in phase Succeeded/Failed seen by this run — what PodGC's threshold counts (Maximum) |
//! | `FargatePodsHoldingIps` | Count | ClusterName | Finished Fargate pods still holding a subnet IP after this run (Maximum) |
//! | `Backlog` | Count | ClusterName | Objects due for deletion this run left undeleted (deadline, errors) (Maximum) |
//! | `RunDuration` | Milliseconds | ClusterName | Wall time spent on the cluster (Maximum) |
//! | `RunSucceeded` | Count | ClusterName | 1 when the cluster was pruned, 0 when it failed or was skipped (not ACTIVE) — the heartbeat (Sum; alarm on < 1, missing = breaching) |
//! | `LowHeadroomMode` | None | ClusterName | 1 when low-headroom mode was on, else 0 (Maximum) |
//! | `ClusterAvailableIps` | Count | ClusterName | Free IPv4 addresses over the watched subnets (Minimum) |
//! | `MinSubnetAvailableIps` | Count | ClusterName | Free IPv4 addresses of the fullest watched subnet (Minimum) |
//! | `IpExhaustionHours` | None | ClusterName | Forecast hours until the watched subnets are full if pruning stopped; not published without Fargate traffic (Minimum) |
//! | `SubnetAvailableIps` | Count | ClusterName, SubnetId, AvailabilityZone | Free IPv4 addresses of one subnet (Minimum) |
//! | `SubnetIpUtilization` | Percent | ClusterName, SubnetId, AvailabilityZone | Share of the subnet's usable IPv4 addresses in use (Maximum) |
//!
//! The subnet and IP metrics are left out for a run that could not read the subnets
//! (rather than published as 0), and IPv6-only subnets have none. With
//! `REAPER_METRICS_PER_NAMESPACE=true`, `JobsDeleted`, `PodsDeleted` and
//! `FargatePodsDeleted` are also published per namespace with dimensions `ClusterName,
//! Namespace` — one more metric per namespace and name, each billed monthly.

pub mod cloudwatch;
pub mod emf;

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::deadline::Deadline;
use crate::subnets::Headroom;

/// Dimension names.
pub mod dimension {
    /// EKS cluster name.
    pub const CLUSTER_NAME: &str = "ClusterName";
    /// EC2 subnet ID.
    pub const SUBNET_ID: &str = "SubnetId";
    /// Availability Zone name.
    pub const AVAILABILITY_ZONE: &str = "AvailabilityZone";
    /// Kubernetes namespace (per-namespace opt-in only).
    pub const NAMESPACE: &str = "Namespace";
}

/// CloudWatch units used by the metric set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things.
    Count,
    /// A duration in milliseconds.
    Milliseconds,
    /// A percentage, 0–100.
    Percent,
    /// A plain number (flags, hours: CloudWatch has no hour unit).
    None,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Percent => "Percent",
            Unit::None => "None",
        }
    }
}

/// Every metric eks-reaper publishes; names and units are part of the alarm contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the table in the module docs describes each one
pub enum Metric {
    JobsDeleted,
    PodsDeleted,
    FargatePodsDeleted,
    DeleteErrors,
    Throttled,
    FinishedJobs,
    RetainedJobs,
    TerminatedPods,
    FargatePodsHoldingIps,
    Backlog,
    RunDuration,
    RunSucceeded,
    LowHeadroomMode,
    ClusterAvailableIps,
    MinSubnetAvailableIps,
    IpExhaustionHours,
    SubnetAvailableIps,
    SubnetIpUtilization,
}

impl Metric {
    /// All metrics, in publishing order.
    pub const ALL: [Metric; 18] = [
        Metric::JobsDeleted,
        Metric::PodsDeleted,
        Metric::FargatePodsDeleted,
        Metric::DeleteErrors,
        Metric::Throttled,
        Metric::FinishedJobs,
        Metric::RetainedJobs,
        Metric::TerminatedPods,
        Metric::FargatePodsHoldingIps,
        Metric::Backlog,
        Metric::RunDuration,
        Metric::RunSucceeded,
        Metric::LowHeadroomMode,
        Metric::ClusterAvailableIps,
        Metric::MinSubnetAvailableIps,
        Metric::IpExhaustionHours,
        Metric::SubnetAvailableIps,
        Metric::SubnetIpUtilization,
    ];

    /// The metric name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::JobsDeleted => "JobsDeleted",
            Metric::PodsDeleted => "PodsDeleted",
            Metric::FargatePodsDeleted => "FargatePodsDeleted",
            Metric::DeleteErrors => "DeleteErrors",
            Metric::Throttled => "Throttled",
            Metric::FinishedJobs => "FinishedJobs",
            Metric::RetainedJobs => "RetainedJobs",
            Metric::TerminatedPods => "TerminatedPods",
            Metric::FargatePodsHoldingIps => "FargatePodsHoldingIps",
            Metric::Backlog => "Backlog",
            Metric::RunDuration => "RunDuration",
            Metric::RunSucceeded => "RunSucceeded",
            Metric::LowHeadroomMode => "LowHeadroomMode",
            Metric::ClusterAvailableIps => "ClusterAvailableIps",
            Metric::MinSubnetAvailableIps => "MinSubnetAvailableIps",
            Metric::IpExhaustionHours => "IpExhaustionHours",
            Metric::SubnetAvailableIps => "SubnetAvailableIps",
            Metric::SubnetIpUtilization => "SubnetIpUtilization",
        }
    }

    /// The metric's unit.
    pub fn unit(self) -> Unit {
        match self {
            Metric::RunDuration => Unit::Milliseconds,
            Metric::SubnetIpUtilization => Unit::Percent,
            Metric::LowHeadroomMode | Metric::IpExhaustionHours => Unit::None,
            _ => Unit::Count,
        }
    }
}

/// A dimension of one datum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dimension {
    /// One of the names in [`dimension`].
    pub name: &'static str,
    /// Its value (never empty: CloudWatch rejects empty values).
    pub value: String,
}

/// One value of one metric, ready for any sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    /// Which metric.
    pub metric: Metric,
    /// The value (finite).
    pub value: f64,
    /// Its dimensions, in a fixed order.
    pub dimensions: Vec<Dimension>,
}

/// Deletions in one namespace, for the per-namespace opt-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceDeletions {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Jobs deleted in it.
    pub jobs_deleted: u64,
    /// Pods deleted in it (Fargate ones included).
    pub pods_deleted: u64,
    /// Fargate pods deleted in it.
    pub fargate_pods_deleted: u64,
}

/// IPv4 figures of one watched subnet.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetFigures {
    /// `subnet-…` ID.
    pub subnet_id: String,
    /// Availability Zone name.
    pub availability_zone: String,
    /// Free IPv4 addresses.
    pub available: u64,
    /// Share of usable addresses in use, 0–100.
    pub utilization_percent: f64,
}

/// The numbers of one cluster's run, filled by the run and published as the metric set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFigures {
    /// EKS cluster name (the `ClusterName` dimension).
    pub cluster: String,
    /// Jobs deleted.
    pub jobs_deleted: u64,
    /// Pods deleted, Fargate ones included.
    pub pods_deleted: u64,
    /// Fargate pods deleted.
    pub fargate_pods_deleted: u64,
    /// Deletions that failed.
    pub delete_errors: u64,
    /// 429 answers from the API server.
    pub throttled: u64,
    /// Finished Jobs seen.
    pub finished_jobs: u64,
    /// Finished Jobs kept (retention not over, opted out, left to the native TTL).
    pub retained_jobs: u64,
    /// Pods in phase Succeeded or Failed seen.
    pub terminated_pods: u64,
    /// Finished Fargate pods still holding a subnet IP after the run.
    pub fargate_pods_holding_ips: u64,
    /// Objects due for deletion that the run left undeleted.
    pub backlog: u64,
    /// Wall time spent on the cluster.
    pub run_duration: Duration,
    /// The cluster's run completed (connect, list and delete phases ran to the end).
    pub run_succeeded: bool,
    /// Low-headroom mode was on.
    pub low_headroom_mode: bool,
    /// Deletions per namespace: `Some` only with `REAPER_METRICS_PER_NAMESPACE`.
    pub per_namespace: Option<Vec<NamespaceDeletions>>,
    /// Per-subnet IPv4 figures: `None` when the subnets could not be read.
    pub subnets: Option<Vec<SubnetFigures>>,
    /// Free IPv4 addresses over the watched subnets (`None`: not read).
    pub cluster_available_ips: Option<u64>,
    /// Free IPv4 addresses of the fullest watched subnet (`None`: not read, or no IPv4
    /// subnet).
    pub min_subnet_available_ips: Option<u64>,
    /// Forecast hours to IP exhaustion (`None`: no forecast).
    pub ip_exhaustion_hours: Option<f64>,
}

impl ClusterFigures {
    /// Fills the subnet fields from a headroom reading.
    pub fn set_headroom(&mut self, headroom: &Headroom) {
        self.subnets = Some(
            headroom
                .subnets
                .iter()
                .map(|s| SubnetFigures {
                    subnet_id: s.subnet_id.clone(),
                    availability_zone: s.availability_zone.clone(),
                    available: s.available,
                    utilization_percent: s.utilization_percent,
                })
                .collect(),
        );
        self.cluster_available_ips = Some(headroom.total_available);
        self.min_subnet_available_ips = headroom.min_available.as_ref().map(|m| m.available);
    }
}

fn non_empty(value: &str) -> String {
    if value.is_empty() {
        "unknown".to_owned()
    } else {
        value.to_owned()
    }
}

/// The metric set for these figures, in a stable order (cluster by cluster, then
/// [`Metric::ALL`] order, subnets by ID as given, namespaces as given). Optional figures
/// that are `None` and non-finite values produce no datum.
pub fn data(figures: &[ClusterFigures]) -> Vec<Datum> {
    let mut out = Vec::new();
    for f in figures {
        let cluster = Dimension {
            name: dimension::CLUSTER_NAME,
            value: non_empty(&f.cluster),
        };
        let mut push = |metric: Metric, value: f64, extra: Vec<Dimension>| {
            if value.is_finite() {
                let mut dimensions = vec![cluster.clone()];
                dimensions.extend(extra);
                out.push(Datum {
                    metric,
                    value,
                    dimensions,
                });
            }
        };
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        push(Metric::JobsDeleted, f.jobs_deleted as f64, vec![]);
        push(Metric::PodsDeleted, f.pods_deleted as f64, vec![]);
        push(
            Metric::FargatePodsDeleted,
            f.fargate_pods_deleted as f64,
            vec![],
        );
        push(Metric::DeleteErrors, f.delete_errors as f64, vec![]);
        push(Metric::Throttled, f.throttled as f64, vec![]);
        push(Metric::FinishedJobs, f.finished_jobs as f64, vec![]);
        push(Metric::RetainedJobs, f.retained_jobs as f64, vec![]);
        push(Metric::TerminatedPods, f.terminated_pods as f64, vec![]);
        push(
            Metric::FargatePodsHoldingIps,
            f.fargate_pods_holding_ips as f64,
            vec![],
        );
        push(Metric::Backlog, f.backlog as f64, vec![]);
        push(
            Metric::RunDuration,
            // Through integer microseconds: `as_secs_f64() * 1000.0` makes 2.345 s 2344.999….
            f.run_duration.as_micros() as f64 / 1000.0,
            vec![],
        );
        push(Metric::RunSucceeded, flag(f.run_succeeded), vec![]);
        push(Metric::LowHeadroomMode, flag(f.low_headroom_mode), vec![]);
        if let Some(v) = f.cluster_available_ips {
            push(Metric::ClusterAvailableIps, v as f64, vec![]);
        }
        if let Some(v) = f.min_subnet_available_ips {
            push(Metric::MinSubnetAvailableIps, v as f64, vec![]);
        }
        if let Some(v) = f.ip_exhaustion_hours {
            push(Metric::IpExhaustionHours, v, vec![]);
        }
        for s in f.subnets.iter().flatten() {
            let dims = || {
                vec![
                    Dimension {
                        name: dimension::SUBNET_ID,
                        value: non_empty(&s.subnet_id),
                    },
                    Dimension {
                        name: dimension::AVAILABILITY_ZONE,
                        value: non_empty(&s.availability_zone),
                    },
                ]
            };
            push(Metric::SubnetAvailableIps, s.available as f64, dims());
            push(Metric::SubnetIpUtilization, s.utilization_percent, dims());
        }
        for n in f.per_namespace.iter().flatten() {
            let dims = || {
                vec![Dimension {
                    name: dimension::NAMESPACE,
                    value: non_empty(&n.namespace),
                }]
            };
            push(Metric::JobsDeleted, n.jobs_deleted as f64, dims());
            push(Metric::PodsDeleted, n.pods_deleted as f64, dims());
            push(
                Metric::FargatePodsDeleted,
                n.fargate_pods_deleted as f64,
                dims(),
            );
        }
    }
    out
}

/// Which sink `REAPER_METRICS_SINK` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkKind {
    /// `cloudwatch`: `PutMetricData` (default).
    #[default]
    CloudWatch,
    /// `emf`: Embedded Metric Format lines on stdout.
    Emf,
    /// `none`: publish nothing.
    None,
}

impl SinkKind {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::CloudWatch => "cloudwatch",
            SinkKind::Emf => "emf",
            SinkKind::None => "none",
        }
    }
}

impl fmt::Display for SinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where metrics go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// `PutMetricData` through this client.
    CloudWatch {
        /// CloudWatch client (see [`cloudwatch::client`] for its retry settings).
        client: aws_sdk_cloudwatch::Client,
        /// CloudWatch namespace.
        namespace: String,
    },
    /// Embedded Metric Format documents, one JSON line each, on stdout.
    Emf {
        /// CloudWatch namespace.
        namespace: String,
    },
    /// Nothing is published.
    None,
}

impl Sink {
    /// Builds the sink from configuration values; `sdk` (region, credentials, endpoint
    /// overrides such as `AWS_ENDPOINT_URL_CLOUDWATCH`) is only used by the CloudWatch sink.
    pub fn new(kind: SinkKind, namespace: impl Into<String>, sdk: &aws_types::SdkConfig) -> Sink {
        let namespace = namespace.into();
        match kind {
            SinkKind::CloudWatch => Sink::CloudWatch {
                client: cloudwatch::client(sdk),
                namespace,
            },
            SinkKind::Emf => Sink::Emf { namespace },
            SinkKind::None => Sink::None,
        }
    }

    /// The sink's configuration name (`cloudwatch`, `emf`, `none`).
    pub fn name(&self) -> &'static str {
        match self {
            Sink::CloudWatch { .. } => SinkKind::CloudWatch.as_str(),
            Sink::Emf { .. } => SinkKind::Emf.as_str(),
            Sink::None => SinkKind::None.as_str(),
        }
    }
}

/// What publishing did — part of the run report. A failure is recorded, never raised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Sink name (`cloudwatch`, `emf`, `none`).
    pub sink: &'static str,
    /// Metric values delivered (accepted by `PutMetricData`, or written as EMF).
    pub metrics: usize,
    /// `PutMetricData` operations attempted (SDK retries not counted), or EMF documents
    /// written.
    pub calls: usize,
    /// Metric values built but not delivered.
    pub failed: usize,
    /// The first error, if any; publishing stops there.
    pub error: Option<String>,
}

impl Outcome {
    /// True when every metric value was delivered.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Publishes the metric set of these clusters through `sink`, timestamped now, each call
/// bounded by `deadline`. Never panics and never returns an error: failures are in the
/// [`Outcome`] (and logged).
pub async fn publish(sink: &Sink, figures: &[ClusterFigures], deadline: &Deadline) -> Outcome {
    let data = data(figures);
    let now = Timestamp::now();
    let outcome = match sink {
        Sink::CloudWatch { client, namespace } => {
            cloudwatch::put(client, namespace, &data, now, deadline).await
        }
        Sink::Emf { namespace } => emf::print(&mut std::io::stdout().lock(), namespace, &data, now),
        Sink::None => Outcome {
            sink: sink.name(),
            ..Outcome::default()
        },
    };
    match &outcome.error {
        Some(error) => tracing::warn!(
            sink = outcome.sink,
            metrics = outcome.metrics,
            failed = outcome.failed,
            calls = outcome.calls,
            error = %error,
            "metrics not published"
        ),
        None => tracing::info!(
            sink = outcome.sink,
            metrics = outcome.metrics,
            calls = outcome.calls,
            "metrics published"
        ),
    }
    outcome
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Figures with every optional part present.
    pub(crate) fn full_figures(cluster: &str) -> ClusterFigures {
        ClusterFigures {
            cluster: cluster.to_owned(),
            jobs_deleted: 3,
            pods_deleted: 5,
            fargate_pods_deleted: 2,
            delete_errors: 1,
            throttled: 4,
            finished_jobs: 10,
            retained_jobs: 7,
            terminated_pods: 6,
            fargate_pods_holding_ips: 1,
            backlog: 0,
            run_duration: Duration::from_millis(1500),
            run_succeeded: true,
            low_headroom_mode: false,
            per_namespace: Some(vec![NamespaceDeletions {
                namespace: "etl".into(),
                jobs_deleted: 3,
                pods_deleted: 5,
                fargate_pods_deleted: 2,
            }]),
            subnets: Some(vec![
                SubnetFigures {
                    subnet_id: "subnet-a".into(),
                    availability_zone: "eu-west-1a".into(),
                    available: 4000,
                    utilization_percent: 2.2,
                },
                SubnetFigures {
                    subnet_id: "subnet-b".into(),
                    availability_zone: "eu-west-1b".into(),
                    available: 11,
                    utilization_percent: 0.0,
                },
            ]),
            cluster_available_ips: Some(4011),
            min_subnet_available_ips: Some(11),
            ip_exhaustion_hours: Some(8.5),
        }
    }

    fn names(data: &[Datum]) -> Vec<&'static str> {
        data.iter().map(|d| d.metric.name()).collect()
    }

    #[test]
    fn every_metric_is_published_for_full_figures() {
        let data = data(&[full_figures("prod")]);
        for m in Metric::ALL {
            assert!(data.iter().any(|d| d.metric == m), "{} missing", m.name());
        }
        // 16 cluster-level + 2 subnets × 2 + 3 per-namespace.
        assert_eq!(data.len(), 16 + 4 + 3);
        let run = data
            .iter()
            .find(|d| d.metric == Metric::RunDuration)
            .unwrap();
        assert_eq!(run.value, 1500.0);
    }

    #[test]
    fn run_duration_is_exact_milliseconds() {
        let figures = ClusterFigures {
            run_duration: Duration::from_micros(2_345_500),
            ..ClusterFigures::default()
        };
        let data = data(&[figures]);
        let run = data
            .iter()
            .find(|d| d.metric == Metric::RunDuration)
            .unwrap();
        assert_eq!(run.value, 2345.5);
    }

    #[test]
    fn minimal_figures_publish_the_heartbeat_without_subnet_metrics() {
        let figures = ClusterFigures {
            cluster: "dev".into(),
            run_succeeded: true,
            ..ClusterFigures::default()
        };
        let data = data(&[figures]);
        assert_eq!(data.len(), 13);
        assert!(!names(&data).contains(&"ClusterAvailableIps"));
        assert!(!names(&data).contains(&"IpExhaustionHours"));
        let heartbeat = data
            .iter()
            .find(|d| d.metric == Metric::RunSucceeded)
            .unwrap();
        assert_eq!(heartbeat.value, 1.0);
        assert!(data.iter().all(|d| d.dimensions.len() == 1
            && d.dimensions[0].name == "ClusterName"
            && d.dimensions[0].value == "dev"));
    }

    #[test]
    fn subnet_metrics_carry_cluster_subnet_and_zone() {
        let data = data(&[full_figures("prod")]);
        let d = data
            .iter()
            .find(|d| d.metric == Metric::SubnetAvailableIps)
            .unwrap();
        let dims: Vec<_> = d
            .dimensions
            .iter()
            .map(|d| (d.name, d.value.as_str()))
            .collect();
        assert_eq!(
            dims,
            [
                ("ClusterName", "prod"),
                ("SubnetId", "subnet-a"),
                ("AvailabilityZone", "eu-west-1a")
            ]
        );
        assert_eq!(d.value, 4000.0);
    }

    #[test]
    fn namespace_dimension_only_with_the_opt_in() {
        let with = data(&[full_figures("prod")]);
        assert_eq!(
            with.iter()
                .filter(|d| d.dimensions.iter().any(|x| x.name == "Namespace"))
                .count(),
            3
        );
        let mut figures = full_figures("prod");
        figures.per_namespace = None;
        let without = data(&[figures]);
        assert!(
            !without
                .iter()
                .any(|d| d.dimensions.iter().any(|x| x.name == "Namespace"))
        );
    }

    #[test]
    fn non_finite_values_are_dropped() {
        let mut figures = full_figures("prod");
        figures.ip_exhaustion_hours = Some(f64::INFINITY);
        assert!(!names(&data(&[figures])).contains(&"IpExhaustionHours"));
    }

    #[test]
    fn units_are_cloudwatch_units() {
        assert_eq!(Metric::RunDuration.unit().as_str(), "Milliseconds");
        assert_eq!(Metric::SubnetIpUtilization.unit().as_str(), "Percent");
        assert_eq!(Metric::IpExhaustionHours.unit().as_str(), "None");
        assert_eq!(Metric::SubnetAvailableIps.unit().as_str(), "Count");
    }

    #[test]
    fn documented_table_lists_every_metric_with_its_unit() {
        let source = include_str!("mod.rs");
        for m in Metric::ALL {
            let row = format!("| `{}` | {} |", m.name(), m.unit().as_str());
            assert!(source.contains(&row), "README table lacks {row}");
        }
    }

    #[test]
    fn publish_future_is_send() {
        // The Lambda handler and tokio::spawn need Send futures (the EMF arm locks stdout).
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&publish(&Sink::None, &[], &Deadline::none()));
    }

    #[tokio::test]
    async fn none_sink_publishes_nothing_and_reports_it() {
        let outcome = publish(&Sink::None, &[full_figures("prod")], &Deadline::none()).await;
        assert_eq!(outcome.sink, "none");
        assert_eq!((outcome.metrics, outcome.calls), (0, 0));
        assert!(outcome.ok());
    }

    #[test]
    fn headroom_fills_subnet_figures() {
        use crate::subnets::{Headroom, Source, usage};
        let headroom = Headroom::new(
            vec![
                usage(
                    "subnet-a",
                    "az-a",
                    Some("10.0.0.0/28"),
                    Some(2),
                    false,
                    vec![Source::Cluster],
                )
                .unwrap(),
                usage(
                    "subnet-b",
                    "az-b",
                    Some("10.0.1.0/24"),
                    Some(200),
                    false,
                    vec![],
                )
                .unwrap(),
            ],
            vec![],
        );
        let mut f = ClusterFigures::default();
        f.set_headroom(&headroom);
        assert_eq!(f.cluster_available_ips, Some(202));
        assert_eq!(f.min_subnet_available_ips, Some(2));
        assert_eq!(f.subnets.as_ref().unwrap().len(), 2);
    }
}

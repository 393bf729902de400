//! The figures of one cluster's run, as the metrics publish them: taken from the cluster's
//! report, then turned into the fixed metric set by [`data`].

use std::time::Duration;

use serde::Serialize;

use super::list::{Datum, Dimension, Metric, dimension};
use crate::headroom::Headroom;
use crate::report::{ClusterReport, ClusterStatus, NamespaceDeletions};

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
    /// Its Region (the `Region` dimension).
    pub region: String,
    /// Its account (the `Account` dimension): the same name in two accounts or Regions is
    /// two series, two alarm contributors, two emergency runs.
    pub account: String,
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
    /// The cluster was never reached (not described, not ACTIVE, no token): only the
    /// run-health figures are published (`RunSucceeded` 0, `SubnetsRead` 0,
    /// `RunDuration`), not a set of zero counts that would read as "nothing to prune".
    pub health_only: bool,
    /// Low-headroom mode was on.
    pub low_headroom_mode: bool,
    /// The subnets were read this run (the IP figures below are there).
    pub subnets_read: bool,
    /// Deletions per namespace: `Some` only with `REAPER_METRICS_PER_NAMESPACE`.
    pub per_namespace: Option<Vec<NamespaceDeletions>>,
    /// Per-subnet IPv4 figures: `None` when the subnets could not be read.
    pub subnets: Option<Vec<SubnetFigures>>,
    /// Free IPv4 addresses over the watched subnets (`None`: not read).
    pub cluster_available_ips: Option<u64>,
    /// Free IPv4 addresses of the fullest watched subnet (`None`: not read, or no IPv4
    /// subnet).
    pub min_subnet_available_ips: Option<u64>,
    /// Free share of the tightest watched subnet, 0–100 (`None`: not read, or no IPv4
    /// subnet).
    pub min_subnet_free_percent: Option<f64>,
    /// Forecast hours to IP exhaustion (`None`: no forecast).
    pub ip_exhaustion_hours: Option<f64>,
    /// Jobs and pods stuck terminating (being deleted longer than `REAPER_STUCK_AFTER`).
    pub stuck_objects: u64,
    /// Of those, Fargate pods (each holds a subnet IP).
    pub stuck_fargate_pods: u64,
    /// Requests sent to the API server, retries included.
    pub api_requests: u64,
    /// Response bytes received from the API server, as sent.
    pub api_bytes_received: u64,
}

impl ClusterFigures {
    /// The figures of one cluster's report. A dry run deleted nothing,
    /// so its deletion figures are 0.
    pub fn of(report: &ClusterReport, per_namespace: bool) -> ClusterFigures {
        let real = |n: u64| if report.dry_run { 0 } else { n };
        let mut f = ClusterFigures {
            cluster: report.cluster.clone(),
            region: report.region.clone().unwrap_or_default(),
            account: report.account.clone(),
            jobs_deleted: real(report.jobs.deleted),
            pods_deleted: real(report.pods.deleted),
            fargate_pods_deleted: real(report.pods.fargate_deleted),
            delete_errors: report.errors.values().sum(),
            throttled: report.throttled,
            finished_jobs: report.jobs.finished,
            retained_jobs: report
                .jobs
                .finished
                .saturating_sub(real(report.jobs.deleted)),
            terminated_pods: report.pods.terminated,
            fargate_pods_holding_ips: report.pods.fargate_holding_ips,
            backlog: report.backlog,
            run_duration: std::time::Duration::from_millis(report.duration_ms),
            // Only a pruned cluster is a heartbeat: a cluster skipped because it is not
            // ACTIVE (FAILED, DELETING, a long UPDATING) was not cleaned either, and the
            // heartbeat alarm should say so once that lasts several runs.
            run_succeeded: report.status == ClusterStatus::Ok,
            health_only: !report.reached,
            low_headroom_mode: report.low_headroom,
            per_namespace: per_namespace.then(|| {
                report
                    .deleted_by_namespace
                    .values()
                    .map(|n| NamespaceDeletions {
                        namespace: n.namespace.clone(),
                        jobs_deleted: real(n.jobs_deleted),
                        pods_deleted: real(n.pods_deleted),
                        fargate_pods_deleted: real(n.fargate_pods_deleted),
                    })
                    .collect()
            }),
            ip_exhaustion_hours: report.forecast.as_ref().and_then(|f| f.hours_to_exhaustion),
            stuck_objects: report.stuck.jobs + report.stuck.pods,
            stuck_fargate_pods: report.stuck.fargate_pods,
            api_requests: report.requests,
            api_bytes_received: report.bytes_received,
            ..ClusterFigures::default()
        };
        if let Some(h) = &report.subnets {
            f.set_headroom(h);
        }
        f
    }

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
        self.subnets_read = true;
        self.cluster_available_ips = Some(headroom.total_available);
        self.min_subnet_available_ips = headroom.min_available.as_ref().map(|m| m.available);
        self.min_subnet_free_percent = headroom.tightest_free_fraction().map(|f| f * 100.0);
    }
}

/// A dimension value, or `unknown` for an empty one (CloudWatch rejects empty values).
fn or_unknown(value: &str) -> String {
    if value.is_empty() {
        "unknown".to_owned()
    } else {
        value.to_owned()
    }
}

/// A cluster's dimensions, its identity ([`crate::identity`]): `ClusterName`, `Region`,
/// `Account`, in that order.
pub fn cluster_dimensions(name: &str, region: &str, account: &str) -> [Dimension; 3] {
    [
        (dimension::CLUSTER_NAME, name),
        (dimension::REGION, region),
        (dimension::ACCOUNT, account),
    ]
    .map(|(name, value)| Dimension {
        name,
        value: or_unknown(value),
    })
}

/// The metric set for these figures, in a stable order (cluster by cluster, then
/// [`Metric::ALL`] order, subnets by ID as given, namespaces as given). Optional figures
/// that are `None` and non-finite values produce no datum.
///
/// Long on purpose: one entry per metric, in the order of [`Metric::ALL`], so a reader
/// checks the whole set against the alarms in one place.
pub fn data(figures: &[ClusterFigures]) -> Vec<Datum> {
    let mut out = Vec::new();
    for f in figures {
        let cluster = cluster_dimensions(&f.cluster, &f.region, &f.account);
        let mut push = |metric: Metric, value: f64, extra: Vec<Dimension>| {
            if value.is_finite() {
                let mut dimensions = cluster.to_vec();
                dimensions.extend(extra);
                out.push(Datum {
                    metric,
                    value,
                    dimensions,
                });
            }
        };
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        if f.health_only {
            push(
                Metric::RunDuration,
                f.run_duration.as_micros() as f64 / 1000.0,
                vec![],
            );
            push(Metric::RunSucceeded, flag(f.run_succeeded), vec![]);
            push(Metric::SubnetsRead, flag(f.subnets_read), vec![]);
            continue;
        }
        push(Metric::JobsDeleted, f.jobs_deleted as f64, vec![]);
        push(Metric::PodsDeleted, f.pods_deleted as f64, vec![]);
        push(
            Metric::FargatePodsDeleted,
            f.fargate_pods_deleted as f64,
            vec![],
        );
        push(
            Metric::ObjectsDeleted,
            (f.jobs_deleted + f.pods_deleted) as f64,
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
        push(Metric::SubnetsRead, flag(f.subnets_read), vec![]);
        if let Some(v) = f.cluster_available_ips {
            push(Metric::ClusterAvailableIps, v as f64, vec![]);
        }
        if let Some(v) = f.min_subnet_available_ips {
            push(Metric::MinSubnetAvailableIps, v as f64, vec![]);
        }
        if let Some(v) = f.min_subnet_free_percent {
            push(Metric::MinSubnetFreePercent, v, vec![]);
        }
        if let Some(v) = f.ip_exhaustion_hours {
            push(Metric::IpExhaustionHours, v, vec![]);
        }
        for s in f.subnets.iter().flatten() {
            let dims = || {
                vec![
                    Dimension {
                        name: dimension::SUBNET_ID,
                        value: or_unknown(&s.subnet_id),
                    },
                    Dimension {
                        name: dimension::AVAILABILITY_ZONE,
                        value: or_unknown(&s.availability_zone),
                    },
                ]
            };
            push(Metric::SubnetAvailableIps, s.available as f64, dims());
            push(Metric::SubnetIpUtilization, s.utilization_percent, dims());
        }
        push(Metric::StuckObjects, f.stuck_objects as f64, vec![]);
        push(
            Metric::StuckFargatePods,
            f.stuck_fargate_pods as f64,
            vec![],
        );
        push(Metric::ApiRequests, f.api_requests as f64, vec![]);
        push(
            Metric::ApiBytesReceived,
            f.api_bytes_received as f64,
            vec![],
        );
        for n in f.per_namespace.iter().flatten() {
            let dims = || {
                vec![Dimension {
                    name: dimension::NAMESPACE,
                    value: or_unknown(&n.namespace),
                }]
            };
            push(Metric::JobsDeleted, n.jobs_deleted as f64, dims());
            push(Metric::PodsDeleted, n.pods_deleted as f64, dims());
            push(
                Metric::FargatePodsDeleted,
                n.fargate_pods_deleted as f64,
                dims(),
            );
            push(
                Metric::ObjectsDeleted,
                (n.jobs_deleted + n.pods_deleted) as f64,
                dims(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::ClusterFailure;
    use crate::testing::full_figures;

    fn names(data: &[Datum]) -> Vec<&'static str> {
        data.iter().map(|d| d.metric.name()).collect()
    }

    #[test]
    fn every_metric_is_published_for_full_figures() {
        let data = data(&[full_figures("prod")]);
        for m in Metric::ALL {
            assert!(data.iter().any(|d| d.metric == m), "{} missing", m.name());
        }
        // 23 cluster-level + 2 subnets × 2 + 4 per-namespace.
        assert_eq!(data.len(), 23 + 4 + 4);
        let run = data
            .iter()
            .find(|d| d.metric == Metric::RunDuration)
            .unwrap();
        assert_eq!(run.value, 1500.0);
    }

    #[test]
    fn the_runs_own_requests_and_bytes_are_published() {
        let mut report = ClusterReport::new("prod", Some("eu-west-1".to_owned()), false);
        report.reached = true;
        report.requests = 41;
        report.bytes_received = 2_900_000;
        let data = data(&[ClusterFigures::of(&report, false)]);
        let value = |m: Metric| data.iter().find(|d| d.metric == m).map(|d| d.value);
        assert_eq!(value(Metric::ApiRequests), Some(41.0));
        assert_eq!(value(Metric::ApiBytesReceived), Some(2_900_000.0));
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
        assert_eq!(data.len(), 19);
        assert!(!names(&data).contains(&"ClusterAvailableIps"));
        assert!(!names(&data).contains(&"MinSubnetFreePercent"));
        let read = data.iter().find(|d| d.metric == Metric::SubnetsRead);
        assert_eq!(
            read.map(|d| d.value),
            Some(0.0),
            "subnets not read: 0, not missing"
        );
        assert!(!names(&data).contains(&"IpExhaustionHours"));
        let heartbeat = data
            .iter()
            .find(|d| d.metric == Metric::RunSucceeded)
            .unwrap();
        assert_eq!(heartbeat.value, 1.0);
        assert!(data.iter().all(|d| d.dimensions.len() == 3
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
                ("Region", "eu-west-1"),
                ("Account", "self"),
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
            4
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
    fn headroom_fills_subnet_figures() {
        use crate::headroom::subnets::{Headroom, Source, usage};
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
        assert!(f.subnets_read);
        // subnet-a: 2 free of 11 usable.
        let free = f.min_subnet_free_percent.expect("free percent");
        assert!((free - 2.0 * 100.0 / 11.0).abs() < 1e-9, "{free}");
        assert_eq!(f.subnets.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn a_dry_run_publishes_no_deletions() {
        let mut r = ClusterReport::new("etl", None, true);
        r.pods.deleted = 1;
        r.pods.fargate_deleted = 1;
        r.deleted_by_namespace.insert(
            "etl".to_owned(),
            NamespaceDeletions {
                namespace: "etl".to_owned(),
                pods_deleted: 1,
                fargate_pods_deleted: 1,
                ..NamespaceDeletions::default()
            },
        );
        let f = ClusterFigures::of(&r, true);
        assert_eq!(f.fargate_pods_deleted, 0, "a dry run deletes nothing");
        assert_eq!(f.per_namespace.expect("per namespace")[0].pods_deleted, 0);
        r.dry_run = false;
        assert_eq!(ClusterFigures::of(&r, true).fargate_pods_deleted, 1);
    }

    #[test]
    fn stuck_objects_are_published_from_the_report_even_in_a_dry_run() {
        let mut r = ClusterReport::new("etl", None, true);
        r.reached = true;
        r.stuck.jobs = 1;
        r.stuck.pods = 3;
        r.stuck.fargate_pods = 2;
        let f = ClusterFigures::of(&r, false);
        assert_eq!(
            (f.stuck_objects, f.stuck_fargate_pods),
            (4, 2),
            "a dry run deletes nothing, but what is stuck is stuck"
        );
        let data = data(&[f]);
        let value = |m: Metric| data.iter().find(|d| d.metric == m).map(|d| d.value);
        assert_eq!(value(Metric::StuckObjects), Some(4.0));
        assert_eq!(value(Metric::StuckFargatePods), Some(2.0));
    }

    #[test]
    fn only_a_pruned_cluster_counts_as_a_heartbeat() {
        let ok = ClusterReport::new("etl", None, false);
        assert!(ClusterFigures::of(&ok, false).run_succeeded);
        let mut skipped = ClusterReport::new("etl", None, false);
        skipped.skip(
            ClusterFailure::NotActive,
            "cluster status is UPDATING".to_owned(),
        );
        assert!(!ClusterFigures::of(&skipped, false).run_succeeded);
        let mut failed = ClusterReport::new("etl", None, false);
        failed.fail(ClusterFailure::Forbidden, "HTTP 403".to_owned());
        assert!(!ClusterFigures::of(&failed, false).run_succeeded);
    }

    #[test]
    fn a_cluster_never_reached_publishes_only_its_run_health() {
        let mut failed = ClusterReport::new("etl", None, false);
        failed.fail(
            ClusterFailure::AwsCredentials,
            "no AWS credentials".to_owned(),
        );
        failed.duration_ms = 12;
        let data = data(&[ClusterFigures::of(&failed, false)]);
        assert_eq!(names(&data), ["RunDuration", "RunSucceeded", "SubnetsRead"]);
        assert!(
            data.iter()
                .filter(|d| d.metric != Metric::RunDuration)
                .all(|d| d.value == 0.0)
        );
        let mut listed = ClusterReport::new("etl", None, false);
        listed.reached = true;
        listed.fail(ClusterFailure::Forbidden, "403".to_owned());
        let data = super::data(&[ClusterFigures::of(&listed, false)]);
        assert_eq!(data.len(), 19, "a reached cluster publishes its counts");
    }
}

//! Metrics: a run's figures as CloudWatch metrics, through the sink chosen by config.
//!
//! [`list`] names the metrics; [`figures`] turns a cluster's report into
//! [`ClusterFigures`] and those into a fixed set of [`Datum`]s (pure, tested); [`detail`]
//! keeps those the configured detail level publishes; a [`Sink`] delivers them:
//! `PutMetricData` ([`cloudwatch`]) or Embedded Metric Format log lines ([`emf`]).
//! [`publish`] never fails the run: whatever happens is a [`MetricsOutcome`].
//!
//! ## Metric set (docs/reference.md)
//!
//! Namespace `REAPER_METRICS_NAMESPACE` (default `EKSReaper`). `REAPER_METRICS_DETAIL=full`
//! publishes the whole table every run; `essential` (the default) only the metrics
//! [`detail::ESSENTIAL`] lists, which every alarm and the dashboard's core read, and of
//! those it sends `Backlog`, `DeleteErrors`, `Throttled` and `StuckObjects` only when they
//! are not 0
//! ([`detail::SENT_WHEN_NON_ZERO`]: their alarms treat missing data as not breaching). A
//! metric is published at most once per cluster per run, with the same names, units and
//! dimensions every time, so alarms and dashboards can rely on them. Standard resolution
//! (60 s).
//!
//! "cluster" in the table is three dimensions, the cluster's identity
//! ([`crate::identity`]): `ClusterName`, `Region` and `Account` (the assumed role's account,
//! or `self` for the function's own). The same name in two accounts or Regions is two
//! series, two alarm contributors and two emergency runs.
//!
//! | Metric | Unit | Dimensions | Meaning (statistic to use) |
//! |---|---|---|---|
//! | `JobsDeleted` | Count | cluster | Jobs deleted by this run (Sum) |
//! | `PodsDeleted` | Count | cluster | Pods deleted by this run, Fargate ones included (Sum) |
//! | `FargatePodsDeleted` | Count | cluster | Fargate pods deleted by this run (Sum) |
//! | `ObjectsDeleted` | Count | cluster | Jobs and pods deleted by this run: `JobsDeleted` + `PodsDeleted`, the one deletion count of `essential` (Sum) |
//! | `DeleteErrors` | Count | cluster | Deletions that failed (Sum) |
//! | `Throttled` | Count | cluster | 429 answers from the API server (Sum) |
//! | `FinishedJobs` | Count | cluster | Finished Jobs seen by this run (Maximum) |
//! | `RetainedJobs` | Count | cluster | Finished Jobs kept: retention not over, opted out, native TTL (Maximum) |
//! | `TerminatedPods` | Count | cluster | Pods in phase Succeeded/Failed seen by this run — what PodGC's threshold counts (Maximum) |
//! | `FargatePodsHoldingIps` | Count | cluster | Finished Fargate pods still holding a subnet IP after this run (Maximum) |
//! | `Backlog` | Count | cluster | Objects due for deletion this run left undeleted (deadline, errors) (Maximum) |
//! | `RunDuration` | Milliseconds | cluster | Wall time spent on the cluster (Maximum) |
//! | `RunSucceeded` | Count | cluster | 1 when the cluster was pruned, 0 when it failed or was skipped (not ACTIVE) — the heartbeat (Sum; alarm on < 1, missing = breaching) |
//! | `LowHeadroomMode` | None | cluster | 1 when low-headroom mode was on, else 0 (Maximum) |
//! | `SubnetsRead` | Count | cluster | 1 when the run read the subnets, 0 when it could not (a lost permission, an SCP, a missing VPC endpoint, an unreachable cluster): the IP alarms' health (Minimum; alarm on < 1, missing = breaching) |
//! | `ClusterAvailableIps` | Count | cluster | Free IPv4 addresses over the watched subnets (Minimum) |
//! | `MinSubnetAvailableIps` | Count | cluster | Free IPv4 addresses of the fullest watched subnet (Minimum) |
//! | `MinSubnetFreePercent` | Percent | cluster | Free share of the tightest watched subnet, 0–100: the size-independent IP alarm (Minimum) |
//! | `IpExhaustionHours` | None | cluster | Forecast hours until the watched subnets are full if pruning stopped; not published without Fargate traffic (Minimum) |
//! | `SubnetAvailableIps` | Count | cluster, SubnetId, AvailabilityZone | Free IPv4 addresses of one subnet (Minimum) |
//! | `SubnetIpUtilization` | Percent | cluster, SubnetId, AvailabilityZone | Share of the subnet's usable IPv4 addresses in use (Maximum) |
//! | `StuckObjects` | Count | cluster | Jobs and pods being deleted for longer than `REAPER_STUCK_AFTER`, held by a finalizer nobody removes (Maximum; alarm on > 0) |
//! | `StuckFargatePods` | Count | cluster | Of those, Fargate pods: each keeps its node and a subnet IP (Maximum) |
//! | `ApiRequests` | Count | cluster | Requests this run sent to the cluster's API server, retries included: what the run cost the control plane, with `ApiBytesReceived` (Sum) |
//! | `ApiBytesReceived` | Bytes | cluster | Response bytes this run received from the API server, as sent (gzip-compressed list pages in protobuf, mostly) (Sum) |
//! | `RunPlanned` | Count | cluster | 1 each time a fan-out planner enqueued the cluster's run: what the planner expects to report (SampleCount) |
//! | `ClustersNotReported` | Count | none | Clusters the planner enqueued before its last `REAPER_NOT_REPORTED_RUNS` intervals that published no run (`RunSucceeded`) in them: stuck, dead-lettered or dying runs (Maximum; alarm on ≥ 1) |
//!
//! A fan-out planner (`src/fanout.rs`) publishes the last two, whatever the detail level;
//! a cluster's runs publish the others.
//!
//! The subnet and IP metrics are left out for a run that could not read the subnets
//! (rather than published as 0; `SubnetsRead` says so), and IPv6-only subnets have none. With
//! `REAPER_METRICS_PER_NAMESPACE=true`, the deletion counts the detail level publishes
//! (`ObjectsDeleted`; with `full`, `JobsDeleted`, `PodsDeleted` and `FargatePodsDeleted`
//! too) are also
//! published per namespace with dimensions cluster and `Namespace` — one more metric per
//! namespace and name, each billed monthly.

pub mod cloudwatch;
pub mod detail;
pub mod emf;
pub mod figures;
pub mod list;
pub mod sink;

use jiff::Timestamp;

pub use figures::{ClusterFigures, SubnetFigures, data};
pub use list::{Datum, Dimension, Metric, Unit, dimension};
pub use sink::Sink;

use crate::deadline::Deadline;
use crate::report::MetricsOutcome;

/// Publishes the metric set of these clusters through `sink`, timestamped `now`, each call
/// bounded by `deadline`. Never panics and never returns an error: failures are in the
/// [`MetricsOutcome`] (and logged).
pub async fn publish(
    sink: &Sink,
    figures: &[ClusterFigures],
    now: Timestamp,
    deadline: &Deadline,
) -> MetricsOutcome {
    let data = match sink {
        Sink::CloudWatch { detail, .. } | Sink::Emf { detail, .. } => {
            detail::select(*detail, data(figures))
        }
        Sink::None => Vec::new(),
    };
    send(sink, &data, now, deadline).await
}

/// Delivers `data` as given (no detail level applies) through `sink`, timestamped `now`,
/// each call bounded by `deadline`; the outcome is logged and returned, never an error.
pub async fn send(
    sink: &Sink,
    data: &[Datum],
    now: Timestamp,
    deadline: &Deadline,
) -> MetricsOutcome {
    let outcome = match sink {
        Sink::CloudWatch {
            client, namespace, ..
        } => cloudwatch::put(client, namespace, data, now, deadline).await,
        Sink::Emf { namespace, .. } => {
            emf::print(&mut std::io::stdout().lock(), namespace, data, now)
        }
        Sink::None => MetricsOutcome {
            sink: sink.name(),
            ..MetricsOutcome::default()
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
mod tests {
    use super::*;
    use crate::testing::full_figures;

    #[test]
    fn publish_future_is_send() {
        // The Lambda handler and tokio::spawn need Send futures (the EMF arm locks stdout).
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&publish(
            &Sink::None,
            &[],
            Timestamp::UNIX_EPOCH,
            &Deadline::none(),
        ));
    }

    #[tokio::test]
    async fn none_sink_publishes_nothing_and_reports_it() {
        let outcome = publish(
            &Sink::None,
            &[full_figures("prod")],
            Timestamp::UNIX_EPOCH,
            &Deadline::none(),
        )
        .await;
        assert_eq!(outcome.sink, "none");
        assert_eq!((outcome.metrics, outcome.calls), (0, 0));
        assert!(outcome.ok());
    }
}

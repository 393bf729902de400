//! Which metrics a detail level publishes (`REAPER_METRICS_DETAIL`).
//!
//! Each distinct metric (name × dimension values) is billed for the hours in which it
//! receives data, so `essential` publishes only what something reads: every alarm of
//! `template.yaml` and the CDK construct, and the dashboard's core widgets (free IPs,
//! forecast, subnets read, heartbeat, deletions, errors, backlog, stuck objects). Nothing per subnet: a
//! cluster costs the same whatever the number of subnets it watches. Deletions are one
//! count, `ObjectsDeleted` (Jobs and pods).
//!
//! The counters of [`SENT_WHEN_NON_ZERO`] are 0 in a healthy run and their alarms fire on
//! a value above 0 and treat missing data as not breaching: `essential` leaves them out
//! while they are 0, so a healthy hour costs nothing for them (neither the metric nor the
//! Metrics Insights alarm that would analyse it). The heartbeat (`RunSucceeded`) is sent
//! every run, 1 or 0, and its alarms treat missing data as breaching: a function that
//! stopped is still caught.
//!
//! `full` publishes the whole metric set every run, zeros included: continuous series for
//! the dashboard's graphs and for anyone's own alarms and queries on them.
//!
//! With `REAPER_METRICS_PER_NAMESPACE=true` the per-namespace deletion counts follow the
//! same rule: `essential` publishes `ObjectsDeleted` per namespace, `full` also
//! `JobsDeleted`, `PodsDeleted` and `FargatePodsDeleted`.

use super::list::{Datum, Metric};
use crate::config::MetricsDetail;

/// The metrics `essential` publishes, and what reads each one.
pub const ESSENTIAL: [Metric; 9] = [
    // heartbeat-missing, reports-missing; the heartbeat widget.
    Metric::RunSucceeded,
    // subnets-unread: the IP alarms' own health; the heartbeat widget.
    Metric::SubnetsRead,
    // subnet-free-percent-low (and the emergency runs it starts); the free-share widget.
    Metric::MinSubnetFreePercent,
    // ip-exhaustion-forecast (and its emergency runs); the forecast widget.
    Metric::IpExhaustionHours,
    // backlog-not-draining; the backlog widget.
    Metric::Backlog,
    // delete-errors; the throttles-and-errors widget.
    Metric::DeleteErrors,
    // api-throttled; the throttles-and-errors widget.
    Metric::Throttled,
    // The deletions widget: Jobs and pods (Fargate ones among them) in one count.
    Metric::ObjectsDeleted,
    // objects-stuck-terminating; the stuck-objects widget.
    Metric::StuckObjects,
];

/// The counters `essential` sends only when they are not 0: each is 0 in a healthy run,
/// and its alarm fires on a value above 0 with missing data not breaching.
pub const SENT_WHEN_NON_ZERO: [Metric; 4] = [
    Metric::Backlog,
    Metric::DeleteErrors,
    Metric::Throttled,
    Metric::StuckObjects,
];

/// Whether `detail` publishes `metric` at all, in every dimension set the metric comes in.
pub fn publishes(detail: MetricsDetail, metric: Metric) -> bool {
    match detail {
        MetricsDetail::Full => true,
        MetricsDetail::Essential => ESSENTIAL.contains(&metric),
    }
}

/// Whether `detail` sends this datum: a metric it publishes, and for `essential` not one of
/// [`SENT_WHEN_NON_ZERO`] at 0.
pub fn sends(detail: MetricsDetail, datum: &Datum) -> bool {
    let quiet = detail == MetricsDetail::Essential
        && SENT_WHEN_NON_ZERO.contains(&datum.metric)
        && datum.value == 0.0;
    publishes(detail, datum.metric) && !quiet
}

/// The data `detail` sends, in their order.
pub fn select(detail: MetricsDetail, data: Vec<Datum>) -> Vec<Datum> {
    data.into_iter().filter(|d| sends(detail, d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ClusterFigures, data};
    use crate::testing::full_figures;

    fn names(data: &[Datum]) -> Vec<&'static str> {
        let mut names: Vec<_> = data.iter().map(|d| d.metric.name()).collect();
        names.dedup();
        names
    }

    /// A healthy run: deletions, no error, no 429, nothing left behind.
    fn healthy(cluster: &str) -> ClusterFigures {
        let mut figures = full_figures(cluster);
        figures.delete_errors = 0;
        figures.throttled = 0;
        figures.backlog = 0;
        figures.stuck_objects = 0;
        figures.stuck_fargate_pods = 0;
        figures
    }

    #[test]
    fn full_publishes_every_metric() {
        assert!(
            Metric::ALL
                .iter()
                .all(|m| publishes(MetricsDetail::Full, *m))
        );
        let all = data(&[full_figures("prod")]);
        assert_eq!(select(MetricsDetail::Full, all.clone()), all);
    }

    #[test]
    fn full_sends_the_zero_counters_too() {
        let all = data(&[healthy("prod")]);
        let full = select(MetricsDetail::Full, all.clone());
        assert_eq!(full, all);
        for m in SENT_WHEN_NON_ZERO {
            let d = full.iter().find(|d| d.metric == m).expect("sent");
            assert_eq!(d.value, 0.0, "{}", m.name());
        }
    }

    #[test]
    fn essential_publishes_the_alarm_and_core_dashboard_metrics_only() {
        let published: Vec<_> = Metric::ALL
            .into_iter()
            .filter(|m| publishes(MetricsDetail::Essential, *m))
            .map(Metric::name)
            .collect();
        assert_eq!(
            published,
            [
                "ObjectsDeleted",
                "DeleteErrors",
                "Throttled",
                "Backlog",
                "RunSucceeded",
                "SubnetsRead",
                "MinSubnetFreePercent",
                "IpExhaustionHours",
                "StuckObjects",
            ]
        );
    }

    #[test]
    fn a_healthy_run_in_essential_sends_none_of_the_zero_counters() {
        let mut figures = healthy("prod");
        figures.per_namespace = None;
        let essential = select(MetricsDetail::Essential, data(&[figures]));
        assert_eq!(
            names(&essential),
            [
                "ObjectsDeleted",
                "RunSucceeded",
                "SubnetsRead",
                "MinSubnetFreePercent",
                "IpExhaustionHours",
            ]
        );
    }

    #[test]
    fn each_counter_is_sent_in_essential_once_it_is_not_zero() {
        for m in SENT_WHEN_NON_ZERO {
            let mut figures = healthy("prod");
            match m {
                Metric::Backlog => figures.backlog = 7,
                Metric::DeleteErrors => figures.delete_errors = 2,
                Metric::Throttled => figures.throttled = 31,
                Metric::StuckObjects => figures.stuck_objects = 2,
                _ => unreachable!("{}", m.name()),
            }
            let essential = select(MetricsDetail::Essential, data(&[figures]));
            let sent: Vec<_> = essential
                .iter()
                .filter(|d| SENT_WHEN_NON_ZERO.contains(&d.metric))
                .map(|d| (d.metric.name(), d.value))
                .collect();
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert_eq!(sent[0].0, m.name());
            assert!(sent[0].1 > 0.0, "{sent:?}");
        }
    }

    #[test]
    fn only_zero_counters_are_left_out_not_zero_deletions_or_a_failed_heartbeat() {
        let mut figures = healthy("prod");
        figures.jobs_deleted = 0;
        figures.pods_deleted = 0;
        figures.run_succeeded = false;
        let essential = select(MetricsDetail::Essential, data(&[figures]));
        let value = |m: Metric| essential.iter().find(|d| d.metric == m).map(|d| d.value);
        assert_eq!(value(Metric::ObjectsDeleted), Some(0.0));
        assert_eq!(value(Metric::RunSucceeded), Some(0.0));
    }

    #[test]
    fn objects_deleted_counts_jobs_and_pods() {
        let figures = full_figures("prod");
        let want = (figures.jobs_deleted + figures.pods_deleted) as f64;
        let essential = select(MetricsDetail::Essential, data(&[figures]));
        let objects = essential
            .iter()
            .find(|d| d.metric == Metric::ObjectsDeleted && d.dimensions.len() == 3)
            .expect("ObjectsDeleted");
        assert_eq!(objects.value, want);
    }

    #[test]
    fn essential_publishes_nothing_per_subnet() {
        let mut figures = full_figures("prod");
        figures.per_namespace = None;
        figures.backlog = 1;
        let essential = select(MetricsDetail::Essential, data(&[figures]));
        assert_eq!(essential.len(), ESSENTIAL.len());
        assert!(
            essential
                .iter()
                .all(|d| d.dimensions.iter().map(|x| x.name).eq([
                    "ClusterName",
                    "Region",
                    "Account"
                ])),
            "{essential:?}"
        );
    }

    #[test]
    fn essential_cost_does_not_grow_with_the_subnets() {
        let mut two = full_figures("prod");
        two.per_namespace = None;
        let mut thirty = two.clone();
        let subnet = two.subnets.as_ref().expect("subnets")[0].clone();
        thirty.subnets = Some(vec![subnet; 30]);
        let count = |f: ClusterFigures, d| select(d, data(&[f])).len();
        assert_eq!(
            count(two.clone(), MetricsDetail::Essential),
            count(thirty.clone(), MetricsDetail::Essential)
        );
        assert_eq!(
            count(thirty, MetricsDetail::Full) - count(two, MetricsDetail::Full),
            2 * 28
        );
    }

    #[test]
    fn per_namespace_deletions_follow_the_detail_level() {
        let per_namespace = |d| {
            select(d, data(&[full_figures("prod")]))
                .into_iter()
                .filter(|d| d.dimensions.iter().any(|x| x.name == "Namespace"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&per_namespace(MetricsDetail::Essential)),
            ["ObjectsDeleted"]
        );
        assert_eq!(
            names(&per_namespace(MetricsDetail::Full)),
            [
                "JobsDeleted",
                "PodsDeleted",
                "FargatePodsDeleted",
                "ObjectsDeleted"
            ]
        );
    }

    #[test]
    fn a_cluster_never_reached_still_sends_its_heartbeat_in_essential() {
        let figures = ClusterFigures {
            cluster: "etl".into(),
            health_only: true,
            ..ClusterFigures::default()
        };
        let essential = select(MetricsDetail::Essential, data(&[figures]));
        assert_eq!(names(&essential), ["RunSucceeded", "SubnetsRead"]);
        assert!(essential.iter().all(|d| d.value == 0.0));
    }
}

//! Which metrics a detail level publishes (`REAPER_METRICS_DETAIL`).
//!
//! Each distinct metric (name × dimension values) is billed every month it is published,
//! so `essential` publishes only what something reads: every alarm of `template.yaml` and
//! the CDK construct, and the dashboard's core widgets (free IPs, forecast, subnets read,
//! heartbeat, deletions, errors, backlog). Nothing per subnet: a cluster costs the same
//! whatever the number of subnets it watches. `full` publishes the whole metric set.
//!
//! With `REAPER_METRICS_PER_NAMESPACE=true` the per-namespace deletion counts follow the
//! same rule: `essential` publishes `JobsDeleted` and `PodsDeleted` per namespace, `full`
//! also `FargatePodsDeleted`.

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
    // The deletions widget (Fargate pods are among the pods).
    Metric::JobsDeleted,
    Metric::PodsDeleted,
];

/// Whether `detail` publishes `metric`, in every dimension set the metric comes in.
pub fn publishes(detail: MetricsDetail, metric: Metric) -> bool {
    match detail {
        MetricsDetail::Full => true,
        MetricsDetail::Essential => ESSENTIAL.contains(&metric),
    }
}

/// The data `detail` publishes, in their order.
pub fn select(detail: MetricsDetail, data: Vec<Datum>) -> Vec<Datum> {
    data.into_iter()
        .filter(|d| publishes(detail, d.metric))
        .collect()
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
    fn essential_publishes_the_alarm_and_core_dashboard_metrics_only() {
        let published: Vec<_> = Metric::ALL
            .into_iter()
            .filter(|m| publishes(MetricsDetail::Essential, *m))
            .map(Metric::name)
            .collect();
        assert_eq!(
            published,
            [
                "JobsDeleted",
                "PodsDeleted",
                "DeleteErrors",
                "Throttled",
                "Backlog",
                "RunSucceeded",
                "SubnetsRead",
                "MinSubnetFreePercent",
                "IpExhaustionHours",
            ]
        );
    }

    #[test]
    fn essential_publishes_nothing_per_subnet() {
        let mut figures = full_figures("prod");
        figures.per_namespace = None;
        let essential = select(MetricsDetail::Essential, data(&[figures]));
        assert_eq!(essential.len(), ESSENTIAL.len());
        assert!(
            essential
                .iter()
                .all(|d| d.dimensions.iter().map(|x| x.name).eq(["ClusterName"])),
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
            ["JobsDeleted", "PodsDeleted"]
        );
        assert_eq!(
            names(&per_namespace(MetricsDetail::Full)),
            ["JobsDeleted", "PodsDeleted", "FargatePodsDeleted"]
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

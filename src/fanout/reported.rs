//! Clusters that stopped reporting, as the fan-out planner sees them.
//!
//! Each cluster's run publishes `RunSucceeded` (1 or 0) when it ends. A cluster whose
//! messages wait in the dead-letter queue, whose runs die before they publish (a Lambda
//! timeout, a crash), or that no invocation reaches, publishes nothing at all, and a Metrics
//! Insights alarm cannot see a series that is not there (it reads the last 3 hours only).
//! The planner knows the fleet it expects, so each scheduled plan asks CloudWatch, for every
//! cluster it plans, over two windows of length W ending at the next whole minute `end`:
//!
//! - was it planned in `[end - 2W, end - W)` (`RunPlanned`, which every plan publishes)? A
//!   cluster new to the fleet was not, and is not judged yet;
//! - did it publish a run in `[end - W, end)` (`RunSucceeded`, any value)?
//!
//! Planned before and silent since is **not reported**; the plan publishes their number
//! (`ClustersNotReported`, the `clusters-not-reported` alarm) and names them in its report
//! and log. W is the schedule's interval times `REAPER_NOT_REPORTED_RUNS`: the templates
//! pass the heartbeat alarm's run count, which they keep longer than the function's
//! timeout, so a run that takes its whole timeout still reports inside the window.
//!
//! CloudWatch's limits, as `GetMetricData` documents them: at most 500 queries per call
//! ([`QUERIES_PER_CALL`]); a period that is a multiple of 60 s (the interval is whole minutes,
//! `end` a whole minute); start times within 15 days are rounded down to the minute, so
//! both windows start on one; each query is billed as one metric requested: two per
//! cluster and plan.

use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Metric as CwMetric, MetricDataQuery, MetricDataResult, MetricStat,
};
use jiff::Timestamp;
use serde::Serialize;

use crate::deadline::Deadline;
use crate::metrics::{Dimension, Metric};

/// Most queries one `GetMetricData` call takes.
pub const QUERIES_PER_CALL: usize = 500;

/// What the plan found about its clusters' reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reporting {
    /// W: how long a planned cluster may go without a run report.
    pub window_seconds: u64,
    /// Identities of the clusters planned before the window that published no run in it.
    pub not_reported: Vec<String>,
    /// Why CloudWatch could not be read; `notReported` is then empty and means nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One cluster the plan expects to report: its identity and metric dimensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// `account/region/name`.
    pub identity: String,
    /// `ClusterName`, `Region`, `Account`.
    pub dimensions: [Dimension; 3],
}

/// The end of both windows: the first whole minute at or after `now`.
pub fn window_end(now: Timestamp) -> Timestamp {
    let seconds = now.as_second();
    let whole = seconds - seconds.rem_euclid(60);
    let end = if whole == seconds && now.subsec_nanosecond() == 0 {
        whole
    } else {
        whole + 60
    };
    Timestamp::from_second(end).unwrap_or(now)
}

/// The `SampleCount` queries of `metric` for these clusters over one period of `window`:
/// query `q{i}` is cluster `i`.
pub fn queries(
    namespace: &str,
    metric: Metric,
    clusters: &[Expected],
    window: Duration,
) -> Vec<MetricDataQuery> {
    let period = i32::try_from(window.as_secs()).unwrap_or(i32::MAX);
    clusters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let dimensions = c
                .dimensions
                .iter()
                .map(|d| {
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name(d.name)
                        .value(&d.value)
                        .build()
                })
                .collect();
            let metric = CwMetric::builder()
                .namespace(namespace)
                .metric_name(metric.name())
                .set_dimensions(Some(dimensions))
                .build();
            let stat = MetricStat::builder()
                .metric(metric)
                .period(period)
                .stat("SampleCount")
                .build();
            MetricDataQuery::builder()
                .id(format!("q{i}"))
                .metric_stat(stat)
                .return_data(true)
                .build()
        })
        .collect()
}

/// The clusters planned before the window (`planned_before[i]`) that published no run in it
/// (`reported[i]` false), in the order given.
pub fn not_reported(
    clusters: &[Expected],
    planned_before: &[bool],
    reported: &[bool],
) -> Vec<String> {
    clusters
        .iter()
        .zip(planned_before.iter().zip(reported))
        .filter(|(_, (planned, reported))| **planned && !**reported)
        .map(|(c, _)| c.identity.clone())
        .collect()
}

/// Reads both windows and judges every cluster; an error (a refused or cut call, a result
/// CloudWatch could not compute) is the report's `error`, with no cluster named.
pub async fn check(reader: &Reader<'_>, now: Timestamp) -> Reporting {
    let end = window_end(now);
    let mut reporting = Reporting {
        window_seconds: reader.window.as_secs(),
        ..Reporting::default()
    };
    let span = jiff::SignedDuration::try_from(reader.window).unwrap_or(jiff::SignedDuration::MAX);
    let start = end.checked_sub(span).unwrap_or(end);
    let before = start.checked_sub(span).unwrap_or(start);
    let judged = async {
        let planned = reader.seen(Metric::RunPlanned, before, start).await?;
        let reported = reader.seen(Metric::RunSucceeded, start, end).await?;
        Ok::<_, String>(not_reported(reader.clusters, &planned, &reported))
    };
    match judged.await {
        Ok(clusters) => reporting.not_reported = clusters,
        Err(why) => reporting.error = Some(why),
    }
    reporting
}

/// What the check reads: these clusters' series in `namespace`, over windows of `window`,
/// each call bounded by `deadline`.
pub struct Reader<'a> {
    /// CloudWatch, in the function's own account (where every run publishes).
    pub client: &'a aws_sdk_cloudwatch::Client,
    /// The metrics namespace.
    pub namespace: &'a str,
    /// The clusters planned now.
    pub clusters: &'a [Expected],
    /// W.
    pub window: Duration,
    /// Bounds every call.
    pub deadline: &'a Deadline,
}

impl Reader<'_> {
    /// For each cluster, whether `metric` has a datapoint in `[from, to)`.
    async fn seen(
        &self,
        metric: Metric,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<bool>, String> {
        let mut seen = Vec::with_capacity(self.clusters.len());
        for chunk in self.clusters.chunks(QUERIES_PER_CALL) {
            seen.extend(self.seen_in(chunk, metric, from, to).await?);
        }
        Ok(seen)
    }

    /// [`Self::seen`] for at most [`QUERIES_PER_CALL`] clusters: one call, and its pages.
    async fn seen_in(
        &self,
        chunk: &[Expected],
        metric: Metric,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<bool>, String> {
        let failed = |why: String| format!("cloudwatch:GetMetricData ({}): {why}", metric.name());
        let mut seen = vec![false; chunk.len()];
        let mut next_token: Option<String> = None;
        loop {
            let call = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(queries(self.namespace, metric, chunk, self.window)))
                .start_time(DateTime::from_secs(from.as_second()))
                .end_time(DateTime::from_secs(to.as_second()))
                .set_next_token(next_token.take())
                .send();
            let answer = match self
                .deadline
                .bound("cloudwatch:GetMetricData", crate::eks::AWS_CALL, call)
                .await
            {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => return Err(failed(crate::failure::chain::Chain(&e).to_string())),
                Err(cut) => return Err(failed(cut.to_string())),
            };
            mark(answer.metric_data_results(), &mut seen).map_err(failed)?;
            next_token = answer.next_token().map(str::to_owned);
            if next_token.is_none() {
                return Ok(seen);
            }
        }
    }
}

/// Sets `seen[i]` for each result `q{i}` with a sample; a result CloudWatch could not
/// compute (`InternalError`, `Forbidden`) is an error.
fn mark(results: &[MetricDataResult], seen: &mut [bool]) -> Result<(), String> {
    for result in results {
        let status = result.status_code().map(|s| s.as_str()).unwrap_or("");
        if matches!(status, "InternalError" | "Forbidden") {
            let messages: Vec<&str> = result.messages().iter().filter_map(|m| m.value()).collect();
            return Err(format!("{status} {}", messages.join("; ")));
        }
        let index = result
            .id()
            .and_then(|id| id.strip_prefix('q'))
            .and_then(|i| i.parse::<usize>().ok());
        if let Some(flag) = index.and_then(|i| seen.get_mut(i))
            && result.values().iter().any(|v| *v > 0.0)
        {
            *flag = true;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::figures::cluster_dimensions;

    fn expected(name: &str, account: &str) -> Expected {
        Expected {
            identity: format!("{account}/eu-west-1/{name}"),
            dimensions: cluster_dimensions(name, "eu-west-1", account),
        }
    }

    #[test]
    fn only_a_cluster_planned_before_the_window_and_silent_in_it_is_not_reported() {
        let clusters = [
            expected("reports", "self"),
            expected("silent", "self"),
            expected("new", "self"),
            expected("new-and-reports", "self"),
        ];
        let planned_before = [true, true, false, false];
        let reported = [true, false, false, true];
        assert_eq!(
            not_reported(&clusters, &planned_before, &reported),
            ["self/eu-west-1/silent"]
        );
    }

    #[test]
    fn the_same_name_in_two_accounts_is_judged_on_its_own_series() {
        let clusters = [
            expected("prod", "111111111111"),
            expected("prod", "222222222222"),
        ];
        assert_eq!(
            not_reported(&clusters, &[true, true], &[true, false]),
            ["222222222222/eu-west-1/prod"]
        );
        let q = queries(
            "EKSReaper",
            Metric::RunSucceeded,
            &clusters,
            Duration::from_secs(1200),
        );
        let account = |q: &MetricDataQuery| {
            let stat = q.metric_stat().expect("stat");
            let metric = stat.metric().expect("metric");
            let dims = metric.dimensions();
            dims.iter()
                .find(|d| d.name() == Some("Account"))
                .and_then(|d| d.value())
                .map(str::to_owned)
        };
        assert_eq!(account(&q[0]).as_deref(), Some("111111111111"));
        assert_eq!(account(&q[1]).as_deref(), Some("222222222222"));
    }

    #[test]
    fn each_query_is_one_cluster_s_sample_count_over_the_whole_window() {
        let clusters = [expected("a", "self"), expected("b", "self")];
        let q = queries(
            "Ns",
            Metric::RunPlanned,
            &clusters,
            Duration::from_secs(1200),
        );
        let ids: Vec<_> = q.iter().map(|q| q.id().unwrap_or_default()).collect();
        assert_eq!(ids, ["q0", "q1"]);
        let stat = q[1].metric_stat().expect("stat");
        assert_eq!(stat.period(), Some(1200));
        assert_eq!(stat.stat(), Some("SampleCount"));
        let metric = stat.metric().expect("metric");
        assert_eq!(
            (metric.namespace(), metric.metric_name()),
            (Some("Ns"), Some("RunPlanned"))
        );
        let names: Vec<_> = metric
            .dimensions()
            .iter()
            .map(|d| d.name().unwrap_or_default())
            .collect();
        assert_eq!(names, ["ClusterName", "Region", "Account"]);
    }

    #[test]
    fn the_windows_end_at_the_next_whole_minute() {
        let at = |s: &str| s.parse::<Timestamp>().expect("timestamp");
        for (now, end) in [
            ("08:00:00", "08:00:00"),
            ("08:00:00.5", "08:01:00"),
            ("08:00:59", "08:01:00"),
            ("08:01:01", "08:02:00"),
        ] {
            let (now, end) = (
                at(&format!("2026-12-07T{now}Z")),
                at(&format!("2026-12-07T{end}Z")),
            );
            assert_eq!(window_end(now), end, "{now}");
        }
    }

    #[test]
    fn a_result_with_a_sample_marks_its_cluster_and_a_failed_result_is_an_error() {
        use aws_sdk_cloudwatch::types::{MessageData, StatusCode};
        let result = |id: &str, values: Vec<f64>| {
            MetricDataResult::builder()
                .id(id)
                .set_values(Some(values))
                .status_code(StatusCode::Complete)
                .build()
        };
        let mut seen = [false; 3];
        mark(
            &[
                result("q0", vec![]),
                result("q2", vec![2.0]),
                result("q9", vec![1.0]),
            ],
            &mut seen,
        )
        .expect("marked");
        assert_eq!(seen, [false, false, true]);

        let forbidden = MetricDataResult::builder()
            .id("q1")
            .status_code(StatusCode::Forbidden)
            .messages(MessageData::builder().value("not authorized").build())
            .build();
        let e = mark(&[forbidden], &mut seen).expect_err("forbidden");
        assert_eq!(e, "Forbidden not authorized");
    }
}

//! `REAPER_METRICS_DETAIL` against the real binary and moto's CloudWatch: in a healthy run
//! `essential` publishes exactly its set less the counters it sends only when they are not 0
//! (`tests/throttled_runs.rs` has the unhealthy run that sends them), and its set holds
//! every metric an alarm of `template.yaml` reads (the alarms are parsed from the template,
//! so an alarm added on a dropped metric fails here); `full` publishes every metric, zeros
//! included. The counts printed here are the ones docs/cost.md prices.

use std::collections::{BTreeMap, BTreeSet};

use eks_reaper::metrics::Metric;
use eks_reaper::metrics::detail::{ESSENTIAL, SENT_WHEN_NON_ZERO};

use serde_json::json;

use super::harness::*;
use crate::common::{Testbed, root};

/// Every metric identity in `namespace`: name → the dimension-name lists it was published
/// with (one per identity).
async fn published(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
) -> BTreeMap<String, Vec<Vec<String>>> {
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut pages = cw
        .list_metrics()
        .namespace(namespace)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for m in page.expect("ListMetrics through the bridge").metrics() {
            let mut dims: Vec<String> = m
                .dimensions()
                .iter()
                .filter_map(|d| d.name().map(str::to_owned))
                .collect();
            dims.sort();
            out.entry(m.metric_name().unwrap_or_default().to_owned())
                .or_default()
                .push(dims);
        }
    }
    out
}

fn count(identities: &BTreeMap<String, Vec<Vec<String>>>) -> usize {
    identities.values().map(Vec::len).sum()
}

/// One alarm resource of `template.yaml`: its name, its `Condition`, and the metrics of the
/// reaper's namespace it reads (Metrics Insights queries, or `MetricName` with the
/// namespace parameter).
#[derive(Debug)]
struct Alarm {
    name: String,
    condition: Option<String>,
    reads: BTreeSet<String>,
}

/// The top-level entries of a template section (`Resources:`, `Conditions:`) as
/// (name, text of its body), read from the YAML's two-space indentation.
fn section<'a>(template: &'a str, header: &str) -> Vec<(&'a str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    let mut inside = false;
    for line in template.lines() {
        if !line.starts_with(' ') && !line.is_empty() && !line.starts_with('#') {
            inside = line == header;
            continue;
        }
        if !inside {
            continue;
        }
        let key = line
            .strip_prefix("  ")
            .filter(|rest| !rest.starts_with(' ') && !rest.starts_with('#'))
            .and_then(|rest| rest.split_once(':'));
        match key {
            Some((name, rest)) => out.push((name, rest.to_owned())),
            None => {
                if let Some((_, body)) = out.last_mut() {
                    body.push('\n');
                    body.push_str(line);
                }
            }
        }
    }
    out
}

fn alarms(template: &str) -> Vec<Alarm> {
    let query = "FROM SCHEMA(\"${MetricsNamespace}\"";
    section(template, "Resources:")
        .into_iter()
        .filter(|(_, body)| body.contains("Type: AWS::CloudWatch::Alarm"))
        .map(|(name, body)| {
            let field = |key: &str| {
                body.lines()
                    .filter_map(|l| l.trim().strip_prefix(key))
                    .map(|v| v.trim().to_owned())
                    .collect::<Vec<_>>()
            };
            let mut reads: BTreeSet<String> = body
                .lines()
                .filter(|l| l.contains(query))
                .filter_map(|l| {
                    l.split_once("SELECT ")?
                        .1
                        .split_once('(')?
                        .1
                        .split_once(')')
                })
                .map(|(metric, _)| metric.to_owned())
                .collect();
            if field("Namespace:")
                .iter()
                .any(|ns| ns == "!Ref MetricsNamespace")
            {
                reads.extend(field("MetricName:"));
            }
            Alarm {
                name: name.to_owned(),
                condition: field("Condition:").into_iter().next(),
                reads,
            }
        })
        .collect()
}

/// Whether a stack can only hold resources under `condition` with `MetricsDetail=full`:
/// the condition is `FullMetricsDetail`, or an `!And` over one that is. Anything else
/// counts as present in an essential stack.
fn needs_full_detail(conditions: &[(&str, String)], condition: &str) -> bool {
    if condition == "FullMetricsDetail" {
        return true;
    }
    let Some((_, body)) = conditions.iter().find(|(name, _)| *name == condition) else {
        return false;
    };
    body.trim_start().starts_with("!And")
        && body
            .split("!Condition ")
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next())
            .map(|c| c.trim_end_matches(']').trim_end_matches(','))
            .any(|c| needs_full_detail(conditions, c))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_essential_run_publishes_its_set_but_the_zero_counters_and_full_every_metric() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let (run, f) = fresh_fargate(&tb).await;

    // GIVEN two finished Fargate Jobs created now (a forecast: every metric has a value),
    // kept by a 1 h retention so that both runs see the same cluster
    f.burst(&run, 2).await;

    // WHEN the CLI runs with full detail, then with essential, each into its own namespace
    let ns_full = metrics_namespace(&run, "full");
    let (full, _) = cli(
        &tb,
        &f.settings(
            "1h",
            &[
                ("REAPER_METRICS_NAMESPACE", &ns_full),
                ("REAPER_METRICS_DETAIL", "full"),
            ],
        ),
    )
    .await;
    let ns_essential = metrics_namespace(&run, "essential");
    let (essential, _) = cli(
        &tb,
        &f.settings(
            "1h",
            &[
                ("REAPER_METRICS_NAMESPACE", &ns_essential),
                ("REAPER_METRICS_DETAIL", "essential"),
            ],
        ),
    )
    .await;
    for report in [&full, &essential] {
        let c = &report["clusters"][0];
        assert_eq!(c["status"], "ok", "{c}");
        // a healthy run: nothing left behind, no error, no 429
        assert_eq!(
            (&c["backlog"], &c["errors"], &c["throttled"]),
            (&json!(0), &json!({}), &json!(0)),
            "{c}"
        );
        assert!(c["forecast"]["hoursToExhaustion"].is_number(), "{c}");
        assert!(report["metrics"]["error"].is_null(), "{report}");
    }
    let subnets = full["clusters"][0]["subnets"]["subnets"]
        .as_array()
        .expect("subnets")
        .len();
    let cw = tb.cloudwatch().await;
    let full_set = published(&cw, &ns_full).await;
    let essential_set = published(&cw, &ns_essential).await;
    println!(
        "metrics published per cluster in a healthy run: essential {}, full {} ({subnets} watched subnets)",
        count(&essential_set),
        count(&full_set)
    );

    // THEN full published every metric, the zero counters too: 23 per cluster, 2 more per
    // watched subnet
    let all: BTreeSet<String> = Metric::ALL.iter().map(|m| m.name().to_owned()).collect();
    assert_eq!(full_set.keys().cloned().collect::<BTreeSet<_>>(), all);
    assert_eq!(count(&full_set), 23 + 2 * subnets, "{full_set:?}");
    assert_eq!(full["metrics"]["metrics"], count(&full_set));

    // AND essential exactly its set less the counters that are 0, each once, per cluster
    // only: its cost does not grow with the subnets
    let quiet: BTreeSet<String> = SENT_WHEN_NON_ZERO
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert_eq!(quiet.len(), 4);
    let want: BTreeSet<String> = ESSENTIAL
        .iter()
        .map(|m| m.name().to_owned())
        .filter(|m| !quiet.contains(m))
        .collect();
    assert_eq!(essential_set.keys().cloned().collect::<BTreeSet<_>>(), want);
    assert!(quiet.iter().all(|m| !essential_set.contains_key(m)));
    assert!(
        essential_set
            .values()
            .all(|ids| ids == &vec![vec!["Account", "ClusterName", "Region"]]),
        "{essential_set:?}"
    );
    assert_eq!(count(&essential_set), ESSENTIAL.len() - quiet.len());
    assert_eq!(
        essential["metrics"]["metrics"],
        ESSENTIAL.len() - quiet.len()
    );

    // AND every alarm an essential stack can hold reads only metrics essential published;
    // the alarms on the other ones need MetricsDetail=full
    let template =
        std::fs::read_to_string(root().join("template.yaml")).expect("read template.yaml");
    let conditions = section(&template, "Conditions:");
    let found = alarms(&template);
    let (full_only, in_essential): (Vec<_>, Vec<_>) =
        found.iter().filter(|a| !a.reads.is_empty()).partition(|a| {
            a.condition
                .as_deref()
                .is_some_and(|c| needs_full_detail(&conditions, c))
        });
    assert!(
        in_essential.len() >= 8,
        "alarms on the reaper's metrics not found in template.yaml: {found:?}"
    );
    // The fan-out planner publishes its own metrics at every detail level (with the
    // default, essential, in e2e/faults/test_fanout.py).
    let planner: BTreeSet<String> = Metric::PLANNER
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    for alarm in &in_essential {
        for metric in &alarm.reads {
            assert!(
                essential_set.contains_key(metric)
                    || quiet.contains(metric)
                    || planner.contains(metric),
                "alarm {} reads {metric}, which MetricsDetail=essential does not publish; \
                 add it to src/metrics/detail.rs ESSENTIAL or gate the alarm on FullMetricsDetail",
                alarm.name
            );
        }
    }
    // (the absolute IP alarms: full only, and their metrics are in the full set)
    let names: BTreeSet<&str> = full_only.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["ClusterIpsLowAlarm", "SubnetIpsLowAlarm"])
    );
    assert!(
        full_only
            .iter()
            .flat_map(|a| &a.reads)
            .all(|m| full_set.contains_key(m))
    );
}

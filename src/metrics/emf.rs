//! The Embedded Metric Format sink: metrics as structured log lines, no API call.
//!
//! In Lambda, stdout goes to CloudWatch Logs, which extracts the metrics from every line
//! that is an EMF document — no `cloudwatch:PutMetricData` permission, no VPC endpoint.
//! One document per dimension set (per cluster; per cluster and subnet; per cluster and
//! namespace), following the specification:
//!
//! ```json
//! {"_aws":{"Timestamp":1795867200000,"CloudWatchMetrics":[{"Namespace":"EKSReaper",
//!   "Dimensions":[["ClusterName","Region","Account"]],"Metrics":[{"Name":"JobsDeleted","Unit":"Count"},…]}]},
//!  "ClusterName":"prod","Region":"eu-west-1","Account":"self","JobsDeleted":3,…}
//! ```
//!
//! - `_aws.Timestamp`: milliseconds since the epoch;
//! - one metric directive with one dimension set whose keys are top-level string members;
//! - at most [`MAX_METRICS_PER_DOCUMENT`] metric definitions, each name a top-level
//!   numeric member, each name once per document (a repeat starts a new document).

use std::io::Write;
use std::ops::Range;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::{Datum, Dimension};
use crate::report::MetricsOutcome;

/// Metric definitions per document (specification limit).
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;

/// Cuts a sequence of metric names into documents: at most `max` names each, and a name
/// that already appears in the current document starts the next one.
pub fn split(names: &[&str], max: usize) -> Vec<Range<usize>> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..names.len() {
        if i - start == max || names[start..i].contains(&names[i]) {
            out.push(start..i);
            start = i;
        }
    }
    if start < names.len() {
        out.push(start..names.len());
    }
    out
}

/// Data grouped by dimension set, groups in order of first appearance.
fn groups(data: &[Datum]) -> Vec<(&[Dimension], Vec<&Datum>)> {
    let mut out: Vec<(&[Dimension], Vec<&Datum>)> = Vec::new();
    for d in data {
        match out
            .iter_mut()
            .find(|(dims, _)| *dims == d.dimensions.as_slice())
        {
            Some((_, members)) => members.push(d),
            None => out.push((&d.dimensions, vec![d])),
        }
    }
    out
}

fn number(value: f64) -> Value {
    // Whole numbers print as integers (3, not 3.0); `data` only holds finite values.
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// The EMF documents for `data`, timestamped `at`.
pub fn documents(namespace: &str, data: &[Datum], at: Timestamp) -> Vec<Value> {
    let mut docs = Vec::new();
    for (dimensions, members) in groups(data) {
        let names: Vec<&str> = members.iter().map(|d| d.metric.name()).collect();
        for range in split(&names, MAX_METRICS_PER_DOCUMENT) {
            let chunk = &members[range];
            let mut doc = Map::new();
            doc.insert(
                "_aws".into(),
                json!({
                    "Timestamp": at.as_millisecond(),
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [dimensions.iter().map(|d| d.name).collect::<Vec<_>>()],
                        "Metrics": chunk.iter().map(|d| json!({
                            "Name": d.metric.name(),
                            "Unit": d.metric.unit().as_str(),
                        })).collect::<Vec<_>>(),
                    }],
                }),
            );
            for d in dimensions {
                doc.insert(d.name.into(), Value::String(d.value.clone()));
            }
            for d in chunk {
                doc.insert(d.metric.name().into(), number(d.value));
            }
            docs.push(Value::Object(doc));
        }
    }
    docs
}

/// Writes the documents for `data` to `out`, one JSON line each (one `write` per line, so
/// lines from other writers cannot interleave inside a document).
pub fn print(
    out: &mut dyn Write,
    namespace: &str,
    data: &[Datum],
    at: Timestamp,
) -> MetricsOutcome {
    let mut outcome = MetricsOutcome {
        sink: "emf",
        ..MetricsOutcome::default()
    };
    for doc in documents(namespace, data, at) {
        let metrics = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .map_or(0, Vec::len);
        let mut line = doc.to_string();
        line.push('\n');
        match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => {
                outcome.calls += 1;
                outcome.metrics += metrics;
            }
            Err(e) => {
                outcome.failed = data.len() - outcome.metrics;
                outcome.error = Some(format!("writing EMF document: {e}"));
                break;
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Metric, data};
    use crate::testing::full_figures;

    const UNITS: [&str; 27] = [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];

    /// Checks a document against the EMF specification's structure and limits.
    fn assert_valid_emf(doc: &Value) {
        let root = doc.as_object().expect("document is an object");
        let aws = root["_aws"].as_object().expect("_aws is an object");
        assert!(
            aws["Timestamp"].as_i64().is_some(),
            "Timestamp is integer ms"
        );
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics array");
        assert!(!directives.is_empty());
        for directive in directives {
            let ns = directive["Namespace"].as_str().expect("Namespace string");
            assert!(!ns.is_empty() && ns.len() <= 255 && !ns.starts_with("AWS/"));
            let sets = directive["Dimensions"]
                .as_array()
                .expect("Dimensions array");
            for set in sets {
                let keys = set.as_array().expect("dimension set is an array");
                assert!(keys.len() <= 30, "at most 30 dimensions per set");
                for key in keys {
                    let key = key.as_str().expect("dimension key is a string");
                    let value = root[key]
                        .as_str()
                        .unwrap_or_else(|| panic!("{key} is a top-level string"));
                    assert!(!value.is_empty() && value.len() <= 1024);
                }
            }
            let metrics = directive["Metrics"].as_array().expect("Metrics array");
            assert!(!metrics.is_empty() && metrics.len() <= MAX_METRICS_PER_DOCUMENT);
            let mut seen = Vec::new();
            for m in metrics {
                let name = m["Name"].as_str().expect("Name string");
                assert!(!name.is_empty() && name.len() <= 255);
                assert!(!seen.contains(&name), "{name} defined twice");
                seen.push(name);
                assert!(root[name].is_number(), "{name} is a top-level number");
                if let Some(unit) = m.get("Unit") {
                    assert!(
                        UNITS.contains(&unit.as_str().unwrap()),
                        "{unit} is a CloudWatch unit"
                    );
                }
                if let Some(res) = m.get("StorageResolution") {
                    assert!(res == 1 || res == 60);
                }
            }
        }
    }

    fn at() -> Timestamp {
        "2026-11-28T12:00:00.123Z".parse().unwrap()
    }

    #[test]
    fn documents_follow_the_specification() {
        let data = data(&[full_figures("prod"), full_figures("staging")]);
        let docs = documents("EKSReaper", &data, at());
        // Per cluster: cluster-wide, two subnets, one namespace.
        assert_eq!(docs.len(), 8);
        docs.iter().for_each(assert_valid_emf);
        let first = &docs[0];
        assert_eq!(first["_aws"]["Timestamp"], 1_795_867_200_123i64);
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "EKSReaper"
        );
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["ClusterName", "Region", "Account"]])
        );
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            23
        );
        assert_eq!(first["ClusterName"], "prod");
        assert_eq!(first["JobsDeleted"], 3);
        assert_eq!(first["IpExhaustionHours"], 8.5);
        assert_eq!(first["RunDuration"], 1500);
    }

    #[test]
    fn subnet_document_carries_the_cluster_s_identity_subnet_and_zone() {
        let data = data(&[full_figures("prod")]);
        let docs = documents("EKSReaper", &data, at());
        let subnet = &docs[1];
        assert_eq!(
            subnet["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[
                "ClusterName",
                "Region",
                "Account",
                "SubnetId",
                "AvailabilityZone"
            ]])
        );
        assert_eq!(subnet["SubnetId"], "subnet-a");
        assert_eq!(subnet["AvailabilityZone"], "eu-west-1a");
        assert_eq!(subnet["SubnetAvailableIps"], 4000);
        assert_eq!(subnet["SubnetIpUtilization"], 2.2);
        assert_eq!(
            subnet["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "SubnetIpUtilization", "Unit": "Percent"})
        );
    }

    #[test]
    fn split_caps_documents_at_one_hundred_metrics() {
        let names: Vec<String> = (0..250).map(|i| format!("M{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(split(&names, 100), vec![0..100, 100..200, 200..250]);
        assert_eq!(split(&names[..100], 100), vec![0..100]);
    }

    #[test]
    fn split_starts_a_new_document_when_a_name_repeats() {
        assert_eq!(split(&["A", "B", "A", "C", "B"], 100), vec![0..2, 2..5]);
        assert_eq!(split(&["A", "A", "A"], 100), vec![0..1, 1..2, 2..3]);
        assert!(split(&[], 100).is_empty());
    }

    #[test]
    fn repeated_metric_with_the_same_dimensions_goes_to_a_second_document() {
        let mut data = data(&[full_figures("prod")]);
        data.retain(|d| d.dimensions.len() == 3);
        let twice: Vec<_> = data.iter().chain(data.iter()).cloned().collect();
        let docs = documents("EKSReaper", &twice, at());
        assert_eq!(docs.len(), 2);
        docs.iter().for_each(assert_valid_emf);
    }

    #[test]
    fn print_writes_one_line_per_document() {
        let data = data(&[full_figures("prod")]);
        let mut out = Vec::new();
        let outcome = print(&mut out, "EKSReaper", &data, at());
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!((outcome.calls, outcome.metrics), (4, data.len()));
        for line in lines {
            assert_valid_emf(&serde_json::from_str(line).unwrap());
        }
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "closed",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_failure_is_an_outcome() {
        let data = data(&[full_figures("prod")]);
        let outcome = print(&mut Broken, "EKSReaper", &data, at());
        assert_eq!((outcome.metrics, outcome.failed), (0, data.len()));
        assert!(outcome.error.unwrap().contains("closed"));
        assert!(Metric::ALL.len() <= MAX_METRICS_PER_DOCUMENT);
    }
}

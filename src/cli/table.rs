//! The CLI's tables (comfy-table, fitted to the terminal's width): the shared style and
//! helpers, and the run's report (one row per cluster, the reasons objects were kept, a
//! closing status line). The `plan` and `headroom` views keep their tables beside them.

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use crate::config::DryRun;
use crate::report::{ClusterReport, Report, RunStatus, StuckCounts};

/// The report as a table (the CLI's default on a terminal), fitted to the terminal's width.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let mut t = new_table(&[
        "CLUSTER", "REGION", "STATUS", "JOBS", "JOB DEL", "PODS", "POD DEL", "FARGATE", "ERRORS",
        "429s", "BACKLOG",
    ]);
    for c in &report.clusters {
        t.add_row(vec![
            c.cluster.clone(),
            c.region.clone().unwrap_or_else(|| "-".to_owned()),
            c.status.as_str().to_owned(),
            c.jobs.seen.to_string(),
            c.jobs.deleted.to_string(),
            c.pods.seen.to_string(),
            c.pods.deleted.to_string(),
            c.pods.fargate_deleted.to_string(),
            c.errors.values().sum::<u64>().to_string(),
            c.throttled.to_string(),
            c.backlog.to_string(),
        ]);
    }
    right_align(&mut t, &[3, 4, 5, 6, 7, 8, 9, 10]);
    let _ = writeln!(out, "{t}");
    for c in &report.clusters {
        if let Some(e) = &c.error {
            let _ = writeln!(
                out,
                "{}: {}: {e}",
                c.cluster,
                c.error_kind.map_or("error", |k| k.as_str())
            );
        }
        for (label, kept) in [
            ("jobs kept", &c.jobs.kept_by_reason),
            ("pods kept", &c.pods.kept_by_reason),
        ] {
            if !kept.is_empty() {
                let parts: Vec<String> = kept.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(out, "{}: {label}: {}", c.cluster, parts.join(" "));
            }
        }
        if !c.stuck.is_empty() {
            let _ = writeln!(out, "{}: {}", c.cluster, stuck_line(&c.stuck));
        }
        namespace_lines(c, &mut out);
    }
    if let Some(m) = report.metrics.as_ref().filter(|m| m.sink == "none") {
        let _ = writeln!(
            out,
            "metrics: not published (sink {}; --metrics-sink cloudwatch or emf publishes them)",
            m.sink
        );
    }
    let _ = writeln!(
        out,
        "{} in {} ms{}",
        match report.status {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "FAILED",
        },
        report.duration_ms,
        if report.dry_run == DryRun::Off {
            String::new()
        } else {
            format!(" (dry run: {}, nothing deleted)", report.dry_run.as_str())
        }
    );
    out
}

/// `stuck terminating: 1 job, 2 pods (1 Fargate, holding its IP); oldest 3h; held by
/// example.com/hold=3 (docs/runbook.md#stuck-objects)`.
fn stuck_line(s: &StuckCounts) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let fargate = match s.fargate_pods {
        0 => String::new(),
        1 => " (1 Fargate, holding its IP)".to_owned(),
        n => format!(" ({n} Fargate, holding {n} IPs)"),
    };
    let held: Vec<String> = s
        .by_finalizer
        .iter()
        .map(|(f, n)| format!("{f}={n}"))
        .collect();
    format!(
        "stuck terminating: {}, {}{fargate}; oldest {}; held by {} (docs/runbook.md#stuck-objects)",
        plural(s.jobs, "job", "jobs"),
        plural(s.pods, "pod", "pods"),
        age(s.oldest_seconds),
        held.join(" ")
    )
}

/// A cluster's namespace lines: the annotations it could not read (everything in those
/// namespaces was kept), and the Events it sent.
fn namespace_lines(c: &ClusterReport, out: &mut String) {
    let unreadable = c
        .namespace_annotations
        .iter()
        .flat_map(|a| &a.invalid_samples);
    for i in unreadable {
        let _ = writeln!(
            out,
            "{}: namespace {}: {}={:?} not understood: every object in it kept",
            c.cluster, i.namespace, i.annotation, i.value
        );
    }
    if let Some(e) = &c.namespace_events {
        let error = e
            .error
            .as_ref()
            .map_or_else(String::new, |e| format!(" ({e})"));
        let _ = writeln!(
            out,
            "{}: namespace events: {} sent, {} failed{error}",
            c.cluster, e.sent, e.failed
        );
    }
}

/// A new table in the CLI's style: no borders, a header row, fitted to the terminal's
/// width when stdout is one (off a terminal, comfy-table leaves rows at their length).
pub fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(|h| Cell::new(*h)));
    // A terminal that reports no size (0 columns: some PTYs, `script`) would squeeze every
    // column to one character: rows keep their length instead.
    if table.width().is_some_and(|w| w < 20) {
        table.set_content_arrangement(ContentArrangement::Disabled);
    }
    table
}

/// Right-aligns the given columns (numbers).
pub fn right_align(table: &mut Table, columns: &[usize]) {
    for &i in columns {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// A duration in its two largest units: `45s`, `16m`, `2h 5m`, `3d 4h`.
pub fn age(seconds: u64) -> String {
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let Some(first) = units.iter().position(|&(_, size)| seconds >= size) else {
        return "0s".to_owned();
    };
    let (unit, size) = units[first];
    let mut out = format!("{}{unit}", seconds / size);
    if let Some(&(next, next_size)) = units.get(first + 1) {
        let rest = (seconds % size) / next_size;
        if rest > 0 {
            let _ = write!(out, " {rest}{next}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_wrap_to_the_width_of_the_terminal() {
        let mut t = new_table(&["NAMESPACE", "NAME", "REASON"]);
        t.add_row(vec![
            "a-long-namespace-of-the-etl-team",
            "job-with-a-long-generated-name-0123456789",
            "succeededPastTtl",
        ]);
        t.set_width(50);
        let text = t.to_string();
        for line in text.lines() {
            assert!(line.chars().count() <= 50, "{text}");
        }
        assert!(text.lines().count() > 2, "the row wraps instead: {text}");
    }

    #[test]
    fn the_run_table_names_what_is_stuck_and_what_holds_it() {
        use std::collections::BTreeMap;

        use crate::report::ClusterReport;

        let mut c = ClusterReport::new("etl", Some("eu-west-1".to_owned()), false);
        c.stuck = StuckCounts {
            jobs: 1,
            pods: 2,
            fargate_pods: 1,
            oldest_seconds: 3 * 3600 + 60,
            by_namespace: BTreeMap::from([("etl".to_owned(), 3)]),
            by_finalizer: BTreeMap::from([("example.com/hold".to_owned(), 3)]),
        };
        let report = Report {
            status: RunStatus::Ok,
            dry_run: DryRun::Off,
            started_at: jiff::Timestamp::UNIX_EPOCH,
            duration_ms: 1,
            clusters: vec![c],
            discovery: None,
            emergency: None,
            metrics: None,
        };
        let text = render(&report);
        assert!(
            text.contains(
                "etl: stuck terminating: 1 job, 2 pods (1 Fargate, holding its IP); oldest 3h 1m; \
                 held by example.com/hold=3 (docs/runbook.md#stuck-objects)"
            ),
            "{text}"
        );
        let mut quiet = report.clone();
        quiet.clusters[0].stuck = StuckCounts::default();
        assert!(!render(&quiet).contains("stuck"), "{}", render(&quiet));
    }

    #[test]
    fn unreadable_namespace_annotations_and_the_events_get_a_line_each() {
        use crate::report::{
            InvalidNamespaceAnnotation, NamespaceAnnotationsReport, NamespaceEventsReport,
        };
        let mut c = ClusterReport::new("etl", None, false);
        let mut out = String::new();
        namespace_lines(&c, &mut out);
        assert_eq!(out, "", "nothing to say");
        c.namespace_annotations = Some(NamespaceAnnotationsReport {
            invalid: 1,
            invalid_samples: vec![InvalidNamespaceAnnotation {
                namespace: "ml".to_owned(),
                annotation: "eks-reaper/ttl".to_owned(),
                value: "soon".to_owned(),
            }],
            ..NamespaceAnnotationsReport::default()
        });
        c.namespace_events = Some(NamespaceEventsReport {
            sent: 2,
            failed: 1,
            error: Some("HTTP 403".to_owned()),
        });
        namespace_lines(&c, &mut out);
        assert_eq!(
            out,
            "etl: namespace ml: eks-reaper/ttl=\"soon\" not understood: every object in it \
             kept\netl: namespace events: 2 sent, 1 failed (HTTP 403)\n"
        );
    }

    #[test]
    fn ages_show_their_two_largest_units() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(45), "45s");
        assert_eq!(age(960), "16m");
        assert_eq!(age(7_500), "2h 5m");
        assert_eq!(age(7_200), "2h");
        assert_eq!(age(273_600), "3d 4h");
        assert_eq!(age(86_430), "1d");
    }
}

//! The report as a table on a terminal: one row per cluster, the reasons objects were kept,
//! and a closing status line.

use std::fmt::Write as _;

use crate::config::DryRun;
use crate::report::{Report, RunStatus};

/// The report as a table (the CLI's default on a terminal).
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<14} {:<8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "CLUSTER",
        "REGION",
        "STATUS",
        "JOBS",
        "JOB DEL",
        "PODS",
        "POD DEL",
        "FARGATE",
        "ERRORS",
        "429s",
        "BACKLOG"
    );
    for c in &report.clusters {
        let _ = writeln!(
            out,
            "{:<24} {:<14} {:<8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            c.cluster,
            c.region.as_deref().unwrap_or("-"),
            format!("{:?}", c.status).to_lowercase(),
            c.jobs.seen,
            c.jobs.deleted,
            c.pods.seen,
            c.pods.deleted,
            c.pods.fargate_deleted,
            c.errors.values().sum::<u64>(),
            c.throttled,
            c.backlog,
        );
        if let Some(e) = &c.error {
            let _ = writeln!(
                out,
                "  {}: {e}",
                c.error_kind.map_or("error", |k| k.as_str())
            );
        }
        for (label, kept) in [
            ("jobs kept", &c.jobs.kept_by_reason),
            ("pods kept", &c.pods.kept_by_reason),
        ] {
            if !kept.is_empty() {
                let parts: Vec<String> = kept.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(out, "  {label}: {}", parts.join(" "));
            }
        }
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

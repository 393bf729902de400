//! The command line: `eks-reaper run --cluster NAME [--dry-run] [--output table|json] ...`,
//! with the same settings as the Lambda (every flag also reads its `REAPER_*` variable).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::error;

mod table;

use crate::clock::SystemClock;
use crate::config::event::Overrides;
use crate::config::options::Parsed;
use crate::config::{Config, MetricsSinkKind, Options};
use crate::deadline::Deadline;
use crate::prune::RunContext;
use crate::prune::tally::Progress;
use crate::report::Report;

/// eks-reaper: prune finished Jobs and Pods on EKS from outside the cluster.
#[derive(Debug, Parser)]
#[command(name = "eks-reaper", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one pruning pass now.
    Run(RunArgs),
}

/// `eks-reaper run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Settings (flags or REAPER_* environment variables).
    #[command(flatten)]
    pub options: Options,
    /// Report format: `table` (default on a terminal) or `json`.
    #[arg(long, value_enum)]
    pub output: Option<Output>,
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable table.
    Table,
    /// The JSON report (what the Lambda returns).
    Json,
}

/// Logs to stderr (stdout is the report): `RUST_LOG` (default `info`), JSON lines when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, colours only on a terminal.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    if crate::report::json_logs_from_env() {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// Exit status: 0 ok, 1 a cluster could not be processed, 2 invalid configuration.
///
/// Each failure reaches stderr once: with text logs as one plain line (`eks-reaper: ...`),
/// the run's own failure log lines staying at debug level; with JSON logs as the log line
/// (`errorKind`, `cluster`, `error`), with no plain line mixed in.
pub async fn main(cli: Cli) -> ExitCode {
    let Command::Run(mut args) = cli.command;
    let json_logs = crate::report::json_logs_from_env();
    let interactive = std::io::stdout().is_terminal() || std::io::stderr().is_terminal();
    if args.options.metrics_sink.is_none() {
        args.options.metrics_sink = Some(Parsed::Valid(default_metrics_sink(interactive)));
    }
    let config = match Config::resolve(&args.options, &Overrides::default()) {
        Ok(c) => c,
        Err(e) => {
            if json_logs {
                error!(errorKind = "ConfigError", error = %e, field = e.field(), "invalid configuration; nothing done");
            } else {
                eprintln!("eks-reaper: invalid configuration: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let aws = crate::run::load_aws_config().await;
    let deadline = Deadline::bounded(None, config.max_run_time, config.deadline_margin);
    // The progress line shares stderr with the logs: only when they are quiet enough
    // (`RUST_LOG=warn` or less) not to print a line per object over it.
    let quiet_logs =
        tracing::level_filters::LevelFilter::current() <= tracing::level_filters::LevelFilter::WARN;
    let progress = std::sync::Arc::new(Progress::default());
    let ticker = (std::io::stderr().is_terminal() && quiet_logs)
        .then(|| tokio::spawn(progress_line(progress.clone())));
    let run = RunContext {
        aws: &aws,
        deadline,
        clock: &SystemClock,
        progress: &progress,
        json_logs,
        failures_printed: !json_logs,
    };
    let report = crate::run::run(&config, run).await;
    if let Some(t) = ticker {
        t.abort();
        eprint!("\r\x1b[2K");
    }
    let output = args.output.unwrap_or(if std::io::stdout().is_terminal() {
        Output::Table
    } else {
        Output::Json
    });
    print_report(&report, output);
    match crate::run::outcome(report) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            if !json_logs {
                for line in e.lines() {
                    eprintln!("eks-reaper: {line}");
                }
            }
            ExitCode::from(1)
        }
    }
}

/// The metrics sink when `REAPER_METRICS_SINK` is unset. On a terminal a person is trying
/// the tool, perhaps against a cluster the deployed function also watches: writing that
/// cluster's metrics (heartbeat included) from a laptop would blur its alarms and bill
/// metrics, so nothing is published unless asked. Elsewhere (cron, CI, a container) the CLI
/// is a deployment and publishes to CloudWatch, as the Lambda does.
pub fn default_metrics_sink(interactive: bool) -> MetricsSinkKind {
    if interactive {
        MetricsSinkKind::None
    } else {
        MetricsSinkKind::CloudWatch
    }
}

/// A progress line on the terminal during long deletions (`N/M due objects handled`).
async fn progress_line(progress: std::sync::Arc<Progress>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tick.tick().await;
        let (done, due) = progress.get();
        if due > 0 {
            let width = 30u64;
            let filled = (done * width).checked_div(due).unwrap_or(0).min(width);
            eprint!(
                "\r[{}{}] {done}/{due} due objects handled",
                "#".repeat(usize::try_from(filled).unwrap_or(0)),
                " ".repeat(usize::try_from(width - filled).unwrap_or(0)),
            );
        }
    }
}

fn print_report(report: &Report, output: Output) {
    match output {
        Output::Table => print!("{}", table::render(report)),
        Output::Json => match serde_json::to_string_pretty(report) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("eks-reaper: cannot serialise the report: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_subcommand_parses_the_readme_example() {
        let cli = Cli::try_parse_from([
            "eks-reaper",
            "run",
            "--cluster",
            "etl",
            "--dry-run",
            "--output",
            "json",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command;
        assert_eq!(args.output, Some(Output::Json));
        assert_eq!(args.options.clusters, ["etl"]);
        assert_eq!(
            args.options.dry_run.get(),
            Ok(crate::config::DryRun::Client)
        );
    }

    #[test]
    fn cli_on_a_terminal_publishes_no_metrics_unless_asked() {
        assert_eq!(default_metrics_sink(true), MetricsSinkKind::None);
        assert_eq!(default_metrics_sink(false), MetricsSinkKind::CloudWatch);
    }
}

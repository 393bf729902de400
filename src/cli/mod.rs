//! The command line: `eks-reaper run --cluster NAME [--dry-run] [--output table|json] ...`,
//! with the same settings as the Lambda (every flag also reads its `REAPER_*` variable),
//! and the on-call's read-only views: `plan` ([`plan`]), `headroom` ([`headroom`]),
//! `token` ([`token`]); `completions` and `man` ([`completions`]).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::error;

pub mod completions;
pub mod headroom;
pub mod plan;
pub mod progress;
mod table;
pub mod token;

use crate::clock::SystemClock;
use crate::config::event::Overrides;
use crate::config::options::Parsed;
use crate::config::{Config, MetricsSinkKind, Options};
use crate::deadline::Deadline;
use kube::config::Kubeconfig;

use crate::config::{ConfigError, DryRun, KubeconfigContext};
use crate::prune::RunContext;
use crate::prune::observe::{Both, Observer, Unobserved};
use crate::prune::tally::Progress;
use crate::report::Report;

/// eks-reaper: prune finished Jobs and Pods on EKS from outside the cluster.
#[derive(Debug, Parser)]
#[command(name = "eks-reaper", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// On a terminal: `-v` shows the log lines (info), `-vv` also every object deleted or
    /// judged (debug). Without it a terminal shows the output only; off a terminal the logs
    /// are always written to stderr. `RUST_LOG` overrides both.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one pruning pass now.
    Run(RunArgs),
    /// Print an ExecCredential with the EKS token the reaper signs (a kubeconfig exec
    /// credential plugin, like `aws eks get-token`).
    Token(token::TokenArgs),
    /// Show what a run would delete now, grouped by namespace and reason (read-only).
    Plan(plan::PlanArgs),
    /// Show the subnets' free IPs, the forecast and whether low-headroom mode would engage
    /// (EKS and EC2 reads; the forecast also lists Fargate pods).
    Headroom(headroom::HeadroomArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff).
    Man,
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
    /// Reach the cluster through a kubeconfig context.
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// Reaching one cluster through a kubeconfig context instead of `DescribeCluster` (`run`,
/// `plan`): clusters that are not EKS, or not reachable through the EKS API. The subnets
/// and the forecast are read only when `--cluster` also names the EKS cluster.
#[derive(Debug, Clone, Default, Args)]
pub struct KubeArgs {
    /// Kubeconfig file (with --context alone: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Kubeconfig context (with --kubeconfig alone: the file's current-context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl KubeArgs {
    /// The context to reach and its name, or `None` when neither flag is given.
    fn context(&self) -> Result<Option<(KubeconfigContext, String)>, ConfigError> {
        if self.kubeconfig.is_none() && self.context.is_none() {
            return Ok(None);
        }
        let file = match &self.kubeconfig {
            Some(path) => Kubeconfig::read_from(path).map_err(|e| {
                ConfigError::invalid("--kubeconfig", &path.display().to_string(), e.to_string())
            })?,
            None => Kubeconfig::read().map_err(|e| {
                ConfigError::invalid(
                    "--kubeconfig",
                    "$KUBECONFIG or ~/.kube/config",
                    e.to_string(),
                )
            })?,
        };
        let name = match self.context.clone().or(file.current_context.clone()) {
            Some(name) => name,
            None => {
                return Err(ConfigError::invalid(
                    "--context",
                    "",
                    "the kubeconfig has no current-context: name one",
                ));
            }
        };
        if !file.contexts.iter().any(|c| c.name == name) {
            let known: Vec<&str> = file.contexts.iter().map(|c| c.name.as_str()).collect();
            return Err(ConfigError::invalid(
                "--context",
                &name,
                format!(
                    "no such context in the kubeconfig (it has: {})",
                    known.join(", ")
                ),
            ));
        }
        let context = KubeconfigContext {
            path: self.kubeconfig.clone(),
            context: Some(name.clone()),
            eks_cluster: false,
        };
        Ok(Some((context, name)))
    }
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable table.
    Table,
    /// The JSON report (what the Lambda returns).
    Json,
}

/// Exit status: 0 ok, 1 a cluster could not be processed, 2 invalid configuration.
/// `bars`: progress bars are drawn ([`progress::init_tracing`]).
///
/// Each failure reaches stderr once: with text logs as one plain line (`eks-reaper: ...`),
/// the run's own failure log lines staying at debug level; with JSON logs as the log line
/// (`errorKind`, `cluster`, `error`), with no plain line mixed in.
pub async fn main(cli: Cli, bars: bool) -> ExitCode {
    match cli.command {
        Command::Run(args) => run(args, bars).await,
        Command::Token(args) => token::main(args).await,
        Command::Plan(args) => plan::main(args, bars).await,
        Command::Headroom(args) => headroom::main(args).await,
        Command::Completions(args) => completions::completions(&args),
        Command::Man => completions::man(),
    }
}

/// `eks-reaper run`: one pruning pass, the report on stdout.
async fn run(args: RunArgs, bars: bool) -> ExitCode {
    let config = match resolve(&args.options, &args.kube, None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let report = execute(&config, &Unobserved, bars).await;
    let output = output(args.output);
    print_report(&report, output);
    exit_code(report, output == Output::Table)
}

/// The validated configuration (one cluster through a kubeconfig context with `kube`), with
/// `dry_run` forced when given and the CLI's metrics sink default; on error, says so once
/// and gives exit status 2.
fn resolve(
    options: &Options,
    kube: &KubeArgs,
    dry_run: Option<DryRun>,
) -> Result<Config, ExitCode> {
    let mut options = options.clone();
    if options.metrics_sink.is_none() {
        let interactive = std::io::stdout().is_terminal() || std::io::stderr().is_terminal();
        options.metrics_sink = Some(Parsed::Valid(default_metrics_sink(interactive)));
    }
    let options = &options;
    let overrides = Overrides {
        dry_run,
        ..Overrides::default()
    };
    let resolved = kube.context().and_then(|context| match context {
        Some((context, name)) => {
            Config::resolve_with_kubeconfig(options, &overrides, context, &name)
        }
        None => Config::resolve(options, &overrides),
    });
    resolved.map_err(|e| {
        if crate::report::json_logs_from_env() {
            error!(errorKind = "ConfigError", error = %e, field = e.field(), "invalid configuration; nothing done");
        } else {
            eprintln!("eks-reaper: invalid configuration: {e}");
        }
        ExitCode::from(2)
    })
}

/// One run of `config` (every cluster, metrics per its settings), watched by `observer`,
/// and by progress bars when `bars`.
async fn execute(config: &Config, observer: &dyn Observer, bars: bool) -> Report {
    let aws = crate::run::load_aws_config().await;
    let deadline = Deadline::bounded(None, config.max_run_time, config.deadline_margin);
    let progress = Progress::default();
    let drawn = progress::Bars::default();
    let both = Both(observer, &drawn);
    let observer: &dyn Observer = if bars { &both } else { observer };
    let json_logs = crate::report::json_logs_from_env();
    let run = RunContext {
        aws: &aws,
        deadline,
        clock: &SystemClock,
        progress: &progress,
        json_logs,
        observer,
        failures_printed: !json_logs,
    };
    crate::run::run(config, run).await
}

/// The format asked for, or the default: a table on a terminal, JSON otherwise.
fn output(asked: Option<Output>) -> Output {
    asked.unwrap_or(if std::io::stdout().is_terminal() {
        Output::Table
    } else {
        Output::Json
    })
}

/// Exit status of a run: 0 ok, 1 a cluster could not be processed or a discovery region
/// not searched, said on stderr unless the table already said it (`shown`).
fn exit_code(report: Report, shown: bool) -> ExitCode {
    match crate::run::outcome(report) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            if !shown && !crate::report::json_logs_from_env() {
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

/// Pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("eks-reaper: cannot serialise the output: {e}"),
    }
}

fn print_report(report: &Report, output: Output) {
    match output {
        Output::Table => print!("{}", table::render(report)),
        Output::Json => print_json(report),
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
        let Command::Run(args) = cli.command else {
            panic!("not run: {:?}", cli.command)
        };
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

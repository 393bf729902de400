//! The settings as environment variables and flags ([`Options`], read by clap: every flag
//! also reads its `REAPER_*` variable, named once, here).
//!
//! Single values are typed by their value parser ([`Parsed`]); a value that does not parse
//! is kept as the [`ConfigError`] naming the setting and the value, and surfaces in
//! [`Config::resolve`](super::Config::resolve), so the CLI and the Lambda report it the
//! same way. Lists stay text here: they are cleaned and checked as lists there (blank
//! entries, duplicates, a set-but-blank include list).

use std::ffi::OsStr;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Arg, Args, Command};

use super::error::ConfigError;
use super::values::{
    self, ClusterTag, DryRun, ExternalId, LatencyTarget, MetricsDetail, MetricsSinkKind, Reason,
};

/// A single setting as read: its typed value, or why the text was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<T> {
    /// A valid value.
    Valid(T),
    /// A refused value, with the setting's name and the text.
    Invalid(ConfigError),
}

impl<T: Clone> Parsed<T> {
    /// The value, or the error naming the setting and the value.
    pub fn get(&self) -> Result<T, ConfigError> {
        match self {
            Parsed::Valid(v) => Ok(v.clone()),
            Parsed::Invalid(e) => Err(e.clone()),
        }
    }
}

/// The clap value parser behind a [`Parsed`] setting.
#[derive(Clone, Copy)]
pub struct Parser<T>(pub fn(&str) -> Result<T, Reason>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Parser<T> {
    type Value = Parsed<T>;

    fn parse_ref(
        &self,
        _cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Parsed<T>, clap::Error> {
        Ok(parse(self.0, arg, value, |text| text.to_owned()))
    }
}

/// A [`Parser`] for a setting whose value is never repeated, not even in the error about
/// it: the error gives its length ([`values::hidden`]).
#[derive(Clone, Copy)]
pub struct HiddenParser<T>(pub fn(&str) -> Result<T, Reason>);

impl<T: Clone + Send + Sync + 'static> TypedValueParser for HiddenParser<T> {
    type Value = Parsed<T>;

    fn parse_ref(
        &self,
        _cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Parsed<T>, clap::Error> {
        Ok(parse(self.0, arg, value, values::hidden))
    }
}

fn parse<T>(
    read: fn(&str) -> Result<T, Reason>,
    arg: Option<&Arg>,
    value: &OsStr,
    shown: fn(&str) -> String,
) -> Parsed<T> {
    let text = value.to_string_lossy();
    match read(&text) {
        Ok(v) => Parsed::Valid(v),
        Err(reason) => {
            let field = arg.map(setting_name).unwrap_or_default();
            Parsed::Invalid(ConfigError::invalid(&field, &shown(&text), reason))
        }
    }
}

/// The name errors give a setting: `REAPER_CONCURRENCY (--concurrency)`.
fn setting_name(arg: &Arg) -> String {
    let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
    match (env, arg.get_long()) {
        (Some(env), Some(long)) => format!("{env} (--{long})"),
        (Some(env), None) => env,
        (None, Some(long)) => format!("--{long}"),
        (None, None) => arg.get_id().to_string(),
    }
}

/// The error name of the setting whose field in [`Options`] is `id`
/// (`REAPER_PAGE_SIZE (--page-size)`). Every `id` passed is a literal in this module's
/// callers, checked by a test against the fields of [`Options`]; an unknown one names
/// the setting by its id rather than failing the run over an error message.
pub fn field(id: &str) -> String {
    let command = Options::augment_args(Command::new("eks-reaper"));
    let name = command
        .get_arguments()
        .find(|a| a.get_id() == id)
        .map(setting_name);
    debug_assert!(
        name.is_some(),
        "options::field({id:?}) is not a field of Options"
    );
    name.unwrap_or_else(|| id.to_owned())
}

/// Raw settings as given by environment variables or flags (clap reads both).
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Clusters to prune: `name` or `name@region` (repeat, or comma list).
    #[arg(
        long = "cluster",
        env = "REAPER_CLUSTERS",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub clusters: Vec<String>,

    /// Also prune every cluster carrying this tag (`key=value`), found each run in the
    /// discovery regions.
    #[arg(
        long,
        env = "REAPER_CLUSTER_TAG",
        value_name = "KEY=VALUE",
        default_value = "",
        hide_default_value = true,
        value_parser = Parser(values::cluster_tag)
    )]
    pub cluster_tag: Parsed<Option<ClusterTag>>,

    /// Regions searched for tagged clusters (comma list; default: the default region).
    #[arg(long, env = "REAPER_DISCOVERY_REGIONS", value_delimiter = ',')]
    pub discovery_regions: Vec<String>,

    /// Other accounts searched for tagged clusters, each through its member role
    /// (`REAPER_MEMBER_ROLE_NAME`): 12-digit account ids (comma list). Thirteen bytes per
    /// account, against Lambda's 4 KB for all variables: a few hundred accounts, where
    /// `REAPER_ROLE_ARNS` holds about 30 clusters.
    #[arg(
        long = "discovery-account",
        env = "REAPER_DISCOVERY_ACCOUNTS",
        value_delimiter = ',',
        value_name = "ACCOUNT"
    )]
    pub discovery_accounts: Vec<String>,

    /// The role assumed in each discovery account (`arn:PARTITION:iam::ACCOUNT:role/NAME`):
    /// the member role of `infra/member-account.yaml`.
    #[arg(
        long,
        env = "REAPER_MEMBER_ROLE_NAME",
        default_value = "eks-reaper-member"
    )]
    pub member_role_name: String,

    /// Role to assume per cluster: `NAME=ARN` (repeat, or comma list).
    #[arg(
        long = "role-arn",
        env = "REAPER_ROLE_ARNS",
        value_delimiter = ',',
        value_name = "NAME=ARN"
    )]
    pub role_arns: Vec<String>,

    /// External id sent with every `sts:AssumeRole` (blank: none); never logged.
    #[arg(
        long,
        env = "REAPER_EXTERNAL_ID",
        value_name = "ID",
        default_value = "",
        hide_default_value = true,
        hide_env_values = true,
        value_parser = HiddenParser(values::external_id)
    )]
    pub external_id: Parsed<Option<ExternalId>>,

    /// `true`/`client`: report only; `server`: send deletes with dryRun=All; `false`: delete.
    #[arg(
        long = "dry-run",
        env = "REAPER_DRY_RUN",
        num_args = 0..=1,
        default_missing_value = "client",
        default_value = "false",
        value_name = "client|server",
        value_parser = Parser(values::dry_run)
    )]
    pub dry_run: Parsed<DryRun>,

    /// Retention of a Job after Complete=True.
    #[arg(long, env = "REAPER_SUCCEEDED_JOB_TTL", default_value = "15m", value_parser = Parser(values::duration))]
    pub succeeded_job_ttl: Parsed<Duration>,

    /// Retention of a Job after Failed=True.
    #[arg(long, env = "REAPER_FAILED_JOB_TTL", default_value = "24h", value_parser = Parser(values::duration))]
    pub failed_job_ttl: Parsed<Duration>,

    /// Retention of a finished Fargate pod, even while its (failed) Job is kept.
    #[arg(long, env = "REAPER_FARGATE_POD_TTL", default_value = "15m", value_parser = Parser(values::duration))]
    pub fargate_pod_ttl: Parsed<Duration>,

    /// Retention of finished pods with no controller, and of Evicted pods.
    #[arg(long, env = "REAPER_BARE_POD_TTL", default_value = "1h", value_parser = Parser(values::duration))]
    pub bare_pod_ttl: Parsed<Duration>,

    /// Least time a workflow engine's finished pod (Airflow, Digdag, Spark...) without the
    /// engine's "done" marker is kept, in every mode: the engine may still read it and its log.
    #[arg(long, env = "REAPER_ENGINE_POD_GRACE", default_value = "5m", value_parser = Parser(values::duration))]
    pub engine_pod_grace: Parsed<Duration>,

    /// Only these namespaces (comma list; default all but kube-system, kube-public and
    /// kube-node-lease, which are pruned only when named here).
    #[arg(long, env = "REAPER_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Never these namespaces (comma list), besides the protected ones.
    #[arg(long, env = "REAPER_EXCLUDE_NAMESPACES", value_delimiter = ',')]
    pub exclude_namespaces: Vec<String>,

    /// Controllers whose finished Jobs and pods are handed over: `group/Kind` (comma list;
    /// `core/Kind` for the core group).
    #[arg(
        long,
        env = "REAPER_PRUNE_OWNERS",
        value_delimiter = ',',
        value_name = "GROUP/KIND"
    )]
    pub prune_owners: Vec<String>,

    /// The newest failed Jobs of each owner (a CronJob, or the --keep-last-label value)
    /// kept whatever their retention; 0 turns it off.
    #[arg(long, env = "REAPER_KEEP_LAST_FAILED", default_value = "1", value_parser = Parser(values::history_count))]
    pub keep_last_failed: Parsed<usize>,

    /// The newest succeeded Jobs of each owner kept whatever their retention; 0 turns it off.
    #[arg(long, env = "REAPER_KEEP_LAST_SUCCEEDED", default_value = "0", value_parser = Parser(values::history_count))]
    pub keep_last_succeeded: Parsed<usize>,

    /// A label naming the workflow or task of Jobs no CronJob controls: Jobs with the same
    /// value in one namespace are one owner for the keep-last counts.
    #[arg(long, env = "REAPER_KEEP_LAST_LABEL", default_value = "", value_parser = Parser(values::label_key))]
    pub keep_last_label: Parsed<Option<String>>,

    /// SQS FIFO queue URL: the Lambda fans out, one message and one invocation per cluster
    /// (docs/fleets.md). Unset: one invocation runs every cluster.
    #[arg(long, env = "REAPER_QUEUE_URL")]
    pub queue_url: Option<String>,

    /// The schedule's interval (`5m`), which the planner needs to tell a cluster that stopped
    /// reporting: with a queue, each plan reads which clusters it enqueued before the last
    /// `REAPER_NOT_REPORTED_RUNS` intervals published no run since. Blank: no such check.
    #[arg(
        long,
        env = "REAPER_SCHEDULE_INTERVAL",
        default_value = "",
        hide_default_value = true,
        value_parser = Parser(values::schedule_interval)
    )]
    pub schedule_interval: Parsed<Option<Duration>>,

    /// Scheduled runs without a report after which the planner counts a cluster as not
    /// reported (`ClustersNotReported`).
    #[arg(long, env = "REAPER_NOT_REPORTED_RUNS", default_value = "4", value_parser = Parser(values::missed_runs))]
    pub not_reported_runs: Parsed<u32>,

    /// Kubernetes label selector applied to Jobs and Pods.
    #[arg(long, env = "REAPER_LABEL_SELECTOR")]
    pub label_selector: Option<String>,

    /// Leave Jobs that set ttlSecondsAfterFinished to the native TTL controller.
    #[arg(
        long,
        env = "REAPER_RESPECT_NATIVE_TTL",
        num_args = 0..=1,
        default_missing_value = "true",
        default_value = "true",
        value_name = "BOOL",
        value_parser = Parser(values::flag)
    )]
    pub respect_native_ttl: Parsed<bool>,

    /// Leave CronJob-owned Jobs to the CronJob's history limits.
    #[arg(
        long,
        env = "REAPER_SKIP_CRONJOB_JOBS",
        num_args = 0..=1,
        default_missing_value = "true",
        default_value = "false",
        value_name = "BOOL",
        value_parser = Parser(values::flag)
    )]
    pub skip_cronjob_jobs: Parsed<bool>,

    /// Deletions in flight per cluster.
    #[arg(
        long,
        env = "REAPER_CONCURRENCY",
        allow_negative_numbers = true,
        default_value = "16",
        value_parser = Parser(values::count)
    )]
    pub concurrency: Parsed<usize>,

    /// Keep the drain's median DELETE latency within this factor of its baseline (the
    /// lowest median at low concurrency): `off`, or a number over 1.
    #[arg(
        long,
        env = "REAPER_DRAIN_LATENCY_TARGET",
        default_value = "3",
        value_parser = Parser(values::latency_target)
    )]
    pub drain_latency_target: Parsed<LatencyTarget>,

    /// Clusters processed at once.
    #[arg(
        long,
        env = "REAPER_CLUSTER_CONCURRENCY",
        allow_negative_numbers = true,
        default_value = "4",
        value_parser = Parser(values::count)
    )]
    pub cluster_concurrency: Parsed<usize>,

    /// `limit` per list page.
    #[arg(
        long,
        env = "REAPER_PAGE_SIZE",
        allow_negative_numbers = true,
        default_value = "500",
        value_parser = Parser(values::page_size)
    )]
    pub page_size: Parsed<u32>,

    /// Stop starting deletions when less than this remains of the invocation.
    #[arg(long, env = "REAPER_DEADLINE_MARGIN", default_value = "30s", value_parser = Parser(values::duration))]
    pub deadline_margin: Parsed<Duration>,

    /// Re-sign the EKS token when it is older than this (EKS accepts it for 15 minutes).
    #[arg(long, env = "REAPER_TOKEN_MAX_AGE", default_value = "10m", value_parser = Parser(values::token_max_age))]
    pub token_max_age: Parsed<Duration>,

    /// Upper bound for one run (default: none for the CLI, the invocation deadline in Lambda).
    #[arg(
        long,
        env = "REAPER_MAX_RUN_TIME",
        default_value = "",
        hide_default_value = true,
        value_parser = Parser(values::optional_positive_duration)
    )]
    pub max_run_time: Parsed<Option<Duration>>,

    /// Subnet IDs to watch besides the cluster's and its Fargate profiles'.
    #[arg(long, env = "REAPER_EXTRA_SUBNETS", value_delimiter = ',')]
    pub extra_subnets: Vec<String>,

    /// Low-headroom mode when the tightest subnet's free fraction falls under this.
    #[arg(long, env = "REAPER_LOW_HEADROOM_FRACTION", default_value = "0.10", value_parser = Parser(values::fraction))]
    pub low_headroom_fraction: Parsed<f64>,

    /// Short window of the IP exhaustion forecast (the long and extended ones are 4 and 5 times it).
    #[arg(long, env = "REAPER_FORECAST_WINDOW", default_value = "15m", value_parser = Parser(values::positive_duration))]
    pub forecast_window: Parsed<Duration>,

    /// Fargate pod retention while in low-headroom mode.
    #[arg(long, env = "REAPER_LOW_HEADROOM_FARGATE_TTL", default_value = "1m", value_parser = Parser(values::duration))]
    pub low_headroom_fargate_ttl: Parsed<Duration>,

    /// `cloudwatch` (PutMetricData), `emf` (Embedded Metric Format log lines) or `none`.
    /// Unset: `cloudwatch`, except the CLI on a terminal, which publishes nothing unless
    /// asked (`none`).
    #[arg(long, env = "REAPER_METRICS_SINK", value_parser = Parser(values::metrics_sink))]
    pub metrics_sink: Option<Parsed<MetricsSinkKind>>,

    /// CloudWatch namespace.
    #[arg(long, env = "REAPER_METRICS_NAMESPACE", default_value = "EKSReaper", value_parser = Parser(values::metrics_namespace))]
    pub metrics_namespace: Parsed<String>,

    /// Also publish deletion counts with a Namespace dimension.
    #[arg(
        long,
        env = "REAPER_METRICS_PER_NAMESPACE",
        num_args = 0..=1,
        default_missing_value = "true",
        default_value = "false",
        value_name = "BOOL",
        value_parser = Parser(values::flag)
    )]
    pub metrics_per_namespace: Parsed<bool>,

    /// `essential`: only the metrics the alarms and the dashboard's core read (nothing per
    /// subnet); `full`: every metric.
    #[arg(long, env = "REAPER_METRICS_DETAIL", default_value = "essential", value_parser = Parser(values::metrics_detail))]
    pub metrics_detail: Parsed<MetricsDetail>,

    /// A Job or pod being deleted for longer than this (a finalizer nobody removes) is
    /// reported stuck terminating; its finalizers are never removed.
    #[arg(long, env = "REAPER_STUCK_AFTER", default_value = "10m", value_parser = Parser(values::positive_duration))]
    pub stuck_after: Parsed<Duration>,
    /// Read the namespaces' eks-reaper/* annotations (their retentions and opt-outs); needs
    /// `list` on namespaces. When they cannot be listed, every object is kept.
    #[arg(
        long,
        env = "REAPER_NAMESPACE_ANNOTATIONS",
        num_args = 0..=1,
        default_missing_value = "true",
        default_value = "true",
        value_name = "BOOL",
        value_parser = Parser(values::flag)
    )]
    pub namespace_annotations: Parsed<bool>,

    /// One Kubernetes Event per namespace and run summarising its deletions; needs `create`
    /// on events.
    #[arg(
        long,
        env = "REAPER_NAMESPACE_EVENTS",
        num_args = 0..=1,
        default_missing_value = "true",
        default_value = "false",
        value_name = "BOOL",
        value_parser = Parser(values::flag)
    )]
    pub namespace_events: Parsed<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_named_by_its_variable_and_flag() {
        let command = Options::augment_args(Command::new("eks-reaper"));
        for arg in command.get_arguments() {
            let name = field(arg.get_id().as_str());
            assert!(name.starts_with("REAPER_"), "{name}");
            assert!(name.contains(" (--"), "{name}");
        }
        assert_eq!(field("page_size"), "REAPER_PAGE_SIZE (--page-size)");
        assert_eq!(field("clusters"), "REAPER_CLUSTERS (--cluster)");
    }

    #[test]
    fn every_field_named_in_an_error_is_a_setting() {
        let command = Options::augment_args(Command::new("eks-reaper"));
        let ids: Vec<&str> = command
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .collect();
        let sources = [
            include_str!("mod.rs"),
            include_str!("values.rs"),
            include_str!("event.rs"),
            include_str!("alarm.rs"),
        ];
        let mut named = 0;
        for source in sources {
            for call in source.split("field(\"").skip(1) {
                let id = call.split('"').next().unwrap_or_default();
                assert!(
                    ids.contains(&id),
                    "field({id:?}) names no setting of Options"
                );
                named += 1;
            }
        }
        assert!(
            named >= 5,
            "only {named} field(...) calls found: the scan is broken"
        );
    }
}

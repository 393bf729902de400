//! Configuration: one typed, validated [`Config`] built from environment variables or CLI
//! flags ([`Options`], the same names as the README table), then the invocation event's
//! overrides ([`crate::event::Overrides`]).
//!
//! Every value is taken as text and validated here, so an error always names the setting
//! (environment variable and flag, or event field) and the offending value, and nothing is
//! deleted when a value is bad.

use std::time::Duration;

use clap::Args;

use crate::event::{ClusterOverride, Overrides};
use crate::policy::{OwnerKind, Settings};

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

    /// Role to assume per cluster: `NAME=ARN` (repeat, or comma list).
    #[arg(
        long = "role-arn",
        env = "REAPER_ROLE_ARNS",
        value_delimiter = ',',
        value_name = "NAME=ARN"
    )]
    pub role_arns: Vec<String>,

    /// `true`/`client`: report only; `server`: send deletes with dryRun=All; `false`: delete.
    #[arg(
        long = "dry-run",
        env = "REAPER_DRY_RUN",
        num_args = 0..=1,
        default_missing_value = "client",
        default_value = "false",
        value_name = "client|server"
    )]
    pub dry_run: String,

    /// Retention of a Job after Complete=True.
    #[arg(long, env = "REAPER_SUCCEEDED_JOB_TTL", default_value = "15m")]
    pub succeeded_job_ttl: String,

    /// Retention of a Job after Failed=True.
    #[arg(long, env = "REAPER_FAILED_JOB_TTL", default_value = "24h")]
    pub failed_job_ttl: String,

    /// Retention of a finished Fargate pod, even while its (failed) Job is kept.
    #[arg(long, env = "REAPER_FARGATE_POD_TTL", default_value = "15m")]
    pub fargate_pod_ttl: String,

    /// Retention of finished pods with no controller, and of Evicted pods.
    #[arg(long, env = "REAPER_BARE_POD_TTL", default_value = "1h")]
    pub bare_pod_ttl: String,

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
        value_name = "BOOL"
    )]
    pub respect_native_ttl: String,

    /// Leave CronJob-owned Jobs to the CronJob's history limits.
    #[arg(
        long,
        env = "REAPER_SKIP_CRONJOB_JOBS",
        num_args = 0..=1,
        default_missing_value = "true",
        default_value = "false",
        value_name = "BOOL"
    )]
    pub skip_cronjob_jobs: String,

    /// Deletions in flight per cluster.
    #[arg(
        long,
        env = "REAPER_CONCURRENCY",
        allow_negative_numbers = true,
        default_value = "16"
    )]
    pub concurrency: String,

    /// Clusters processed at once.
    #[arg(
        long,
        env = "REAPER_CLUSTER_CONCURRENCY",
        allow_negative_numbers = true,
        default_value = "4"
    )]
    pub cluster_concurrency: String,

    /// `limit` per list page.
    #[arg(
        long,
        env = "REAPER_PAGE_SIZE",
        allow_negative_numbers = true,
        default_value = "500"
    )]
    pub page_size: String,

    /// Stop starting deletions when less than this remains of the invocation.
    #[arg(long, env = "REAPER_DEADLINE_MARGIN", default_value = "30s")]
    pub deadline_margin: String,

    /// Re-sign the EKS token when it is older than this (EKS accepts it for 15 minutes).
    #[arg(long, env = "REAPER_TOKEN_MAX_AGE", default_value = "10m")]
    pub token_max_age: String,

    /// Upper bound for one run (default: none for the CLI, the invocation deadline in Lambda).
    #[arg(long, env = "REAPER_MAX_RUN_TIME")]
    pub max_run_time: Option<String>,

    /// Subnet IDs to watch besides the cluster's and its Fargate profiles'.
    #[arg(long, env = "REAPER_EXTRA_SUBNETS", value_delimiter = ',')]
    pub extra_subnets: Vec<String>,

    /// Low-headroom mode when the tightest subnet's free fraction falls under this.
    #[arg(long, env = "REAPER_LOW_HEADROOM_FRACTION", default_value = "0.10")]
    pub low_headroom_fraction: String,

    /// Fargate pod retention while in low-headroom mode.
    #[arg(long, env = "REAPER_LOW_HEADROOM_FARGATE_TTL", default_value = "1m")]
    pub low_headroom_fargate_ttl: String,

    /// `cloudwatch` (PutMetricData), `emf` (Embedded Metric Format log lines) or `none`.
    #[arg(long, env = "REAPER_METRICS_SINK", default_value = "cloudwatch")]
    pub metrics_sink: String,

    /// CloudWatch namespace.
    #[arg(long, env = "REAPER_METRICS_NAMESPACE", default_value = "EKSReaper")]
    pub metrics_namespace: String,

    /// Also publish deletion counts with a Namespace dimension.
    #[arg(
        long,
        env = "REAPER_METRICS_PER_NAMESPACE",
        num_args = 0..=1,
        default_missing_value = "true",
        default_value = "false",
        value_name = "BOOL"
    )]
    pub metrics_per_namespace: String,
}

/// The validated configuration of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Clusters to process (never empty).
    pub clusters: Vec<ClusterTarget>,
    /// Whether and how to send deletions.
    pub dry_run: DryRun,
    /// Policy settings (retentions, namespaces, native TTL, CronJobs).
    pub policy: Settings,
    /// Server-side label selector for Jobs and Pods.
    pub label_selector: Option<String>,
    /// Deletions in flight per cluster (≥ 1).
    pub concurrency: usize,
    /// Clusters processed at once (≥ 1).
    pub cluster_concurrency: usize,
    /// `limit` per list page (≥ 1).
    pub page_size: u32,
    /// Stop starting deletions when less than this remains.
    pub deadline_margin: Duration,
    /// Upper bound for one run.
    pub max_run_time: Option<Duration>,
    /// Age at which the EKS token is re-signed (under 15 minutes).
    pub token_max_age: Duration,
    /// Subnets watched besides the cluster's own.
    pub extra_subnets: Vec<String>,
    /// Free-fraction threshold under which low-headroom mode applies (0–1).
    pub low_headroom_fraction: f64,
    /// Where metrics go.
    pub metrics: MetricsConfig,
}

/// One cluster to process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTarget {
    /// EKS cluster name.
    pub name: String,
    /// Region, when not the default one.
    pub region: Option<String>,
    /// Role to assume for this cluster (cross-account).
    pub role_arn: Option<String>,
}

/// Dry-run mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    /// Delete for real.
    Off,
    /// Report what would be deleted; send nothing.
    Client,
    /// Send deletes with `dryRun=All`: the API server checks RBAC and admission, persists
    /// nothing.
    Server,
}

impl DryRun {
    /// Whether nothing is really deleted.
    pub fn is_dry(self) -> bool {
        self != DryRun::Off
    }

    /// Parses `true|client|server|false` (case-insensitive).
    pub fn parse(field: &str, value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "off" | "no" | "0" => Ok(DryRun::Off),
            "true" | "client" | "yes" | "1" => Ok(DryRun::Client),
            "server" => Ok(DryRun::Server),
            _ => Err(ConfigError::invalid(
                field,
                value,
                "expected true, false, client or server",
            )),
        }
    }

    /// `"off"`, `"client"` or `"server"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DryRun::Off => "off",
            DryRun::Client => "client",
            DryRun::Server => "server",
        }
    }
}

/// Metrics destination settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Which sink.
    pub sink: MetricsSinkKind,
    /// CloudWatch namespace.
    pub namespace: String,
    /// Also publish per-namespace deletion counts.
    pub per_namespace: bool,
}

/// Which metrics sink to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsSinkKind {
    /// CloudWatch `PutMetricData`.
    CloudWatch,
    /// Embedded Metric Format log lines.
    Emf,
    /// No metrics.
    None,
}

/// A setting with a bad value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be parsed or is out of range.
    #[error("{field}: invalid value {value:?}: {reason}")]
    Invalid {
        /// The setting, e.g. `REAPER_CONCURRENCY (--concurrency)` or `event.dryRun`.
        field: String,
        /// The value as given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A required setting is missing or empty.
    #[error("{field}: {reason}")]
    Missing {
        /// The setting.
        field: String,
        /// What is missing.
        reason: String,
    },
}

impl ConfigError {
    /// Builds [`ConfigError::Invalid`].
    pub fn invalid(field: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    /// The setting the error is about.
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Invalid { field, .. } | ConfigError::Missing { field, .. } => field,
        }
    }
}

const CLUSTERS: &str = "REAPER_CLUSTERS (--cluster)";
const ROLE_ARNS: &str = "REAPER_ROLE_ARNS (--role-arn)";

impl Config {
    /// Validates `options` and applies the event's `overrides` on top.
    pub fn resolve(options: &Options, overrides: &Overrides) -> Result<Config, ConfigError> {
        let roles = parse_roles(&options.role_arns)?;
        let clusters = match &overrides.clusters {
            Some(list) => {
                if list.is_empty() {
                    return Err(ConfigError::Missing {
                        field: "event.clusters".to_owned(),
                        reason: "empty cluster list".to_owned(),
                    });
                }
                list.iter()
                    .enumerate()
                    .map(|(i, c)| from_override(i, c, &roles))
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => options
                .clusters
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(|s| parse_cluster(CLUSTERS, s, &roles))
                .collect::<Result<Vec<_>, _>>()?,
        };
        if clusters.is_empty() {
            return Err(ConfigError::Missing {
                field: CLUSTERS.to_owned(),
                reason: "no cluster configured (set it, or pass `clusters` in the event)"
                    .to_owned(),
            });
        }
        for (i, c) in clusters.iter().enumerate() {
            if clusters[..i]
                .iter()
                .any(|o| o.name == c.name && o.region == c.region)
            {
                return Err(ConfigError::invalid(
                    CLUSTERS,
                    &c.name,
                    "cluster listed twice",
                ));
            }
        }

        let dry_run = match &overrides.dry_run {
            Some(d) => *d,
            None => DryRun::parse("REAPER_DRY_RUN (--dry-run)", &options.dry_run)?,
        };

        let policy = Settings {
            succeeded_job_ttl: duration(
                "REAPER_SUCCEEDED_JOB_TTL (--succeeded-job-ttl)",
                &options.succeeded_job_ttl,
            )?,
            failed_job_ttl: duration(
                "REAPER_FAILED_JOB_TTL (--failed-job-ttl)",
                &options.failed_job_ttl,
            )?,
            fargate_pod_ttl: duration(
                "REAPER_FARGATE_POD_TTL (--fargate-pod-ttl)",
                &options.fargate_pod_ttl,
            )?,
            bare_pod_ttl: duration(
                "REAPER_BARE_POD_TTL (--bare-pod-ttl)",
                &options.bare_pod_ttl,
            )?,
            namespaces: include_namespaces(&options.namespaces)?,
            exclude_namespaces: list(&options.exclude_namespaces),
            prune_owners: prune_owners(&options.prune_owners)?,
            respect_native_ttl: boolean(
                "REAPER_RESPECT_NATIVE_TTL (--respect-native-ttl)",
                &options.respect_native_ttl,
            )?,
            skip_cronjob_jobs: boolean(
                "REAPER_SKIP_CRONJOB_JOBS (--skip-cronjob-jobs)",
                &options.skip_cronjob_jobs,
            )?,
            low_headroom: false,
            low_headroom_fargate_ttl: duration(
                "REAPER_LOW_HEADROOM_FARGATE_TTL (--low-headroom-fargate-ttl)",
                &options.low_headroom_fargate_ttl,
            )?,
        };

        let low_headroom_fraction = {
            let field = "REAPER_LOW_HEADROOM_FRACTION (--low-headroom-fraction)";
            let v = &options.low_headroom_fraction;
            let f: f64 = v
                .trim()
                .parse()
                .map_err(|_| ConfigError::invalid(field, v, "expected a number from 0 to 1"))?;
            if !(0.0..=1.0).contains(&f) {
                return Err(ConfigError::invalid(
                    field,
                    v,
                    "expected a number from 0 to 1",
                ));
            }
            f
        };

        let metrics = MetricsConfig {
            sink: match options.metrics_sink.trim().to_ascii_lowercase().as_str() {
                "cloudwatch" => MetricsSinkKind::CloudWatch,
                "emf" => MetricsSinkKind::Emf,
                "none" | "off" => MetricsSinkKind::None,
                _ => {
                    return Err(ConfigError::invalid(
                        "REAPER_METRICS_SINK (--metrics-sink)",
                        &options.metrics_sink,
                        "expected cloudwatch, emf or none",
                    ));
                }
            },
            namespace: {
                let ns = options.metrics_namespace.trim();
                if ns.is_empty() || ns.len() > 255 || ns.starts_with(':') {
                    return Err(ConfigError::invalid(
                        "REAPER_METRICS_NAMESPACE (--metrics-namespace)",
                        &options.metrics_namespace,
                        "expected 1-255 characters, not starting with ':'",
                    ));
                }
                ns.to_owned()
            },
            per_namespace: boolean(
                "REAPER_METRICS_PER_NAMESPACE (--metrics-per-namespace)",
                &options.metrics_per_namespace,
            )?,
        };

        Ok(Config {
            clusters,
            dry_run,
            policy,
            label_selector: options
                .label_selector
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            concurrency: positive("REAPER_CONCURRENCY (--concurrency)", &options.concurrency)?,
            cluster_concurrency: positive(
                "REAPER_CLUSTER_CONCURRENCY (--cluster-concurrency)",
                &options.cluster_concurrency,
            )?,
            page_size: {
                let n = positive("REAPER_PAGE_SIZE (--page-size)", &options.page_size)?;
                u32::try_from(n).map_err(|_| {
                    ConfigError::invalid(
                        "REAPER_PAGE_SIZE (--page-size)",
                        &options.page_size,
                        "too large",
                    )
                })?
            },
            deadline_margin: duration(
                "REAPER_DEADLINE_MARGIN (--deadline-margin)",
                &options.deadline_margin,
            )?,
            max_run_time: match options.max_run_time.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(v) => {
                    let d = duration("REAPER_MAX_RUN_TIME (--max-run-time)", v)?;
                    if d.is_zero() {
                        return Err(ConfigError::invalid(
                            "REAPER_MAX_RUN_TIME (--max-run-time)",
                            v,
                            "must be greater than zero",
                        ));
                    }
                    Some(d)
                }
            },
            token_max_age: {
                let field = "REAPER_TOKEN_MAX_AGE (--token-max-age)";
                let d = duration(field, &options.token_max_age)?;
                if d.is_zero() || d >= Duration::from_secs(14 * 60) {
                    return Err(ConfigError::invalid(
                        field,
                        &options.token_max_age,
                        "must be more than 0 and less than 14m (EKS accepts a token for 15m)",
                    ));
                }
                d
            },
            extra_subnets: {
                let subnets = list(&options.extra_subnets);
                if let Some(bad) = subnets.iter().find(|s| !s.starts_with("subnet-")) {
                    return Err(ConfigError::invalid(
                        "REAPER_EXTRA_SUBNETS (--extra-subnets)",
                        bad,
                        "expected subnet IDs (subnet-...)",
                    ));
                }
                subnets
            },
            low_headroom_fraction,
            metrics,
        })
    }
}

fn from_override(
    i: usize,
    c: &ClusterOverride,
    roles: &[(String, String)],
) -> Result<ClusterTarget, ConfigError> {
    let field = format!("event.clusters[{i}]");
    let mut target = parse_cluster(&field, &c.name, roles)?;
    if let Some(region) = &c.region {
        if target.region.is_some() {
            return Err(ConfigError::invalid(
                &format!("{field}.region"),
                region,
                "region given twice (name@region and region)",
            ));
        }
        target.region = Some(check_region(&format!("{field}.region"), region)?);
    }
    if let Some(arn) = &c.role_arn {
        target.role_arn = Some(check_role_arn(&format!("{field}.roleArn"), arn)?);
    }
    Ok(target)
}

fn parse_cluster(
    field: &str,
    value: &str,
    roles: &[(String, String)],
) -> Result<ClusterTarget, ConfigError> {
    let (name, region) = match value.split_once('@') {
        Some((n, r)) => (n.trim(), Some(check_region(field, r.trim())?)),
        None => (value.trim(), None),
    };
    let valid_name = !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err(ConfigError::invalid(
            field,
            value,
            "expected an EKS cluster name (letters, digits, '-', '_'), optionally @region",
        ));
    }
    let role_arn = roles
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, arn)| arn.clone());
    Ok(ClusterTarget {
        name: name.to_owned(),
        region,
        role_arn,
    })
}

fn check_region(field: &str, region: &str) -> Result<String, ConfigError> {
    let ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && region.contains('-');
    if ok {
        Ok(region.to_owned())
    } else {
        Err(ConfigError::invalid(
            field,
            region,
            "expected an AWS region such as eu-west-1",
        ))
    }
}

fn check_role_arn(field: &str, arn: &str) -> Result<String, ConfigError> {
    let arn = arn.trim();
    if arn.starts_with("arn:") && arn.contains(":role/") {
        Ok(arn.to_owned())
    } else {
        Err(ConfigError::invalid(
            field,
            arn,
            "expected an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
        ))
    }
}

fn parse_roles(entries: &[String]) -> Result<Vec<(String, String)>, ConfigError> {
    entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once('=') {
            Some((name, arn)) if !name.trim().is_empty() => {
                Ok((name.trim().to_owned(), check_role_arn(ROLE_ARNS, arn)?))
            }
            _ => Err(ConfigError::invalid(ROLE_ARNS, e, "expected NAME=ARN")),
        })
        .collect()
}

/// Parses a `humantime` duration, naming `field` on error.
pub fn duration(field: &str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|e| {
        ConfigError::invalid(
            field,
            value,
            format!("expected a duration such as 90s, 15m, 24h ({e})"),
        )
    })
}

fn boolean(field: &str, value: &str) -> Result<bool, ConfigError> {
    crate::policy::parse_flag(value)
        .ok_or_else(|| ConfigError::invalid(field, value, "expected true or false"))
}

const PRUNE_OWNERS: &str = "REAPER_PRUNE_OWNERS (--prune-owners)";

fn prune_owners(values: &[String]) -> Result<Vec<OwnerKind>, ConfigError> {
    let mut owners: Vec<OwnerKind> = Vec::new();
    for value in list(values) {
        let owner = OwnerKind::parse(&value).ok_or_else(|| {
            ConfigError::invalid(
                PRUNE_OWNERS,
                &value,
                "expected group/Kind, e.g. argoproj.io/Workflow (core/Kind for the core group)",
            )
        })?;
        if owner.is_batch_job() || owner.is_batch_cronjob() {
            return Err(ConfigError::invalid(
                PRUNE_OWNERS,
                &value,
                "batch Jobs and CronJobs are always understood (see REAPER_SKIP_CRONJOB_JOBS)",
            ));
        }
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    Ok(owners)
}

fn positive(field: &str, value: &str) -> Result<usize, ConfigError> {
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 1 => {
            usize::try_from(n).map_err(|_| ConfigError::invalid(field, value, "too large"))
        }
        _ => Err(ConfigError::invalid(
            field,
            value,
            "expected a whole number of at least 1",
        )),
    }
}

const NAMESPACES: &str = "REAPER_NAMESPACES (--namespaces)";

/// The include list: unset means all namespaces, but a set-yet-blank value (`""`, `","`,
/// `" "`) is an error, not "all": widening the scope to every namespace is never what a
/// blank value (often a templating slip) meant.
fn include_namespaces(values: &[String]) -> Result<Vec<String>, ConfigError> {
    let namespaces = list(values);
    if namespaces.is_empty() && !values.is_empty() {
        return Err(ConfigError::invalid(
            NAMESPACES,
            &values.join(","),
            "no namespace given: list namespaces, or unset it for all namespaces",
        ));
    }
    Ok(namespaces)
}

/// Trimmed, blank entries dropped, each entry once (in first-seen order).
fn list(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        options: Options,
    }

    fn options(args: &[&str]) -> Options {
        let argv = std::iter::once("eks-reaper").chain(args.iter().copied());
        Cli::try_parse_from(argv).expect("flags parse").options
    }

    fn resolve(args: &[&str]) -> Result<Config, ConfigError> {
        Config::resolve(&options(args), &Overrides::default())
    }

    #[test]
    fn defaults_match_the_readme_table() {
        let c = resolve(&["--cluster", "etl"]).expect("valid");
        assert_eq!(c.dry_run, DryRun::Off);
        assert_eq!(c.policy, Settings::default());
        assert_eq!(c.concurrency, 16);
        assert_eq!(c.cluster_concurrency, 4);
        assert_eq!(c.page_size, 500);
        assert_eq!(c.deadline_margin, Duration::from_secs(30));
        assert_eq!(c.max_run_time, None);
        assert_eq!(c.token_max_age, Duration::from_secs(600));
        assert!((c.low_headroom_fraction - 0.10).abs() < f64::EPSILON);
        assert_eq!(c.metrics.sink, MetricsSinkKind::CloudWatch);
        assert_eq!(c.metrics.namespace, "EKSReaper");
        assert!(!c.metrics.per_namespace);
    }

    #[test]
    fn clusters_accept_repeats_comma_lists_regions_and_roles() {
        let c = resolve(&[
            "--cluster",
            "etl,web@eu-west-1",
            "--cluster",
            "ml",
            "--role-arn",
            "web=arn:aws:iam::123456789012:role/reaper",
        ])
        .expect("valid");
        let names: Vec<_> = c.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["etl", "web", "ml"]);
        assert_eq!(c.clusters[1].region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            c.clusters[1].role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/reaper")
        );
        assert_eq!(c.clusters[0].role_arn, None);
    }

    #[test]
    fn dry_run_flag_without_value_means_client() {
        assert_eq!(
            resolve(&["--cluster", "etl", "--dry-run"])
                .expect("valid")
                .dry_run,
            DryRun::Client
        );
        assert_eq!(
            resolve(&["--cluster", "etl", "--dry-run", "server"])
                .expect("valid")
                .dry_run,
            DryRun::Server
        );
    }

    #[test]
    fn boolean_flags_can_be_turned_off() {
        let c = resolve(&[
            "--cluster",
            "etl",
            "--respect-native-ttl",
            "false",
            "--skip-cronjob-jobs",
        ])
        .expect("valid");
        assert!(!c.policy.respect_native_ttl);
        assert!(c.policy.skip_cronjob_jobs);
    }

    #[test]
    fn missing_clusters_is_an_error_naming_the_setting() {
        let e = resolve(&[]).expect_err("no clusters");
        assert!(e.to_string().contains("REAPER_CLUSTERS"), "{e}");
    }

    #[test]
    fn zero_or_negative_concurrency_is_an_error_naming_field_and_value() {
        for bad in ["0", "-3", "many"] {
            let e = resolve(&["--cluster", "etl", "--concurrency", bad]).expect_err("bad");
            let msg = e.to_string();
            assert!(msg.contains("REAPER_CONCURRENCY"), "{msg}");
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
    }

    #[test]
    fn bad_duration_is_an_error_naming_field_and_value() {
        let e = resolve(&["--cluster", "etl", "--failed-job-ttl", "1 fortnight"]).expect_err("bad");
        assert_eq!(e.field(), "REAPER_FAILED_JOB_TTL (--failed-job-ttl)");
        assert!(e.to_string().contains("\"1 fortnight\""), "{e}");
    }

    #[test]
    fn bad_cluster_name_and_region_are_errors() {
        assert!(resolve(&["--cluster", "etl prod"]).is_err());
        assert!(resolve(&["--cluster", "etl@EU_WEST"]).is_err());
        assert!(resolve(&["--cluster", "etl,etl"]).is_err());
    }

    #[test]
    fn bad_role_arn_entry_is_an_error() {
        let e = resolve(&["--cluster", "etl", "--role-arn", "etl"]).expect_err("bad");
        assert!(e.to_string().contains("REAPER_ROLE_ARNS"), "{e}");
    }

    #[test]
    fn event_overrides_clusters_and_dry_run() {
        let o = Overrides {
            clusters: Some(vec![ClusterOverride {
                name: "web".to_owned(),
                region: Some("us-east-2".to_owned()),
                role_arn: Some("arn:aws:iam::1:role/r".to_owned()),
            }]),
            dry_run: Some(DryRun::Server),
        };
        let c = Config::resolve(&options(&["--cluster", "etl"]), &o).expect("valid");
        assert_eq!(c.clusters.len(), 1);
        assert_eq!(c.clusters[0].name, "web");
        assert_eq!(c.clusters[0].region.as_deref(), Some("us-east-2"));
        assert_eq!(c.dry_run, DryRun::Server);
    }

    #[test]
    fn empty_event_cluster_list_is_an_error() {
        let o = Overrides {
            clusters: Some(vec![]),
            dry_run: None,
        };
        let e = Config::resolve(&options(&["--cluster", "etl"]), &o).expect_err("empty");
        assert_eq!(e.field(), "event.clusters");
    }

    #[test]
    fn low_headroom_fraction_must_be_a_fraction() {
        assert!(resolve(&["--cluster", "etl", "--low-headroom-fraction", "1.5"]).is_err());
        assert!(resolve(&["--cluster", "etl", "--low-headroom-fraction", "x"]).is_err());
    }

    #[test]
    fn token_max_age_must_stay_under_the_eks_limit() {
        assert!(resolve(&["--cluster", "etl", "--token-max-age", "15m"]).is_err());
        assert!(resolve(&["--cluster", "etl", "--token-max-age", "0s"]).is_err());
        let c = resolve(&["--cluster", "etl", "--token-max-age", "5s"]).expect("valid");
        assert_eq!(c.token_max_age, Duration::from_secs(5));
    }

    #[test]
    fn unset_namespaces_means_all_namespaces() {
        let c = resolve(&["--cluster", "etl"]).expect("valid");
        assert!(c.policy.namespaces.is_empty());
        assert!(c.policy.namespace_in_scope("etl"));
    }

    #[test]
    fn namespaces_list_is_trimmed_and_blank_entries_dropped() {
        let c = resolve(&["--cluster", "etl", "--namespaces", " etl, ,web,"]).expect("valid");
        assert_eq!(c.policy.namespaces, ["etl", "web"]);
    }

    #[test]
    fn set_but_blank_namespaces_is_an_error_naming_setting_and_value() {
        for blank in ["", ",", " ", " , ,"] {
            let e = resolve(&["--cluster", "etl", "--namespaces", blank])
                .expect_err("blank include list must not mean all namespaces");
            assert_eq!(e.field(), "REAPER_NAMESPACES (--namespaces)", "{blank:?}");
            assert!(e.to_string().contains(&format!("{blank:?}")), "{e}");
        }
    }

    #[test]
    fn protected_namespaces_are_out_of_scope_by_default() {
        let c = resolve(&["--cluster", "etl"]).expect("valid");
        assert!(c.policy.exclude_namespaces.is_empty());
        for ns in ["kube-system", "kube-public", "kube-node-lease"] {
            assert!(!c.policy.namespace_in_scope(ns), "{ns}");
        }
    }

    #[test]
    fn an_empty_exclude_list_does_not_unprotect_kube_system() {
        for empty in ["", ",", " "] {
            let c = resolve(&["--cluster", "etl", "--exclude-namespaces", empty]).expect("valid");
            assert!(!c.policy.namespace_in_scope("kube-system"), "{empty:?}");
        }
    }

    #[test]
    fn exclude_namespaces_add_to_the_protected_ones() {
        let c = resolve(&["--cluster", "etl", "--exclude-namespaces", "ops"]).expect("valid");
        assert!(!c.policy.namespace_in_scope("ops"));
        assert!(!c.policy.namespace_in_scope("kube-system"));
        assert!(c.policy.namespace_in_scope("etl"));
    }

    #[test]
    fn a_protected_namespace_is_pruned_only_when_named() {
        let c = resolve(&["--cluster", "etl", "--namespaces", "kube-system,etl"]).expect("valid");
        assert!(c.policy.namespace_in_scope("kube-system"));
        assert!(!c.policy.namespace_in_scope("kube-public"));
    }

    #[test]
    fn duplicate_namespaces_count_once() {
        let c = resolve(&[
            "--cluster",
            "etl",
            "--namespaces",
            "etl, etl,web,etl",
            "--exclude-namespaces",
            "ops,ops",
        ])
        .expect("valid");
        assert_eq!(c.policy.namespaces, ["etl", "web"]);
        assert_eq!(c.policy.exclude_namespaces, ["ops"]);
    }

    #[test]
    fn prune_owners_are_parsed_deduplicated_and_validated() {
        let c = resolve(&[
            "--cluster",
            "etl",
            "--prune-owners",
            "argoproj.io/Workflow, argoproj.io/Workflow,core/ReplicationController",
        ])
        .expect("valid");
        let owners: Vec<String> = c
            .policy
            .prune_owners
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(
            owners,
            ["argoproj.io/Workflow", "core/ReplicationController"]
        );
        for bad in [
            "Workflow",
            "argoproj.io/workflow",
            "batch/Job",
            "batch/CronJob",
        ] {
            let e = resolve(&["--cluster", "etl", "--prune-owners", bad]).expect_err(bad);
            assert_eq!(e.field(), "REAPER_PRUNE_OWNERS (--prune-owners)", "{bad}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn boolean_settings_accept_the_documented_spellings_only() {
        for (v, want) in [
            ("YES", true),
            (" on ", true),
            ("1", true),
            ("Off", false),
            ("no", false),
        ] {
            let c = resolve(&["--cluster", "etl", "--skip-cronjob-jobs", v]).expect(v);
            assert_eq!(c.policy.skip_cronjob_jobs, want, "{v:?}");
        }
        assert!(resolve(&["--cluster", "etl", "--skip-cronjob-jobs", "maybe"]).is_err());
    }

    #[test]
    fn unknown_metrics_sink_is_an_error() {
        let e = resolve(&["--cluster", "etl", "--metrics-sink", "statsd"]).expect_err("bad");
        assert!(e.to_string().contains("REAPER_METRICS_SINK"), "{e}");
    }
}

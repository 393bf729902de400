//! Configuration: one typed, validated [`Config`] built from environment variables or CLI
//! flags ([`Options`], the same names as the configuration table of docs/reference.md),
//! then the invocation event's overrides ([`event::Overrides`]).
//!
//! Values are typed by their parsers ([`values`]); an error always names the setting
//! (environment variable and flag, or event field) and the offending value, and nothing is
//! deleted when a value is bad.

pub mod alarm;
pub mod error;
pub mod event;
pub mod options;
pub mod values;

use std::time::Duration;

pub use self::alarm::Emergency;
pub use self::error::ConfigError;
use self::event::{ClusterOverride, Overrides};
pub use self::options::Options;
use self::options::field;
pub use self::values::{
    ClusterTag, DryRun, ExternalId, LatencyTarget, MetricsDetail, MetricsSinkKind,
};
use crate::policy::{OwnerKind, Settings};

/// The validated configuration of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Clusters to process (never empty unless discovery is on).
    pub clusters: Vec<ClusterTarget>,
    /// Clusters found by tag each run, besides the named ones.
    pub discovery: Option<Discovery>,
    /// Whether and how to send deletions.
    pub dry_run: DryRun,
    /// Policy settings (retentions, namespaces, native TTL, CronJobs).
    pub policy: Settings,
    /// Server-side label selector for Jobs and Pods.
    pub label_selector: Option<String>,
    /// Deletions in flight per cluster (≥ 1).
    pub concurrency: usize,
    /// How far the drain's DELETE latency may rise over its baseline.
    pub drain_latency_target: LatencyTarget,
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
    /// Short window of the IP exhaustion forecast (the long and extended ones are 4 and 5 times it).
    pub forecast_window: Duration,
    /// Where metrics go.
    pub metrics: MetricsConfig,
    /// Set by an alarm event: only this cluster, in low-headroom mode.
    pub emergency: Option<Emergency>,
    /// The SQS FIFO queue the Lambda fans out through (`None`: one invocation runs all).
    pub queue_url: Option<String>,
    /// With a queue: how long a cluster the planner enqueued may go without publishing a
    /// run before the plan counts it not reported (the schedule's interval times
    /// `REAPER_NOT_REPORTED_RUNS`); `None` when the interval is not configured.
    pub not_reported_after: Option<Duration>,
    /// Read the namespaces' `eks-reaper/*` annotations (retentions, opt-outs).
    pub namespace_annotations: bool,
    /// Send one Event per namespace and run summarising its deletions.
    pub namespace_events: bool,
}

/// Cluster discovery: every cluster carrying `tag` in `regions`, in the function's own
/// account and in each of `accounts` through its member role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The tag a cluster must carry.
    pub tag: ClusterTag,
    /// Regions searched (empty: the default region).
    pub regions: Vec<String>,
    /// Other accounts searched (12-digit ids), each through `member_role`.
    pub accounts: Vec<String>,
    /// The role name assumed in each of `accounts`.
    pub member_role: String,
    /// The external id presented when assuming it.
    pub external_id: Option<ExternalId>,
}

impl Discovery {
    /// The member role of `account`, in the partition of `region` (IAM ARNs name their
    /// partition: `aws-cn` in China, `aws-us-gov` in GovCloud).
    pub fn member_role_arn(&self, account: &str, region: &str) -> String {
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        format!("arn:{partition}:iam::{account}:role/{}", self.member_role)
    }
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
    /// External id sent when assuming `role_arn` (never without one).
    pub external_id: Option<ExternalId>,
    /// Reach the Kubernetes API through this kubeconfig context instead of the EKS
    /// endpoint and token (CLI only).
    pub kubeconfig: Option<KubeconfigContext>,
}

/// A cluster's Kubernetes API reached through a kubeconfig context, with kube's config
/// loading (client certificates, tokens, exec credential plugins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigContext {
    /// The kubeconfig file (`None`: `$KUBECONFIG`, else `~/.kube/config`).
    pub path: Option<std::path::PathBuf>,
    /// The context (`None`: the file's `current-context`).
    pub context: Option<String>,
    /// The target's name is the EKS cluster's, so `DescribeCluster` gives its subnets for
    /// the headroom read and the forecast; otherwise those are skipped.
    pub eks_cluster: bool,
}

/// Metrics destination settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Which sink.
    pub sink: MetricsSinkKind,
    /// CloudWatch namespace.
    pub namespace: String,
    /// Also publish per-namespace deletion counts (of the deletion metrics `detail`
    /// publishes).
    pub per_namespace: bool,
    /// Which metrics are published.
    pub detail: MetricsDetail,
}

impl Config {
    /// Validates `options` and applies the event's `overrides` on top.
    pub fn resolve(options: &Options, overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::build(options, overrides, false)
    }

    /// As [`Config::resolve`], for one cluster reached through `kube` (`--kubeconfig`,
    /// `--context`): the cluster named in `options`, if one is (its EKS subnets are then
    /// read), else one named `context` (no subnets). Discovery and several clusters are
    /// refused: a kubeconfig context reaches one cluster.
    pub fn resolve_with_kubeconfig(
        options: &Options,
        overrides: &Overrides,
        mut kube: KubeconfigContext,
        context: &str,
    ) -> Result<Config, ConfigError> {
        let mut config = Self::build(options, overrides, true)?;
        if let Some(d) = &config.discovery {
            return Err(ConfigError::invalid(
                &field("cluster_tag"),
                &d.tag.to_string(),
                "cannot be combined with --kubeconfig/--context, which reach one cluster",
            ));
        }
        match config.clusters.as_mut_slice() {
            [] => {
                kube.eks_cluster = false;
                config.clusters.push(ClusterTarget {
                    name: context.to_owned(),
                    region: None,
                    role_arn: None,
                    external_id: None,
                    kubeconfig: Some(kube),
                });
            }
            [one] => {
                kube.eks_cluster = true;
                one.kubeconfig = Some(kube);
            }
            several => {
                let names: Vec<&str> = several.iter().map(|c| c.name.as_str()).collect();
                return Err(ConfigError::invalid(
                    &field("clusters"),
                    &names.join(","),
                    "--kubeconfig/--context reach one cluster: name at most one (its EKS name)",
                ));
            }
        }
        Ok(config)
    }

    /// Builds the whole [`Config`] from `options` and the event's `overrides`;
    /// `may_have_no_cluster` when a kubeconfig context supplies the cluster.
    ///
    /// Long on purpose: one field per setting, each validated where it is read, so the
    /// struct literal at its end is the one place that lists every setting.
    fn build(
        options: &Options,
        overrides: &Overrides,
        may_have_no_cluster: bool,
    ) -> Result<Config, ConfigError> {
        let clusters_field = field("clusters");
        let roles = Roles {
            arns: parse_roles(&options.role_arns)?,
            external_id: options.external_id.get()?,
        };
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
                .map(|s| parse_cluster(&clusters_field, s, &roles))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let mut discovery = discovery(options)?;
        let clusters = match &overrides.emergency {
            Some(e) => alarm::clusters(e, clusters, &mut discovery)?,
            None => clusters,
        };
        if clusters.is_empty() && discovery.is_none() && !may_have_no_cluster {
            return Err(ConfigError::Missing {
                field: clusters_field,
                reason: "no cluster configured (set it, pass `clusters` in the event, or \
                         set REAPER_CLUSTER_TAG to discover them)"
                    .to_owned(),
            });
        }
        for (i, c) in clusters.iter().enumerate() {
            if clusters[..i]
                .iter()
                .any(|o| o.name == c.name && o.region == c.region)
            {
                return Err(ConfigError::invalid(
                    &clusters_field,
                    &c.name,
                    "cluster listed twice",
                ));
            }
        }

        let dry_run = match overrides.dry_run {
            Some(d) => d,
            None => options.dry_run.get()?,
        };

        let policy = Settings {
            succeeded_job_ttl: options.succeeded_job_ttl.get()?,
            failed_job_ttl: options.failed_job_ttl.get()?,
            fargate_pod_ttl: options.fargate_pod_ttl.get()?,
            bare_pod_ttl: options.bare_pod_ttl.get()?,
            namespaces: include_namespaces(&options.namespaces)?,
            exclude_namespaces: trimmed_unique(&options.exclude_namespaces),
            prune_owners: prune_owners(&options.prune_owners)?,
            respect_native_ttl: options.respect_native_ttl.get()?,
            skip_cronjob_jobs: options.skip_cronjob_jobs.get()?,
            low_headroom_fargate_ttl: options.low_headroom_fargate_ttl.get()?,
            engine_pod_grace: options.engine_pod_grace.get()?,
            keep_last_failed: options.keep_last_failed.get()?,
            keep_last_succeeded: options.keep_last_succeeded.get()?,
            keep_last_label: options.keep_last_label.get()?,
            stuck_after: options.stuck_after.get()?,
        };

        Ok(Config {
            clusters,
            discovery,
            dry_run,
            policy,
            label_selector: options
                .label_selector
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            concurrency: options.concurrency.get()?,
            drain_latency_target: options.drain_latency_target.get()?,
            cluster_concurrency: options.cluster_concurrency.get()?,
            page_size: options.page_size.get()?,
            deadline_margin: options.deadline_margin.get()?,
            max_run_time: options.max_run_time.get()?,
            token_max_age: options.token_max_age.get()?,
            extra_subnets: extra_subnets(&options.extra_subnets)?,
            low_headroom_fraction: options.low_headroom_fraction.get()?,
            forecast_window: options.forecast_window.get()?,
            metrics: MetricsConfig {
                sink: match &options.metrics_sink {
                    Some(sink) => sink.get()?,
                    None => MetricsSinkKind::CloudWatch,
                },
                namespace: options.metrics_namespace.get()?,
                per_namespace: options.metrics_per_namespace.get()?,
                detail: options.metrics_detail.get()?,
            },
            emergency: overrides.emergency.clone(),
            queue_url: options
                .queue_url
                .as_deref()
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned),
            not_reported_after: not_reported_after(options)?,
            namespace_annotations: options.namespace_annotations.get()?,
            namespace_events: options.namespace_events.get()?,
        })
    }
}

/// The schedule's interval times the runs a cluster may miss, when the interval is known
/// (both settings are checked either way).
fn not_reported_after(options: &Options) -> Result<Option<Duration>, ConfigError> {
    let runs = options.not_reported_runs.get()?;
    Ok(options
        .schedule_interval
        .get()?
        .map(|interval| interval * runs))
}

/// The roles to assume: `REAPER_ROLE_ARNS` by cluster name, and the external id every
/// assumption presents.
struct Roles {
    arns: Vec<(String, String)>,
    external_id: Option<ExternalId>,
}

fn from_override(
    i: usize,
    c: &ClusterOverride,
    roles: &Roles,
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
        target.external_id.clone_from(&roles.external_id);
    }
    if let Some(id) = &c.external_id {
        if target.role_arn.is_none() {
            return Err(ConfigError::Missing {
                field: format!("{field}.externalId"),
                reason: format!(
                    "an external id but no role to assume (give roleArn, or the cluster in {})",
                    options::field("role_arns")
                ),
            });
        }
        target.external_id = Some(id.clone());
    }
    Ok(target)
}

fn parse_cluster(field: &str, value: &str, roles: &Roles) -> Result<ClusterTarget, ConfigError> {
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
        .arns
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, arn)| arn.clone());
    let external_id = role_arn.as_ref().and(roles.external_id.clone());
    Ok(ClusterTarget {
        name: name.to_owned(),
        region,
        role_arn,
        external_id,
        kubeconfig: None,
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
    let field = field("role_arns");
    entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once('=') {
            Some((name, arn)) if !name.trim().is_empty() => {
                Ok((name.trim().to_owned(), check_role_arn(&field, arn)?))
            }
            _ => Err(ConfigError::invalid(&field, e, "expected NAME=ARN")),
        })
        .collect()
}

fn prune_owners(values: &[String]) -> Result<Vec<OwnerKind>, ConfigError> {
    let field = field("prune_owners");
    let mut owners: Vec<OwnerKind> = Vec::new();
    for value in trimmed_unique(values) {
        let owner = OwnerKind::parse(&value).ok_or_else(|| {
            ConfigError::invalid(
                &field,
                &value,
                "expected group/Kind, e.g. argoproj.io/Workflow (core/Kind for the core group)",
            )
        })?;
        if owner.is_batch_job() || owner.is_batch_cronjob() {
            return Err(ConfigError::invalid(
                &field,
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

/// The include list: unset means all namespaces, but a set-yet-blank value (`""`, `","`,
/// `" "`) is an error, not "all": widening the scope to every namespace is never what a
/// blank value (often a templating slip) meant.
fn include_namespaces(values: &[String]) -> Result<Vec<String>, ConfigError> {
    let namespaces = trimmed_unique(values);
    if namespaces.is_empty() && !values.is_empty() {
        return Err(ConfigError::invalid(
            &field("namespaces"),
            &values.join(","),
            "no namespace given: list namespaces, or unset it for all namespaces",
        ));
    }
    Ok(namespaces)
}

/// The discovery settings: a tag turns it on; regions without a tag are an error (they
/// would silently do nothing).
fn discovery(options: &Options) -> Result<Option<Discovery>, ConfigError> {
    let regions_field = field("discovery_regions");
    let regions = trimmed_unique(&options.discovery_regions)
        .iter()
        .map(|r| check_region(&regions_field, r))
        .collect::<Result<Vec<_>, _>>()?;
    let accounts_field = field("discovery_accounts");
    let accounts = trimmed_unique(&options.discovery_accounts);
    if let Some(bad) = accounts
        .iter()
        .find(|a| a.len() != 12 || !a.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(ConfigError::invalid(
            &accounts_field,
            bad,
            "expected 12-digit AWS account ids",
        ));
    }
    let member_role = options.member_role_name.trim().to_owned();
    let role_name_ok = (1..=64).contains(&member_role.len())
        && member_role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if !role_name_ok {
        return Err(ConfigError::invalid(
            &field("member_role_name"),
            &member_role,
            "expected an IAM role name (1-64 letters, digits and +=,.@_-)",
        ));
    }
    match options.cluster_tag.get()? {
        Some(tag) => Ok(Some(Discovery {
            tag,
            regions,
            accounts,
            member_role,
            external_id: options.external_id.get()?,
        })),
        None if regions.is_empty() && accounts.is_empty() => Ok(None),
        None => {
            let set = if regions.is_empty() {
                accounts_field
            } else {
                regions_field
            };
            Err(ConfigError::Missing {
                field: field("cluster_tag"),
                reason: format!("{set} is set but no tag says which clusters to discover"),
            })
        }
    }
}

/// Subnet IDs, as a list (see [`list`]), each `subnet-...`.
fn extra_subnets(values: &[String]) -> Result<Vec<String>, ConfigError> {
    let subnets = trimmed_unique(values);
    if let Some(bad) = subnets.iter().find(|s| !s.starts_with("subnet-")) {
        return Err(ConfigError::invalid(
            &field("extra_subnets"),
            bad,
            "expected subnet IDs (subnet-...)",
        ));
    }
    Ok(subnets)
}

/// Trimmed, blank entries dropped, each entry once (in first-seen order).
fn trimmed_unique(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;

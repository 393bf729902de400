//! Configuration: one typed, validated [`Config`] built from environment variables or CLI
//! flags ([`Options`], the same names as the README table), then the invocation event's
//! overrides ([`event::Overrides`]).
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
pub use self::values::{ClusterTag, DryRun, ExternalId, MetricsDetail, MetricsSinkKind};
use crate::prune::policy::{OwnerKind, Settings};

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
}

/// Cluster discovery: every cluster carrying `tag` in `regions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The tag a cluster must carry.
    pub tag: ClusterTag,
    /// Regions searched (empty: the default region).
    pub regions: Vec<String>,
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
        Self::resolve_clusters(options, overrides, false)
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
        let mut config = Self::resolve_clusters(options, overrides, true)?;
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

    fn resolve_clusters(
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
            Some(e) => emergency_clusters(e, clusters, &mut discovery)?,
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
            exclude_namespaces: list(&options.exclude_namespaces),
            prune_owners: prune_owners(&options.prune_owners)?,
            respect_native_ttl: options.respect_native_ttl.get()?,
            skip_cronjob_jobs: options.skip_cronjob_jobs.get()?,
            low_headroom_fargate_ttl: options.low_headroom_fargate_ttl.get()?,
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
        })
    }
}

/// The clusters an emergency run prunes: the configured ones of the alarm's name (in
/// every region they are configured in), else, with discovery on, a discovered one of that
/// name (the run fails when none is found). A cluster the function does not prune is an
/// error: an alarm never widens what the function may touch.
fn emergency_clusters(
    e: &Emergency,
    clusters: Vec<ClusterTarget>,
    discovery: &mut Option<Discovery>,
) -> Result<Vec<ClusterTarget>, ConfigError> {
    let named: Vec<ClusterTarget> = clusters
        .iter()
        .filter(|t| t.name == e.cluster)
        .cloned()
        .collect();
    if !named.is_empty() {
        *discovery = None;
        return Ok(named);
    }
    if discovery.is_some() {
        return Ok(Vec::new());
    }
    let configured: Vec<&str> = clusters.iter().map(|t| t.name.as_str()).collect();
    Err(ConfigError::invalid(
        e.field,
        &e.cluster,
        format!(
            "alarm {}: not a cluster this function prunes (configured: {}; discovery off)",
            e.alarm,
            configured.join(", ")
        ),
    ))
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
    for value in list(values) {
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
    let namespaces = list(values);
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
    let regions = list(&options.discovery_regions)
        .iter()
        .map(|r| check_region(&regions_field, r))
        .collect::<Result<Vec<_>, _>>()?;
    match options.cluster_tag.get()? {
        Some(tag) => Ok(Some(Discovery { tag, regions })),
        None if regions.is_empty() => Ok(None),
        None => Err(ConfigError::Missing {
            field: field("cluster_tag"),
            reason: format!("{regions_field} is set but no tag says which clusters to discover"),
        }),
    }
}

/// Subnet IDs, as a list (see [`list`]), each `subnet-...`.
fn extra_subnets(values: &[String]) -> Result<Vec<String>, ConfigError> {
    let subnets = list(values);
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

    fn through_kubeconfig(args: &[&str]) -> Result<Config, ConfigError> {
        let kube = KubeconfigContext {
            path: Some("/tmp/kubeconfig".into()),
            context: Some("admin@lab".to_owned()),
            eks_cluster: false,
        };
        Config::resolve_with_kubeconfig(&options(args), &Overrides::default(), kube, "admin@lab")
    }

    #[test]
    fn a_kubeconfig_context_alone_is_one_cluster_named_after_it_without_eks() {
        let c = through_kubeconfig(&[]).expect("valid");
        assert_eq!(c.clusters.len(), 1);
        assert_eq!(c.clusters[0].name, "admin@lab");
        assert_eq!(c.clusters[0].region, None);
        let kube = c.clusters[0].kubeconfig.as_ref().expect("kubeconfig");
        assert!(!kube.eks_cluster);
    }

    #[test]
    fn a_kubeconfig_context_with_a_named_cluster_reads_that_eks_cluster() {
        let c = through_kubeconfig(&["--cluster", "etl@eu-west-1"]).expect("valid");
        assert_eq!(c.clusters[0].name, "etl");
        assert_eq!(c.clusters[0].region.as_deref(), Some("eu-west-1"));
        assert!(
            c.clusters[0]
                .kubeconfig
                .as_ref()
                .expect("kubeconfig")
                .eks_cluster
        );
    }

    #[test]
    fn a_kubeconfig_context_refuses_several_clusters_and_discovery() {
        let several = through_kubeconfig(&["--cluster", "a,b"]).expect_err("one cluster");
        assert_eq!(several.field(), "REAPER_CLUSTERS (--cluster)");
        assert!(several.to_string().contains("a,b"), "{several}");
        let tagged = through_kubeconfig(&["--cluster-tag", "eks-reaper=on"]).expect_err("no tag");
        assert_eq!(tagged.field(), "REAPER_CLUSTER_TAG (--cluster-tag)");
    }

    #[test]
    fn without_a_kubeconfig_no_cluster_is_still_an_error() {
        assert!(resolve(&[]).is_err());
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
        assert_eq!(c.forecast_window, Duration::from_secs(15 * 60));
        assert_eq!(c.metrics.sink, MetricsSinkKind::CloudWatch);
        assert_eq!(c.metrics.namespace, "EKSReaper");
        assert!(!c.metrics.per_namespace);
        assert_eq!(c.metrics.detail, MetricsDetail::Essential);
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
    fn a_cluster_tag_turns_discovery_on_and_may_replace_the_cluster_list() {
        let c = resolve(&[
            "--cluster-tag",
            "eks-reaper=enabled",
            "--discovery-regions",
            "eu-west-1, us-east-1",
        ])
        .expect("valid without named clusters");
        assert!(c.clusters.is_empty());
        let d = c.discovery.expect("discovery");
        assert_eq!(d.tag.to_string(), "eks-reaper=enabled");
        assert_eq!(d.regions, ["eu-west-1", "us-east-1"]);
        let e = resolve(&["--cluster", "etl", "--discovery-regions", "eu-west-1"])
            .expect_err("regions without a tag");
        assert_eq!(e.field(), "REAPER_CLUSTER_TAG (--cluster-tag)");
        let e = resolve(&["--cluster-tag", "team"]).expect_err("no value");
        assert_eq!(e.field(), "REAPER_CLUSTER_TAG (--cluster-tag)");
        let e =
            resolve(&["--cluster-tag", "a=b", "--discovery-regions", "EU"]).expect_err("region");
        assert_eq!(e.field(), "REAPER_DISCOVERY_REGIONS (--discovery-regions)");
    }

    fn emergency(cluster: &str) -> Overrides {
        Overrides {
            emergency: Some(Emergency {
                alarm: "reaper-subnet-free-percent-low".to_owned(),
                cluster: cluster.to_owned(),
                field: "event.detail.alarmContributor.attributes.ClusterName",
            }),
            ..Overrides::default()
        }
    }

    #[test]
    fn an_emergency_runs_the_alarms_configured_cluster_only_in_every_region_it_is_in() {
        let opts = options(&["--cluster", "etl,web,etl@eu-west-1", "--cluster-tag", "a=b"]);
        let c = Config::resolve(&opts, &emergency("etl")).expect("configured");
        let picked: Vec<_> = c
            .clusters
            .iter()
            .map(|t| (t.name.as_str(), t.region.as_deref()))
            .collect();
        assert_eq!(picked, [("etl", None), ("etl", Some("eu-west-1"))]);
        assert_eq!(c.discovery, None, "a named cluster needs no discovery");
        assert_eq!(
            c.emergency.expect("kept").alarm,
            "reaper-subnet-free-percent-low"
        );
    }

    #[test]
    fn an_emergency_for_an_unconfigured_cluster_is_refused_or_left_to_discovery() {
        let e = Config::resolve(&options(&["--cluster", "etl,web"]), &emergency("other"))
            .expect_err("not ours");
        assert_eq!(
            e.field(),
            "event.detail.alarmContributor.attributes.ClusterName"
        );
        assert!(e.to_string().contains("\"other\""), "{e}");
        assert!(e.to_string().contains("etl, web"), "{e}");
        let opts = options(&["--cluster", "etl", "--cluster-tag", "a=b"]);
        let c = Config::resolve(&opts, &emergency("other")).expect("discovery may find it");
        assert!(c.clusters.is_empty());
        assert!(c.discovery.is_some());
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

    fn external_id(text: &str) -> Option<ExternalId> {
        values::external_id(text).expect("valid external id")
    }

    fn shown(id: &Option<ExternalId>) -> Option<&str> {
        id.as_ref().map(ExternalId::as_str)
    }

    #[test]
    fn the_external_id_goes_with_every_role_assumed_and_nowhere_else() {
        let c = resolve(&[
            "--cluster",
            "etl,web,ml",
            "--role-arn",
            "web=arn:aws:iam::123456789012:role/reaper,ml=arn:aws:iam::210987654321:role/r",
            "--external-id",
            "tenant-42",
        ])
        .expect("valid");
        let ids: Vec<_> = c.clusters.iter().map(|t| shown(&t.external_id)).collect();
        assert_eq!(ids, [None, Some("tenant-42"), Some("tenant-42")]);
    }

    #[test]
    fn a_blank_external_id_means_none() {
        let c = resolve(&[
            "--cluster",
            "web",
            "--role-arn",
            "web=arn:aws:iam::1:role/r",
            "--external-id",
            " ",
        ])
        .expect("valid");
        assert_eq!(c.clusters[0].external_id, None);
        let unset = resolve(&[
            "--cluster",
            "web",
            "--role-arn",
            "web=arn:aws:iam::1:role/r",
        ])
        .expect("valid");
        assert_eq!(unset.clusters[0].external_id, None);
    }

    #[test]
    fn a_bad_external_id_is_an_error_naming_the_setting_but_not_the_value() {
        let e = resolve(&["--cluster", "etl", "--external-id", "not a valid id"])
            .expect_err("spaces are not allowed");
        assert_eq!(e.field(), "REAPER_EXTERNAL_ID (--external-id)");
        let msg = e.to_string();
        assert!(msg.contains("<hidden, 14 characters>"), "{msg}");
        assert!(!msg.contains("valid id"), "{msg}");
    }

    #[test]
    fn the_external_id_is_hidden_from_debug_output() {
        let c = resolve(&[
            "--cluster",
            "web",
            "--role-arn",
            "web=arn:aws:iam::1:role/r",
            "--external-id",
            "s3cr3t-tenant",
        ])
        .expect("valid");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", options(&["--external-id", "s3cr3t-tenant"])).contains("s3cr3t"));
    }

    #[test]
    fn an_event_cluster_external_id_replaces_the_configured_one() {
        let role = |name: &str, arn: Option<&str>, id: Option<&str>| ClusterOverride {
            name: name.to_owned(),
            region: None,
            role_arn: arn.map(str::to_owned),
            external_id: id.and_then(external_id),
        };
        let o = Overrides {
            clusters: Some(vec![
                role("a", Some("arn:aws:iam::1:role/a"), Some("own-id")),
                role("b", Some("arn:aws:iam::1:role/b"), None),
                // A role from REAPER_ROLE_ARNS, an external id from the event.
                role("web", None, Some("event-id")),
                role("plain", None, None),
            ]),
            dry_run: None,
            emergency: None,
        };
        let opts = options(&[
            "--cluster",
            "etl",
            "--role-arn",
            "web=arn:aws:iam::1:role/web",
            "--external-id",
            "configured-id",
        ]);
        let c = Config::resolve(&opts, &o).expect("valid");
        let ids: Vec<_> = c.clusters.iter().map(|t| shown(&t.external_id)).collect();
        assert_eq!(
            ids,
            [
                Some("own-id"),
                Some("configured-id"),
                Some("event-id"),
                None
            ]
        );
    }

    #[test]
    fn an_event_external_id_without_a_role_is_an_error_naming_the_field() {
        let o = Overrides {
            clusters: Some(vec![ClusterOverride {
                name: "etl".to_owned(),
                region: None,
                role_arn: None,
                external_id: external_id("tenant-42"),
            }]),
            dry_run: None,
            emergency: None,
        };
        let e = Config::resolve(&options(&["--cluster", "etl"]), &o).expect_err("no role");
        assert_eq!(e.field(), "event.clusters[0].externalId");
        assert!(!e.to_string().contains("tenant-42"), "{e}");
    }

    #[test]
    fn event_overrides_clusters_and_dry_run() {
        let o = Overrides {
            clusters: Some(vec![ClusterOverride {
                name: "web".to_owned(),
                region: Some("us-east-2".to_owned()),
                role_arn: Some("arn:aws:iam::1:role/r".to_owned()),
                external_id: None,
            }]),
            dry_run: Some(DryRun::Server),
            emergency: None,
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
            emergency: None,
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
    fn forecast_window_must_be_positive() {
        let e = resolve(&["--cluster", "etl", "--forecast-window", "0s"]).expect_err("zero");
        assert!(e.to_string().contains("REAPER_FORECAST_WINDOW"), "{e}");
        assert!(e.to_string().contains("0s"), "{e}");
        let c = resolve(&["--cluster", "etl", "--forecast-window", "1s 500ms"]).expect("valid");
        assert_eq!(c.forecast_window, Duration::from_millis(1500));
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

    #[test]
    fn metrics_detail_is_read_and_a_bad_one_named_with_its_value() {
        let c = resolve(&["--cluster", "etl", "--metrics-detail", "full"]).expect("valid");
        assert_eq!(c.metrics.detail, MetricsDetail::Full);
        let e = resolve(&["--cluster", "etl", "--metrics-detail", "verbose"]).expect_err("bad");
        assert_eq!(e.field(), "REAPER_METRICS_DETAIL (--metrics-detail)");
        assert!(e.to_string().contains("\"verbose\""), "{e}");
        assert!(e.to_string().contains("essential or full"), "{e}");
    }
}

//! One run over every configured cluster: prune each (a bounded number at a time), publish
//! the figures, and build the report; [`outcome`] turns the report into the run's result.

use aws_types::SdkConfig;
use futures::StreamExt;
use tokio::time::Instant;

use tracing::info;

use crate::config::{ClusterTarget, Config, Emergency};
use crate::eks::discover::{self, Found};
use crate::failure::{self, ClusterFailure};
use crate::metrics::{self, ClusterFigures};
use crate::prune::{self, RunContext};
use crate::report::{ClusterReport, DiscoveryReport, Report, RunStatus};
use crate::{Error, Result};

/// Runs one pruning pass over every configured cluster and reports on it.
///
/// `run` holds the base AWS configuration (built once per process), the deadline bounding
/// the run, the clock and the progress counters. Clusters are processed
/// `config.cluster_concurrency` at a time; one cluster's failure is recorded in its report
/// entry and does not stop the others.
pub async fn run(config: &Config, run: RunContext<'_>) -> Report {
    let started_at = run.clock.now();
    let started = Instant::now();
    let (found, discovery) = discover(config, &run).await;
    let default_region = run.aws.region().map(|r| r.as_ref().to_owned());
    let named: Vec<_> = config
        .clusters
        .iter()
        .filter(|t| in_emergency(config, t, default_region.as_deref()))
        .collect();
    let named_count = named.len();
    let discovered = found.iter().map(|f| (&f.target, Some(f.cluster.clone())));
    let targets = named.into_iter().map(|t| (t, None)).chain(discovered);
    let mut clusters: Vec<_> = futures::stream::iter(targets)
        .map(|(target, described)| prune::prune_cluster(target, described, config, run))
        .buffered(config.cluster_concurrency.max(1))
        .collect()
        .await;
    for c in clusters.iter_mut().skip(named_count) {
        c.discovered = true;
    }
    if let Some(e) = &config.emergency
        && clusters.is_empty()
        && config.discovery.is_none()
    {
        clusters.push(not_configured(e, config));
    }

    let sink = metrics::Sink::new(
        config.metrics.sink,
        config.metrics.namespace.clone(),
        config.metrics.detail,
        run.aws,
    );
    let figures: Vec<_> = clusters
        .iter()
        .map(|c| ClusterFigures::of(c, config.metrics.per_namespace))
        .collect();
    // After pruning: metrics may use the margin, up to the end of the run.
    let published =
        metrics::publish(&sink, &figures, run.clock.now(), &run.deadline.end_of_run()).await;

    let mut report = Report {
        status: RunStatus::Ok,
        dry_run: config.dry_run,
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        clusters,
        discovery,
        emergency: config.emergency.clone(),
        metrics: Some(published),
    };
    let discovery_failed = report
        .discovery
        .as_ref()
        .is_some_and(|d| !d.errors.is_empty());
    if report.failed_clusters().next().is_some() || discovery_failed {
        report.status = RunStatus::Failed;
    }
    report.log_summary(run.json_logs);
    report
}

/// Whether `target` is pruned by this run: every one, or in an emergency run the one the
/// alarm names (its Region resolved against the SDK's default).
fn in_emergency(config: &Config, target: &ClusterTarget, default_region: Option<&str>) -> bool {
    config.emergency.as_ref().is_none_or(|e| {
        let region = target.region.as_deref().or(default_region);
        e.names(&target.name, region, target.role_arn.as_deref())
    })
}

/// Whether `found` is one of the `named` clusters: the same name, Region and account. A
/// named `prod` reached through another account's role is another cluster than the `prod`
/// discovery found with the function's own identity.
fn already_named(
    named: &[ClusterTarget],
    found: &ClusterTarget,
    default_region: Option<&str>,
) -> bool {
    use crate::identity::account;
    named.iter().any(|t| {
        t.name == found.name
            && t.region.as_deref().or(default_region) == found.region.as_deref()
            && account(t.role_arn.as_deref()) == account(found.role_arn.as_deref())
    })
}

/// The report entry of an emergency run whose alarm names a cluster this function does not
/// prune (another Region or account than the configured one of that name): failed, and
/// nothing touched.
fn not_configured(e: &Emergency, config: &Config) -> ClusterReport {
    let mut report = ClusterReport::new(&e.cluster, e.region.clone(), config.dry_run.is_dry());
    let configured: Vec<String> = config
        .clusters
        .iter()
        .map(|t| {
            let region = t.region.as_deref().unwrap_or("the function's Region");
            let account = crate::identity::account(t.role_arn.as_deref());
            crate::identity::label(&t.name, Some(region), Some(account))
        })
        .collect();
    report.fail(
        ClusterFailure::NotConfigured,
        format!(
            "alarm {}: {} is not a cluster this function prunes (configured: {}); nothing pruned",
            e.alarm,
            e.target(),
            configured.join(", ")
        ),
    );
    report
}

/// The clusters carrying the discovery tag that are not named already, and what discovery
/// did (`None` without a tag). A region that cannot be searched is an error in the
/// report; the clusters found elsewhere are still pruned.
pub async fn discover(
    config: &Config,
    run: &RunContext<'_>,
) -> (Vec<Found>, Option<DiscoveryReport>) {
    let Some(d) = &config.discovery else {
        return (Vec::new(), None);
    };
    let default_region = run.aws.region().map(|r| r.as_ref().to_owned());
    let regions = if d.regions.is_empty() {
        default_region.iter().cloned().collect()
    } else {
        d.regions.clone()
    };
    let discover::Discovered {
        found,
        denied,
        errors,
    } = discover::discover(run.aws, d, &regions, &run.deadline).await;
    let mut found: Vec<Found> = found
        .into_iter()
        .filter(|f| !already_named(&config.clusters, &f.target, default_region.as_deref()))
        .collect();
    let mut errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    if let Some(e) = &config.emergency {
        found.retain(|f| {
            let t = &f.target;
            e.names(&t.name, t.region.as_deref(), t.role_arn.as_deref())
        });
        if found.is_empty() && config.clusters.is_empty() {
            errors.push(format!(
                "alarm {}: cluster {} is not among the clusters tagged {} in {}; nothing pruned",
                e.alarm,
                e.target(),
                d.tag,
                regions.join(", ")
            ));
        }
    }
    for e in &errors {
        failure::log(
            run.failures_printed,
            None,
            "DiscoveryFailed",
            e,
            "cluster discovery failed",
        );
    }
    let report = DiscoveryReport {
        tag: d.tag.to_string(),
        regions,
        found: found
            .iter()
            .map(|f| {
                let t = &f.target;
                let region = Some(t.region.as_deref().unwrap_or(""));
                let account = t
                    .role_arn
                    .as_deref()
                    .map(|role| crate::identity::account(Some(role)));
                crate::identity::label(&t.name, region, account)
            })
            .collect(),
        denied,
        errors,
    };
    info!(tag = %report.tag, found = ?report.found, denied = ?report.denied, "clusters discovered");
    (found, Some(report))
}

/// Turns a report into the run's result: an error when a cluster could not be processed,
/// or a discovery region could not be searched.
pub fn outcome(report: Report) -> Result<Report> {
    if let Some(errors) = report
        .discovery
        .as_ref()
        .map(|d| d.errors.join("; "))
        .filter(|e| !e.is_empty())
    {
        return Err(Error::DiscoveryFailed {
            details: errors,
            report: Box::new(report),
        });
    }
    let failed: Vec<_> = report.failed_clusters().collect();
    let Some(first) = failed.first() else {
        return Ok(report);
    };
    let kind = first.error_kind.unwrap_or(ClusterFailure::Unreachable);
    let details = failed
        .iter()
        .map(|c| format!("{}: {}", c.cluster, c.error.as_deref().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("; ");
    let failed = failed.len();
    let total = report.clusters.len();
    Err(Error::ClustersFailed {
        failed,
        total,
        details,
        kind,
        report: Box::new(report),
    })
}

/// Loads the base AWS configuration from the environment (region, credentials, endpoint
/// overrides such as `AWS_ENDPOINT_URL`).
pub async fn load_aws_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ClusterReport;

    #[test]
    fn a_failed_run_debugs_as_its_kind_and_message_not_the_report() {
        let mut cluster = ClusterReport::new("etl", None, false);
        cluster.fail(
            ClusterFailure::Forbidden,
            "listing jobs: RBAC forbids list on jobs.batch".to_owned(),
        );
        let report = Report {
            status: RunStatus::Failed,
            dry_run: crate::config::DryRun::Off,
            started_at: jiff::Timestamp::UNIX_EPOCH,
            duration_ms: 1,
            clusters: vec![cluster],
            discovery: None,
            emergency: None,
            metrics: None,
        };
        let e = outcome(report).expect_err("a failed cluster fails the run");
        assert_eq!(
            e.to_string(),
            "1 of 1 cluster(s) could not be processed: etl: listing jobs: RBAC forbids list on \
             jobs.batch"
        );
        assert_eq!(format!("{e:?}"), format!("ClusterFailed.Forbidden: {e}"));
        assert_eq!(
            e.lines(),
            ["etl: listing jobs: RBAC forbids list on jobs.batch"]
        );
    }
}

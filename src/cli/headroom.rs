//! `eks-reaper headroom`: per watched subnet the free IPv4 addresses and utilisation, the
//! forecast, and whether low-headroom mode would engage — what the run reads before it
//! prunes, without pruning.
//!
//! The subnets come from EKS and EC2 only (`eks:DescribeCluster`, the Fargate profiles,
//! `ec2:DescribeSubnets`), through the same code as a run ([`crate::headroom::read`]).
//! The forecast needs the Fargate pods' creation times, so it also lists pod metadata
//! (label `eks.amazonaws.com/fargate-profile`, every namespace; `list pods` only): without
//! Kubernetes access the figures are still shown and the forecast says why it is missing.
//! The same list gives the Fargate pods stuck terminating (being deleted for longer than
//! `REAPER_STUCK_AFTER`, as the policy judges them): each keeps its node and its IP until
//! someone removes what holds it (`docs/runbook.md#stuck-objects`).

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde::Serialize;

use super::Output;
use super::table::{age, new_table, right_align};
use crate::clock::{Clock, SystemClock};
use crate::config::{ClusterTarget, Config, Options};
use crate::deadline::{CallLimits, Deadline};
use crate::eks::{self, Connected};
use crate::headroom::forecast::{self, Forecast};
use crate::headroom::subnets::Source;
use crate::headroom::{self, Headroom};
use crate::policy::{self, FARGATE_PROFILE_LABEL, Keep, Settings};
use crate::report::ClusterStatus;

/// One list page of Fargate pod metadata: bounded by the deadline and 60 s.
const LIST_CALL: CallLimits = CallLimits {
    cap: std::time::Duration::from_secs(60),
    min_start: std::time::Duration::from_secs(1),
};

/// `eks-reaper headroom` arguments.
#[derive(Debug, Args)]
pub struct HeadroomArgs {
    /// Settings (flags or REAPER_* environment variables); only the clusters, roles,
    /// extra subnets, low-headroom fraction, page size and time limits matter here.
    #[command(flatten)]
    pub options: Options,
    /// Format: `table` (default on a terminal) or `json`.
    #[arg(long, value_enum)]
    pub output: Option<Output>,
}

/// The headroom of one cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterHeadroom {
    /// Cluster name.
    pub cluster: String,
    /// Region.
    pub region: Option<String>,
    /// `ok`; `failed` when the cluster or its subnets could not be read; `skipped` when the
    /// cluster is not ACTIVE.
    pub status: ClusterStatus,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// The watched subnets' figures.
    pub subnets: Option<Headroom>,
    /// `REAPER_LOW_HEADROOM_FRACTION`.
    pub low_headroom_fraction: f64,
    /// A run now would prune in low-headroom mode.
    pub low_headroom: bool,
    /// Hours to exhaustion from the Fargate pods created in the forecast's windows
    /// (`REAPER_FORECAST_WINDOW` and 4 and 5 times it).
    pub forecast: Option<Forecast>,
    /// Why there is no forecast, when it could not be computed.
    pub forecast_error: Option<String>,
    /// Fargate pods stuck terminating (`None`: the pods could not be listed, see
    /// `forecastError`).
    pub stuck_fargate_pods: Option<StuckFargatePods>,
}

/// Fargate pods being deleted for longer than `REAPER_STUCK_AFTER`, each holding its
/// Fargate node and that node's subnet IP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StuckFargatePods {
    /// How many.
    pub pods: u64,
    /// How long the longest-stuck one has been terminating, in seconds (0: none).
    pub oldest_seconds: u64,
}

/// What the Fargate pod list gives: every pod's creation time, and the stuck ones.
struct FargatePods {
    created: Vec<jiff::Timestamp>,
    stuck: StuckFargatePods,
}

/// Every cluster's headroom.
#[derive(Debug, Clone, Serialize)]
pub struct HeadroomReport {
    /// Per cluster, in the configured order.
    pub clusters: Vec<ClusterHeadroom>,
}

/// Shows the headroom. Exit status: 0 every cluster's subnets read, 1 one could not be
/// read, 2 invalid configuration.
pub async fn main(args: HeadroomArgs) -> ExitCode {
    let config = match super::resolve(&args.options, &super::KubeArgs::default(), None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let aws = crate::run::load_aws_config().await;
    let deadline = Deadline::bounded(None, config.max_run_time, config.deadline_margin);
    let clusters: Vec<ClusterHeadroom> = futures::stream::iter(&config.clusters)
        .map(|target| cluster_headroom(&aws, target, &config, &deadline))
        .buffered(config.cluster_concurrency.max(1))
        .collect()
        .await;
    let failed: Vec<String> = clusters
        .iter()
        .filter(|c| c.status == ClusterStatus::Failed)
        .map(|c| format!("{}: {}", c.cluster, c.error.as_deref().unwrap_or("")))
        .collect();
    let report = HeadroomReport { clusters };
    match super::output(args.output) {
        Output::Table => print!("{}", table(&report)),
        Output::Json => super::print_json(&report),
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "eks-reaper: headroom of {} cluster(s) not read: {}",
            failed.len(),
            failed.join("; ")
        );
        ExitCode::from(1)
    }
}

async fn cluster_headroom(
    aws: &aws_types::SdkConfig,
    target: &ClusterTarget,
    config: &Config,
    deadline: &Deadline,
) -> ClusterHeadroom {
    let mut out = ClusterHeadroom {
        cluster: target.name.clone(),
        region: eks::region_of(aws, target),
        status: ClusterStatus::Ok,
        error: None,
        subnets: None,
        low_headroom_fraction: config.low_headroom_fraction,
        low_headroom: false,
        forecast: None,
        forecast_error: None,
        stuck_fargate_pods: None,
    };
    let connected = eks::connect(aws, target, None, config.token_max_age, deadline).await;
    let connection = match connected.map(Connected::ready) {
        Ok(Ok(connection)) => connection,
        Ok(Err(skipped)) => {
            out.status = ClusterStatus::Skipped;
            out.error = Some(skipped.to_string());
            return out;
        }
        Err(e) => {
            out.status = ClusterStatus::Failed;
            out.error = Some(format!("{}: {e}", e.kind()));
            return out;
        }
    };
    out.region = Some(connection.region.clone());
    let headroom =
        match headroom::read(&connection, &target.name, &config.extra_subnets, deadline).await {
            Ok(h) => h,
            Err(e) => {
                out.status = ClusterStatus::Failed;
                out.error = Some(e);
                return out;
            }
        };
    out.low_headroom = headroom.is_low(config.low_headroom_fraction);
    let now = SystemClock.now();
    let listed = fargate_pods(&connection.access, config, now, deadline).await;
    match listed {
        Ok(pods) => {
            out.forecast = Some(forecast::forecast(
                forecast::pool(&headroom),
                &pods.created,
                now,
                forecast::window(config.forecast_window),
            ));
            out.stuck_fargate_pods = Some(pods.stuck);
        }
        Err(e) => out.forecast_error = Some(e),
    }
    out.subnets = Some(headroom);
    out
}

/// The creation times of every Fargate pod of the cluster, and those stuck terminating at
/// `now` (metadata only, page by page).
async fn fargate_pods(
    access: &eks::ClusterAccess,
    config: &Config,
    now: jiff::Timestamp,
    deadline: &Deadline,
) -> Result<FargatePods, String> {
    let client = access.client().await.map_err(|e| e.to_string())?;
    let pods: Api<Pod> = Api::all(client);
    let mut out = FargatePods {
        created: Vec::new(),
        stuck: StuckFargatePods::default(),
    };
    let mut continue_token: Option<String> = None;
    loop {
        let mut params = ListParams::default()
            .labels(FARGATE_PROFILE_LABEL)
            .limit(config.page_size);
        params.continue_token = continue_token.take();
        let page = deadline
            .bound(
                "listing Fargate pods",
                LIST_CALL,
                pods.list_metadata(&params),
            )
            .await
            .map_err(|cut| cut.to_string())?
            .map_err(|e| format!("listing Fargate pods: {e}"))?;
        for pod in &page.items {
            out.created
                .extend(pod.metadata.creation_timestamp.as_ref().map(|t| t.0));
            count_stuck(&mut out.stuck, &pod.metadata, now, &config.policy);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => continue_token = Some(token),
            None => return Ok(out),
        }
    }
}

/// Counts the pod if the policy finds it stuck terminating. Unlike a run, whatever its
/// namespace: an IP held in an excluded namespace is still gone from the subnet.
fn count_stuck(
    stuck: &mut StuckFargatePods,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    now: jiff::Timestamp,
    settings: &Settings,
) {
    if let Some(Keep::StuckTerminating {
        terminating_for, ..
    }) = policy::being_deleted(meta, now, settings)
    {
        stuck.pods += 1;
        stuck.oldest_seconds = stuck.oldest_seconds.max(terminating_for.as_secs());
    }
}

/// `2 Fargate pods stuck terminating hold 2 IPs; oldest 3h`.
fn stuck_line(stuck: &StuckFargatePods) -> String {
    let (pods, verb, ips) = if stuck.pods == 1 {
        ("pod", "holds", "IP")
    } else {
        ("pods", "hold", "IPs")
    };
    format!(
        "{n} Fargate {pods} stuck terminating {verb} {n} {ips}; oldest {oldest} \
         (docs/runbook.md#stuck-objects)",
        n = stuck.pods,
        oldest = age(stuck.oldest_seconds)
    )
}

/// `eks-reaper headroom` as a summary line per cluster and a table of its subnets.
///
/// Long on purpose: it prints the lines and the table top to bottom as a person reads them.
fn table(report: &HeadroomReport) -> String {
    let mut out = String::new();
    for c in &report.clusters {
        let region = c.region.as_deref().unwrap_or("-");
        let Some(h) = &c.subnets else {
            let _ = writeln!(
                out,
                "{} ({region}): {}: {}",
                c.cluster,
                c.status.as_str(),
                c.error.as_deref().unwrap_or("no subnet figures")
            );
            continue;
        };
        let tightest = h.tightest.as_ref().map_or("-".to_owned(), |t| {
            format!("{} {:.1}% free", t.subnet_id, t.free_fraction * 100.0)
        });
        let _ = writeln!(
            out,
            "{} ({region}): {} of {} IPv4 addresses free; tightest {tightest}",
            c.cluster, h.total_available, h.total_capacity
        );
        let _ = writeln!(
            out,
            "  low-headroom mode: {} (under {:.1}% free)",
            if c.low_headroom {
                "WOULD ENGAGE"
            } else {
                "off"
            },
            c.low_headroom_fraction * 100.0
        );
        let forecast = match (&c.forecast, &c.forecast_error) {
            (Some(f), _) => match f.hours_to_exhaustion {
                Some(hours) => format!(
                    "{hours:.1} h to exhaustion at {:.0} Fargate pods/h",
                    f.pods_per_hour
                ),
                None => format!(
                    "none (no Fargate pod created in the last {}, the longest of its windows)",
                    age(u64::try_from(f.extended_window_seconds).unwrap_or(0))
                ),
            },
            (None, Some(e)) => format!("not computed: {e}"),
            (None, None) => "not computed".to_owned(),
        };
        let _ = writeln!(out, "  forecast: {forecast}");
        if let Some(stuck) = c.stuck_fargate_pods.filter(|s| s.pods > 0) {
            let _ = writeln!(out, "  {}", stuck_line(&stuck));
        }
        let mut t = new_table(&[
            "SUBNET",
            "AZ",
            "CIDR",
            "FREE",
            "CAPACITY",
            "USED",
            "WATCHED FOR",
        ]);
        for s in &h.subnets {
            let sources: Vec<String> = s
                .sources
                .iter()
                .map(|src| match src {
                    Source::Cluster => "cluster".to_owned(),
                    Source::FargateProfile(p) => format!("fargate:{p}"),
                    Source::Extra => "extra".to_owned(),
                })
                .collect();
            t.add_row(vec![
                s.subnet_id.clone(),
                s.availability_zone.clone(),
                s.cidr.clone(),
                s.available.to_string(),
                s.capacity.to_string(),
                format!("{:.1}%", s.utilization_percent),
                sources.join(","),
            ]);
        }
        for s in &h.skipped {
            t.add_row(vec![
                s.subnet_id.clone(),
                s.availability_zone.clone().unwrap_or_default(),
                format!("skipped: {}", s.reason.as_str()),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
        right_align(&mut t, &[3, 4, 5]);
        let _ = writeln!(out, "{t}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MetaExt, ago, dur, now, pod};

    #[test]
    fn fargate_pods_past_stuck_after_are_counted_as_ips_held() {
        let settings = Settings {
            stuck_after: dur("10m"),
            ..Settings::default()
        };
        let mut stuck = StuckFargatePods::default();
        for p in [
            pod()
                .deleting_since(ago("3h"))
                .with_finalizer("example.com/hold"),
            pod().deleting_since(ago("20m")),
            pod().deleting_since(ago("5m")),
            pod(),
        ] {
            count_stuck(&mut stuck, &p.metadata, now(), &settings);
        }
        assert_eq!(
            stuck,
            StuckFargatePods {
                pods: 2,
                oldest_seconds: 3 * 3600
            }
        );
        assert_eq!(
            stuck_line(&stuck),
            "2 Fargate pods stuck terminating hold 2 IPs; oldest 3h \
             (docs/runbook.md#stuck-objects)"
        );
        let one = StuckFargatePods {
            pods: 1,
            oldest_seconds: 700,
        };
        assert!(
            stuck_line(&one)
                .starts_with("1 Fargate pod stuck terminating holds 1 IP; oldest 11m 40s"),
            "{}",
            stuck_line(&one)
        );
    }
}

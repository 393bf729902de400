//! `eks-reaper headroom`: per watched subnet the free IPv4 addresses and utilisation, the
//! forecast, and whether low-headroom mode would engage — what the run reads before it
//! prunes, without pruning.
//!
//! The subnets come from EKS and EC2 only (`eks:DescribeCluster`, the Fargate profiles,
//! `ec2:DescribeSubnets`), through the same code as a run ([`crate::prune::read_headroom`]).
//! The forecast needs the Fargate pods' creation times, so it also lists pod metadata
//! (label `eks.amazonaws.com/fargate-profile`, every namespace; `list pods` only): without
//! Kubernetes access the figures are still shown and the forecast says why it is missing.

use std::process::ExitCode;

use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde::Serialize;

use super::Output;
use crate::clock::{Clock, SystemClock};
use crate::config::{ClusterTarget, Config, Options};
use crate::deadline::{CallLimits, Deadline};
use crate::eks::{self, Connected};
use crate::headroom::Headroom;
use crate::headroom::forecast::{self, Forecast};
use crate::prune::policy::FARGATE_PROFILE_LABEL;
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
    /// Hours to exhaustion from the Fargate pods created in the last 15 minutes.
    pub forecast: Option<Forecast>,
    /// Why there is no forecast, when it could not be computed.
    pub forecast_error: Option<String>,
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
        Output::Table => print!("{}", super::table::headroom(&report)),
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
    };
    let connection = match eks::connect(aws, target, None, config.token_max_age, deadline).await {
        Ok(Connected::Ready(c)) => c,
        Ok(Connected::NotActive { status, .. }) => {
            out.status = ClusterStatus::Skipped;
            out.error = Some(format!("cluster status is {status}, not ACTIVE"));
            return out;
        }
        Err(e) => {
            out.status = ClusterStatus::Failed;
            out.error = Some(format!("{}: {e}", e.kind()));
            return out;
        }
    };
    out.region = Some(connection.region.clone());
    let headroom = match crate::prune::read_headroom(
        &connection,
        &target.name,
        &config.extra_subnets,
        deadline,
    )
    .await
    {
        Ok(h) => h,
        Err(e) => {
            out.status = ClusterStatus::Failed;
            out.error = Some(e);
            return out;
        }
    };
    out.low_headroom = headroom.is_low(config.low_headroom_fraction);
    match fargate_creations(&connection.access, config.page_size, deadline).await {
        Ok(created) => {
            out.forecast = Some(forecast::forecast(
                forecast::pool(&headroom),
                &created,
                SystemClock.now(),
                forecast::window(config.forecast_window),
            ))
        }
        Err(e) => out.forecast_error = Some(e),
    }
    out.subnets = Some(headroom);
    out
}

/// The creation times of every Fargate pod of the cluster (metadata only, page by page).
async fn fargate_creations(
    access: &eks::ClusterAccess,
    page_size: u32,
    deadline: &Deadline,
) -> Result<Vec<jiff::Timestamp>, String> {
    let client = access.client().await.map_err(|e| e.to_string())?;
    let pods: Api<Pod> = Api::all(client);
    let mut created = Vec::new();
    let mut continue_token: Option<String> = None;
    loop {
        let mut params = ListParams::default()
            .labels(FARGATE_PROFILE_LABEL)
            .limit(page_size);
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
        created.extend(
            page.items
                .iter()
                .filter_map(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        );
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => continue_token = Some(token),
            None => return Ok(created),
        }
    }
}

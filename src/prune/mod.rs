//! The prune pipeline of one cluster, start to finish: connect → subnet headroom (decides
//! the policy's [`Mode`]) → the namespaces' annotations ([`namespaces`]) → per [`Pass`]
//! (Jobs, finished Fargate pods, unfinished Fargate pods' metadata, other finished pods): list + plan ([`scan`], [`policy`]), streaming into
//! [`delete`], counted in a [`Tally`] → one Event per namespace with deletions ([`events`],
//! opt-in) → IP exhaustion forecast.
//!
//! Whatever happens, the cluster yields a [`ClusterReport`]; a failure here is data for the
//! report, never a panic or an early return that would hide the other clusters.

pub mod concurrency;
pub mod delete;
pub mod events;
pub mod lean;
pub mod lean_protobuf;
pub mod namespaces;
pub mod observe;
pub mod pass;
pub mod scan;
pub mod tally;

use std::sync::RwLock;

use aws_types::SdkConfig;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use self::concurrency::AdaptiveLimit;
use self::delete::DeleteContext;
use self::pass::Pass;
use self::scan::{Completion, ScanContext, ScanError};
use self::tally::{Progress, Tally};
use crate::api::ApiStats;
use crate::clock::Clock;
use crate::config::{ClusterTarget, Config};
use crate::deadline::Deadline;
use crate::eks::{self, Connected, Connection};
use crate::failure::{self, ClusterFailure, DeleteFailure, hint};
use crate::headroom::{self, forecast};
use crate::policy::{JobIndex, Mode, NamespaceIndex};
use crate::report::{ClusterReport, ClusterStatus};

/// Candidates buffered between the lister and the deleters (~150 bytes each): lets listing
/// run ahead of slow deletions without holding whole objects.
const CANDIDATE_BUFFER: usize = 10_000;

/// `subnetsError` of a cluster reached through a kubeconfig context without its EKS name.
pub const SUBNETS_UNKNOWN: &str = "not read: the cluster was reached through a kubeconfig \
     context; name its EKS cluster with --cluster to read its subnets and forecast";

/// What every cluster of a run shares besides the configuration.
#[derive(Clone, Copy)]
pub struct RunContext<'a> {
    /// Base AWS configuration.
    pub aws: &'a SdkConfig,
    /// Bounds the run.
    pub deadline: Deadline,
    /// Where the time is read.
    pub clock: &'a dyn Clock,
    /// The run's progress (objects due and dealt with).
    pub progress: &'a Progress,
    /// Logs are JSON lines (`AWS_LAMBDA_LOG_FORMAT=JSON`), not text.
    pub json_logs: bool,
    /// Who watches the run as it goes ([`observe::Unobserved`] for none).
    pub observer: &'a dyn observe::Observer,
    /// The caller prints each cluster failure itself (the CLI with text logs): the log
    /// then records it at debug level only, so a person reads each failure once.
    pub failures_printed: bool,
}

/// Processes one cluster and reports on it. `described` is the cluster's description when
/// discovery already read it.
pub async fn prune_cluster(
    target: &ClusterTarget,
    described: Option<eks::Cluster>,
    config: &Config,
    run: RunContext<'_>,
) -> ClusterReport {
    let started = Instant::now();
    let region = eks::region_of(run.aws, target);
    let mut report = ClusterReport::new(&target.name, region, config.dry_run.is_dry());
    report.account = crate::identity::account(target.role_arn.as_deref()).to_owned();
    let Some(connection) = connect(target, described, config, &run, &mut report).await else {
        return stamped(report, started);
    };
    let mode = decide_mode(&connection, config, &run.deadline, &mut report).await;
    // The namespaces' list and the Events are counted apart, then added to the cluster's.
    let stats = ApiStats::default();
    let (namespaces, unknown) =
        read_namespaces(&connection, config, &run, &stats, &mut report).await;
    let passes = PassContext {
        connection: &connection,
        mode,
        config,
        run: &run,
        namespaces: &namespaces,
    };
    let cut = run_passes(&passes, &mut report).await;
    announce_deletions(&connection, config, &run, &stats, &mut report).await;
    report.requests += stats.requests();
    report.bytes_received += stats.bytes_received();
    report.throttled += stats.throttled();
    fail_unknown_namespaces(unknown, run.failures_printed, &mut report);
    judge_outcome(
        &connection,
        cut.as_deref(),
        run.failures_printed,
        &mut report,
    );
    forecast_exhaustion(config, run.clock, &mut report);
    finish(stamped(report, started))
}

/// Connects to the cluster; `None` when it is skipped (not `ACTIVE`) or cannot be reached,
/// with the report saying which.
async fn connect(
    target: &ClusterTarget,
    described: Option<eks::Cluster>,
    config: &Config,
    run: &RunContext<'_>,
    report: &mut ClusterReport,
) -> Option<Box<Connection>> {
    let cluster = target.name.as_str();
    let connected = eks::connect(
        run.aws,
        target,
        described,
        config.token_max_age,
        &run.deadline,
    )
    .await;
    let connection = match connected.map(Connected::ready) {
        Ok(Ok(connection)) => connection,
        Ok(Err(skipped)) => {
            warn!(cluster, status = %skipped.status, "cluster is not ACTIVE; skipped");
            report.skip(ClusterFailure::NotActive, skipped.to_string());
            return None;
        }
        Err(e) => {
            let error = e.to_string();
            failure::log(
                run.failures_printed,
                Some(cluster),
                e.kind().as_str(),
                &error,
                "cannot connect to the cluster",
            );
            report.fail(e.kind(), error);
            return None;
        }
    };
    // Empty for a kubeconfig context not named as an EKS cluster: it has no region.
    report.region = Some(connection.region.clone()).filter(|r| !r.is_empty());
    report.arn.clone_from(&connection.arn);
    report.reached = true;
    report.kubernetes_version = connection.kubernetes_version.clone();
    if let Some(warning) = &connection.version_warning {
        warn!(cluster, %warning, "Kubernetes newer than eks-reaper was tested on");
        report.version_warning = Some(warning.clone());
    }
    Some(connection)
}

/// Reads the subnet headroom (before pruning: it decides low-headroom mode) and returns the
/// policy's mode. A failed read is reported, not fatal: the mode stays normal unless an
/// emergency run forces it.
async fn decide_mode(
    connection: &Connection,
    config: &Config,
    deadline: &Deadline,
    report: &mut ClusterReport,
) -> Mode {
    let cluster = report.cluster.clone();
    let cluster = cluster.as_str();
    // A hung EC2 or EKS endpoint may take at most half the time left: pruning gets the rest.
    let headroom_deadline = deadline.share(0.5, "the headroom read's half of the time left");
    let headroom = if connection.subnets_known {
        headroom::read(
            connection,
            cluster,
            &config.extra_subnets,
            &headroom_deadline,
        )
        .await
    } else {
        Err(SUBNETS_UNKNOWN.to_owned())
    };
    match headroom {
        Ok(headroom) => {
            report.low_headroom = headroom.is_low(config.low_headroom_fraction);
            if report.low_headroom && config.emergency.is_none() {
                warn!(
                    cluster,
                    tightest_free_fraction = headroom.tightest_free_fraction().unwrap_or(0.0),
                    threshold = config.low_headroom_fraction,
                    "low subnet headroom: shorter retention for finished Fargate pods"
                );
            }
            report.subnets = Some(headroom);
        }
        Err(e) if !connection.subnets_known => report.subnets_error = Some(e),
        Err(e) => {
            warn!(cluster, error = %e, "subnet headroom not read; low-headroom mode off");
            report.subnets_error = Some(e);
        }
    }
    if let Some(e) = &config.emergency {
        // The alarm saw what this read may not (it is minutes newer than the last
        // schedule's, or the read failed): its word is enough to shorten the retention.
        warn!(cluster, alarm = %e.alarm, "emergency run: low-headroom mode forced by the alarm");
        report.low_headroom = true;
    }
    if report.low_headroom {
        Mode::LowHeadroom
    } else {
        Mode::Normal
    }
}

/// Reads the namespaces' annotations (retentions, opt-outs) for the passes; the second
/// value is why the cluster must fail once they are done: the namespaces could not be listed.
async fn read_namespaces(
    connection: &Connection,
    config: &Config,
    run: &RunContext<'_>,
    stats: &ApiStats,
    report: &mut ClusterReport,
) -> (NamespaceIndex, Option<(ClusterFailure, String)>) {
    let read = namespaces::read(
        &connection.access,
        stats,
        &run.deadline,
        config.page_size,
        config.namespace_annotations,
    )
    .await;
    report.namespace_annotations = Some(read.report);
    (read.index, read.failure)
}

/// Sends one Event per namespace with deletions, when asked and the run deletes for real.
async fn announce_deletions(
    connection: &Connection,
    config: &Config,
    run: &RunContext<'_>,
    stats: &ApiStats,
    report: &mut ClusterReport,
) {
    if !config.namespace_events || config.dry_run.is_dry() {
        return;
    }
    let deletions = &report.deleted_reasons_by_namespace;
    let now = run.clock.now();
    let sent = events::announce(&connection.access, stats, &run.deadline, now, deletions).await;
    report.namespace_events = Some(sent);
}

/// Fails the cluster when its namespaces could not be listed (every object was kept), unless
/// it already failed for another reason.
fn fail_unknown_namespaces(
    unknown: Option<(ClusterFailure, String)>,
    failures_printed: bool,
    report: &mut ClusterReport,
) {
    let Some((kind, error)) = unknown else {
        return;
    };
    if report.status != ClusterStatus::Ok {
        return;
    }
    let cluster = Some(report.cluster.as_str());
    failure::log(
        failures_printed,
        cluster,
        kind.as_str(),
        &error,
        "namespaces not listed",
    );
    report.fail(kind, error);
}

/// What the passes of one cluster share.
struct PassContext<'a> {
    connection: &'a Connection,
    mode: Mode,
    config: &'a Config,
    run: &'a RunContext<'a>,
    namespaces: &'a NamespaceIndex,
}

/// Lists, judges and deletes, pass by pass, and counts it all into the report. Returns the
/// first request the deadline cut in flight, if any.
///
/// Jobs first, in both modes: the pod passes need to know which Jobs keep their pods
/// (`eks-reaper/keep` on a Job), and a deleted Job's pods go with it (Background
/// propagation, via the garbage collector). The pod passes then handle finished Fargate
/// pods of retained Jobs, bare and Evicted pods. A pass that stops or fails ends the
/// cluster's run, so no pod is judged against an incomplete Job list.
async fn run_passes(passes: &PassContext<'_>, report: &mut ClusterReport) -> Option<String> {
    let PassContext {
        connection,
        mode,
        config,
        run,
        namespaces,
    } = *passes;
    let cluster = report.cluster.clone();
    let stats = ApiStats::default();
    let tally = Tally::new(run.progress);
    let jobs = RwLock::new(JobIndex::default());
    let scan_ctx = ScanContext {
        access: &connection.access,
        stats: &stats,
        deadline: &run.deadline,
        settings: &config.policy,
        mode,
        label_selector: config.label_selector.as_deref(),
        page_size: config.page_size,
        tally: &tally,
        jobs: &jobs,
        clock: run.clock,
        observer: run.observer,
        namespaces,
    };
    let delete_ctx = DeleteContext {
        access: &connection.access,
        stats: &stats,
        deadline: &run.deadline,
        dry_run: config.dry_run,
        tally: &tally,
        observer: run.observer,
    };
    // One limit for the cluster's passes: what the first learnt about the API server holds
    // for the next.
    let mut limit = AdaptiveLimit::new(config.concurrency, config.drain_latency_target);
    for pass in Pass::ALL {
        // One pass at a time: its deletions finish before the next pass lists, so the next
        // list (tens of MB of JSON for the API server to encode) does not compete with them.
        run.observer.pass_started(&cluster, pass);
        let result = prune_pass(pass, &scan_ctx, &delete_ctx, &mut limit).await;
        run.observer.pass_finished(&cluster, pass);
        match result {
            Ok(Completion::Complete) => {}
            Ok(Completion::Stopped) => {
                report.listing_complete = false;
                break;
            }
            Err(e) => {
                let error = e.explain(&connection.access);
                failure::log(
                    run.failures_printed,
                    Some(&cluster),
                    e.kind().as_str(),
                    &error,
                    "listing failed",
                );
                report.listing_complete = false;
                report.fail(e.kind(), error);
                break;
            }
        }
    }
    tally.into_report(report);
    report.concurrency = limit.summary();
    report.requests = stats.requests();
    report.bytes_received = stats.bytes_received();
    report.throttled = stats.throttled();
    stats.first_timeout().map(str::to_owned)
}

/// Whether the cluster's run counts as failed although every pass returned.
///
/// A request the deadline cut in flight (`cut`) got no answer (a hung API server): the
/// cluster was not processed to the end, whatever the counts say. Running out of time
/// between requests is not this: that is backlog. Refused deletions mean the identity may
/// list but not delete: the run must not look healthy (Lambda Errors metric, CLI exit
/// status), whatever else was counted.
fn judge_outcome(
    connection: &Connection,
    cut: Option<&str>,
    failures_printed: bool,
    report: &mut ClusterReport,
) {
    if let Some(cut) = cut
        && report.status == ClusterStatus::Ok
    {
        failure::log(
            failures_printed,
            Some(&report.cluster),
            ClusterFailure::Timeout.as_str(),
            cut,
            "API server did not answer in time",
        );
        report.fail(ClusterFailure::Timeout, cut.to_owned());
    }
    let refused: u64 = report
        .errors
        .iter()
        .filter(|(kind, _)| kind.is_refusal())
        .map(|(_, n)| n)
        .sum();
    if refused == 0 || report.status != ClusterStatus::Ok {
        return;
    }
    let (first, sample) = report
        .error_samples
        .iter()
        .find(|(kind, _)| kind.is_refusal())
        .map_or((DeleteFailure::Forbidden, ""), |(k, m)| (*k, m.as_str()));
    let error = if first == DeleteFailure::Unauthorized {
        hint::unauthorized(
            &format!("{refused} deletion(s) refused"),
            &connection.access.endpoint_url(),
            &report.cluster,
            connection.access.region(),
        )
    } else {
        hint::delete_forbidden(
            refused,
            &hint::Refusal::from_message(sample, "delete", "jobs.batch"),
        )
    };
    failure::log(
        failures_printed,
        Some(&report.cluster),
        ClusterFailure::DeleteForbidden.as_str(),
        &error,
        "deletions refused by the API server (403/401)",
    );
    report.fail(ClusterFailure::DeleteForbidden, error);
}

/// Hours until the subnets run out, from the free addresses read before pruning and the
/// creation times of every Fargate pod this run listed: finished, running and pending alike
/// (the finished ones whole, the others as metadata), since each new pod takes an IP
/// whether or not it has finished.
fn forecast_exhaustion(config: &Config, clock: &dyn Clock, report: &mut ClusterReport) {
    report.forecast = report.subnets.as_ref().map(|h| {
        forecast::forecast(
            forecast::pool(h),
            &report.fargate_pod_creations,
            clock.now(),
            forecast::window(config.forecast_window),
        )
    });
}

/// The report with the cluster's wall time.
fn stamped(mut report: ClusterReport, started: Instant) -> ClusterReport {
    report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

/// Logs the cluster's one closing line and hands the report back.
fn finish(report: ClusterReport) -> ClusterReport {
    info!(
        cluster = report.cluster,
        status = report.status.as_str(),
        jobs_seen = report.jobs.seen,
        jobs_deleted = report.jobs.deleted,
        pods_seen = report.pods.seen,
        pods_deleted = report.pods.deleted,
        fargate_pods_deleted = report.pods.fargate_deleted,
        backlog = report.backlog,
        throttled = report.throttled,
        concurrency_settled = report.concurrency.settled,
        concurrency_min = report.concurrency.min,
        concurrency_max = report.concurrency.max,
        requests = report.requests,
        bytes_received = report.bytes_received,
        duration_ms = report.duration_ms,
        "cluster done"
    );
    report
}

/// Lists one pass and deletes its due objects as they stream in; returns once both are done.
async fn prune_pass(
    pass: Pass,
    scan_ctx: &ScanContext<'_>,
    delete_ctx: &DeleteContext<'_>,
    limit: &mut AdaptiveLimit,
) -> Result<Completion, ScanError> {
    let (tx, rx) = mpsc::channel(CANDIDATE_BUFFER);
    let lister = async move {
        // `tx` is dropped when the scan ends, which ends the drain.
        scan::scan(pass, scan_ctx, &tx).await
    };
    let (listed, ()) = tokio::join!(lister, delete::drain(rx, pass, delete_ctx, limit));
    listed
}

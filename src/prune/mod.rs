//! The prune pipeline of one cluster, start to finish: connect → subnet headroom (decides
//! the policy's [`Mode`]) → per [`Pass`] (Jobs, Fargate pods, other pods): list + plan
//! ([`scan`], [`policy`]), streaming into [`delete`], counted in a [`Tally`] → IP exhaustion
//! forecast.
//!
//! Whatever happens, the cluster yields a [`ClusterReport`]; a failure here is data for the
//! report, never a panic or an early return that would hide the other clusters.

pub mod concurrency;
pub mod delete;
pub mod lean;
pub mod observe;
pub mod pass;
pub mod policy;
pub mod scan;
pub mod tally;

use std::sync::RwLock;

use aws_types::SdkConfig;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use self::concurrency::AdaptiveLimit;
use self::delete::DeleteContext;
use self::pass::Pass;
use self::policy::{JobIndex, Mode};
use self::scan::{Completion, ScanContext, ScanError};
use self::tally::{Progress, Tally};
use crate::api::ApiStats;
use crate::clock::Clock;
use crate::config::{ClusterTarget, Config};
use crate::deadline::Deadline;
use crate::eks::{self, Connected};
use crate::failure::{ClusterFailure, DeleteFailure, hint};
use crate::headroom::{Headroom, forecast, subnets};
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
    let RunContext {
        aws,
        deadline,
        clock,
        progress,
        observer,
        failures_printed,
        ..
    } = run;
    let started = Instant::now();
    let region = eks::region_of(aws, target);
    let mut report = ClusterReport::new(&target.name, region, config.dry_run.is_dry());
    let cluster = target.name.as_str();

    let connection =
        match eks::connect(aws, target, described, config.token_max_age, &deadline).await {
            Ok(Connected::Ready(c)) => c,
            Ok(Connected::NotActive { status, .. }) => {
                warn!(cluster, status = %status, "cluster is not ACTIVE; skipped");
                report.skip(
                    ClusterFailure::NotActive,
                    format!("cluster status is {status}, not ACTIVE"),
                );
                report.duration_ms = elapsed_ms(started);
                return report;
            }
            Err(e) => {
                let error = e.to_string();
                log_failure(
                    failures_printed,
                    cluster,
                    e.kind(),
                    &error,
                    "cannot connect to the cluster",
                );
                report.fail(e.kind(), error);
                report.duration_ms = elapsed_ms(started);
                return report;
            }
        };
    // Empty for a kubeconfig context not named as an EKS cluster: it has no region.
    report.region = Some(connection.region.clone()).filter(|r| !r.is_empty());
    report.reached = true;

    // ---- subnet headroom ---------------------------------------------------------------
    // Read before pruning: it decides low-headroom mode. A failure is reported, not fatal.
    // A hung EC2 or EKS endpoint may take at most half the time left: pruning gets the rest.
    let headroom_deadline = deadline.share(0.5, "the headroom read's half of the time left");
    let headroom = if connection.subnets_known {
        read_headroom(
            &connection,
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
            report.subnets_error = Some(e.to_string());
        }
    }
    if let Some(e) = &config.emergency {
        // The alarm saw what this read may not (it is minutes newer than the last
        // schedule's, or the read failed): its word is enough to shorten the retention.
        warn!(cluster, alarm = %e.alarm, "emergency run: low-headroom mode forced by the alarm");
        report.low_headroom = true;
    }
    let mode = if report.low_headroom {
        Mode::LowHeadroom
    } else {
        Mode::Normal
    };

    // ---- list + plan + delete, pass by pass ---------------------------------------------
    let stats = ApiStats::default();
    let tally = Tally::new(progress);
    let jobs = RwLock::new(JobIndex::default());
    // Jobs first, in both modes: the pod passes need to know which Jobs keep their pods
    // (`eks-reaper/keep` on a Job), and a deleted Job's pods go with it (Background
    // propagation, via the garbage collector). The pod passes then handle finished Fargate
    // pods of retained Jobs, bare and Evicted pods. A pass that stops or fails ends the
    // cluster's run, so no pod is judged against an incomplete Job list.
    let order = [Pass::Jobs, Pass::FargatePods, Pass::OtherPods];
    let scan_ctx = ScanContext {
        access: &connection.access,
        stats: &stats,
        deadline: &deadline,
        settings: &config.policy,
        mode,
        label_selector: config.label_selector.as_deref(),
        page_size: config.page_size,
        tally: &tally,
        jobs: &jobs,
        clock,
        observer,
    };
    let delete_ctx = DeleteContext {
        access: &connection.access,
        stats: &stats,
        deadline: &deadline,
        dry_run: config.dry_run,
        tally: &tally,
        observer,
        pass: Pass::Jobs,
    };
    // One limit for the cluster's passes: what the first learnt about the API server holds
    // for the next.
    let mut limit = AdaptiveLimit::new(config.concurrency);
    for pass in order {
        // One pass at a time: its deletions finish before the next pass lists, so the next
        // list (tens of MB of JSON for the API server to encode) does not compete with them.
        observer.pass_started(cluster, pass);
        let result = prune_pass(pass, &scan_ctx, &delete_ctx, &mut limit).await;
        observer.pass_finished(cluster, pass);
        match result {
            Ok(Completion::Complete) => {}
            Ok(Completion::Stopped) => {
                report.listing_complete = false;
                break;
            }
            Err(e) => {
                let error = e.explain(&connection.access);
                log_failure(
                    failures_printed,
                    cluster,
                    e.kind(),
                    &error,
                    "listing failed",
                );
                report.listing_complete = false;
                report.fail(e.kind(), error);
                break;
            }
        }
    }
    tally.into_report(&mut report);
    report.concurrency = limit.summary();
    report.requests = stats.requests();
    report.throttled = stats.throttled();
    // A request the deadline cut in flight got no answer (a hung API server): the cluster
    // was not processed to the end, whatever the counts say. Running out of time between
    // requests is not this: that is backlog.
    if let Some(cut) = stats.first_timeout()
        && report.status == ClusterStatus::Ok
    {
        log_failure(
            failures_printed,
            cluster,
            ClusterFailure::Timeout,
            cut,
            "API server did not answer in time",
        );
        report.fail(ClusterFailure::Timeout, cut.to_owned());
    }
    // Refused deletions mean the identity may list but not delete: the run must not look
    // healthy (Lambda Errors metric, CLI exit status), whatever else was counted.
    let refused: u64 = report
        .errors
        .iter()
        .filter(|(kind, _)| kind.is_refusal())
        .map(|(_, n)| n)
        .sum();
    if refused > 0 && report.status == ClusterStatus::Ok {
        let (first, sample) = report
            .error_samples
            .iter()
            .find(|(kind, _)| kind.is_refusal())
            .map_or((DeleteFailure::Forbidden, ""), |(k, m)| (*k, m.as_str()));
        let error = if first == DeleteFailure::Unauthorized {
            hint::unauthorized(
                &format!("{refused} deletion(s) refused"),
                &connection.access.endpoint_url(),
                cluster,
                connection.access.region(),
            )
        } else {
            hint::delete_forbidden(
                refused,
                &hint::Refusal::from_message(sample, "delete", "jobs.batch"),
            )
        };
        log_failure(
            failures_printed,
            cluster,
            ClusterFailure::DeleteForbidden,
            &error,
            "deletions refused by the API server (403/401)",
        );
        report.fail(ClusterFailure::DeleteForbidden, error);
    }

    // ---- forecast ----------------------------------------------------------------------
    // From the free addresses read before pruning and the creation times of every Fargate
    // pod this run listed: finished, running and pending alike (the Fargate pass has no
    // phase filter), since each new pod takes an IP whether or not it has finished.
    report.forecast = report.subnets.as_ref().map(|h| {
        forecast::forecast(
            forecast::pool(h),
            &report.fargate_pod_creations,
            clock.now(),
            forecast::window(config.forecast_window),
        )
    });

    report.duration_ms = elapsed_ms(started);
    info!(
        cluster,
        status = ?report.status,
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
    let delete_ctx = DeleteContext {
        pass,
        ..*delete_ctx
    };
    let (listed, ()) = tokio::join!(lister, delete::drain(rx, &delete_ctx, limit));
    listed
}

/// The Fargate profiles' subnets (EKS), then the free addresses of every watched subnet
/// (EC2).
pub async fn read_headroom(
    connection: &eks::Connection,
    cluster: &str,
    extra: &[String],
    deadline: &Deadline,
) -> Result<Headroom, String> {
    let profiles = eks::fargate::profiles(&connection.eks, cluster, deadline)
        .await
        .map_err(|e| e.to_string())?;
    let watched = subnets::watched(&connection.subnet_ids, &profiles, extra);
    subnets::read(&connection.ec2, watched, deadline)
        .await
        .map_err(|e| e.to_string())
}

/// Logs a cluster's failure once, with its kind and cluster as fields (`errorKind`,
/// `cluster`) and the one-line message as `error`. When the caller prints the failure
/// itself on the same stream (the CLI with text logs), at debug level only.
fn log_failure(
    printed: bool,
    cluster: &str,
    kind: ClusterFailure,
    error: &str,
    what: &'static str,
) {
    if printed {
        debug!(cluster, errorKind = %kind, error, "{what}");
    } else {
        warn!(cluster, errorKind = %kind, error, "{what}");
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

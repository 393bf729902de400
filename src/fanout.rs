//! Fan-out on SQS: one cluster per invocation, for fleets one invocation cannot cover.
//!
//! With `REAPER_QUEUE_URL` set, a scheduled (or alarm) invocation **plans**: it resolves the
//! fleet (named clusters and those found by tag) and sends one [`RunRequest`] per cluster to
//! an SQS FIFO queue. The same function **consumes** the queue through an event source
//! mapping (batch size 1, `ReportBatchItemFailures`, a maximum concurrency that is the
//! fleet's parallelism) and prunes one cluster with the whole invocation's budget, so a
//! cluster's subnet read and metrics never wait behind other clusters.
//!
//! | SQS field | Value | Why |
//! |---|---|---|
//! | `MessageGroupId` | the cluster's identity, `account/region/name` ([`crate::identity`]) | a FIFO group is delivered one batch at a time: one run per cluster at once, different clusters in parallel; the same name in two accounts or Regions is two groups |
//! | `MessageDeduplicationId` | a hash of the identity and the invocation's request id | a retried planner invocation (same request id) enqueues nothing twice; SQS remembers dedup ids for 5 minutes only |
//! | body | [`RunRequest`] JSON | the cluster (name, Region, role), the dry-run mode, and for an alarm the emergency that forces low-headroom mode |
//!
//! An alarm's emergency run goes into its cluster's group like a scheduled one: it runs
//! right after that cluster's current run instead of waiting in Lambda's async queue
//! behind a whole-fleet run (where it expired after one interval).
//!
//! A record that cannot be read, or that the deadline leaves no time for, is returned in
//! `batchItemFailures`: SQS delivers it again after the visibility timeout, and after the
//! queue's `maxReceiveCount` moves it to the dead-letter queue. A run that failed on its
//! cluster is not retried here: the next schedule slot runs it again, and its metrics
//! (`RunSucceeded`) and the report say it failed.

pub mod reported;

use std::collections::BTreeSet;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use crate::config::event::{ClusterOverride, Overrides};
use crate::config::{ClusterTarget, Config, Emergency, Options};
use crate::deadline::Deadline;
use crate::eks::discover::Found;
use crate::metrics::{self, Datum, Metric, Sink};
use crate::prune::RunContext;
use crate::report::{MetricsOutcome, Report};
use reported::{Expected, Reporting};

/// SQS takes at most 10 entries per `SendMessageBatch`.
const BATCH: usize = 10;

/// The run one queue message asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRequest {
    /// The cluster.
    pub cluster: RequestedCluster,
    /// `off`, `client` or `server`.
    pub dry_run: String,
    /// Set for an alarm's emergency run: low-headroom mode is forced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<RequestedEmergency>,
}

/// A cluster as a message names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestedCluster {
    /// EKS cluster name.
    pub name: String,
    /// Its Region.
    pub region: String,
    /// The role to assume for it, when it is not in the function's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
}

/// The alarm behind an emergency run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestedEmergency {
    /// The alarm that went to ALARM.
    pub alarm: String,
}

/// The deduplication id of one cluster's message from one planner invocation: 64 hex
/// characters (SQS allows 128).
pub fn dedup_id(identity: &str, request_id: &str) -> String {
    let digest = Sha256::digest(format!("{identity}\n{request_id}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a planner invocation enqueued.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// `ok`, or `failed` when a cluster could not be enqueued or discovery failed.
    pub status: &'static str,
    /// The identities enqueued.
    pub enqueued: Vec<String>,
    /// `identity: error` for each message SQS refused or the deadline cut.
    pub failed: Vec<String>,
    /// Discovery errors, per Region.
    pub discovery_errors: Vec<String>,
    /// The alarm, for an emergency plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emergency: Option<String>,
    /// Clusters planned before the last window that published no run in it
    /// ([`reported`]); absent for an emergency plan, without `REAPER_SCHEDULE_INTERVAL`,
    /// or with metrics off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporting: Option<Reporting>,
    /// What the plan published: `RunPlanned` per cluster enqueued, `ClustersNotReported`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsOutcome>,
}

/// The fleet's run requests: the named clusters (or the emergency's), then those found by
/// tag, each with its Region resolved against `default_region`. A cluster with no Region
/// anywhere cannot be requested; it comes back as `name: why` in the second list, so the
/// plan reports it failed instead of leaving it out.
pub fn requests(
    config: &Config,
    found: &[Found],
    default_region: Option<&str>,
) -> (Vec<(String, RunRequest)>, Vec<String>) {
    let named = config.clusters.iter();
    let discovered = found.iter().map(|f| &f.target);
    let mut requests = Vec::new();
    let mut unresolved = Vec::new();
    for target in named.chain(discovered) {
        match request(target, config, default_region) {
            Some(r) => requests.push(r),
            None => unresolved.push(format!(
                "{}: no Region (name it as {}@REGION, or set AWS_REGION)",
                target.name, target.name
            )),
        }
    }
    (requests, unresolved)
}

fn request(
    target: &ClusterTarget,
    config: &Config,
    default_region: Option<&str>,
) -> Option<(String, RunRequest)> {
    let region = target.region.as_deref().or(default_region)?.to_owned();
    let id = crate::identity::of(&target.name, &region, target.role_arn.as_deref());
    let request = RunRequest {
        cluster: RequestedCluster {
            name: target.name.clone(),
            region,
            role_arn: target.role_arn.clone(),
        },
        dry_run: config.dry_run.as_str().to_owned(),
        emergency: config.emergency.as_ref().map(|e| RequestedEmergency {
            alarm: e.alarm.clone(),
        }),
    };
    Some((id, request))
}

/// Plans one schedule slot (or one alarm): every cluster's request onto the queue.
pub async fn plan(
    config: &Config,
    queue_url: &str,
    request_id: &str,
    run: RunContext<'_>,
) -> PlanReport {
    let (found, discovery) = crate::run::discover(config, &run).await;
    let default_region = run.aws.region().map(|r| r.as_ref().to_owned());
    let (requests, unresolved) = requests(config, &found, default_region.as_deref());
    let client = aws_sdk_sqs::Client::new(run.aws);
    let mut report = PlanReport {
        failed: unresolved,
        discovery_errors: discovery.map(|d| d.errors).unwrap_or_default(),
        emergency: config.emergency.as_ref().map(|e| e.alarm.clone()),
        ..PlanReport::default()
    };
    for chunk in requests.chunks(BATCH) {
        let (sent, failed) = send(&client, queue_url, request_id, chunk, &run.deadline).await;
        report.enqueued.extend(sent);
        report.failed.extend(failed);
    }
    let sink = Sink::new(
        config.metrics.sink,
        config.metrics.namespace.clone(),
        config.metrics.detail,
        run.aws,
    );
    let expected: Vec<Expected> = requests.iter().map(expected).collect();
    report.reporting = match config.not_reported_after {
        Some(window) if config.emergency.is_none() && !matches!(sink, Sink::None) => {
            let reader = reported::Reader {
                client: &metrics::cloudwatch::client(run.aws),
                namespace: &config.metrics.namespace,
                clusters: &expected,
                window,
                deadline: &run.deadline,
            };
            Some(reported::check(&reader, run.clock.now()).await)
        }
        _ => None,
    };
    log_reporting(report.reporting.as_ref());
    let data = plan_data(&expected, &report);
    report.metrics =
        Some(metrics::send(&sink, &data, run.clock.now(), &run.deadline.end_of_run()).await);
    report.status = if report.failed.is_empty() && report.discovery_errors.is_empty() {
        "ok"
    } else {
        "failed"
    };
    info!(
        enqueued = report.enqueued.len(),
        failed = report.failed.len(),
        status = report.status,
        "fleet planned"
    );
    report
}

/// What the check expects of a request's cluster: its identity and metric dimensions.
fn expected((identity, request): &(String, RunRequest)) -> Expected {
    let c = &request.cluster;
    let account = crate::identity::account(c.role_arn.as_deref());
    Expected {
        identity: identity.clone(),
        dimensions: metrics::figures::cluster_dimensions(&c.name, &c.region, account),
    }
}

/// The plan's metrics: `RunPlanned` for each cluster enqueued, and `ClustersNotReported`
/// when the check could read CloudWatch.
fn plan_data(expected: &[Expected], report: &PlanReport) -> Vec<Datum> {
    let enqueued: BTreeSet<&str> = report.enqueued.iter().map(String::as_str).collect();
    let planned = expected
        .iter()
        .filter(|e| enqueued.contains(e.identity.as_str()))
        .map(|e| Datum {
            metric: Metric::RunPlanned,
            value: 1.0,
            dimensions: e.dimensions.to_vec(),
        });
    let not_reported = report
        .reporting
        .as_ref()
        .filter(|r| r.error.is_none())
        .map(|r| Datum {
            metric: Metric::ClustersNotReported,
            value: r.not_reported.len() as f64,
            dimensions: Vec::new(),
        });
    planned.chain(not_reported).collect()
}

/// One log line for the check: the clusters not reported (at most 128 characters each, so
/// 1,000 of them stay well inside CloudWatch Logs' 256 KB per event), or why it could not
/// tell.
fn log_reporting(reporting: Option<&Reporting>) {
    let Some(r) = reporting else { return };
    if let Some(why) = &r.error {
        error!(error = %why, "could not read which clusters reported; ClustersNotReported not published");
    } else if !r.not_reported.is_empty() {
        warn!(
            count = r.not_reported.len(),
            clusters = %r.not_reported.join(","),
            window_seconds = r.window_seconds,
            "clusters planned before the window published no run in it: their messages are stuck or dead-lettered, or their runs die before publishing"
        );
    }
}

/// Sends up to [`BATCH`] requests; returns the identities sent and `identity: error` for
/// the others.
async fn send(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    request_id: &str,
    chunk: &[(String, RunRequest)],
    deadline: &Deadline,
) -> (Vec<String>, Vec<String>) {
    let mut entries: Vec<SendMessageBatchRequestEntry> = Vec::new();
    let mut unsendable = Vec::new();
    for (i, (id, request)) in chunk.iter().enumerate() {
        let entry = serde_json::to_string(request)
            .map_err(|e| e.to_string())
            .and_then(|body| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .message_group_id(id)
                    .message_deduplication_id(dedup_id(id, request_id))
                    .build()
                    .map_err(|e| e.to_string())
            });
        match entry {
            Ok(entry) => entries.push(entry),
            Err(why) => unsendable.push(format!("{id}: message not built: {why}")),
        }
    }
    if entries.is_empty() {
        return (Vec::new(), unsendable);
    }
    let all_failed = |why: &str| {
        let mut failed = unsendable.clone();
        failed.extend(chunk.iter().map(|(id, _)| format!("{id}: {why}")));
        (Vec::new(), failed)
    };
    let call = client
        .send_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send();
    let answer = match deadline
        .bound("sqs:SendMessageBatch", crate::eks::AWS_CALL, call)
        .await
    {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            let why = crate::failure::chain::Chain(&e).to_string();
            error!(error = %why, "sqs:SendMessageBatch failed");
            return all_failed(&why);
        }
        Err(cut) => return all_failed(&cut.to_string()),
    };
    let by_entry = |entry_id: &str| {
        entry_id
            .parse::<usize>()
            .ok()
            .and_then(|i| chunk.get(i))
            .map(|(id, _)| id.clone())
    };
    let sent = answer
        .successful()
        .iter()
        .filter_map(|s| by_entry(s.id()))
        .collect();
    let refused = answer.failed().iter().map(|f| {
        let id = by_entry(f.id()).unwrap_or_else(|| f.id().to_owned());
        format!("{id}: {} {}", f.code(), f.message().unwrap_or_default())
    });
    unsendable.extend(refused);
    (sent, unsendable)
}

/// The records of an SQS event (`Records[]` with `eventSource` `aws:sqs`), if it is one.
pub fn sqs_records(event: &Value) -> Option<Vec<(String, String)>> {
    let records = event.get("Records")?.as_array()?;
    let from_sqs = |r: &Value| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs");
    if records.is_empty() || !records.iter().all(from_sqs) {
        return None;
    }
    Some(
        records
            .iter()
            .map(|r| {
                let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                (text("messageId"), text("body"))
            })
            .collect(),
    )
}

/// The configuration of the run one message asks for: the function's settings with the
/// message's cluster, dry-run mode and emergency. No discovery: the planner did it.
pub fn config_for(options: &Options, body: &str) -> Result<Config, String> {
    let request: RunRequest =
        serde_json::from_str(body).map_err(|e| format!("not a run request: {e}"))?;
    let dry_run = crate::config::values::dry_run(&request.dry_run)
        .map_err(|why| format!("dryRun {:?}: {why}", request.dry_run))?;
    let cluster = &request.cluster;
    let overrides = Overrides {
        clusters: Some(vec![ClusterOverride {
            name: cluster.name.clone(),
            region: Some(cluster.region.clone()),
            role_arn: cluster.role_arn.clone(),
            external_id: None,
        }]),
        dry_run: Some(dry_run),
        emergency: request.emergency.as_ref().map(|e| Emergency {
            alarm: e.alarm.clone(),
            cluster: cluster.name.clone(),
            region: Some(cluster.region.clone()),
            account: Some(crate::identity::account(cluster.role_arn.as_deref()).to_owned()),
            field: "message.emergency",
        }),
    };
    let mut config = Config::resolve(options, &overrides).map_err(|e| e.to_string())?;
    config.discovery = None;
    Ok(config)
}

/// Runs the cluster each record asks for, one after the other, each under the run context
/// `run` gives for its configuration (the invocation's deadline); returns the SQS event
/// source mapping's partial batch response (`batchItemFailures`) and each run's report.
pub async fn consume<'a>(
    records: Vec<(String, String)>,
    options: &Options,
    run: impl Fn(&Config) -> RunContext<'a>,
) -> Value {
    let mut failures = Vec::new();
    let mut reports: Vec<Report> = Vec::new();
    for (message_id, body) in records {
        let config = match config_for(options, &body) {
            Ok(config) => config,
            Err(why) => {
                error!(message_id, error = %why, "queue message not understood; nothing done");
                failures.push(json!({"itemIdentifier": message_id}));
                continue;
            }
        };
        let context = run(&config);
        if context.deadline.reached() {
            warn!(
                message_id,
                "no time left for this record; SQS delivers it again"
            );
            failures.push(json!({"itemIdentifier": message_id}));
            continue;
        }
        reports.push(crate::run::run(&config, context).await);
    }
    json!({"batchItemFailures": failures, "reports": reports})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DryRun;
    use crate::config::tests::options;

    fn config(args: &[&str]) -> Config {
        Config::resolve(&options(args), &Overrides::default()).expect("config")
    }

    #[test]
    fn each_identity_and_request_has_its_own_deduplication_id() {
        let a = "111111111111/eu-west-1/prod";
        let b = "222222222222/eu-west-1/prod";
        assert_ne!(dedup_id(a, "req-1"), dedup_id(b, "req-1"));
        assert_eq!(dedup_id(a, "req-1"), dedup_id(a, "req-1"));
        assert_ne!(dedup_id(a, "req-1"), dedup_id(a, "req-2"));
        assert_eq!(dedup_id(a, "req-1").len(), 64);
    }

    #[test]
    fn each_named_cluster_is_one_request_with_its_region_and_role() {
        let c = config(&[
            "--cluster",
            "etl,prod@eu-west-1",
            "--role-arn",
            "prod=arn:aws:iam::222222222222:role/eks-reaper",
            "--dry-run",
            "server",
        ]);
        let (requests, unresolved) = requests(&c, &[], Some("us-east-1"));
        assert!(unresolved.is_empty(), "{unresolved:?}");
        let ids: Vec<&str> = requests.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["self/us-east-1/etl", "222222222222/eu-west-1/prod"]);
        let (_, prod) = &requests[1];
        assert_eq!(
            prod.cluster.role_arn.as_deref(),
            Some("arn:aws:iam::222222222222:role/eks-reaper")
        );
        assert_eq!(prod.dry_run, "server");
        assert_eq!(prod.emergency, None);
    }

    #[test]
    fn a_cluster_without_a_region_anywhere_is_a_failure_the_plan_reports() {
        let c = config(&["--cluster", "etl,prod@eu-west-1"]);
        let (requests, unresolved) = requests(&c, &[], None);
        let ids: Vec<&str> = requests.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["self/eu-west-1/prod"]);
        assert_eq!(unresolved.len(), 1);
        assert!(
            unresolved[0].starts_with("etl: no Region"),
            "{unresolved:?}"
        );
    }

    #[test]
    fn a_message_becomes_a_run_of_its_cluster_only() {
        let body = r#"{"cluster":{"name":"prod","region":"eu-west-1"},"dryRun":"client"}"#;
        let c = config_for(&options(&["--cluster-tag", "eks-reaper=true"]), body).expect("config");
        assert_eq!(c.clusters.len(), 1);
        assert_eq!(c.clusters[0].name, "prod");
        assert_eq!(c.clusters[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.discovery, None, "the planner discovered already");
        assert_eq!(c.dry_run, DryRun::Client);
        assert_eq!(c.emergency, None);
    }

    #[test]
    fn an_emergency_message_forces_its_cluster_s_emergency_run() {
        let body = r#"{"cluster":{"name":"prod","region":"eu-west-1"},"dryRun":"off",
                      "emergency":{"alarm":"free-ips-low"}}"#;
        let c = config_for(&options(&[]), body).expect("config");
        let e = c.emergency.expect("emergency");
        assert_eq!(
            (e.alarm.as_str(), e.cluster.as_str()),
            ("free-ips-low", "prod")
        );
    }

    #[test]
    fn a_message_that_is_not_a_run_request_is_an_error_naming_what_is_wrong() {
        for (body, says) in [
            (r#"{"cluster":"prod"}"#, "not a run request"),
            (
                r#"{"cluster":{"name":"prod","region":"eu-west-1"},"dryRun":"maybe"}"#,
                "dryRun",
            ),
            (
                r#"{"cluster":{"name":"a b","region":"eu-west-1"},"dryRun":"off"}"#,
                "a b",
            ),
            (
                r#"{"cluster":{"name":"p","region":"x","extra":1},"dryRun":"off"}"#,
                "extra",
            ),
        ] {
            let e = config_for(&options(&[]), body).expect_err(body);
            assert!(e.contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn only_an_all_sqs_event_is_read_as_records() {
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": "{}"}]});
        assert_eq!(
            sqs_records(&sqs),
            Some(vec![("m1".to_owned(), "{}".to_owned())])
        );
        for other in [
            json!({}),
            json!({"Records": []}),
            json!({"Records": [{"eventSource": "aws:s3"}]}),
            json!({"clusters": ["etl"]}),
        ] {
            assert_eq!(sqs_records(&other), None, "{other}");
        }
    }

    #[test]
    fn the_plan_publishes_run_planned_per_enqueued_cluster_and_the_count_not_reported() {
        let c = config(&["--cluster", "a@eu-west-1,b@eu-west-1,c@eu-west-1"]);
        let (requests, _) = requests(&c, &[], None);
        let all: Vec<Expected> = requests.iter().map(expected).collect();
        let mut report = PlanReport {
            enqueued: vec!["self/eu-west-1/a".into(), "self/eu-west-1/c".into()],
            failed: vec!["self/eu-west-1/b: refused".into()],
            ..PlanReport::default()
        };
        let names = |data: &[Datum]| -> Vec<(&'static str, String)> {
            data.iter()
                .map(|d| {
                    let cluster = d.dimensions.first().map(|d| d.value.clone());
                    (d.metric.name(), cluster.unwrap_or_default())
                })
                .collect()
        };
        assert_eq!(
            names(&plan_data(&all, &report)),
            [
                ("RunPlanned", "a".to_owned()),
                ("RunPlanned", "c".to_owned())
            ],
            "no check: no ClustersNotReported"
        );
        report.reporting = Some(Reporting {
            window_seconds: 1200,
            not_reported: vec!["self/eu-west-1/b".into()],
            error: None,
        });
        let data = plan_data(&all, &report);
        let last = data.last().expect("count");
        assert_eq!(
            (last.metric, last.value),
            (Metric::ClustersNotReported, 1.0)
        );
        assert!(last.dimensions.is_empty(), "one fleet-wide series");
        report.reporting = Some(Reporting {
            error: Some("AccessDenied".into()),
            ..Reporting::default()
        });
        assert_eq!(
            plan_data(&all, &report).len(),
            2,
            "a check that could not read CloudWatch publishes no count"
        );
    }
}

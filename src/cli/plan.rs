//! `eks-reaper plan`: what a run would delete now, without deleting anything.
//!
//! It is a client-side dry run of the real run ([`crate::run::run`]: the same connection,
//! headroom read (it decides low-headroom mode), paginated lists and policy), with no
//! metrics published, collecting the objects the dry run would delete ([`Planned`]). So the
//! plan and a run cannot disagree about the policy: there is only one. Read-only: the
//! identity needs `list` on Jobs, Pods and Namespaces (their annotations), nothing else in
//! Kubernetes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Args;
use serde::Serialize;

use super::Output;
use super::table::{age, new_table, right_align};
use crate::config::{DryRun, MetricsSinkKind, Options};
use crate::prune::observe::Observer;
use crate::prune::pass::{Candidate, Kind};
use crate::report::{ClusterStatus, Report};

/// `eks-reaper plan` arguments.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Settings (flags or REAPER_* environment variables); `--dry-run` and the metrics
    /// settings are ignored: a plan never deletes and never publishes.
    #[command(flatten)]
    pub options: Options,
    /// Also list every object that would be deleted.
    #[arg(long)]
    pub objects: bool,
    /// Format: `table` (default on a terminal) or `json`.
    #[arg(long, value_enum)]
    pub output: Option<Output>,
    /// Reach the cluster through a kubeconfig context.
    #[command(flatten)]
    pub kube: super::KubeArgs,
}

/// One object a run would delete now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    /// `job` or `pod`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The policy's reason (`succeededPastTtl`...).
    pub reason: &'static str,
    /// Seconds since it finished.
    pub age_seconds: u64,
    /// A Fargate pod (its deletion frees a subnet IP).
    pub fargate: bool,
}

impl Planned {
    fn of(c: &Candidate) -> Self {
        Planned {
            kind: c.kind.as_str(),
            namespace: c.namespace.clone(),
            name: c.name.clone(),
            reason: c.reason.label(),
            age_seconds: c.reason.age().as_secs(),
            fargate: c.fargate,
        }
    }
}

/// Due objects of one namespace, kind and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// Namespace.
    pub namespace: String,
    /// `job` or `pod`.
    pub kind: &'static str,
    /// The policy's reason.
    pub reason: &'static str,
    /// How many.
    pub count: u64,
    /// Fargate pods among them.
    pub fargate: u64,
    /// Seconds since the oldest finished.
    pub oldest_age_seconds: u64,
    /// Seconds since the newest finished.
    pub newest_age_seconds: u64,
}

/// The plan of one cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlan {
    /// Cluster name.
    pub cluster: String,
    /// Region, when reached through EKS.
    pub region: Option<String>,
    /// `ok`, `failed` or `skipped`, as in the run's report.
    pub status: ClusterStatus,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Whether the lists went through every page (a plan cut short lists fewer objects).
    pub listing_complete: bool,
    /// Low-headroom mode would be on (shorter Fargate pod retention).
    pub low_headroom: bool,
    /// Jobs that would be deleted.
    pub jobs: u64,
    /// Pods that would be deleted, Fargate ones included.
    pub pods: u64,
    /// Fargate pods that would be deleted (each frees an IP).
    pub fargate_pods: u64,
    /// By namespace, kind and reason.
    pub groups: Vec<Group>,
    /// What was kept, by reason (Jobs and pods together).
    pub kept: BTreeMap<&'static str, u64>,
    /// Seconds until the soonest kept object becomes due.
    pub next_due_seconds: Option<u64>,
    /// Every object, with `--objects`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<Planned>>,
}

/// The plan of every cluster of the run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Per cluster, in the run's order.
    pub clusters: Vec<ClusterPlan>,
}

/// Collects what the dry run would delete, per cluster.
#[derive(Debug, Default)]
pub struct Collector {
    due: Mutex<BTreeMap<String, Vec<Planned>>>,
}

impl Observer for Collector {
    fn would_delete(&self, cluster: &str, candidate: &Candidate) {
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        due.entry(cluster.to_owned())
            .or_default()
            .push(Planned::of(candidate));
    }
}

impl Collector {
    /// The plan: the run's clusters with what was collected for each.
    pub fn into_plan(self, report: &Report, objects: bool) -> Plan {
        let mut due = self.due.into_inner().unwrap_or_else(|p| p.into_inner());
        let clusters = report
            .clusters
            .iter()
            .map(|c| {
                let mut list = due.remove(&c.cluster).unwrap_or_default();
                list.sort_by(|a, b| {
                    (&a.namespace, a.kind, &a.name).cmp(&(&b.namespace, b.kind, &b.name))
                });
                let count = |kind: Kind| list.iter().filter(|p| p.kind == kind.as_str()).count();
                ClusterPlan {
                    cluster: c.cluster.clone(),
                    region: c.region.clone(),
                    status: c.status,
                    error: c.error.clone(),
                    listing_complete: c.listing_complete,
                    low_headroom: c.low_headroom,
                    jobs: count(Kind::Job) as u64,
                    pods: count(Kind::Pod) as u64,
                    fargate_pods: list.iter().filter(|p| p.fargate).count() as u64,
                    groups: groups(&list),
                    kept: kept(c),
                    next_due_seconds: c.next_due_seconds,
                    objects: objects.then_some(list),
                }
            })
            .collect();
        Plan { clusters }
    }
}

/// Groups due objects by namespace, kind and reason, with counts and the age range.
pub fn groups(list: &[Planned]) -> Vec<Group> {
    let mut by: BTreeMap<(&str, &str, &str), Group> = BTreeMap::new();
    for p in list {
        let g = by
            .entry((p.namespace.as_str(), p.kind, p.reason))
            .or_insert_with(|| Group {
                namespace: p.namespace.clone(),
                kind: p.kind,
                reason: p.reason,
                count: 0,
                fargate: 0,
                oldest_age_seconds: p.age_seconds,
                newest_age_seconds: p.age_seconds,
            });
        g.count += 1;
        g.fargate += u64::from(p.fargate);
        g.oldest_age_seconds = g.oldest_age_seconds.max(p.age_seconds);
        g.newest_age_seconds = g.newest_age_seconds.min(p.age_seconds);
    }
    by.into_values().collect()
}

/// What a cluster kept, by reason, Jobs and pods together.
fn kept(c: &crate::report::ClusterReport) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for (reason, n) in c.jobs.kept_by_reason.iter().chain(&c.pods.kept_by_reason) {
        *out.entry(*reason).or_default() += n;
    }
    out
}

/// Runs the plan. Exit status as `run`: 0 ok, 1 a cluster could not be planned, 2 invalid
/// configuration.
pub async fn main(args: PlanArgs, bars: bool) -> ExitCode {
    let mut config = match super::resolve(&args.options, &args.kube, Some(DryRun::Client)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    config.metrics.sink = MetricsSinkKind::None;
    let collector = Collector::default();
    let report = super::execute(&config, &collector, bars).await;
    let plan = collector.into_plan(&report, args.objects);
    let output = super::output(args.output);
    match output {
        Output::Table => print!("{}", table(&plan)),
        Output::Json => super::print_json(&plan),
    }
    super::exit_code(report, output == Output::Table)
}

/// `eks-reaper plan` as tables: per cluster a summary line, the groups, and with
/// `--objects` every object.
fn table(plan: &Plan) -> String {
    let mut out = String::new();
    for c in &plan.clusters {
        let _ = writeln!(
            out,
            "{} ({}): {} job(s), {} pod(s) ({} Fargate) would be deleted{}{}",
            c.cluster,
            c.region.as_deref().unwrap_or("-"),
            c.jobs,
            c.pods,
            c.fargate_pods,
            if c.low_headroom {
                "; low-headroom mode on"
            } else {
                ""
            },
            if c.listing_complete {
                ""
            } else {
                "; listing cut short, more may be due"
            },
        );
        if let Some(e) = &c.error {
            let _ = writeln!(out, "  {}: {e}", c.status.as_str());
        }
        if !c.kept.is_empty() {
            let kept: Vec<String> = c.kept.iter().map(|(k, n)| format!("{k}={n}")).collect();
            let next = c.next_due_seconds.map_or(String::new(), |s| {
                format!("; the next becomes due in {}", age(s))
            });
            let _ = writeln!(out, "  kept: {}{next}", kept.join(" "));
        }
        if !c.groups.is_empty() {
            let mut t = new_table(&[
                "NAMESPACE",
                "KIND",
                "REASON",
                "COUNT",
                "FARGATE",
                "OLDEST",
                "NEWEST",
            ]);
            for g in &c.groups {
                t.add_row(vec![
                    g.namespace.clone(),
                    g.kind.to_owned(),
                    g.reason.to_owned(),
                    g.count.to_string(),
                    g.fargate.to_string(),
                    age(g.oldest_age_seconds),
                    age(g.newest_age_seconds),
                ]);
            }
            right_align(&mut t, &[3, 4, 5, 6]);
            let _ = writeln!(out, "{t}");
        }
        if let Some(objects) = &c.objects
            && !objects.is_empty()
        {
            let mut t = new_table(&["NAMESPACE", "KIND", "NAME", "REASON", "AGE", "FARGATE"]);
            for o in objects {
                t.add_row(vec![
                    o.namespace.clone(),
                    o.kind.to_owned(),
                    o.name.clone(),
                    o.reason.to_owned(),
                    age(o.age_seconds),
                    if o.fargate { "yes" } else { "" }.to_owned(),
                ]);
            }
            right_align(&mut t, &[4]);
            let _ = writeln!(out, "{t}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(ns: &str, kind: &'static str, reason: &'static str, age: u64) -> Planned {
        Planned {
            kind,
            namespace: ns.to_owned(),
            name: format!("{kind}-{age}"),
            reason,
            age_seconds: age,
            fargate: kind == "pod",
        }
    }

    #[test]
    fn groups_count_by_namespace_kind_and_reason_with_the_age_range() {
        let list = [
            planned("etl", "job", "succeededPastTtl", 1000),
            planned("etl", "job", "succeededPastTtl", 4000),
            planned("etl", "job", "failedPastTtl", 90_000),
            planned("etl", "pod", "fargatePodPastTtl", 960),
            planned("web", "job", "succeededPastTtl", 2000),
        ];
        let g = groups(&list);
        assert_eq!(g.len(), 4);
        let succeeded = g
            .iter()
            .find(|g| g.namespace == "etl" && g.reason == "succeededPastTtl")
            .expect("group");
        assert_eq!(
            (
                succeeded.count,
                succeeded.oldest_age_seconds,
                succeeded.newest_age_seconds
            ),
            (2, 4000, 1000)
        );
        let pods = g.iter().find(|g| g.kind == "pod").expect("pods");
        assert_eq!((pods.count, pods.fargate), (1, 1));
    }
}

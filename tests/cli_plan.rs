//! `eks-reaper plan` through the real binary on the testbed, as the reaper's identity: what
//! a run would delete now, grouped by namespace and reason, and nothing deleted.
//!
//! Every test works in its own namespace (`--namespaces`).

mod common;

use common::cli;
use common::{End, Testbed, mins};
use serde_json::{Value, json};

fn group<'a>(cluster: &'a Value, kind: &str, reason: &str) -> &'a Value {
    cluster["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["kind"] == kind && g["reason"] == reason)
        .unwrap_or_else(|| panic!("no {kind}/{reason} group in {cluster:#}"))
}

#[tokio::test]
async fn plan_groups_what_a_run_would_delete_and_deletes_nothing() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("plan-groups").await;
    // GIVEN two succeeded Jobs past their 15 min retention, a failed one inside its 24 h,
    // an active one, and a bare pod past its 1 h
    fx.finished_job("done-30m", End::Succeeded, mins(30), json!({}))
        .await;
    fx.finished_job("done-90m", End::Succeeded, mins(90), json!({}))
        .await;
    fx.finished_job("failed-2h", End::Failed, mins(120), json!({}))
        .await;
    fx.active_job("running").await;
    fx.finished_pod("bare-2h", None, End::Failed, mins(120))
        .await;

    // WHEN the plan is asked for, as JSON
    let out = cli::reaper(
        &tb,
        &[
            "plan",
            "--cluster",
            &tb.env["TESTBED_CLUSTER"],
            "--namespaces",
            &fx.namespace,
            "--output",
            "json",
        ],
        &[],
    )
    .await;

    // THEN it lists the two Jobs and the pod, with their age range, and deleted nothing
    assert!(out.status.success(), "{}", cli::shown(&out));
    let plan = cli::json(&out);
    let c = &plan["clusters"][0];
    assert_eq!(c["cluster"], tb.env["TESTBED_CLUSTER"].as_str());
    assert_eq!(c["status"], "ok");
    assert_eq!(
        (c["jobs"].as_u64(), c["pods"].as_u64()),
        (Some(2), Some(1)),
        "{c:#}"
    );
    let jobs = group(c, "job", "succeededPastTtl");
    assert_eq!(jobs["namespace"], fx.namespace.as_str());
    assert_eq!(jobs["count"], 2);
    let oldest = jobs["oldestAgeSeconds"].as_u64().expect("oldest");
    let newest = jobs["newestAgeSeconds"].as_u64().expect("newest");
    assert!((90 * 60..100 * 60).contains(&oldest), "oldest {oldest}");
    assert!((30 * 60..40 * 60).contains(&newest), "newest {newest}");
    assert_eq!(group(c, "pod", "barePodPastTtl")["count"], 1);
    assert!(c.get("objects").is_none(), "objects only with --objects");
    for name in ["done-30m", "done-90m", "failed-2h", "running"] {
        assert!(
            fx.job_uid(name).await.is_some(),
            "{name} was deleted by a plan"
        );
    }
    assert!(
        fx.pod_exists("bare-2h").await,
        "the pod was deleted by a plan"
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn plan_objects_lists_every_due_object_in_a_table_or_json() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("plan-objects").await;
    fx.finished_job("old-etl", End::Succeeded, mins(45), json!({}))
        .await;
    fx.finished_job(
        "kept",
        End::Succeeded,
        mins(45),
        json!({"metadata": {"annotations": {"eks-reaper/keep": "true"}}}),
    )
    .await;
    let cluster = tb.env["TESTBED_CLUSTER"].clone();
    let base = [
        "plan",
        "--cluster",
        &cluster,
        "--namespaces",
        &fx.namespace,
        "--objects",
    ];

    let json_out = cli::reaper(&tb, &[&base[..], &["--output", "json"]].concat(), &[]).await;
    assert!(json_out.status.success(), "{}", cli::shown(&json_out));
    let objects = cli::json(&json_out)["clusters"][0]["objects"].clone();
    let names: Vec<&str> = objects
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| o["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["old-etl"]);
    assert_eq!(objects[0]["reason"], "succeededPastTtl");

    let table = cli::reaper(&tb, &[&base[..], &["--output", "table"]].concat(), &[]).await;
    assert!(table.status.success(), "{}", cli::shown(&table));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("1 job(s), 0 pod(s) (0 Fargate) would be deleted"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("old-etl"))
        .unwrap_or_else(|| panic!("no row for old-etl in\n{text}"));
    assert!(
        row.contains(&fx.namespace) && row.contains("succeededPastTtl"),
        "{row}"
    );
    // The opted-out Job is no object row: it is counted on the kept line, by reason.
    assert!(text.contains("\n  kept: optedOut=1\n"), "{text}");
    assert_eq!(text.matches("kept").count(), 1, "{text}");
    assert!(fx.job_uid("old-etl").await.is_some());
    fx.cleanup().await;
}

#[tokio::test]
async fn plan_for_an_unknown_cluster_exits_1_and_a_bad_setting_exits_2() {
    let tb = Testbed::connect().await;
    let unknown = cli::reaper(
        &tb,
        &["plan", "--cluster", "no-such-cluster", "--output", "json"],
        &[],
    )
    .await;
    assert_eq!(unknown.status.code(), Some(1), "{}", cli::shown(&unknown));
    assert_eq!(cli::json(&unknown)["clusters"][0]["status"], "failed");
    let bad = cli::reaper(&tb, &["plan", "--cluster", "etl", "--page-size", "0"], &[]).await;
    assert_eq!(bad.status.code(), Some(2), "{}", cli::shown(&bad));
}

//! Objects stuck terminating, through the real binary on the testbed: a Job and a pod that
//! a finalizer nobody removes holds after their deletion are reported as stuck (counts,
//! namespace, finalizer, a log line naming each) once `--stuck-after` has passed, as only
//! being deleted before, and never touched.
//!
//! The test works in its own namespace (`--namespaces`). Its objects are released (the
//! finalizer removed) before anything is asserted, so a failing assertion never leaves a
//! namespace stuck behind.

mod common;

use std::time::Duration;

use common::{End, Testbed, cli, eventually, mins};
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

/// A finalizer no controller of the testbed knows: only the test removes it.
const HOLD: &str = "eks-reaper.test/hold";

#[tokio::test]
async fn a_job_and_a_pod_held_by_a_finalizer_are_reported_stuck_and_left_alone() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("stuck-terminating").await;
    // GIVEN a failed Job and a finished bare pod, each carrying a finalizer nobody removes,
    // deleted (the Job with Background propagation, the pod at once)
    fx.finished_job(
        "held-job",
        End::Failed,
        mins(5),
        json!({"metadata": {"finalizers": [HOLD]}}),
    )
    .await;
    fx.finished_pod("held-pod", None, End::Succeeded, mins(5))
        .await;
    fx.pods()
        .patch(
            "held-pod",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": [HOLD]}})),
        )
        .await
        .expect("pod finalizer");
    fx.jobs()
        .delete("held-job", &DeleteParams::background())
        .await
        .expect("delete job");
    fx.pods()
        .delete("held-pod", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");

    // WHEN the CLI runs with the default REAPER_STUCK_AFTER (10m), then, after 2 s more,
    // with --stuck-after 1s
    let run = |stuck_after: Option<&'static str>| {
        let mut args = vec![
            "run",
            "--cluster",
            tb.env["TESTBED_CLUSTER"].as_str(),
            "--namespaces",
            fx.namespace.as_str(),
            "--metrics-sink",
            "none",
            "--output",
            "json",
        ];
        if let Some(after) = stuck_after {
            args.extend(["--stuck-after", after]);
        }
        let tb = &tb;
        async move { cli::reaper(tb, &args, &[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).await }
    };
    let young = run(None).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let old = run(Some("1s")).await;
    let still_there = (
        fx.job_uid("held-job").await.is_some(),
        fx.pod_exists("held-pod").await,
    );

    // (released before any assertion: the namespace can then go)
    let namespace = fx.namespace.clone();
    release(&fx).await;
    fx.cleanup().await;

    // THEN within 10 minutes they are only being deleted
    assert!(young.status.success(), "{}", cli::shown(&young));
    let c = cli::json(&young)["clusters"][0].clone();
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["jobs"]["keptByReason"]["beingDeleted"], 1, "{c:#}");
    assert_eq!(c["pods"]["keptByReason"]["beingDeleted"], 1, "{c:#}");
    assert_eq!(
        c["stuck"],
        json!({"jobs": 0, "pods": 0, "fargatePods": 0, "oldestSeconds": 0,
               "byNamespace": {}, "byFinalizer": {}}),
        "{c:#}"
    );

    // AND past --stuck-after both are stuck, by namespace and by the finalizer holding them
    assert!(old.status.success(), "{}", cli::shown(&old));
    let c = cli::json(&old)["clusters"][0].clone();
    assert_eq!(c["jobs"]["keptByReason"]["stuckTerminating"], 1, "{c:#}");
    assert_eq!(c["pods"]["keptByReason"]["stuckTerminating"], 1, "{c:#}");
    let stuck = &c["stuck"];
    assert_eq!(
        (&stuck["jobs"], &stuck["pods"], &stuck["fargatePods"]),
        (&json!(1), &json!(1), &json!(0)),
        "{c:#}"
    );
    assert_eq!(
        stuck["byNamespace"],
        json!({namespace.as_str(): 2}),
        "{c:#}"
    );
    assert_eq!(stuck["byFinalizer"], json!({HOLD: 2}), "{c:#}");
    let oldest = stuck["oldestSeconds"].as_u64().expect("oldestSeconds");
    assert!((2..120).contains(&oldest), "oldest {oldest}: {c:#}");

    // AND a log line names each of them, with what holds it
    let mut named: Vec<(String, String, String)> = logs(&old)
        .iter()
        .filter(|l| l["fields"]["message"] == "stuck terminating")
        .map(|l| {
            let field = |k: &str| l["fields"][k].as_str().unwrap_or_default().to_owned();
            (field("kind"), field("name"), field("finalizers"))
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        [
            ("job".to_owned(), "held-job".to_owned(), HOLD.to_owned()),
            ("pod".to_owned(), "held-pod".to_owned(), HOLD.to_owned()),
        ],
        "{}",
        cli::shown(&old)
    );

    // AND nothing was deleted or changed: both were still there, finalizer and all
    assert_eq!(c["jobs"]["deleted"], 0, "{c:#}");
    assert_eq!(c["pods"]["deleted"], 0, "{c:#}");
    assert_eq!(still_there, (true, true));
}

/// Removes the test's finalizer from whatever of its objects remain, and waits until they
/// are gone.
async fn release(fx: &common::Fixtures) {
    let drop_finalizers = Patch::Merge(json!({"metadata": {"finalizers": null}}));
    let params = PatchParams::default();
    let _ = fx.jobs().patch("held-job", &params, &drop_finalizers).await;
    let _ = fx.pods().patch("held-pod", &params, &drop_finalizers).await;
    eventually(
        Duration::from_secs(60),
        "the released Job and pod to be gone",
        || async { fx.job_uid("held-job").await.is_none() && !fx.pod_exists("held-pod").await },
    )
    .await;
}

/// The JSON log lines of a CLI run (stderr).
fn logs(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

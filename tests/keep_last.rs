//! Each owner's last failed Job kept past its retention, on the testbed through the real
//! binary: a CronJob's, and a workflow task's named by a label; the kept Job's finished
//! Fargate pod still goes, its other pod stays with it.

mod common;

use std::time::Duration;

use common::{End, Testbed, cli};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{Api, PostParams};
use serde_json::json;

const WEEK: Duration = Duration::from_secs(7 * 86_400);

fn owned_by(kind: &str, api_version: &str, name: &str, uid: &str) -> serde_json::Value {
    json!({"metadata": {"ownerReferences": [{
        "apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
        "controller": true, "blockOwnerDeletion": true
    }]}})
}

#[tokio::test]
async fn the_last_failed_job_of_each_owner_stays_and_its_fargate_pod_goes() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("keep-last").await;
    // GIVEN a weekly CronJob (suspended: nothing runs it) with three failed runs, three,
    // two and one week old, each past the 24h failed-Job retention
    let cronjob: CronJob = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "weekly-report", "namespace": fx.namespace},
        "spec": {"schedule": "0 3 * * 1", "suspend": true, "jobTemplate": {"spec": {"template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "task", "image": "busybox:1.36"}]}
        }}}}
    }))
    .expect("cronjob");
    let cronjob = Api::<CronJob>::namespaced(tb.admin.clone(), &fx.namespace)
        .create(&PostParams::default(), &cronjob)
        .await
        .expect("create cronjob");
    let cron_uid = cronjob.metadata.uid.clone().expect("uid");
    let by_cron = owned_by("CronJob", "batch/v1", "weekly-report", &cron_uid);
    let mut runs: Vec<Job> = Vec::new();
    for (name, weeks) in [
        ("weekly-report-1", 3),
        ("weekly-report-2", 2),
        ("weekly-report-3", 1),
    ] {
        let job = fx
            .finished_job(name, End::Failed, WEEK * weeks, by_cron.clone())
            .await;
        runs.push(job);
    }
    // AND the newest run's two pods: one on Fargate, one on an EC2 node
    let newest = &runs[2];
    let by_newest = owned_by(
        "Job",
        "batch/v1",
        "weekly-report-3",
        newest.metadata.uid.as_deref().expect("uid"),
    );
    let mut fargate_pod = by_newest.clone();
    fargate_pod["metadata"]["labels"] = json!({"eks.amazonaws.com/fargate-profile": "etl"});
    fx.finished_pod_shaped("weekly-report-3-fargate", fargate_pod, End::Failed, WEEK)
        .await;
    fx.finished_pod("weekly-report-3-ec2", Some(newest), End::Failed, WEEK)
        .await;
    // AND two failed runs of one workflow task, named by a label, and one of another task
    let task = |t: &str| json!({"metadata": {"labels": {"workflows.example.com/task": t}}});
    fx.finished_job("load-a", End::Failed, WEEK * 2, task("load"))
        .await;
    fx.finished_job("load-b", End::Failed, WEEK, task("load"))
        .await;
    fx.finished_job("clean-a", End::Failed, WEEK, task("clean"))
        .await;

    // WHEN a run prunes with the default count (1) and the task label
    let out = cli::reaper(
        &tb,
        &[
            "run",
            "--cluster",
            &tb.env["TESTBED_CLUSTER"],
            "--namespaces",
            &fx.namespace,
            "--keep-last-label",
            "workflows.example.com/task",
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", cli::shown(&out));
    let c = cli::json(&out)["clusters"][0].clone();

    // AND the report says what the run cost the API server
    assert!(c["requests"].as_u64().expect("requests") >= 4, "{c}");
    assert!(c["bytesReceived"].as_u64().expect("bytes") > 1_000, "{c}");

    // THEN the older runs go and each owner's newest failure stays
    assert_eq!(c["jobs"]["deletedByReason"]["failedPastTtl"], 3, "{c}");
    assert_eq!(c["jobs"]["keptByReason"]["lastOfOwner"], 3, "{c}");
    for (name, kept) in [
        ("weekly-report-1", false),
        ("weekly-report-2", false),
        ("weekly-report-3", true),
        ("load-a", false),
        ("load-b", true),
        ("clean-a", true),
    ] {
        let exists = fx.job_uid(name).await.is_some();
        assert_eq!(exists, kept, "{name}: {c}");
    }
    // AND the kept Job's Fargate pod gives its IP back; its other pod stays with it
    assert_eq!(c["pods"]["deletedByReason"]["fargatePodPastTtl"], 1, "{c}");
    assert_eq!(c["pods"]["keptByReason"]["ownedByJob"], 1, "{c}");
    assert!(!fx.pod_exists("weekly-report-3-fargate").await);
    assert!(fx.pod_exists("weekly-report-3-ec2").await);
    fx.cleanup().await;
}

//! Integration tests through the Lambda entrypoint: the real binary behind AWS's Runtime
//! Interface Emulator, against the testbed (real kube-apiserver, controllers and RBAC; moto;
//! the EKS token authenticator), with the least-privilege identity.
//!
//! Every test works in its own namespace (`REAPER_NAMESPACES`), so tests can run in
//! parallel without pruning each other's fixtures.

mod common;

use std::time::Duration;

use common::{End, Lambda, Testbed, eventually, mins};
use serde_json::json;

#[tokio::test]
async fn due_jobs_are_deleted_their_pods_collected_and_kept_objects_remain() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("due-and-kept").await;
    // GIVEN one of each case the default policy decides on
    let due = fx
        .finished_job("succeeded-20m", End::Succeeded, mins(20), json!({}))
        .await;
    fx.finished_pod("succeeded-20m-pod", Some(&due), End::Succeeded, mins(20))
        .await;
    let failed = fx
        .finished_job("failed-20m", End::Failed, mins(20), json!({}))
        .await;
    fx.finished_pod("failed-20m-pod", Some(&failed), End::Failed, mins(20))
        .await;
    fx.finished_job("succeeded-5m", End::Succeeded, mins(5), json!({}))
        .await;
    fx.finished_job(
        "opted-out",
        End::Succeeded,
        mins(120),
        json!({"metadata": {"annotations": {"eks-reaper/keep": "true"}}}),
    )
    .await;
    fx.finished_job(
        "native-ttl",
        End::Succeeded,
        mins(120),
        json!({"spec": {"ttlSecondsAfterFinished": 86400}}),
    )
    .await;
    fx.active_job("active").await;
    fx.finished_pod("bare-2h", None, End::Succeeded, mins(120))
        .await;
    fx.finished_pod("bare-10m", None, End::Failed, mins(10))
        .await;
    let due_pod_uid = fx
        .pods()
        .get("succeeded-20m-pod")
        .await
        .expect("pod")
        .metadata
        .uid;

    // WHEN the Lambda runs once with the default policy
    let lambda = Lambda::start(&tb.lambda_env(&[("REAPER_NAMESPACES", &fx.namespace)])).await;
    let inv = lambda.invoke(&json!({})).await;
    lambda.stop().await;

    // THEN the due Job and bare pod are gone, everything else stays
    let c = inv.cluster();
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["jobs"]["seen"], 6, "{c}");
    assert_eq!(c["jobs"]["deleted"], 1, "{c}");
    assert_eq!(c["jobs"]["deletedByReason"]["succeededPastTtl"], 1, "{c}");
    assert_eq!(c["jobs"]["keptByReason"]["withinRetention"], 2, "{c}");
    assert_eq!(c["jobs"]["keptByReason"]["optedOut"], 1, "{c}");
    assert_eq!(c["jobs"]["keptByReason"]["nativeTtl"], 1, "{c}");
    assert_eq!(c["jobs"]["keptByReason"]["active"], 1, "{c}");
    assert_eq!(c["pods"]["deletedByReason"]["barePodPastTtl"], 1, "{c}");
    assert_eq!(c["dryRun"], false);
    assert!(c["requests"].as_u64().unwrap_or(0) >= 4, "{c}");
    let metrics = &inv.report()["metrics"];
    assert_eq!(metrics["sink"], "cloudwatch", "{metrics}");
    assert_eq!(metrics["error"], serde_json::Value::Null, "{metrics}");
    assert!(metrics["metrics"].as_u64().unwrap_or(0) > 0, "{metrics}");

    assert_eq!(fx.job_uid("succeeded-20m").await, None);
    assert!(!fx.pod_exists("bare-2h").await);
    for kept in [
        "failed-20m",
        "succeeded-5m",
        "opted-out",
        "native-ttl",
        "active",
    ] {
        assert!(fx.job_uid(kept).await.is_some(), "{kept} was deleted");
    }
    assert!(fx.pod_exists("bare-10m").await);
    assert!(fx.pod_exists("failed-20m-pod").await);
    // The due Job's pod goes through the real garbage collector (Background propagation).
    eventually(
        Duration::from_secs(60),
        "the deleted Job's pod to be collected",
        || async {
            match fx
                .pods()
                .get_opt("succeeded-20m-pod")
                .await
                .expect("get pod")
            {
                None => true,
                Some(p) => p.metadata.uid != due_pod_uid,
            }
        },
    )
    .await;
    fx.cleanup().await;
}

#[tokio::test]
async fn dry_run_from_the_event_deletes_nothing_but_reports_what_would_go() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("dry-run").await;
    fx.finished_job("succeeded-1h", End::Succeeded, mins(60), json!({}))
        .await;
    fx.finished_job("failed-2d", End::Failed, mins(48 * 60), json!({}))
        .await;
    fx.finished_pod("bare-2h", None, End::Succeeded, mins(120))
        .await;

    let lambda = Lambda::start(&tb.lambda_env(&[("REAPER_NAMESPACES", &fx.namespace)])).await;
    let client = lambda.invoke(&json!({"dryRun": true})).await;
    let server = lambda.invoke(&json!({"dryRun": "server"})).await;
    lambda.stop().await;

    for (inv, mode) in [(&client, "client"), (&server, "server")] {
        assert_eq!(inv.report()["dryRun"], mode);
        let c = inv.cluster();
        assert_eq!(c["status"], "ok", "{c}");
        assert_eq!(c["dryRun"], true);
        assert_eq!(c["jobs"]["deleted"], 2, "{mode}: {c}");
        assert_eq!(c["pods"]["deleted"], 1, "{mode}: {c}");
        assert_eq!(c["errors"], json!({}), "{mode}: {c}");
    }
    // The client dry run sends no DELETE; the server one sends exactly the 3 due ones.
    let requests = |inv: &common::Invocation| inv.cluster()["requests"].as_u64().unwrap_or(0);
    assert_eq!(requests(&server), requests(&client) + 3);
    for job in ["succeeded-1h", "failed-2d"] {
        assert!(
            fx.job_uid(job).await.is_some(),
            "{job} deleted by a dry run"
        );
    }
    assert!(fx.pod_exists("bare-2h").await);
    fx.cleanup().await;
}

#[tokio::test]
async fn a_recreated_job_with_the_same_name_survives() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("recreated").await;
    // GIVEN many due Jobs, deleted one at a time, so the last one is deleted well after the
    // list that found it
    let n = 200;
    for i in 0..n {
        fx.finished_job(&format!("task-{i:03}"), End::Succeeded, mins(30), json!({}))
            .await;
    }
    let last = format!("task-{:03}", n - 1);
    let old_uid = fx.job_uid(&last).await.expect("last job");

    let lambda = Lambda::start(&tb.lambda_env(&[
        ("REAPER_NAMESPACES", &fx.namespace),
        ("REAPER_CONCURRENCY", "1"),
    ]))
    .await;
    let event = json!({});
    // WHEN, as soon as the reaper has started deleting, the workflow engine re-runs the
    // last task under the same name
    let recreate = async {
        eventually(Duration::from_secs(60), "the first deletion", || async {
            fx.job_uid("task-000").await.is_none()
        })
        .await;
        fx.jobs()
            .delete(&last, &kube::api::DeleteParams::background())
            .await
            .expect("engine deletes the old run");
        fx.active_job(&last).await.metadata.uid.expect("uid")
    };
    let (inv, new_uid) = tokio::join!(lambda.invoke(&event), recreate);
    lambda.stop().await;

    // THEN the new Job is untouched: the reaper's uid precondition refused the stale delete
    assert_ne!(new_uid, old_uid);
    assert_eq!(fx.job_uid(&last).await.as_deref(), Some(new_uid.as_str()));
    let c = inv.cluster();
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(
        c["conflicts"], 1,
        "the stale delete must have met the new Job: {c}"
    );
    assert_eq!(c["jobs"]["deleted"], n - 1, "{c}");
    fx.cleanup().await;
}

#[tokio::test]
async fn identity_without_rbac_fails_the_invocation_with_a_clear_error() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("norbac").await;
    fx.finished_job("succeeded-1h", End::Succeeded, mins(60), json!({}))
        .await;
    let mut env = tb.lambda_env(&[("REAPER_NAMESPACES", &fx.namespace)]);
    common::set(
        &mut env,
        "AWS_ACCESS_KEY_ID",
        &tb.env["TESTBED_NORBAC_ACCESS_KEY_ID"],
    );
    common::set(
        &mut env,
        "AWS_SECRET_ACCESS_KEY",
        &tb.env["TESTBED_NORBAC_SECRET_ACCESS_KEY"],
    );

    let lambda = Lambda::start(&env).await;
    let inv = lambda.invoke(&json!({})).await;
    lambda.stop().await;

    let (error_type, message) = inv.error();
    assert_eq!(error_type, "ClusterFailed.Forbidden", "{message}");
    assert!(message.contains("etl"), "{message}");
    assert!(message.contains("forbidden"), "{message}");
    assert!(
        message.contains("RBAC forbids list on jobs.batch"),
        "{message}"
    );
    assert!(
        message.contains("kubectl auth can-i list jobs.batch"),
        "{message}"
    );
    assert!(fx.job_uid("succeeded-1h").await.is_some());
    fx.cleanup().await;
}

#[tokio::test]
async fn an_event_with_an_unknown_field_fails_before_anything_is_deleted() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("bad-event").await;
    fx.finished_job("succeeded-1h", End::Succeeded, mins(60), json!({}))
        .await;

    let lambda = Lambda::start(&tb.lambda_env(&[("REAPER_NAMESPACES", &fx.namespace)])).await;
    let inv = lambda
        .invoke(&json!({"clusters": ["etl"], "dryrun": false}))
        .await;
    lambda.stop().await;

    let (error_type, message) = inv.error();
    assert_eq!(error_type, "ConfigError");
    assert!(message.contains("event.dryrun"), "{message}");
    assert!(fx.job_uid("succeeded-1h").await.is_some());
    fx.cleanup().await;
}

#[tokio::test]
async fn classic_scheduled_event_runs_with_the_environment_configuration() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("classic-event").await;
    fx.finished_job("succeeded-1h", End::Succeeded, mins(60), json!({}))
        .await;

    let lambda = Lambda::start(&tb.lambda_env(&[("REAPER_NAMESPACES", &fx.namespace)])).await;
    let inv = lambda
        .invoke(&json!({
            "version": "0", "id": "5e1b6e2c-0000-4000-8000-000000000000",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-28T22:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/eks-reaper"], "detail": {}
        }))
        .await;
    lambda.stop().await;

    assert_eq!(inv.cluster()["jobs"]["deleted"], 1, "{}", inv.body);
    assert_eq!(fx.job_uid("succeeded-1h").await, None);
    fx.cleanup().await;
}

#[tokio::test]
async fn a_tagged_cluster_is_discovered_and_pruned_without_being_named() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("discovered").await;
    fx.finished_job("succeeded-1h", End::Succeeded, mins(60), json!({}))
        .await;
    // GIVEN the testbed cluster carries a tag of this test's own
    let eks = aws_sdk_eks::Client::new(&tb.aws("AWS_ENDPOINT_URL").await);
    let cluster = &tb.env["TESTBED_CLUSTER"];
    let arn = eks
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .expect("DescribeCluster")
        .cluster
        .and_then(|c| c.arn)
        .expect("cluster ARN");
    let key = format!("eks-reaper-it-{}", fx.run);
    eks.tag_resource()
        .resource_arn(&arn)
        .tags(&key, "on")
        .send()
        .await
        .expect("TagResource");

    // WHEN the function runs with no cluster named, only the tag
    let lambda = Lambda::start(&tb.lambda_env(&[
        ("REAPER_CLUSTERS", ""),
        ("REAPER_CLUSTER_TAG", &format!("{key}=on")),
        ("REAPER_NAMESPACES", &fx.namespace),
    ]))
    .await;
    let inv = lambda.invoke(&json!({})).await;
    lambda.stop().await;
    let _ = eks
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys(&key)
        .send()
        .await;

    // THEN the cluster was found in the default region, pruned, and marked discovered
    let report = inv.report();
    let region = &tb.env["AWS_REGION"];
    assert_eq!(
        report["discovery"]["found"],
        json!([format!("{cluster}@{region}")]),
        "{report}"
    );
    assert_eq!(report["discovery"]["errors"], json!([]), "{report}");
    assert_eq!(report["discovery"]["denied"], json!([]), "{report}");
    let c = inv.cluster();
    assert_eq!(
        (c["cluster"].as_str(), c["discovered"].as_bool()),
        (Some(cluster.as_str()), Some(true))
    );
    assert_eq!(c["jobs"]["deleted"], 1, "{c}");
    assert_eq!(fx.job_uid("succeeded-1h").await, None);
    fx.cleanup().await;
}

//! Real API Priority and Fairness 429s: the reaper's user is put in a priority level with
//! no seats of its own (one request at a time, the rest rejected with `Retry-After`), and
//! the run must still end with everything due deleted, throttling counted, no errors; and
//! a throttled run whose deletions hang past its deadline publishes the counters that
//! `REAPER_METRICS_DETAIL=essential` leaves out of a healthy run.
//!
//! Its own test binary: the throttle applies to the reaper identity cluster-wide, so the
//! tests take turns ([`SERIAL`]).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use common::{End, Lambda, Testbed, eventually, mins};
use eks_reaper::metrics::detail::SENT_WHEN_NON_ZERO;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

/// One test at a time: the throttle is on the reaper identity, cluster-wide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn apf(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("flowcontrol.apiserver.k8s.io", "v1", kind),
        plural,
    )
}

async fn throttle_user(client: &kube::Client, user: &str, name: &str) {
    let plc = apf("PriorityLevelConfiguration", "prioritylevelconfigurations");
    let fs = apf("FlowSchema", "flowschemas");
    let level: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name},
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 0, "lendablePercent": 0, "borrowingLimitPercent": 0,
            "limitResponse": {"type": "Reject"}}}
    }))
    .expect("plc");
    let schema: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {
            "priorityLevelConfiguration": {"name": name},
            "matchingPrecedence": 500,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [{"kind": "User", "user": {"name": user}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                   "clusterScope": true, "namespaces": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
            }]
        }
    }))
    .expect("flow schema");
    Api::<DynamicObject>::all_with(client.clone(), &plc)
        .create(&PostParams::default(), &level)
        .await
        .expect("create priority level");
    let schemas = Api::<DynamicObject>::all_with(client.clone(), &fs);
    schemas
        .create(&PostParams::default(), &schema)
        .await
        .expect("create flow schema");
    // In force once the APF config controller has taken it in (Dangling=False).
    eventually(
        Duration::from_secs(30),
        "the FlowSchema to be taken in",
        || async {
            let s = schemas.get(name).await.expect("flow schema");
            s.data["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Dangling" && c["status"] == "False")
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn unthrottle(client: &kube::Client, name: &str) {
    let _ = Api::<DynamicObject>::all_with(client.clone(), &apf("FlowSchema", "flowschemas"))
        .delete(name, &DeleteParams::default())
        .await;
    let _ = Api::<DynamicObject>::all_with(
        client.clone(),
        &apf("PriorityLevelConfiguration", "prioritylevelconfigurations"),
    )
    .delete(name, &DeleteParams::default())
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_run_still_deletes_everything_due() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let fx = tb.namespace("throttled").await;
    // Enough for the adaptive limit to reach 8 in flight (8 answers at 1, 8 at 2, 8 at 4):
    // well over the level's seat or two.
    let n = 40;
    for i in 0..n {
        fx.finished_job(&format!("due-{i:02}"), End::Succeeded, mins(30), json!({}))
            .await;
    }
    let name = format!("eks-reaper-it-throttle-{}", fx.run);
    let user = tb.env["TESTBED_REAPER_USERNAME"].clone();
    throttle_user(&tb.admin, &user, &name).await;

    // The body runs in its own task so the throttle is removed even when it panics.
    let env = tb.lambda_env(&[
        ("REAPER_NAMESPACES", &fx.namespace),
        ("REAPER_CONCURRENCY", "8"),
    ]);
    let body = tokio::spawn(async move {
        let lambda = Lambda::start(&env).await;
        let inv = lambda.invoke(&json!({})).await;
        lambda.stop().await;
        inv
    });
    let result = body.await;
    unthrottle(&tb.admin, &name).await;
    let inv = result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    let c = inv.cluster();
    assert_eq!(c["status"], "ok", "{c}");
    assert!(
        c["throttled"].as_u64().unwrap_or(0) > 0,
        "no 429 was seen: {c}"
    );
    assert_eq!(c["jobs"]["deleted"], n, "{c}");
    assert_eq!(c["errors"], json!({}), "{c}");
    assert_eq!(c["backlog"], 0, "{c}");
    for i in 0..n {
        assert_eq!(fx.job_uid(&format!("due-{i:02}")).await, None);
    }
    fx.cleanup().await;
}

fn webhooks() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
        ),
        "validatingwebhookconfigurations",
    )
}

/// A validating webhook on DELETE of the Jobs in `namespace` named `target` or later (a CEL
/// match condition on the name) whose endpoint never answers: a loopback listener that nobody
/// accepts from, so the API server's TLS handshake waits (up to its 10 s handshake timeout)
/// while the DELETE holds its APF seat. Returns the listener, which must outlive the run.
/// In force once the API server has loaded it: an admin's dry-run DELETE of `target` then
/// gets no answer within a second.
async fn hang_job_deletions(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    target: &str,
) -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("address").port();
    let config: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "hang.eks-reaper.test",
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/hang")},
            "rules": [{"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["DELETE"],
                       "resources": ["jobs"], "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "matchConditions": [{"name": "target",
                                 "expression": format!("oldObject.metadata.name >= '{target}'")}],
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 30
        }]
    }))
    .expect("webhook configuration");
    Api::<DynamicObject>::all_with(client.clone(), &webhooks())
        .create(&PostParams::default(), &config)
        .await
        .expect("create webhook configuration");
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let dry_run = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    eventually(
        Duration::from_secs(30),
        "the hanging webhook to be in force",
        || async {
            tokio::time::timeout(Duration::from_secs(1), jobs.delete(target, &dry_run))
                .await
                .is_err()
        },
    )
    .await;
    listener
}

async fn remove_webhook(client: &kube::Client, name: &str) {
    let _ = Api::<DynamicObject>::all_with(client.clone(), &webhooks())
        .delete(name, &DeleteParams::default())
        .await;
}

/// The sum of every datum of `name` for `cluster` in `region` (the function's own account)
/// in `namespace` over the last 15 minutes (GetMetricStatistics), or `None` when nothing was published.
async fn published_sum(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    (cluster, region): (&str, &str),
    name: &str,
) -> Option<f64> {
    let now = std::time::SystemTime::now();
    let out = cw
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(name)
        .set_dimensions(Some(
            [
                ("ClusterName", cluster),
                ("Region", region),
                ("Account", "self"),
            ]
            .map(|(n, v)| Dimension::builder().name(n).value(v).build())
            .to_vec(),
        ))
        .start_time(DateTime::from(now - Duration::from_secs(900)))
        .end_time(DateTime::from(now + Duration::from_secs(300)))
        .period(60)
        .statistics(Statistic::Sum)
        .send()
        .await
        .expect("GetMetricStatistics through the bridge");
    let points = out.datapoints();
    (!points.is_empty()).then(|| points.iter().filter_map(|p| p.sum()).sum())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unhealthy_run_publishes_backlog_delete_errors_and_throttles_in_essential() {
    let _serial = SERIAL.lock().await;
    let tb = Testbed::connect().await;
    let fx = tb.namespace("unhealthy").await;

    // GIVEN 24 due Jobs, of which due-16 to due-23 hang on DELETE in a validating webhook
    // that never answers, and the reaper's user throttled to a seat or two
    let n = 24;
    for i in 0..n {
        fx.finished_job(&format!("due-{i:02}"), End::Succeeded, mins(30), json!({}))
            .await;
    }
    let name = format!("eks-reaper-it-hang-{}", fx.run);
    let listener = hang_job_deletions(&tb.admin, &fx.namespace, &name, "due-16").await;
    let user = tb.env["TESTBED_REAPER_USERNAME"].clone();
    throttle_user(&tb.admin, &user, &name).await;

    // WHEN the CLI runs with essential metrics and 6 s before its margin: the adaptive
    // limit deletes due-00..07 one at a time, then two at a time (a 429 halves it), then
    // more; the hanging Jobs hold the user's seats until the deadline cuts them (delete
    // errors, timed out: the cluster fails), the others get 429 until no retry fits, and
    // what was never sent is backlog
    let metrics_namespace = format!("EKSReaperIT/unhealthy/{}", fx.run);
    let settings = [
        ("REAPER_CLUSTERS", tb.env["TESTBED_CLUSTER"].as_str()),
        ("REAPER_NAMESPACES", fx.namespace.as_str()),
        ("REAPER_CONCURRENCY", "4"),
        ("REAPER_MAX_RUN_TIME", "8s"),
        ("REAPER_DEADLINE_MARGIN", "2s"),
        ("REAPER_METRICS_SINK", "cloudwatch"),
        ("REAPER_METRICS_DETAIL", "essential"),
        ("REAPER_METRICS_NAMESPACE", metrics_namespace.as_str()),
    ];
    let out = common::cli::reaper(&tb, &["run", "--output", "json"], &settings).await;
    unthrottle(&tb.admin, &name).await;
    remove_webhook(&tb.admin, &name).await;
    drop(listener);
    let report = common::cli::json(&out);

    // THEN the report counts all three ...
    let c = &report["clusters"][0];
    let errors: u64 = c["errors"]
        .as_object()
        .map_or(0, |e| e.values().filter_map(|v| v.as_u64()).sum());
    let counted = BTreeMap::from([
        ("Backlog", c["backlog"].as_u64().unwrap_or(0)),
        ("DeleteErrors", errors),
        ("Throttled", c["throttled"].as_u64().unwrap_or(0)),
    ]);
    assert!(
        counted.values().all(|v| *v > 0),
        "{counted:?}: {}",
        common::cli::shown(&out)
    );
    let deleted = c["jobs"]["deleted"].as_u64().unwrap_or(0);
    // The seats the level gives are one or two: a 429 may come at two in flight already.
    assert!(
        (8..=16).contains(&deleted),
        "due-00..07 at least, none from due-16: {c}"
    );
    assert!(report["metrics"]["error"].is_null(), "{report}");

    println!("unhealthy run, as reported: {counted:?}");

    // AND essential published each of them, with the value the report gives, and not the
    // counter that stayed 0 (nothing is stuck terminating here)
    assert_eq!(c["stuck"]["jobs"], 0, "{c}");
    let cw = tb.cloudwatch().await;
    let cluster = &tb.env["TESTBED_CLUSTER"];
    for metric in SENT_WHEN_NON_ZERO {
        let name = metric.name();
        let identity = (cluster.as_str(), tb.env["AWS_REGION"].as_str());
        let sum = published_sum(&cw, &metrics_namespace, identity, name).await;
        let want = counted.get(name).map(|n| *n as f64);
        assert_eq!(sum, want, "{name}: {c}");
    }
    fx.cleanup().await;
}

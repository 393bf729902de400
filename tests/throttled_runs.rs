//! Real API Priority and Fairness 429s: the reaper's user is put in a priority level with
//! no seats of its own (one request at a time, the rest rejected with `Retry-After`), and
//! the run must still end with everything due deleted, throttling counted, no errors.
//!
//! Its own test binary: the throttle applies to the reaper identity cluster-wide.

mod common;

use std::time::Duration;

use common::{End, Lambda, Testbed, eventually, mins};
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

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
    let tb = Testbed::connect().await;
    let fx = tb.namespace("throttled").await;
    let n = 24;
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

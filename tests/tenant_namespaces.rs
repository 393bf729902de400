//! Tenants' namespace annotations and the per-namespace Events, through the Lambda
//! entrypoint (the real binary behind the Runtime Interface Emulator) against the testbed,
//! with the least-privilege identity of `infra/rbac/eks-reaper-rbac.yaml`.
//!
//! Each test works in namespaces of its own (`REAPER_NAMESPACES`), annotated as a team
//! would annotate theirs.

mod common;

use common::{End, Fixtures, Lambda, Testbed, mins};
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

/// Annotates the fixtures' namespace as its team would (`kubectl annotate namespace`).
async fn annotate(fx: &Fixtures, annotations: Value) {
    Api::<Namespace>::all(fx.client.clone())
        .patch(
            &fx.namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
        )
        .await
        .expect("annotate namespace");
}

/// The eks-reaper Events in the fixtures' namespace.
async fn reaper_events(fx: &Fixtures) -> Vec<Event> {
    Api::<Event>::namespaced(fx.client.clone(), &fx.namespace)
        .list(&ListParams::default().fields("reason=EksReaperPruned"))
        .await
        .expect("list events")
        .items
}

#[tokio::test]
async fn namespace_annotations_set_retentions_opt_out_or_keep_everything_and_each_namespace_gets_one_event()
 {
    let tb = Testbed::connect().await;
    // GIVEN a team namespace with short retentions of its own
    let short = tb.namespace("ns-short").await;
    annotate(
        &short,
        json!({"eks-reaper/ttl": "1m", "eks-reaper/failed-job-ttl": "3m"}),
    )
    .await;
    // Past 1m, inside the cluster's 15m: due under the namespace's retention.
    short
        .finished_job("succeeded-2m", End::Succeeded, mins(2), json!({}))
        .await;
    // Past the namespace's 3m for failures, inside the cluster's 24h.
    short
        .finished_job("failed-5m", End::Failed, mins(5), json!({}))
        .await;
    short
        .finished_job("failed-2m", End::Failed, mins(2), json!({}))
        .await;
    // The object's own annotation beats its namespace's.
    short
        .finished_job(
            "own-ttl-1h",
            End::Succeeded,
            mins(10),
            json!({"metadata": {"annotations": {"eks-reaper/ttl": "1h"}}}),
        )
        .await;
    // Inside the cluster's 1h for bare pods, past the namespace's 1m.
    short
        .finished_pod("bare-2m", None, End::Succeeded, mins(2))
        .await;
    // AND a namespace that opted out, one whose annotation cannot be read, and one without
    // annotations, each with objects the cluster settings would delete
    let kept = tb.namespace("ns-kept").await;
    annotate(&kept, json!({"eks-reaper/keep": "true"})).await;
    let unreadable = tb.namespace("ns-unreadable").await;
    annotate(&unreadable, json!({"eks-reaper/ttl": "soon"})).await;
    let plain = tb.namespace("ns-plain").await;
    for fx in [&kept, &unreadable, &plain] {
        fx.finished_job("succeeded-2h", End::Succeeded, mins(120), json!({}))
            .await;
        fx.finished_pod("bare-2h", None, End::Succeeded, mins(120))
            .await;
    }

    // WHEN the Lambda runs once over the four namespaces, Events on
    let scope = [&short, &kept, &unreadable, &plain]
        .map(|fx| fx.namespace.as_str())
        .join(",");
    let env = tb.lambda_env(&[
        ("REAPER_NAMESPACES", &scope),
        ("REAPER_NAMESPACE_EVENTS", "true"),
    ]);
    let lambda = Lambda::start(&env).await;
    let inv = lambda.invoke(&json!({})).await;
    lambda.stop().await;

    // THEN each namespace's own rules decided, and the report says which
    let c = inv.cluster();
    assert_eq!(c["status"], "ok", "{c}");
    let jobs = &c["jobs"];
    assert_eq!(jobs["deletedByReason"]["succeededPastTtl"], 2, "{c}");
    assert_eq!(jobs["deletedByReason"]["failedPastTtl"], 1, "{c}");
    assert_eq!(jobs["keptByReason"]["withinRetention"], 2, "{c}");
    assert_eq!(jobs["keptByReason"]["namespaceOptedOut"], 1, "{c}");
    assert_eq!(jobs["keptByReason"]["invalidNamespaceAnnotation"], 1, "{c}");
    let pods = &c["pods"];
    assert_eq!(pods["deletedByReason"]["barePodPastTtl"], 2, "{c}");
    assert_eq!(pods["keptByReason"]["namespaceOptedOut"], 1, "{c}");
    assert_eq!(pods["keptByReason"]["invalidNamespaceAnnotation"], 1, "{c}");
    let annotations = &c["namespaceAnnotations"];
    assert_eq!(annotations["status"], "read", "{c}");
    assert!(annotations["annotated"].as_u64().unwrap_or(0) >= 3, "{c}");
    let samples = annotations["invalidSamples"].as_array().expect("samples");
    assert!(
        samples.contains(&json!({"namespace": unreadable.namespace,
                                 "annotation": "eks-reaper/ttl", "value": "soon"})),
        "{c}"
    );
    assert_eq!(c["namespaceEvents"], json!({"sent": 2, "failed": 0}), "{c}");

    assert_eq!(short.job_uid("succeeded-2m").await, None);
    assert_eq!(short.job_uid("failed-5m").await, None);
    assert!(short.job_uid("failed-2m").await.is_some());
    assert!(short.job_uid("own-ttl-1h").await.is_some());
    assert!(!short.pod_exists("bare-2m").await);
    for fx in [&kept, &unreadable] {
        assert!(
            fx.job_uid("succeeded-2h").await.is_some(),
            "{}",
            fx.namespace
        );
        assert!(fx.pod_exists("bare-2h").await, "{}", fx.namespace);
    }
    assert_eq!(plain.job_uid("succeeded-2h").await, None);
    assert!(!plain.pod_exists("bare-2h").await);

    // AND each namespace with deletions has exactly one eks-reaper Event counting them; the
    // others have none
    for (fx, message) in [
        (
            &short,
            "eks-reaper deleted 2 Job(s) (failedPastTtl=1, succeededPastTtl=1) and 1 Pod(s) \
             (barePodPastTtl=1)",
        ),
        (
            &plain,
            "eks-reaper deleted 1 Job(s) (succeededPastTtl=1) and 1 Pod(s) (barePodPastTtl=1)",
        ),
    ] {
        let events = reaper_events(fx).await;
        assert_eq!(events.len(), 1, "{}: {events:?}", fx.namespace);
        let e = &events[0];
        assert_eq!(e.message.as_deref(), Some(message));
        assert_eq!(e.type_.as_deref(), Some("Normal"));
        assert_eq!(e.involved_object.kind.as_deref(), Some("Namespace"));
        assert_eq!(
            e.involved_object.name.as_deref(),
            Some(fx.namespace.as_str())
        );
        assert_eq!(
            e.source.as_ref().and_then(|s| s.component.as_deref()),
            Some("eks-reaper")
        );
        assert_eq!(e.reporting_component.as_deref(), Some("eks-reaper"));
        assert_eq!(e.count, Some(1));
    }
    for fx in [&kept, &unreadable] {
        assert_eq!(reaper_events(fx).await.len(), 0, "{}", fx.namespace);
    }
    for fx in [short, kept, unreadable, plain] {
        fx.cleanup().await;
    }
}

#[tokio::test]
async fn without_namespace_annotations_the_cluster_settings_apply_and_no_event_is_sent() {
    let tb = Testbed::connect().await;
    // GIVEN an opted-out namespace with a Job the cluster settings would delete
    let fx = tb.namespace("ns-off").await;
    annotate(&fx, json!({"eks-reaper/keep": "true"})).await;
    fx.finished_job("succeeded-2h", End::Succeeded, mins(120), json!({}))
        .await;

    // WHEN the namespace annotations are turned off (and Events left off)
    let env = tb.lambda_env(&[
        ("REAPER_NAMESPACES", &fx.namespace),
        ("REAPER_NAMESPACE_ANNOTATIONS", "false"),
    ]);
    let lambda = Lambda::start(&env).await;
    let inv = lambda.invoke(&json!({})).await;
    lambda.stop().await;

    // THEN the Job goes by the cluster settings, no namespace is listed, no Event is sent
    let c = inv.cluster();
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["jobs"]["deletedByReason"]["succeededPastTtl"], 1, "{c}");
    assert_eq!(
        c["namespaceAnnotations"],
        json!({"status": "off", "namespaces": 0,
        "annotated": 0, "optedOut": 0, "invalid": 0, "invalidSamples": []}),
        "{c}"
    );
    assert!(c.get("namespaceEvents").is_none(), "{c}");
    assert_eq!(fx.job_uid("succeeded-2h").await, None);
    assert_eq!(reaper_events(&fx).await.len(), 0);
    fx.cleanup().await;
}

//! Workflow engines' pods on the testbed, shaped as each engine creates them
//! (`docs/engines.md`), judged by the real binary in normal and low-headroom mode: what is
//! kept, what goes, and when.
//!
//! Every pod is labelled as EKS's Fargate webhook labels Fargate pods (the policy reads the
//! pod alone) and bound to the EC2-like node at creation, so the Fargate stand-in leaves it
//! be. Argo's pods are controlled by a real `argoproj.io/v1alpha1` `Workflow` (a
//! CustomResourceDefinition on the testbed's apiserver), so the garbage collector sees a
//! live owner. Low-headroom mode is reached the way a run reaches it: one network interface
//! taken from a watched subnet in moto, and `REAPER_LOW_HEADROOM_FRACTION=1`.

mod common;

use std::time::Duration;

use common::{End, Fixtures, Testbed, cli};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

const FARGATE: &str = "eks.amazonaws.com/fargate-profile";

/// Each engine's pod, named by what it is (Digdag's by the name Digdag gives it), with the
/// labels the engine writes.
fn shapes() -> Vec<(&'static str, Value)> {
    let airflow = |extra: Value| {
        let mut labels = json!({
            "dag_id": "nightly_etl", "task_id": "load", "run_id": "scheduled__2026-12-07",
            "try_number": "1", "airflow_version": "3.1.0", FARGATE: "etl"
        });
        common::merge(&mut labels, extra);
        json!({"metadata": {"labels": labels}})
    };
    vec![
        (
            "kpo-running-task",
            airflow(json!({"kubernetes_pod_operator": "True", "airflow_kpo_in_cluster": "True"})),
        ),
        (
            "kpo-checked",
            airflow(
                json!({"kubernetes_pod_operator": "True", "airflow_kpo_in_cluster": "True",
                           "already_checked": "True"}),
            ),
        ),
        (
            "executor-worker",
            airflow(json!({"kubernetes_executor": "True", "airflow-worker": "81"})),
        ),
        (
            "digdag-pod-4121-0-3f0c6a2e",
            json!({"metadata": {"labels": {FARGATE: "etl"}}}),
        ),
        (
            "spark-submit-driver",
            json!({"metadata": {"labels": {"spark-role": "driver",
                                           "spark-app-selector": "spark-0a1b", FARGATE: "etl"}}}),
        ),
        (
            "plain-bare-pod",
            json!({"metadata": {"labels": {FARGATE: "etl"}}}),
        ),
    ]
}

/// The Workflow kind, registered once per testbed.
async fn workflow_kind(tb: &Testbed) -> ApiResource {
    let crds: Api<CustomResourceDefinition> = Api::all(tb.admin.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "workflows.argoproj.io"},
        "spec": {
            "group": "argoproj.io", "scope": "Namespaced",
            "names": {"kind": "Workflow", "plural": "workflows", "singular": "workflow",
                      "listKind": "WorkflowList"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object",
                                     "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .expect("crd");
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => panic!("create the Workflow CRD: {e}"),
    }
    common::eventually(Duration::from_secs(30), "Workflow CRD established", || {
        let crds = crds.clone();
        async move {
            crds.get("workflows.argoproj.io")
                .await
                .ok()
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
        }
    })
    .await;
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Workflow");
    ApiResource::from_gvk_with_plural(&gvk, "workflows")
}

/// An Argo step's pod: controlled by the Workflow `owner`, `completed` as given.
async fn argo_pod(fx: &Fixtures, owner: &DynamicObject, name: &str, completed: bool) {
    let extra = json!({"metadata": {
        "labels": {"workflows.argoproj.io/workflow": owner.metadata.name,
                   "workflows.argoproj.io/completed": completed.to_string(), FARGATE: "etl"},
        "annotations": {"workflows.argoproj.io/node-name": format!("nightly.{name}")},
        "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                             "name": owner.metadata.name, "uid": owner.metadata.uid,
                             "controller": true, "blockOwnerDeletion": true}]
    }});
    fx.finished_pod_shaped(name, extra, End::Succeeded, Duration::from_secs(120))
        .await;
}

/// Runs the binary once over the fixture namespace with `settings`; the cluster's report.
async fn run(tb: &Testbed, fx: &Fixtures, settings: &[(&str, &str)]) -> Value {
    let mut args = vec![
        "run",
        "--cluster",
        &tb.env["TESTBED_CLUSTER"],
        "--namespaces",
        &fx.namespace,
        "--output",
        "json",
    ];
    for (flag, value) in settings {
        args.push(flag);
        args.push(value);
    }
    let out = cli::reaper(tb, &args, &[]).await;
    assert!(out.status.success(), "{}", cli::shown(&out));
    cli::json(&out)["clusters"][0].clone()
}

async fn existing(fx: &Fixtures, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        if fx.pod_exists(name).await {
            out.push((*name).to_owned());
        }
    }
    out
}

#[tokio::test]
async fn engine_pods_keep_their_grace_and_marked_ones_go_first_when_ips_are_short() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("engine-pods").await;
    let kind = workflow_kind(&tb).await;
    let workflows: Api<DynamicObject> =
        Api::namespaced_with(tb.admin.clone(), &fx.namespace, &kind);
    let mut workflow = DynamicObject::new("nightly", &kind);
    workflow.data = json!({"spec": {"entrypoint": "main"}});
    let workflow = workflows
        .create(&PostParams::default(), &workflow)
        .await
        .expect("create workflow");

    // GIVEN each engine's finished Fargate pod, finished two minutes ago (inside the 15 min
    // Fargate retention, past the 1 min low-headroom ceiling, inside the 5 min engine grace)
    let shapes = shapes();
    for (name, extra) in &shapes {
        fx.finished_pod_shaped(
            name,
            extra.clone(),
            End::Succeeded,
            Duration::from_secs(120),
        )
        .await;
    }
    // AND two Argo step pods of a live Workflow: one the controller is done with
    argo_pod(&fx, &workflow, "nightly-step-1", true).await;
    argo_pod(&fx, &workflow, "nightly-step-2", false).await;
    let mut all: Vec<&str> = shapes.iter().map(|(n, _)| *n).collect();
    all.extend(["nightly-step-1", "nightly-step-2"]);

    // WHEN a run prunes in normal mode
    let c = run(&tb, &fx, &[("--low-headroom-fraction", "0")]).await;

    // THEN nothing goes: every Fargate pod is inside its 15 min, the Argo pods are the
    // Workflow's
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["lowHeadroom"], false, "{c}");
    assert_eq!(c["pods"]["deleted"], 0, "{c}");
    assert_eq!(c["pods"]["keptByReason"]["withinRetention"], 6, "{c}");
    assert_eq!(c["pods"]["keptByReason"]["ownedByController"], 2, "{c}");
    assert_eq!(existing(&fx, &all).await, all);

    // WHEN the subnets are short of IPs (one address taken, every free fraction under 1)
    let ec2 = tb.ec2().await;
    let subnet = tb.subnet_ids("TESTBED_SUBNETS")[0].clone();
    let eni = ec2
        .create_network_interface()
        .subnet_id(&subnet)
        .description("engine-pods: low headroom")
        .send()
        .await
        .expect("create ENI");
    let eni_id = eni
        .network_interface()
        .and_then(|n| n.network_interface_id())
        .expect("ENI id")
        .to_owned();
    let low = [("--low-headroom-fraction", "1")];
    let c = run(&tb, &fx, &low).await;

    // THEN the plain pod goes under the 1 min ceiling, the pod Airflow marked done goes at
    // once, and every unmarked engine pod keeps its 5 min grace
    assert_eq!(c["lowHeadroom"], true, "{c}");
    assert_eq!(c["pods"]["deletedByReason"]["fargatePodPastTtl"], 1, "{c}");
    assert_eq!(c["pods"]["deletedByReason"]["engineDone"], 1, "{c}");
    assert_eq!(c["pods"]["keptByReason"]["engineGrace"], 4, "{c}");
    let graced = [
        "kpo-running-task",
        "executor-worker",
        "digdag-pod-4121-0-3f0c6a2e",
        "spark-submit-driver",
    ];
    let steps = ["nightly-step-1", "nightly-step-2"];
    let mut left: Vec<&str> = graced.to_vec();
    left.extend(steps);
    common::eventually(Duration::from_secs(30), "deleted pods gone", || async {
        existing(&fx, &all).await == left
    })
    .await;

    // WHEN the grace is shorter than their age, and the Workflow's pods are handed over
    let c = run(
        &tb,
        &fx,
        &[
            ("--low-headroom-fraction", "1"),
            ("--engine-pod-grace", "90s"),
            ("--prune-owners", "argoproj.io/Workflow"),
        ],
    )
    .await;

    // THEN the engine pods go; of the Argo steps only the one marked completed goes (at
    // once, as it is Fargate and IPs are short), the other waits for its marker
    assert_eq!(c["pods"]["deletedByReason"]["fargatePodPastTtl"], 4, "{c}");
    assert_eq!(c["pods"]["deletedByReason"]["engineDone"], 1, "{c}");
    assert_eq!(c["pods"]["keptByReason"]["engineNotDone"], 1, "{c}");
    common::eventually(Duration::from_secs(30), "engine pods gone", || async {
        existing(&fx, &all).await == ["nightly-step-2"]
    })
    .await;

    ec2.delete_network_interface()
        .network_interface_id(&eni_id)
        .send()
        .await
        .expect("delete ENI");
    // The Fargate-labelled pod left would count in other tests' forecasts (they read every
    // Fargate pod of the cluster): it goes before the namespace does.
    fx.pods()
        .delete("nightly-step-2", &Default::default())
        .await
        .expect("delete the last pod");
    common::eventually(Duration::from_secs(30), "last pod gone", || async {
        existing(&fx, &all).await.is_empty()
    })
    .await;
    fx.cleanup().await;
}

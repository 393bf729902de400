//! Workflow engines' pods: which engine made a pod, and whether it has said it is done with
//! it. Each row below was read in the engine's own source (`docs/engines.md` has the table
//! with the files and commits).
//!
//! | Engine | Recognised by | Done marker |
//! |---|---|---|
//! | Airflow KubernetesPodOperator | label `kubernetes_pod_operator=True` | label `already_checked=True` |
//! | Airflow KubernetesExecutor | labels `kubernetes_executor=True` and `airflow-worker` | label `airflow_executor_done=True` |
//! | Digdag | name `digdag-pod-…` (Digdag sets no labels) | none: it deletes the pod itself in the poll that sees it finished |
//! | Argo Workflows | label `workflows.argoproj.io/workflow` | label `workflows.argoproj.io/completed=true` |
//! | Spark, `spark-submit` | label `spark-role=driver` | none |
//! | Spark operator | label `sparkoperator.k8s.io/launched-by-spark-operator=true` | none on the pod (the `SparkApplication`'s state) |
//!
//! An engine that finds its pod gone before it is done fails the task (Airflow: a 404 it
//! does not retry; Digdag: an error reading the missing pod; Argo: "pod deleted"; the Spark
//! operator: "driver pod not found", even after a success), and the task's log goes with
//! the pod. Engines whose only done signal lives elsewhere (Argo, the Spark operator) get
//! no deadline at all: their pods wait for the marker, or are not recognisable as done.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::parse_flag;

/// A workflow engine that creates pods and reads them again after they finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Engine {
    /// Airflow's KubernetesPodOperator (bare pods; re-reads the pod and its log).
    AirflowPodOperator,
    /// Airflow's KubernetesExecutor worker pods.
    AirflowExecutor,
    /// Digdag's Kubernetes command executor (bare pods, polled every 10 s).
    Digdag,
    /// Argo Workflows (pods controlled by a `Workflow`).
    Argo,
    /// A Spark driver started by `spark-submit` (bare pod).
    Spark,
    /// The Spark operator (driver controlled by a `SparkApplication`).
    SparkOperator,
}

impl Engine {
    /// Stable camelCase label (report keys, log fields).
    pub fn label(self) -> &'static str {
        match self {
            Engine::AirflowPodOperator => "airflowPodOperator",
            Engine::AirflowExecutor => "airflowExecutor",
            Engine::Digdag => "digdag",
            Engine::Argo => "argo",
            Engine::Spark => "spark",
            Engine::SparkOperator => "sparkOperator",
        }
    }

    /// Whether the engine's only "done" signal is a marker (or state elsewhere), so no
    /// amount of time makes its unmarked pod safe to delete.
    pub fn waits_for_marker(self) -> bool {
        matches!(self, Engine::Argo | Engine::SparkOperator)
    }
}

/// Which engine made a pod and whether it marked the pod as done with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnginePod {
    /// The engine.
    pub engine: Engine,
    /// The engine's "done with it" marker is on the pod.
    pub done: bool,
}

/// The engine that made the pod described by `meta`, if it is one the policy knows.
pub fn engine_pod(meta: &ObjectMeta) -> Option<EnginePod> {
    let label = |key: &str| meta.labels.as_ref()?.get(key).map(String::as_str);
    let flag = |key: &str| label(key).and_then(parse_flag) == Some(true);
    let found = |engine, done| Some(EnginePod { engine, done });
    if flag("kubernetes_pod_operator") {
        return found(Engine::AirflowPodOperator, flag("already_checked"));
    }
    if flag("kubernetes_executor") && label("airflow-worker").is_some() {
        return found(Engine::AirflowExecutor, flag("airflow_executor_done"));
    }
    if label("workflows.argoproj.io/workflow").is_some() {
        return found(Engine::Argo, flag("workflows.argoproj.io/completed"));
    }
    if flag("sparkoperator.k8s.io/launched-by-spark-operator") {
        return found(Engine::SparkOperator, false);
    }
    if label("spark-role") == Some("driver") {
        return found(Engine::Spark, false);
    }
    if meta
        .name
        .as_deref()
        .is_some_and(|n| n.starts_with("digdag-pod-"))
    {
        return found(Engine::Digdag, false);
    }
    None
}

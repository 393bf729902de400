//! `--kubeconfig` / `--context` for `run` and `plan`, through the real binary on the
//! testbed: the cluster is reached through a kubeconfig context (kube's config loading)
//! whose user is the reaper's identity via an exec credential plugin (`eks-reaper token`),
//! instead of `DescribeCluster`. Subnets are read only when `--cluster` names the EKS
//! cluster too.

mod common;

use common::cli;
use common::{End, Testbed, mins};
use serde_json::json;

#[tokio::test]
async fn run_through_a_kubeconfig_context_prunes_and_skips_the_subnets() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("kubeconfig-run").await;
    fx.finished_job("due", End::Succeeded, mins(30), json!({}))
        .await;
    fx.finished_job("young", End::Succeeded, mins(1), json!({}))
        .await;
    let kubeconfig = cli::exec_kubeconfig(
        &tb,
        "reaper-ctx",
        &["token", "--cluster", &tb.env["TESTBED_CLUSTER"]],
    );
    let path = kubeconfig.to_string_lossy().into_owned();

    // WHEN the run names no EKS cluster, only the kubeconfig
    let out = cli::reaper(
        &tb,
        &[
            "run",
            "--kubeconfig",
            &path,
            "--namespaces",
            &fx.namespace,
            "--metrics-sink",
            "none",
            "--output",
            "json",
        ],
        &[],
    )
    .await;

    // THEN the context's cluster is pruned, under the context's name, without subnets
    assert!(out.status.success(), "{}", cli::shown(&out));
    let c = cli::json(&out)["clusters"][0].clone();
    assert_eq!(c["cluster"], "reaper-ctx", "{c:#}");
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["jobs"]["deleted"], 1, "{c:#}");
    assert!(c["subnets"].is_null(), "{c:#}");
    assert!(
        c["subnetsError"]
            .as_str()
            .is_some_and(|e| e.contains("kubeconfig context")),
        "{c:#}"
    );
    assert!(c["forecast"].is_null(), "{c:#}");
    assert!(fx.job_uid("due").await.is_none());
    assert!(fx.job_uid("young").await.is_some());
    let _ = std::fs::remove_file(kubeconfig);
    fx.cleanup().await;
}

#[tokio::test]
async fn naming_the_eks_cluster_too_reads_its_subnets() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("kubeconfig-eks").await;
    fx.finished_job("due", End::Succeeded, mins(30), json!({}))
        .await;
    let cluster = tb.env["TESTBED_CLUSTER"].clone();
    let kubeconfig = cli::exec_kubeconfig(&tb, "reaper-ctx", &["token", "--cluster", &cluster]);
    let path = kubeconfig.to_string_lossy().into_owned();

    let run = cli::reaper(
        &tb,
        &[
            "run",
            "--kubeconfig",
            &path,
            "--context",
            "reaper-ctx",
            "--cluster",
            &cluster,
            "--namespaces",
            &fx.namespace,
            "--dry-run",
            "--metrics-sink",
            "none",
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    assert!(run.status.success(), "{}", cli::shown(&run));
    let c = cli::json(&run)["clusters"][0].clone();
    assert_eq!(c["cluster"], cluster.as_str(), "{c:#}");
    assert_eq!(c["jobs"]["deleted"], 1, "dry run counts it: {c:#}");
    let watched = c["subnets"]["subnets"].as_array().map_or(0, Vec::len);
    assert_eq!(watched, tb.subnet_ids("TESTBED_SUBNETS").len(), "{c:#}");

    let plan = cli::reaper(
        &tb,
        &[
            "plan",
            "--kubeconfig",
            &path,
            "--cluster",
            &cluster,
            "--namespaces",
            &fx.namespace,
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    assert!(plan.status.success(), "{}", cli::shown(&plan));
    assert_eq!(cli::json(&plan)["clusters"][0]["jobs"], 1);
    assert!(
        fx.job_uid("due").await.is_some(),
        "a dry run and a plan delete nothing"
    );
    let _ = std::fs::remove_file(kubeconfig);
    fx.cleanup().await;
}

#[tokio::test]
async fn an_unknown_context_or_several_clusters_are_invalid_configuration() {
    let tb = Testbed::connect().await;
    let kubeconfig = cli::exec_kubeconfig(&tb, "reaper-ctx", &["token", "--cluster", "etl"]);
    let path = kubeconfig.to_string_lossy().into_owned();
    let unknown = cli::reaper(
        &tb,
        &["plan", "--kubeconfig", &path, "--context", "nope"],
        &[],
    )
    .await;
    assert_eq!(unknown.status.code(), Some(2), "{}", cli::shown(&unknown));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("--context") && stderr.contains("nope") && stderr.contains("reaper-ctx"),
        "{stderr}"
    );
    let several = cli::reaper(
        &tb,
        &["run", "--kubeconfig", &path, "--cluster", "a,b"],
        &[],
    )
    .await;
    assert_eq!(several.status.code(), Some(2), "{}", cli::shown(&several));
    let _ = std::fs::remove_file(kubeconfig);
}

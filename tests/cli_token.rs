//! `eks-reaper token` as kubectl's exec credential plugin, on the testbed: kubectl runs the
//! real binary from a kubeconfig's `users[].user.exec`, sends the token it prints, and the
//! testbed's EKS authenticator maps it to the signing identity, as EKS would.

mod common;

use common::cli;
use common::{End, Testbed, mins};

/// Runs kubectl with `kubeconfig` and the reaper identity's AWS environment (the plugin
/// inherits it, as it inherits a shell's).
async fn kubectl(
    tb: &Testbed,
    kubeconfig: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    cli::command("kubectl", &tb.aws_env())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .await
        .expect("run kubectl")
}

#[tokio::test]
async fn kubectl_authenticates_as_the_reaper_through_the_token_plugin() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("token-plugin").await;
    fx.finished_job("etl-1", End::Succeeded, mins(30), serde_json::json!({}))
        .await;
    let cluster = tb.env["TESTBED_CLUSTER"].clone();
    let kubeconfig = cli::exec_kubeconfig(&tb, "reaper", &["token", "--cluster", &cluster]);

    let whoami = kubectl(
        &tb,
        &kubeconfig,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    )
    .await;
    assert!(whoami.status.success(), "{}", cli::shown(&whoami));
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        tb.env["TESTBED_REAPER_USERNAME"]
    );

    let jobs = kubectl(
        &tb,
        &kubeconfig,
        &["get", "jobs", "-n", &fx.namespace, "-o", "name"],
    )
    .await;
    assert!(jobs.status.success(), "{}", cli::shown(&jobs));
    assert_eq!(
        String::from_utf8_lossy(&jobs.stdout).trim(),
        "job.batch/etl-1"
    );

    let _ = std::fs::remove_file(kubeconfig);
    fx.cleanup().await;
}

#[tokio::test]
async fn a_token_for_another_cluster_name_is_refused() {
    let tb = Testbed::connect().await;
    let kubeconfig = cli::exec_kubeconfig(&tb, "other", &["token", "--cluster", "not-this-one"]);
    let out = kubectl(&tb, &kubeconfig, &["get", "jobs", "-A", "-o", "name"]).await;
    assert!(!out.status.success(), "{}", cli::shown(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Unauthorized") || stderr.contains("must be logged in"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(kubeconfig);
}

#[tokio::test]
async fn a_role_arn_signs_the_token_as_that_roles_session() {
    let tb = Testbed::connect().await;
    let cluster = tb.env["TESTBED_CLUSTER"].clone();
    let role = tb.env["TESTBED_CROSS_ROLE_ARN"].clone();
    let kubeconfig = cli::exec_kubeconfig(
        &tb,
        "cross",
        &["token", "--cluster", &cluster, "--role-arn", &role],
    );
    let whoami = kubectl(
        &tb,
        &kubeconfig,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    )
    .await;
    assert!(whoami.status.success(), "{}", cli::shown(&whoami));
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        tb.env["TESTBED_CROSS_USERNAME"]
    );
    let _ = std::fs::remove_file(kubeconfig);
}

#[tokio::test]
async fn the_exec_credential_carries_the_token_and_an_expiry_inside_ekss_fifteen_minutes() {
    let tb = Testbed::connect().await;
    let before = jiff::Timestamp::now();
    let out = cli::reaper(
        &tb,
        &["token", "--cluster", "etl", "--region", "eu-west-1"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", cli::shown(&out));
    let v = cli::json(&out);
    assert_eq!(v["kind"], "ExecCredential");
    assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1beta1");
    let token = v["status"]["token"].as_str().expect("token");
    assert!(token.starts_with("k8s-aws-v1."), "{token}");
    let expires: jiff::Timestamp = v["status"]["expirationTimestamp"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("RFC 3339");
    let lifetime = expires.duration_since(before).as_secs();
    assert!(
        (13 * 60..15 * 60).contains(&lifetime),
        "expires {lifetime} s after signing"
    );
}

#[tokio::test]
async fn token_without_a_cluster_is_a_usage_error() {
    let tb = Testbed::connect().await;
    let out = cli::reaper(&tb, &["token", "--cluster", " "], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", cli::shown(&out));
}

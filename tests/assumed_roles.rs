//! Clusters reached through an assumed role (`REAPER_ROLE_ARNS`, or `roleArn` in the event),
//! through the real binary behind the Lambda Runtime Interface Emulator, on the testbed: the
//! run calls `sts:AssumeRole` at moto with the external id, signs the EKS token with the
//! temporary credentials (session token in the URL), and the testbed's authenticator checks
//! them against moto's record of the session and maps the assumed-role ARN to the role's
//! access entry, as EKS does.
//!
//! Every test works in its own namespace (`REAPER_NAMESPACES`).

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{End, Lambda, Testbed, mins};
use serde_json::{Value, json};

/// The authenticator's decision log from `offset` on.
fn decisions_since(tb: &Testbed, offset: u64) -> String {
    let text = std::fs::read(&tb.env["TESTBED_AUTHENTICATOR_LOG"]).expect("authenticator log");
    let start = usize::try_from(offset).expect("offset").min(text.len());
    String::from_utf8_lossy(&text[start..]).into_owned()
}

fn log_size(tb: &Testbed) -> u64 {
    std::fs::metadata(&tb.env["TESTBED_AUTHENTICATOR_LOG"])
        .expect("authenticator log")
        .len()
}

/// moto's record of the STS sessions it issued (mirrored by the testbed), by access key.
fn sessions(tb: &Testbed) -> HashMap<String, Value> {
    let path = Path::new(&tb.env["TESTBED_STS_SESSIONS"]);
    serde_json::from_str(&std::fs::read_to_string(path).expect("sessions file"))
        .expect("sessions JSON")
}

/// The external ids moto's STS received with `AssumeRole` calls for `role_arn`.
fn external_ids_sent(tb: &Testbed, role_arn: &str) -> Vec<String> {
    sessions(tb)
        .values()
        .filter(|s| s["roleArn"] == role_arn)
        .filter_map(|s| s["externalId"].as_str().map(str::to_owned))
        .collect()
}

/// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/eks-reaper`: the session the reaper opens.
fn session_arn(tb: &Testbed, role_arn: &str) -> String {
    let role = role_arn.rsplit('/').next().expect("role name");
    format!(
        "arn:aws:sts::{}:assumed-role/{role}/eks-reaper",
        tb.env["TESTBED_ACCOUNT_ID"]
    )
}

#[tokio::test]
async fn a_cluster_with_a_role_is_pruned_with_that_roles_temporary_credentials() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("assumed-role").await;
    // GIVEN a due Job and one inside its retention, and a role for the cluster that its
    // access entry maps to the reaper's group
    fx.finished_job("succeeded-1h", End::Succeeded, mins(60), json!({}))
        .await;
    fx.finished_job("succeeded-5m", End::Succeeded, mins(5), json!({}))
        .await;
    let role = tb.env["TESTBED_CROSS_ROLE_ARN"].clone();
    let cluster = tb.env["TESTBED_CLUSTER"].clone();
    let external_id = format!("it-{}", fx.run);
    let offset = log_size(&tb);

    // WHEN the function runs with that role and an external id
    let lambda = Lambda::start(&tb.lambda_env(&[
        ("REAPER_NAMESPACES", &fx.namespace),
        ("REAPER_ROLE_ARNS", &format!("{cluster}={role}")),
        ("REAPER_EXTERNAL_ID", &external_id),
    ]))
    .await;
    let inv = lambda.invoke(&json!({})).await;
    lambda.stop().await;

    // THEN the due Job is deleted, the other kept
    let c = inv.cluster();
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["jobs"]["deleted"], 1, "{c}");
    assert_eq!(fx.job_uid("succeeded-1h").await, None);
    assert!(fx.job_uid("succeeded-5m").await.is_some());
    // ...by the role's session, mapped to the role's access entry by the authenticator
    let decisions = decisions_since(&tb, offset);
    let accepted = format!(
        "decision=accept arn={} username={} groups=eks-reaper canonicalArn={role}",
        session_arn(&tb, &role),
        tb.env["TESTBED_CROSS_USERNAME"]
    );
    assert!(decisions.contains(&accepted), "{decisions}");
    // ...after an AssumeRole that carried the external id
    assert!(
        external_ids_sent(&tb, &role).contains(&external_id),
        "moto recorded no AssumeRole of {role} with the external id"
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn a_role_and_external_id_from_the_event_are_used_for_that_cluster() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("event-role").await;
    fx.finished_job("succeeded-1h", End::Succeeded, mins(60), json!({}))
        .await;
    let role = tb.env["TESTBED_CROSS_ROLE_ARN"].clone();
    let external_id = format!("event-{}", fx.run);
    let offset = log_size(&tb);

    // WHEN the schedule's input names the cluster with a role and an external id (and the
    // environment has neither)
    let lambda = Lambda::start(&tb.lambda_env(&[("REAPER_NAMESPACES", &fx.namespace)])).await;
    let inv = lambda
        .invoke(&json!({"clusters": [{
            "name": tb.env["TESTBED_CLUSTER"], "roleArn": role, "externalId": external_id
        }]}))
        .await;
    lambda.stop().await;

    // THEN the cluster is pruned through the role, which was assumed with that external id
    assert_eq!(inv.cluster()["jobs"]["deleted"], 1, "{}", inv.body);
    assert_eq!(fx.job_uid("succeeded-1h").await, None);
    let decisions = decisions_since(&tb, offset);
    assert!(
        decisions.contains(&format!("decision=accept arn={} ", session_arn(&tb, &role))),
        "{decisions}"
    );
    assert!(external_ids_sent(&tb, &role).contains(&external_id));
    fx.cleanup().await;
}

#[tokio::test]
async fn a_role_without_an_access_entry_fails_the_cluster_as_unauthorized() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("noentry-role").await;
    fx.finished_job("succeeded-1h", End::Succeeded, mins(60), json!({}))
        .await;
    let role = tb.env["TESTBED_NOENTRY_ROLE_ARN"].clone();
    let offset = log_size(&tb);

    // WHEN the function runs with a role the cluster has no access entry for
    let lambda = Lambda::start(&tb.lambda_env(&[
        ("REAPER_NAMESPACES", &fx.namespace),
        (
            "REAPER_ROLE_ARNS",
            &format!("{}={role}", tb.env["TESTBED_CLUSTER"]),
        ),
    ]))
    .await;
    let inv = lambda.invoke(&json!({})).await;
    lambda.stop().await;

    // THEN the apiserver answers 401 (the authenticator refused the role's session), the
    // invocation fails with that kind, and nothing is deleted
    let (error_type, message) = inv.error();
    assert_eq!(error_type, "ClusterFailed.Unauthorized", "{message}");
    assert!(message.contains(&tb.env["TESTBED_CLUSTER"]), "{message}");
    assert!(message.contains("answered 401 Unauthorized"), "{message}");
    assert!(message.contains("create-access-entry"), "{message}");
    let decisions = decisions_since(&tb, offset);
    let refused = format!(
        "decision=reject reason=no access entry for {role} (from {})",
        session_arn(&tb, &role)
    );
    assert!(decisions.contains(&refused), "{decisions}");
    assert!(fx.job_uid("succeeded-1h").await.is_some());
    fx.cleanup().await;
}

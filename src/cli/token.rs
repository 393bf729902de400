//! `eks-reaper token`: the bearer token the reaper signs for a cluster, as a
//! `client.authentication.k8s.io/v1beta1` `ExecCredential` on stdout, so the binary serves
//! as a kubeconfig exec credential plugin the way `aws eks get-token` does.
//!
//! The token is the one [`crate::eks::token`] builds for a run (a locally presigned STS
//! `GetCallerIdentity` URL bound to the cluster name); no call reaches Kubernetes, and only
//! an assumed role makes an AWS call (`sts:AssumeRole`).

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use clap::Args;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::config::options::{HiddenParser, Parsed};
use crate::config::{ExternalId, values};
use crate::deadline::Deadline;
use crate::eks::{self, AWS_CALL, TOKEN_CREDENTIALS, token};

/// How long a client may use the token: EKS accepts it for 15 minutes from its signing
/// time; a minute less leaves room for a request sent just before, as `aws eks get-token`
/// does.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

/// `eks-reaper token` arguments.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// EKS cluster name the token is bound to (`x-k8s-aws-id`).
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    /// Region of the cluster (default: the AWS configuration's, e.g. `AWS_REGION`).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Role to assume and sign the token as (the reaper's role, another account's).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// External id sent with `sts:AssumeRole` (blank: none); never shown.
    #[arg(
        long,
        env = "REAPER_EXTERNAL_ID",
        value_name = "ID",
        default_value = "",
        hide_default_value = true,
        hide_env_values = true,
        value_parser = HiddenParser(values::external_id)
    )]
    pub external_id: Parsed<Option<ExternalId>>,
}

/// Prints the `ExecCredential`. Exit status: 0 printed, 1 no credentials or signing failed,
/// 2 invalid arguments.
pub async fn main(args: TokenArgs) -> ExitCode {
    let cluster = args.cluster.trim();
    if cluster.is_empty() {
        eprintln!("eks-reaper: invalid configuration: --cluster: empty cluster name");
        return ExitCode::from(2);
    }
    let external_id = match args.external_id.get() {
        Ok(id) => id,
        Err(e) => {
            eprintln!("eks-reaper: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let base = crate::run::load_aws_config().await;
    let Some(region) = args
        .region
        .clone()
        .or_else(|| base.region().map(|r| r.as_ref().to_owned()))
    else {
        eprintln!(
            "eks-reaper: invalid configuration: --region: no AWS region (set AWS_REGION or pass --region)"
        );
        return ExitCode::from(2);
    };
    let sdk = eks::identity(
        &base,
        &region,
        args.role_arn.as_deref(),
        external_id.as_ref(),
    )
    .await;
    let Some(provider) = sdk.credentials_provider() else {
        eprintln!("eks-reaper: token: no AWS credentials available");
        return ExitCode::from(1);
    };
    let credentials = match Deadline::none()
        .bound(TOKEN_CREDENTIALS, AWS_CALL, provider.provide_credentials())
        .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let e = eks::Error::Credentials { source: e };
            eprintln!("eks-reaper: token: {e}");
            return ExitCode::from(1);
        }
        Err(cut) => {
            eprintln!("eks-reaper: token: {cut}");
            return ExitCode::from(1);
        }
    };
    let signed_at = SystemTime::now();
    let bearer = match token::token(&credentials, &region, cluster, signed_at) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("eks-reaper: token: {e}");
            return ExitCode::from(1);
        }
    };
    let expires = expiry(signed_at, credentials.expiry());
    println!("{}", exec_credential(&bearer, expires));
    ExitCode::SUCCESS
}

/// When a client must stop using the token: [`TOKEN_LIFETIME`] after signing, or when the
/// credentials that signed it expire (an assumed role's session), whichever comes first.
pub fn expiry(signed_at: SystemTime, credentials_expiry: Option<SystemTime>) -> Timestamp {
    let by_eks = signed_at + TOKEN_LIFETIME;
    let end = credentials_expiry.map_or(by_eks, |c| c.min(by_eks));
    Timestamp::try_from(end).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The `ExecCredential` kubectl and client-go read from an exec plugin's stdout.
/// `expirationTimestamp` is RFC 3339 at second precision, rounded down.
pub fn exec_credential(bearer: &str, expires: Timestamp) -> Value {
    json!({
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "spec": {},
        "status": {
            "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "token": bearer,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn token_expires_fourteen_minutes_after_signing() {
        let t = expiry(at(1_795_899_600), None);
        assert_eq!(t.to_string(), "2026-11-28T21:14:00Z");
    }

    #[test]
    fn credentials_expiring_sooner_shorten_the_token() {
        let t = expiry(at(1_795_899_600), Some(at(1_795_899_600 + 300)));
        assert_eq!(t.to_string(), "2026-11-28T21:05:00Z");
    }

    #[test]
    fn exec_credential_is_the_v1beta1_shape_kubectl_reads() {
        let signed: Timestamp = "2026-11-28T21:14:00.9Z".parse().expect("ts");
        let v = exec_credential("k8s-aws-v1.abc", signed);
        assert_eq!(v["kind"], "ExecCredential");
        assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1beta1");
        assert_eq!(v["status"]["token"], "k8s-aws-v1.abc");
        assert_eq!(v["status"]["expirationTimestamp"], "2026-11-28T21:14:00Z");
    }
}

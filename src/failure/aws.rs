//! An AWS SDK error as a classified one-line message ([`super::hint`]): missing, expired or
//! refused credentials, a denied action, a missing cluster, an unreachable API; anything
//! else as the error's chain ([`super::chain::Chain`]), never its `Debug` structure.

use std::error::Error;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_eks::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use super::ClusterFailure;
use super::chain::{self, Chain};
use super::hint;

/// Which call failed, on which cluster, in which region.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The IAM action (`eks:DescribeCluster`).
    pub action: &'a str,
    /// The cluster the call was about.
    pub cluster: &'a str,
    /// The region it was sent to.
    pub region: &'a str,
}

/// The kind and the one-line message of a failed AWS call.
pub fn classify<E>(call: Call<'_>, e: &SdkError<E, HttpResponse>) -> (ClusterFailure, String)
where
    E: ProvideErrorMetadata + Error + 'static,
{
    if let Some(c) = chain::find::<CredentialsError>(e) {
        return (ClusterFailure::AwsCredentials, credentials(call.action, c));
    }
    let code = e.code().unwrap_or("");
    let message = e.message().unwrap_or("");
    let cause = if message.is_empty() {
        code.to_owned()
    } else {
        format!("{code}: {message}")
    };
    match code {
        "ResourceNotFoundException" if call.action == "eks:DescribeCluster" => (
            ClusterFailure::ClusterNotFound,
            hint::cluster_not_found(call.cluster, call.region, &cause),
        ),
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
            let d =
                hint::Denied::from_message(call.action, code, message, call.cluster, call.region);
            (ClusterFailure::AccessDenied, hint::access_denied(&d))
        }
        "ExpiredTokenException" | "ExpiredToken" | "RequestExpired" => (
            ClusterFailure::AwsCredentials,
            hint::expired_credentials(call.action, &cause),
        ),
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "AuthFailure" => (
            ClusterFailure::AwsCredentials,
            hint::credentials_refused(call.action, &cause),
        ),
        _ => {
            let kind = ClusterFailure::DescribeClusterFailed;
            match e {
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => (
                    kind,
                    hint::aws_unreachable(call.action, call.region, &chain::root_cause(e)),
                ),
                _ if !code.is_empty() => (kind, format!("{} failed: {cause}", call.action)),
                _ => match e.raw_response().and_then(unread_answer) {
                    // An answer the SDK could not read (not the service's error format):
                    // its own words are the only cause there is.
                    Some(answer) => (
                        kind,
                        format!("{} failed: {answer} ({})", call.action, Chain(e)),
                    ),
                    None => (kind, format!("{} failed: {}", call.action, Chain(e))),
                },
            }
        }
    }
}

/// An error answer's status and the start of its body, whitespace collapsed.
fn unread_answer(r: &HttpResponse) -> Option<String> {
    const SHOWN: usize = 300;
    let status = r.status().as_u16();
    if status < 400 {
        return None;
    }
    let body = String::from_utf8_lossy(r.body().bytes().unwrap_or_default());
    let body: Vec<&str> = body.split_whitespace().collect();
    let body = body.join(" ");
    let mut shown: String = body.chars().take(SHOWN).collect();
    if body.chars().count() > SHOWN {
        shown.push_str("...");
    }
    Some(format!("HTTP {status}: {shown}"))
}

/// A credentials provider's error as the one-line message for `action`.
///
/// The default chain tries instance metadata last, so on a machine with no credentials
/// anywhere its error is the one that comes back: blaming IMDS for it would send a person
/// after the wrong thing. With no other source configured, it reads as "no credentials".
pub fn credentials(action: &str, e: &CredentialsError) -> String {
    let cause = Chain(e).to_string();
    match e {
        CredentialsError::CredentialsNotLoaded(_) => {
            hint::no_credentials(action, &hint::profile_from_env())
        }
        _ if cause.contains("IMDS") && !hint::credential_source_configured() => {
            hint::no_credentials(action, &hint::profile_from_env())
        }
        _ => hint::credentials_failed(action, &cause),
    }
}

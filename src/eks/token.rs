//! The EKS bearer token: a presigned STS `GetCallerIdentity` URL.
//!
//! EKS's authenticator accepts `k8s-aws-v1.` + base64url-without-padding of a SigV4
//! query-presigned `GET https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&
//! Version=2011-06-15` whose signed headers include `x-k8s-aws-id: <cluster name>`. It honours
//! the token for 15 minutes from `X-Amz-Date`, whatever `X-Amz-Expires` says, and only for the
//! public STS hosts with the standard parameters — so the URL uses the real regional host even
//! when the SDK's endpoints are overridden. Signing is local: no STS call is made.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningError, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Prefix EKS expects in front of the encoded URL.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// Header binding the token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// `X-Amz-Expires` sent (EKS ignores it beyond its own 15 minutes, but it must be present).
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);

/// Why a token could not be built (never contains key material).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// SigV4 signing failed.
    #[error("signing the STS GetCallerIdentity URL failed")]
    Sign(#[from] SigningError),
    /// Region, cluster name or time not usable for signing.
    #[error("cannot presign GetCallerIdentity: {0}")]
    Params(String),
}

/// The regional STS host for `region` (China regions use their own partition's domain).
pub fn sts_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("sts.{region}.amazonaws.com.cn")
    } else {
        format!("sts.{region}.amazonaws.com")
    }
}

/// Builds the bearer token for `cluster` in `region`, signed with `credentials` at `time`.
pub fn token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    time: SystemTime,
) -> Result<String, TokenError> {
    let url = presigned_url(credentials, region, cluster, time)?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(url)))
}

/// The presigned `GetCallerIdentity` URL inside the token.
pub fn presigned_url(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    time: SystemTime,
) -> Result<String, TokenError> {
    let host = sts_host(region);
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| TokenError::Params(e.to_string()))?
        .into();
    let headers = [("host", host.as_str()), (CLUSTER_ID_HEADER, cluster)];
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )?;
    let (instructions, _signature) = sign(signable, &params)?.into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(url.as_str())
        .body(())
        .map_err(|e| TokenError::Params(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn fixed_credentials() -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )
    }

    /// 2026-11-28T21:00:00Z
    fn fixed_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_899_600)
    }

    fn decode(token: &str) -> (String, BTreeMap<String, String>) {
        let encoded = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert!(!encoded.contains('='), "base64url without padding");
        let url =
            String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).expect("base64url")).expect("utf-8");
        let (base, query) = url.split_once('?').expect("query");
        let params = query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("k=v");
                (k.to_owned(), v.to_owned())
            })
            .collect();
        (base.to_owned(), params)
    }

    #[test]
    fn token_is_a_presigned_regional_sts_url_bound_to_the_cluster() {
        let t = token(&fixed_credentials(), "eu-west-1", "etl", fixed_time()).expect("signs");
        let (base, q) = decode(&t);
        assert_eq!(base, "https://sts.eu-west-1.amazonaws.com/");
        assert_eq!(q["Action"], "GetCallerIdentity");
        assert_eq!(q["Version"], "2011-06-15");
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(
            q["X-Amz-Credential"],
            "AKIDEXAMPLE%2F20261128%2Feu-west-1%2Fsts%2Faws4_request"
        );
        assert_eq!(q["X-Amz-Date"], "20261128T210000Z");
        assert_eq!(q["X-Amz-Expires"], "60");
        assert_eq!(q["X-Amz-SignedHeaders"], "host%3Bx-k8s-aws-id");
        assert!(!q.contains_key("X-Amz-Security-Token"));
    }

    #[test]
    fn token_signature_matches_an_independent_sigv4_computation() {
        // Golden computed outside this crate (Python hashlib/hmac, SigV4 by hand) from the
        // canonical request
        //   GET\n/\nAction=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256
        //   &X-Amz-Credential=AKIDEXAMPLE%2F20261128%2Feu-west-1%2Fsts%2Faws4_request
        //   &X-Amz-Date=20261128T210000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id
        //   \nhost:sts.eu-west-1.amazonaws.com\nx-k8s-aws-id:etl\n\nhost;x-k8s-aws-id\n<sha256("")>
        let t = token(&fixed_credentials(), "eu-west-1", "etl", fixed_time()).expect("signs");
        let (_, q) = decode(&t);
        assert_eq!(q["X-Amz-Signature"], GOLDEN_SIGNATURE);
    }

    #[test]
    fn token_depends_on_the_cluster_name() {
        let a = token(&fixed_credentials(), "eu-west-1", "etl", fixed_time()).expect("signs");
        let b = token(&fixed_credentials(), "eu-west-1", "web", fixed_time()).expect("signs");
        assert_ne!(
            decode(&a).1["X-Amz-Signature"],
            decode(&b).1["X-Amz-Signature"]
        );
    }

    #[test]
    fn session_token_is_carried_in_the_query() {
        let creds = Credentials::new("AKID", "SECRET", Some("SESSION/TOKEN".into()), None, "t");
        let t = token(&creds, "us-east-1", "etl", fixed_time()).expect("signs");
        let (base, q) = decode(&t);
        assert_eq!(base, "https://sts.us-east-1.amazonaws.com/");
        assert_eq!(q["X-Amz-Security-Token"], "SESSION%2FTOKEN");
    }

    #[test]
    fn china_regions_use_their_partition_host() {
        assert_eq!(sts_host("cn-north-1"), "sts.cn-north-1.amazonaws.com.cn");
    }

    const GOLDEN_SIGNATURE: &str =
        "1e007ceb2db55a18c5f9e716fd7ba59644fc96773921ba4522cf95e5163e9694";
}

//! The one-line messages of the failures an operator meets first, each saying what failed,
//! the cause, and what to do. The errors of the EKS connection and the listing
//! classify themselves and fill these in; the line is the report's `error`, the log line's
//! `error` field, the CLI's stderr line and the Lambda's `errorMessage` alike.
//!
//! | Failure | Kind | The line names |
//! |---|---|---|
//! | no AWS credentials | `AwsCredentials` | the credential sources tried, how to provide them |
//! | expired or refused credentials | `AwsCredentials` | the AWS error, how to renew or check them |
//! | an AWS call denied | `AccessDenied` | the action, the resource, the principal (its IAM policy) |
//! | no such cluster | `ClusterNotFound` | the cluster and the region asked, and that the region may be wrong |
//! | API server unreachable | `Unreachable` | the endpoint, the error, the VPC settings a private endpoint needs |
//! | TLS with the API server failed | `Unreachable` | the endpoint, the error, the CA it was checked against |
//! | 401 from the API server | `Unauthorized` | the access entry the IAM principal needs (or the cluster name in the token) |
//! | 403 from RBAC | `Forbidden`, `DeleteForbidden` | the verb and resource, the `kubectl auth can-i` line to check it |

use std::fmt::Write as _;

/// The Kubernetes group the shipped access entry maps the reaper's role to, and the
/// subject of the shipped ClusterRoleBinding (`infra/rbac/eks-reaper-rbac.yaml`).
pub const RBAC_GROUP: &str = "eks-reaper";

/// The shipped ClusterRole and binding.
pub const RBAC_MANIFEST: &str = "infra/rbac/eks-reaper-rbac.yaml";

/// Where the AWS SDK's default chain looks for credentials, in its order.
fn credential_sources(profile: &str) -> String {
    format!(
        "tried AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile \"{profile}\" in ~/.aws/config \
         and ~/.aws/credentials, a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS \
         container endpoint and EC2 instance metadata"
    )
}

/// The profile the SDK reads (`AWS_PROFILE`, else `default`).
pub fn profile_from_env() -> String {
    std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

/// Whether any credential source other than instance metadata is configured: keys or a
/// profile in the environment, a web identity token, the container endpoint, or an AWS
/// config or credentials file.
pub fn credential_source_configured() -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let file = |name: &str| {
        home.as_ref()
            .is_some_and(|h| h.join(".aws").join(name).exists())
    };
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ]
    .iter()
    .any(|k| set(k))
        || file("config")
        || file("credentials")
}

/// No credential source gave credentials; `call` is what needed them.
pub fn no_credentials(call: &str, profile: &str) -> String {
    format!(
        "{call} not sent: no AWS credentials ({}). Provide them: AWS_PROFILE=NAME (and `aws \
         sso login` for an SSO profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        credential_sources(profile)
    )
}

/// The credentials were found but resolving them failed (an SSO or assume-role error).
pub fn credentials_failed(call: &str, cause: &str) -> String {
    if cause.to_ascii_lowercase().contains("expired") {
        return expired_credentials(call, cause);
    }
    format!(
        "{call} not sent: the AWS credentials could not be resolved: {cause}. Check the \
         profile (AWS_PROFILE) or the role to assume and its trust policy"
    )
}

/// AWS said the session has expired.
pub fn expired_credentials(call: &str, cause: &str) -> String {
    format!(
        "{call} refused: the AWS session has expired ({cause}). Renew it: `aws sso login` \
         for an SSO profile, or new temporary credentials (AWS_SESSION_TOKEN)"
    )
}

/// AWS does not know or accept the access key (`UnrecognizedClientException`,
/// `InvalidClientTokenId`, a signature mismatch).
pub fn credentials_refused(call: &str, cause: &str) -> String {
    format!(
        "{call} refused: AWS does not accept these credentials ({cause}). Check that the \
         access key (or AWS_PROFILE) belongs to an active IAM identity and the secret matches"
    )
}

/// Who was denied what, as far as AWS said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The IAM action (`eks:DescribeCluster`).
    pub action: String,
    /// The resource: AWS's `on resource:` when it names one, else the cluster ARN built
    /// from the principal's account, else `cluster NAME in REGION`.
    pub resource: String,
    /// The principal AWS named (`User: arn:...`), if it did.
    pub principal: Option<String>,
    /// The AWS error code and message.
    pub cause: String,
}

impl Denied {
    /// Reads the principal and the resource from AWS's message (`User: ARN is not
    /// authorized to perform: ACTION on resource: ARN ...`); `cluster`, `region` fill the
    /// resource in when AWS did not name it.
    pub fn from_message(
        action: &str,
        code: &str,
        message: &str,
        cluster: &str,
        region: &str,
    ) -> Denied {
        let principal = word_after(message, "User: ");
        let resource = word_after(message, "on resource: ")
            .or_else(|| {
                let principal = principal.as_deref()?;
                let mut parts = principal.split(':');
                let (_, partition, _, _, account) = (
                    parts.next()?,
                    parts.next()?,
                    parts.next()?,
                    parts.next()?,
                    parts.next()?,
                );
                (action.starts_with("eks:") && !account.is_empty())
                    .then(|| format!("arn:{partition}:eks:{region}:{account}:cluster/{cluster}"))
            })
            .unwrap_or_else(|| format!("cluster {cluster} in {region}"));
        let cause = if message.is_empty() {
            code.to_owned()
        } else {
            format!("{code}: {message}")
        };
        Denied {
            action: action.to_owned(),
            resource,
            principal,
            cause,
        }
    }
}

/// The first whitespace-delimited word after `marker`, trailing punctuation removed.
fn word_after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let word = rest
        .split_whitespace()
        .next()?
        .trim_end_matches([',', '.', ';']);
    (!word.is_empty()).then(|| word.to_owned())
}

/// An AWS call was denied.
pub fn access_denied(d: &Denied) -> String {
    let who = d
        .principal
        .as_deref()
        .map_or_else(|| "this identity".to_owned(), |p| p.to_owned());
    format!(
        "{} denied for {who} on {} ({}). Allow {} on that resource in the IAM policy of {who} \
         (and check SCPs and permission boundaries)",
        d.action, d.resource, d.cause, d.action
    )
}

/// `DescribeCluster` found no such cluster.
pub fn cluster_not_found(cluster: &str, region: &str, cause: &str) -> String {
    format!(
        "eks:DescribeCluster: no cluster \"{cluster}\" in region {region} ({cause}). Check the \
         name, and the region: name it {cluster}@REGION, or set AWS_REGION, if it lives in \
         another one"
    )
}

/// An AWS API could not be reached at all.
pub fn aws_unreachable(call: &str, region: &str, cause: &str) -> String {
    let service = call.split(':').next().unwrap_or(call);
    format!(
        "{call} failed: the {service} API could not be reached: {cause}. Check the network \
         path to {service}.{region}.amazonaws.com (NAT, proxy, or a {service} VPC endpoint) \
         and any AWS_ENDPOINT_URL override"
    )
}

/// The API server could not be reached (connection refused, no route, DNS).
pub fn endpoint_unreachable(doing: &str, endpoint: &str, cause: &str) -> String {
    format!(
        "{doing}: the API server {endpoint} is unreachable: {cause}. If the cluster endpoint is \
         private, eks-reaper must run in the cluster's VPC (Lambda VpcConfig: subnets routed \
         to it and a security group the cluster security group admits on 443); if it is \
         public, check publicAccessCidrs and any proxy"
    )
}

/// TLS with the API server failed (its certificate does not verify against the cluster CA).
pub fn endpoint_tls(doing: &str, endpoint: &str, cause: &str) -> String {
    format!(
        "{doing}: TLS with the API server {endpoint} failed: {cause}. Its certificate must \
         verify against the cluster CA from eks:DescribeCluster: check the endpoint is the \
         cluster's own and nothing on the way (a proxy) re-signs TLS"
    )
}

/// The API server answered 401 to a token it was given.
pub fn unauthorized(doing: &str, endpoint: &str, cluster: &str, region: &str) -> String {
    format!(
        "{doing}: the API server {endpoint} answered 401 Unauthorized to a fresh token: the \
         IAM principal has no access entry on cluster {cluster} (or the token names another \
         cluster). Add one: aws eks create-access-entry --cluster-name {cluster} --region \
         {region} --principal-arn ARN --kubernetes-groups {RBAC_GROUP}"
    )
}

/// What an RBAC refusal names: `User "U" cannot VERB resource "R" in API group "G" (in the
/// namespace "N" | at the cluster scope)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The Kubernetes user.
    pub user: Option<String>,
    /// The verb refused.
    pub verb: String,
    /// The resource, as kubectl names it (`jobs.batch`, `pods`).
    pub resource: String,
    /// The namespace, when the request was namespaced.
    pub namespace: Option<String>,
}

impl Refusal {
    /// Reads the API server's 403 message; `verb` and `resource` are used when the message
    /// does not follow RBAC's wording.
    pub fn from_message(message: &str, verb: &str, resource: &str) -> Refusal {
        let quoted = |marker: &str| {
            let rest = &message[message.find(marker)? + marker.len()..];
            let rest = rest.strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_owned())
        };
        let user = quoted("User ");
        let parsed_verb = message
            .find(" cannot ")
            .map(|i| &message[i + " cannot ".len()..])
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        let parsed_resource = quoted("resource ").map(|r| match quoted("API group ") {
            Some(g) if !g.is_empty() => format!("{r}.{g}"),
            _ => r,
        });
        Refusal {
            user,
            verb: parsed_verb.unwrap_or_else(|| verb.to_owned()),
            resource: parsed_resource.unwrap_or_else(|| resource.to_owned()),
            namespace: quoted("in the namespace "),
        }
    }

    /// `kubectl auth can-i VERB RESOURCE (-n NS | --all-namespaces) --as=USER
    /// --as-group=eks-reaper`: whether the shipped group may do it.
    pub fn can_i(&self) -> String {
        let mut line = format!("kubectl auth can-i {} {}", self.verb, self.resource);
        match &self.namespace {
            Some(ns) => {
                let _ = write!(line, " -n {ns}");
            }
            None => line.push_str(" --all-namespaces"),
        }
        let user = self.user.as_deref().unwrap_or("x");
        let _ = write!(line, " --as={user} --as-group={RBAC_GROUP}");
        line
    }
}

/// RBAC refused a request; `doing` says which, `status` is the API server's message.
pub fn forbidden(doing: &str, r: &Refusal, status: &str) -> String {
    let user = r
        .user
        .as_deref()
        .map_or_else(String::new, |u| format!(" for user \"{u}\""));
    format!(
        "{doing}: RBAC forbids {} on {}{user} (403: {status}). The access entry must put the \
         identity in group {RBAC_GROUP}, bound to the eks-reaper ClusterRole ({RBAC_MANIFEST}); \
         check: {}",
        r.verb,
        r.resource,
        r.can_i()
    )
}

/// The identity listed but its deletions were refused (403/401); `r` is read from the first
/// refusal's message (the report's `errorSamples` keeps it whole).
pub fn delete_forbidden(refused: u64, r: &Refusal) -> String {
    let user = r
        .user
        .as_deref()
        .map_or_else(String::new, |u| format!(" for user \"{u}\""));
    format!(
        "{refused} deletion(s) refused: RBAC forbids {} on {}{user} (403). The identity can \
         list but not delete: apply the eks-reaper ClusterRole ({RBAC_MANIFEST}); check: {}",
        r.verb,
        r.resource,
        r.can_i()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_credentials_names_the_sources_tried_and_how_to_provide_them() {
        let line = no_credentials("eks:DescribeCluster", "dev");
        assert_eq!(
            line,
            "eks:DescribeCluster not sent: no AWS credentials (tried \
             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile \"dev\" in ~/.aws/config and \
             ~/.aws/credentials, a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), the ECS \
             container endpoint and EC2 instance metadata). Provide them: AWS_PROFILE=NAME (and \
             `aws sso login` for an SSO profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        );
    }

    #[test]
    fn a_credential_error_saying_expired_gets_the_renewal_hint() {
        let line = credentials_failed("eks:DescribeCluster", "the SSO token has expired");
        assert!(line.contains("session has expired"), "{line}");
        assert!(line.contains("aws sso login"), "{line}");
    }

    #[test]
    fn access_denied_names_action_resource_and_principal_from_aws_words() {
        let d = Denied::from_message(
            "eks:DescribeCluster",
            "AccessDeniedException",
            "User: arn:aws:iam::111122223333:user/dev is not authorized to perform: \
             eks:DescribeCluster on resource: arn:aws:eks:eu-west-1:111122223333:cluster/etl",
            "etl",
            "eu-west-1",
        );
        assert_eq!(
            d.principal.as_deref(),
            Some("arn:aws:iam::111122223333:user/dev")
        );
        assert_eq!(d.resource, "arn:aws:eks:eu-west-1:111122223333:cluster/etl");
        let line = access_denied(&d);
        assert!(
            line.starts_with(
                "eks:DescribeCluster denied for arn:aws:iam::111122223333:user/dev on \
                 arn:aws:eks:eu-west-1:111122223333:cluster/etl (AccessDeniedException: User:"
            ),
            "{line}"
        );
        assert!(
            line.ends_with("(and check SCPs and permission boundaries)"),
            "{line}"
        );
    }

    #[test]
    fn access_denied_without_a_resource_builds_the_cluster_arn_from_the_account() {
        let d = Denied::from_message(
            "eks:DescribeCluster",
            "AccessDeniedException",
            "User: arn:aws-cn:iam::123456789012:user/x is not authorized to perform: \
             eks:DescribeCluster",
            "etl",
            "cn-north-1",
        );
        assert_eq!(
            d.resource,
            "arn:aws-cn:eks:cn-north-1:123456789012:cluster/etl"
        );
        let bare = Denied::from_message("eks:DescribeCluster", "AccessDenied", "", "etl", "r");
        assert_eq!(bare.resource, "cluster etl in r");
        assert_eq!(bare.principal, None);
        assert!(access_denied(&bare).contains("for this identity"));
    }

    #[test]
    fn rbac_message_gives_verb_resource_user_and_the_can_i_line() {
        let r = Refusal::from_message(
            "jobs.batch is forbidden: User \"norbac\" cannot list resource \"jobs\" in API \
             group \"batch\" at the cluster scope",
            "list",
            "jobs",
        );
        assert_eq!(
            r,
            Refusal {
                user: Some("norbac".to_owned()),
                verb: "list".to_owned(),
                resource: "jobs.batch".to_owned(),
                namespace: None,
            }
        );
        assert_eq!(
            r.can_i(),
            "kubectl auth can-i list jobs.batch --all-namespaces --as=norbac \
             --as-group=eks-reaper"
        );
        let pods = Refusal::from_message(
            "pods \"p\" is forbidden: User \"u\" cannot delete resource \"pods\" in API group \
             \"\" in the namespace \"etl\"",
            "delete",
            "pods",
        );
        assert_eq!(
            pods.can_i(),
            "kubectl auth can-i delete pods -n etl --as=u --as-group=eks-reaper"
        );
    }

    #[test]
    fn a_403_not_worded_by_rbac_keeps_the_request_verb_and_resource() {
        let r = Refusal::from_message("forbidden", "list", "jobs.batch");
        assert_eq!(
            r.can_i(),
            "kubectl auth can-i list jobs.batch --all-namespaces --as=x --as-group=eks-reaper"
        );
    }
}

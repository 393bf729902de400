//! Everything that talks to EKS: AWS configuration for the cluster's region and
//! (optionally) an assumed role, one `DescribeCluster` per cluster per run (status,
//! endpoint, CA, subnets), the Fargate profiles' subnets, a Kubernetes client
//! authenticated with a presigned STS token, and the server's Kubernetes version checked
//! against the supported range ([`version`]).

pub mod client;
pub mod describe;
pub mod discover;
pub mod fargate;
pub mod token;
pub mod version;

use std::time::Duration;

use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::SdkConfig;
use aws_types::region::Region;

pub use client::{ClusterAccess, TOKEN_MAX_AGE};
pub use describe::{Cluster, Endpoint};
pub use fargate::FargateProfile;

use crate::config::{ClusterTarget, ExternalId, KubeconfigContext};
use crate::deadline::{CallLimits, Cut, Deadline};
use crate::failure::{ClusterFailure, hint};

/// Names the credential resolution behind a new EKS token (possibly an `sts:AssumeRole`
/// call) in a [`Cut`].
pub const TOKEN_CREDENTIALS: &str = "AWS credentials for the EKS token";

/// Time limits of one AWS call (`DescribeCluster`, the Fargate profile and subnet calls,
/// resolving credentials): the SDK's retries included, and only started with a second left.
/// The SDK has no read timeout by default: an endpoint that accepts the connection and
/// never answers would hold the call for ever.
pub const AWS_CALL: CallLimits = CallLimits {
    cap: Duration::from_secs(10),
    min_start: Duration::from_secs(1),
};

/// Time limits of the one `GET /version` per cluster. Short: a version that cannot be read
/// is not checked, and the lists that follow meet a slow or hung server on their own terms.
pub const VERSION_CALL: CallLimits = CallLimits {
    cap: Duration::from_secs(5),
    min_start: Duration::from_secs(1),
};

/// Why a cluster could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No region for the cluster: neither `name@region`, the event, nor `AWS_REGION`.
    #[error("no AWS region for the cluster (set AWS_REGION or use name@region)")]
    NoRegion,
    /// No AWS credentials available.
    #[error("{}", hint::no_credentials("signing the EKS token", &hint::profile_from_env()))]
    NoCredentials,
    /// Resolving credentials (or assuming the role) failed.
    #[error("{}", crate::failure::aws::credentials("signing the EKS token", .source))]
    Credentials {
        /// The provider's error (never key material).
        #[source]
        source: aws_credential_types::provider::error::CredentialsError,
    },
    /// `DescribeCluster` failed; `message` is the classified one-line message
    /// ([`crate::failure::aws`]).
    #[error("{message}")]
    Describe {
        /// Classification for the report and Lambda's `errorType`.
        kind: ClusterFailure,
        /// The AWS error code and message.
        message: String,
        /// The SDK's error.
        #[source]
        source: Box<aws_sdk_eks::Error>,
    },
    /// `DescribeCluster` returned something unusable.
    #[error("{field}: {reason}")]
    ClusterData {
        /// The response field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Building the token failed.
    #[error(transparent)]
    Token(#[from] token::TokenError),
    /// An AWS call (or credential resolution) got no answer before the deadline or within
    /// its time limit, or there was no time left to start it.
    #[error(transparent)]
    Timeout(#[from] Cut),
    /// The kubeconfig context could not be loaded.
    #[error("kubeconfig {what}: {message}")]
    Kubeconfig {
        /// The file and context.
        what: String,
        /// kube's error.
        message: String,
    },
    /// The API server runs a Kubernetes older than supported.
    #[error(transparent)]
    UnsupportedVersion(#[from] version::Unsupported),
    /// Building the Kubernetes client failed.
    #[error("kubernetes client for {endpoint}: {}", crate::failure::chain::Chain(.source.as_ref() as &kube::Error))]
    Kube {
        /// The API server URL.
        endpoint: String,
        /// kube's error.
        #[source]
        source: Box<kube::Error>,
    },
}

impl Error {
    /// Short classification (report `errors` key, Lambda `errorType`).
    pub fn kind(&self) -> ClusterFailure {
        match self {
            Error::NoRegion => ClusterFailure::NoRegion,
            Error::NoCredentials | Error::Credentials { .. } => ClusterFailure::AwsCredentials,
            Error::Describe { kind, .. } => *kind,
            Error::ClusterData { .. } => ClusterFailure::ClusterData,
            Error::Token(_) => ClusterFailure::Token,
            Error::Timeout(_) => ClusterFailure::Timeout,
            Error::Kube { .. } | Error::Kubeconfig { .. } => ClusterFailure::KubeClient,
            Error::UnsupportedVersion(_) => ClusterFailure::UnsupportedVersion,
        }
    }
}

/// A cluster ready to be pruned, with the AWS clients for its region and identity.
#[derive(Debug)]
pub struct Connection {
    /// Region the cluster lives in.
    pub region: String,
    /// Authenticated Kubernetes access.
    pub access: ClusterAccess,
    /// The cluster's own subnets, as `DescribeCluster` gave them.
    pub subnet_ids: Vec<String>,
    /// EKS client for the cluster's region and identity (Fargate profiles).
    pub eks: aws_sdk_eks::Client,
    /// EC2 client for the cluster's region and identity (subnet headroom).
    pub ec2: aws_sdk_ec2::Client,
    /// The cluster's subnets are known from EKS. False for a kubeconfig context not named
    /// as an EKS cluster: the headroom read and the forecast are skipped.
    pub subnets_known: bool,
    /// The cluster's ARN, as `DescribeCluster` gave it.
    pub arn: Option<String>,
    /// The server's Kubernetes version (`gitVersion`), if `/version` answered.
    pub kubernetes_version: Option<String>,
    /// Set when that version is newer than eks-reaper was tested on.
    pub version_warning: Option<String>,
}

/// Outcome of connecting to one cluster.
#[derive(Debug)]
pub enum Connected {
    /// Ready.
    Ready(Box<Connection>),
    /// Not `ACTIVE`: reported, not touched.
    NotActive {
        /// Region.
        region: String,
        /// EKS status.
        status: String,
    },
}

/// A cluster left alone because it is not `ACTIVE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotActive {
    /// Its EKS status (`CREATING`, `UPDATING`...).
    pub status: String,
}

impl std::fmt::Display for NotActive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cluster status is {}, not ACTIVE", self.status)
    }
}

impl Connected {
    /// The connection, or the status that leaves the cluster alone.
    pub fn ready(self) -> Result<Box<Connection>, NotActive> {
        match self {
            Connected::Ready(connection) => Ok(connection),
            Connected::NotActive { status, .. } => Err(NotActive { status }),
        }
    }
}

/// The region a target resolves to, if any.
pub fn region_of(base: &SdkConfig, target: &ClusterTarget) -> Option<String> {
    target
        .region
        .clone()
        .or_else(|| base.region().map(|r| r.as_ref().to_owned()))
}

/// The AWS configuration for `region` and, with `role_arn`, the role assumed (session
/// `eks-reaper`, presenting `external_id`). The role's credentials are resolved lazily, by
/// the first call that needs them.
pub async fn identity(
    base: &SdkConfig,
    region: &str,
    role_arn: Option<&str>,
    external_id: Option<&ExternalId>,
) -> SdkConfig {
    let mut builder = base.to_builder();
    builder.set_region(Some(Region::new(region.to_owned())));
    if let Some(role) = role_arn {
        let mut assume = AssumeRoleProvider::builder(role.to_owned())
            .session_name("eks-reaper")
            .region(Region::new(region.to_owned()))
            .configure(base);
        if let Some(id) = external_id {
            assume = assume.external_id(id.as_str());
        }
        let provider = assume.build().await;
        builder.set_credentials_provider(Some(SharedCredentialsProvider::new(provider)));
    }
    builder.build()
}

/// Describes the cluster (unless `described` already has it, from discovery) and prepares
/// authenticated access to it; each call is bounded by `deadline` and [`AWS_CALL`].
pub async fn connect(
    base: &SdkConfig,
    target: &ClusterTarget,
    described: Option<Cluster>,
    token_max_age: Duration,
    deadline: &Deadline,
) -> Result<Connected, Error> {
    if let Some(kube) = &target.kubeconfig {
        return connect_kubeconfig(base, target, kube, described, token_max_age, deadline).await;
    }
    let (region, sdk, cluster) = match described_active(base, target, described, deadline).await? {
        Ok(found) => found,
        Err(not_active) => return Ok(not_active),
    };
    let credentials = sdk.credentials_provider().ok_or(Error::NoCredentials)?;
    let eks = aws_sdk_eks::Client::new(&sdk);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let access = ClusterAccess::new(
        target.name.clone(),
        region.clone(),
        cluster.endpoint()?,
        credentials,
        token_max_age,
    );
    // Sign now so credential problems surface as a connection failure.
    let client = deadline
        .bound(TOKEN_CREDENTIALS, AWS_CALL, access.client())
        .await??;
    let (kubernetes_version, version_warning) = checked_version(&client, deadline).await?;
    Ok(Connected::Ready(Box::new(Connection {
        region,
        access,
        subnet_ids: cluster.subnet_ids,
        eks,
        ec2,
        subnets_known: true,
        arn: cluster.arn,
        kubernetes_version,
        version_warning,
    })))
}

/// The target's region, the AWS configuration of its identity (the role assumed, if any)
/// and its description (`described`, or one `eks:DescribeCluster` bounded by `deadline`);
/// `Err(Connected::NotActive)` when the cluster is not `ACTIVE`.
async fn described_active(
    base: &SdkConfig,
    target: &ClusterTarget,
    described: Option<Cluster>,
    deadline: &Deadline,
) -> Result<Result<(String, SdkConfig, Cluster), Connected>, Error> {
    let region = region_of(base, target).ok_or(Error::NoRegion)?;
    let sdk = identity(
        base,
        &region,
        target.role_arn.as_deref(),
        target.external_id.as_ref(),
    )
    .await;
    // With a role to assume, its credentials are resolved (sts:AssumeRole) inside this call.
    let cluster = match described {
        Some(cluster) => cluster,
        None => {
            let eks = aws_sdk_eks::Client::new(&sdk);
            deadline
                .bound(
                    "eks:DescribeCluster",
                    AWS_CALL,
                    describe::describe(&eks, &target.name),
                )
                .await??
        }
    };
    if !cluster.is_active() {
        return Ok(Err(Connected::NotActive {
            region,
            status: cluster.status,
        }));
    }
    Ok(Ok((region, sdk, cluster)))
}

/// Connects through a kubeconfig context; with `kube.eks_cluster`, also describes the EKS
/// cluster of that name for its subnets (and status).
async fn connect_kubeconfig(
    base: &SdkConfig,
    target: &ClusterTarget,
    kube: &KubeconfigContext,
    described: Option<Cluster>,
    token_max_age: Duration,
    deadline: &Deadline,
) -> Result<Connected, Error> {
    let config = kube_config(kube).await?;
    let access = ClusterAccess::from_kubeconfig(target.name.clone(), config, token_max_age);
    let (region, subnet_ids, sdk, arn) = if kube.eks_cluster {
        let (region, sdk, cluster) =
            match described_active(base, target, described, deadline).await? {
                Ok(found) => found,
                Err(not_active) => return Ok(not_active),
            };
        (region, cluster.subnet_ids, sdk, cluster.arn)
    } else {
        // Not an EKS cluster as far as the run knows: no region, and no AWS call is made for
        // it (the clients are never used).
        (String::new(), Vec::new(), base.clone(), None)
    };
    let client = deadline
        .bound("the kubeconfig's credentials", AWS_CALL, access.client())
        .await??;
    let (kubernetes_version, version_warning) = checked_version(&client, deadline).await?;
    Ok(Connected::Ready(Box::new(Connection {
        region,
        access,
        subnet_ids,
        eks: aws_sdk_eks::Client::new(&sdk),
        ec2: aws_sdk_ec2::Client::new(&sdk),
        subnets_known: kube.eks_cluster,
        arn,
        kubernetes_version,
        version_warning,
    })))
}

/// Reads `GET /version` once (bounded by [`VERSION_CALL`]) and checks it: an error below
/// the supported range; the version and, above the newest tested, a warning. A version
/// that cannot be read is not checked: the lists that follow report an unreachable,
/// refusing or hung server with their own, more precise, failure.
async fn checked_version(
    client: &kube::Client,
    deadline: &Deadline,
) -> Result<(Option<String>, Option<String>), Error> {
    let unread = match deadline
        .bound("GET /version", VERSION_CALL, client.apiserver_version())
        .await
    {
        Ok(Ok(info)) => return version_checked(&info),
        Ok(Err(e)) => e.to_string(),
        Err(cut) => cut.to_string(),
    };
    tracing::debug!(error = %unread, "Kubernetes version not read; not checked");
    Ok((None, None))
}

/// [`version::check`] of what `/version` answered: its `gitVersion` and warning, if any.
fn version_checked(
    info: &k8s_openapi::apimachinery::pkg::version::Info,
) -> Result<(Option<String>, Option<String>), Error> {
    let Some(server) = version::parse(&info.git_version, &info.major, &info.minor) else {
        return Ok((None, None));
    };
    let warning = version::check(&server)?;
    Ok((Some(server.git_version), warning))
}

/// kube's configuration for a kubeconfig context (file and context as given, or kubectl's
/// defaults).
async fn kube_config(kube: &KubeconfigContext) -> Result<kube::Config, Error> {
    let what = format!(
        "{} context {}",
        kube.path
            .as_ref()
            .map_or("$KUBECONFIG".to_owned(), |p| p.display().to_string()),
        kube.context.as_deref().unwrap_or("(current)")
    );
    let fail = |message: String| Error::Kubeconfig {
        what: what.clone(),
        message,
    };
    let file = match &kube.path {
        Some(path) => kube::config::Kubeconfig::read_from(path),
        None => kube::config::Kubeconfig::read(),
    }
    .map_err(|e| fail(e.to_string()))?;
    let options = kube::config::KubeConfigOptions {
        context: kube.context.clone(),
        ..Default::default()
    };
    kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .map_err(|e| fail(e.to_string()))
}

//! A Kubernetes client for one EKS cluster whose bearer token is re-signed before EKS stops
//! accepting it (15 minutes after signing) — or, from the CLI, for a kubeconfig context,
//! whose credentials kube's config loading provides (exec plugins re-run by kube as their
//! credentials expire).
//!
//! kube's client carries a fixed token, so [`ClusterAccess`] keeps the current client with
//! the instant its token was signed and builds a new one (fresh credentials, fresh token)
//! when that is older than [`TOKEN_MAX_AGE`], or on demand after a 401. Requests already in
//! flight keep the old client; both tokens are valid at that point.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::Error;
use super::describe::Endpoint;
use super::token;

/// Default age after which a token is replaced (`REAPER_TOKEN_MAX_AGE`): well inside EKS's
/// 15 minutes, leaving room for a request started just before the refresh.
pub const TOKEN_MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// Idle-read timeout of the connection. The bound that matters is per request, tied to the
/// run's deadline (the API layer); this only ends a connection silent for longer.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a [`ClusterAccess`] gets its clients from.
enum Source {
    /// The EKS endpoint, with tokens signed from `credentials` for `region`.
    Eks {
        region: String,
        endpoint: Endpoint,
        credentials: SharedCredentialsProvider,
    },
    /// A kubeconfig context, as kube loaded it.
    Kubeconfig(Box<kube::Config>),
}

/// Authenticated access to one cluster's API server.
pub struct ClusterAccess {
    cluster: String,
    source: Source,
    max_age: Duration,
    current: Mutex<Option<(kube::Client, Instant)>>,
    tokens_signed: AtomicU64,
}

impl std::fmt::Debug for ClusterAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoint = match &self.source {
            Source::Eks { endpoint, .. } => endpoint.url.clone(),
            Source::Kubeconfig(config) => config.cluster_url.to_string(),
        };
        f.debug_struct("ClusterAccess")
            .field("cluster", &self.cluster)
            .field("endpoint", &endpoint)
            .finish_non_exhaustive()
    }
}

impl ClusterAccess {
    /// Access to `cluster` at `endpoint`, signing tokens with `credentials` for `region`.
    pub fn new(
        cluster: impl Into<String>,
        region: impl Into<String>,
        endpoint: Endpoint,
        credentials: SharedCredentialsProvider,
        max_age: Duration,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            source: Source::Eks {
                region: region.into(),
                endpoint,
                credentials,
            },
            max_age,
            current: Mutex::new(None),
            tokens_signed: AtomicU64::new(0),
        }
    }

    /// Access to `cluster` through a kubeconfig context kube has loaded; a new client is
    /// built from it after `max_age` or a 401, as for EKS.
    pub fn from_kubeconfig(
        cluster: impl Into<String>,
        config: kube::Config,
        max_age: Duration,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            source: Source::Kubeconfig(Box::new(config)),
            max_age,
            current: Mutex::new(None),
            tokens_signed: AtomicU64::new(0),
        }
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The cluster's region (empty for a kubeconfig context: none is known).
    pub fn region(&self) -> &str {
        match &self.source {
            Source::Eks { region, .. } => region,
            Source::Kubeconfig(_) => "",
        }
    }

    /// The API server URL.
    pub fn endpoint_url(&self) -> String {
        match &self.source {
            Source::Eks { endpoint, .. } => endpoint.url.clone(),
            Source::Kubeconfig(config) => config.cluster_url.to_string(),
        }
    }

    /// A client whose token is younger than the maximum age.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        let mut current = self.current.lock().await;
        if let Some((client, signed)) = current.as_ref()
            && signed.elapsed() < self.max_age
        {
            return Ok(client.clone());
        }
        if let Some((_, signed)) = current.as_ref() {
            tracing::info!(
                cluster = %self.cluster,
                age_s = signed.elapsed().as_secs(),
                "token reached its maximum age; signing a new one"
            );
        }
        let fresh = self.build().await?;
        *current = Some((fresh.clone(), Instant::now()));
        Ok(fresh)
    }

    /// Drops the current token (after a 401) so the next [`Self::client`] signs a new one.
    pub async fn invalidate(&self) {
        *self.current.lock().await = None;
    }

    /// How many tokens were signed so far.
    pub fn tokens_signed(&self) -> u64 {
        self.tokens_signed.load(Ordering::Relaxed)
    }

    async fn build(&self) -> Result<kube::Client, Error> {
        let (region, endpoint, credentials) = match &self.source {
            Source::Eks {
                region,
                endpoint,
                credentials,
            } => (region, endpoint, credentials),
            Source::Kubeconfig(config) => return kubeconfig_client(config),
        };
        let credentials = credentials
            .provide_credentials()
            .await
            .map_err(|source| Error::Credentials { source })?;
        let bearer = token::token(&credentials, region, &self.cluster, SystemTime::now())?;
        self.tokens_signed.fetch_add(1, Ordering::Relaxed);
        kube_client(endpoint, bearer)
    }
}

/// A kube client from a loaded kubeconfig context, with the same transport settings as
/// [`kube_client`].
fn kubeconfig_client(config: &kube::Config) -> Result<kube::Client, Error> {
    let mut config = config.clone();
    config.read_timeout = Some(READ_TIMEOUT);
    config.reset_reader_on_write = true;
    config.default_retry = false;
    let endpoint = config.cluster_url.to_string();
    kube::Client::try_from(config).map_err(|source| Error::Kube {
        endpoint,
        source: Box::new(source),
    })
}

/// Builds a kube client for `endpoint` with a fixed bearer token.
pub fn kube_client(endpoint: &Endpoint, bearer: String) -> Result<kube::Client, Error> {
    let uri: http::Uri = endpoint.url.parse().map_err(|_| Error::ClusterData {
        field: "cluster.endpoint",
        reason: format!("not a URL: {:?}", endpoint.url),
    })?;
    let mut config = kube::Config::new(uri);
    if !endpoint.ca_der.is_empty() {
        config.root_cert = Some(endpoint.ca_der.clone());
    }
    config.auth_info.token = Some(bearer.into());
    config.read_timeout = Some(READ_TIMEOUT);
    config.reset_reader_on_write = true;
    // We handle 429 ourselves (Retry-After, jitter, counting) and must see every status.
    config.default_retry = false;
    kube::Client::try_from(config).map_err(|source| Error::Kube {
        endpoint: endpoint.url.clone(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use aws_credential_types::Credentials;

    use super::*;

    fn access(max_age: Duration) -> ClusterAccess {
        let creds = Credentials::new("AKID", "SECRET", None, None, "test");
        ClusterAccess::new(
            "etl",
            "eu-west-1",
            Endpoint {
                url: "https://127.0.0.1:6443".to_owned(),
                ca_der: vec![],
            },
            SharedCredentialsProvider::new(creds),
            max_age,
        )
    }

    #[tokio::test]
    async fn token_is_reused_while_young() {
        let a = access(TOKEN_MAX_AGE);
        a.client().await.expect("client");
        a.client().await.expect("client");
        assert_eq!(a.tokens_signed(), 1);
    }

    #[tokio::test]
    async fn token_older_than_the_max_age_is_re_signed() {
        let a = access(Duration::from_millis(20));
        a.client().await.expect("client");
        tokio::time::sleep(Duration::from_millis(30)).await;
        a.client().await.expect("client");
        assert_eq!(a.tokens_signed(), 2);
    }

    #[tokio::test]
    async fn invalidate_forces_a_new_token() {
        let a = access(TOKEN_MAX_AGE);
        a.client().await.expect("client");
        a.invalidate().await;
        a.client().await.expect("client");
        assert_eq!(a.tokens_signed(), 2);
    }
}

//! One Kubernetes API call, the way the reaper needs it: raw, so the status code and the
//! `Retry-After` header stay visible (kube's typed errors hide headers); counted; 429 answered
//! with `Retry-After` plus jitter; a 401 answered once with a freshly signed token; and never
//! waiting past the run's deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::StatusCode;
use kube::client::Body;
use rand::Rng;
use serde::Deserialize;
use tracing::{debug, info, warn};

use crate::deadline::Deadline;
use crate::eks::ClusterAccess;

/// How many times one call is retried after 429 before giving up.
const MAX_THROTTLED_RETRIES: u32 = 12;
/// Back-off when a 429 carries no usable `Retry-After`.
const BASE_BACKOFF: Duration = Duration::from_millis(500);
/// Longest single wait.
const MAX_BACKOFF: Duration = Duration::from_secs(32);
/// Transport failures retried (connection reset, timeout) before giving up.
const MAX_TRANSPORT_RETRIES: u32 = 2;

/// Request and throttling counters for one cluster.
#[derive(Debug, Default)]
pub struct ApiStats {
    requests: AtomicU64,
    throttled: AtomicU64,
}

impl ApiStats {
    /// Requests sent (including retries).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// 429 answers received.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }
}

/// A response: status and body.
pub struct Response {
    /// HTTP status.
    pub status: StatusCode,
    /// Raw body, as received (not copied: a list page can be megabytes).
    body: Box<dyn AsRef<[u8]> + Send + Sync>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body_len", &self.body().len())
            .finish()
    }
}

impl Response {
    /// A response from its parts.
    pub fn new(status: StatusCode, body: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        Self {
            status,
            body: Box::new(body),
        }
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        (*self.body).as_ref()
    }

    /// The Kubernetes `Status` in the body, when there is one.
    pub fn status_object(&self) -> Option<ApiStatus> {
        serde_json::from_slice(self.body()).ok()
    }

    /// A short message for logs and reports: the Status message, or the status line.
    pub fn message(&self) -> String {
        self.status_object()
            .and_then(|s| s.message)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| self.status.to_string())
    }
}

/// The parts of a `metav1.Status` the reaper reads (including `metadata.continue`, which a
/// 410 for an expired continue token may carry).
#[derive(Debug, Default, Deserialize)]
pub struct ApiStatus {
    /// Human-readable message.
    pub message: Option<String>,
    /// Machine-readable reason (`Expired`, `Forbidden`, `Conflict`...).
    pub reason: Option<String>,
    /// List metadata.
    #[serde(default)]
    pub metadata: StatusMeta,
}

/// `Status.metadata`.
#[derive(Debug, Default, Deserialize)]
pub struct StatusMeta {
    /// A continue token to go on with an inconsistent list after a 410.
    #[serde(rename = "continue")]
    pub continue_: Option<String>,
}

/// Why a call produced no response worth interpreting.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Still throttled after every retry.
    #[error("throttled by the API server (429) {attempts} times; giving up")]
    Throttled {
        /// 429s received for this call.
        attempts: u32,
    },
    /// The next wait (429 back-off, transport retry) would pass the run's deadline.
    #[error("deadline reached while waiting to retry")]
    Deadline,
    /// Could not reach the API server or read its answer.
    #[error("API server unreachable: {0}")]
    Transport(#[source] Box<kube::Error>),
    /// Could not build a client (credentials, token).
    #[error(transparent)]
    Access(#[from] crate::eks::Error),
}

/// Sends the request built by `make` (called again for each retry).
pub async fn call(
    access: &ClusterAccess,
    stats: &ApiStats,
    deadline: &Deadline,
    make: impl Fn() -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<Response, CallError> {
    let mut throttled = 0u32;
    let mut transport_failures = 0u32;
    let mut reauthenticated = false;
    loop {
        let client = access.client().await?;
        let request = make()
            .map_err(|e| CallError::Transport(Box::new(kube::Error::BuildRequest(e))))?
            .map(Body::from);
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let response = match client.send(request).await {
            Ok(r) => r,
            Err(e) => {
                transport_failures += 1;
                let wait = backoff(transport_failures);
                if transport_failures > MAX_TRANSPORT_RETRIES {
                    return Err(CallError::Transport(Box::new(e)));
                }
                if deadline.would_pass(wait) {
                    return Err(CallError::Deadline);
                }
                warn!(cluster = access.cluster(), error = %e, "API request failed; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(|e| CallError::Transport(Box::new(e)))?;

        if status == StatusCode::TOO_MANY_REQUESTS {
            stats.throttled.fetch_add(1, Ordering::Relaxed);
            throttled += 1;
            let wait = jitter(
                retry_after
                    .unwrap_or_else(|| backoff(throttled))
                    .min(MAX_BACKOFF),
            );
            if throttled > MAX_THROTTLED_RETRIES {
                return Err(CallError::Throttled {
                    attempts: throttled,
                });
            }
            if deadline.would_pass(wait) {
                return Err(CallError::Deadline);
            }
            debug!(
                cluster = access.cluster(),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "throttled (429); waiting"
            );
            tokio::time::sleep(wait).await;
            continue;
        }
        if status == StatusCode::UNAUTHORIZED && !reauthenticated {
            // The token may have aged out under a slow run: sign a new one, once.
            info!(
                cluster = access.cluster(),
                "token rejected (401); signing a new one"
            );
            reauthenticated = true;
            access.invalidate().await;
            continue;
        }
        return Ok(Response::new(status, body));
    }
}

/// Exponential back-off for the n-th retry (n ≥ 1), capped.
fn backoff(n: u32) -> Duration {
    BASE_BACKOFF
        .saturating_mul(1u32 << n.saturating_sub(1).min(8))
        .min(MAX_BACKOFF)
}

/// Adds 0–50 % so throttled workers do not come back in lock-step.
fn jitter(d: Duration) -> Duration {
    let factor: f64 = rand::rng().random_range(1.0..1.5);
    d.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }

    #[test]
    fn jitter_adds_at_most_half() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(2));
            assert!(
                j >= Duration::from_secs(2) && j < Duration::from_secs(3),
                "{j:?}"
            );
        }
    }

    #[test]
    fn expired_status_exposes_the_fresh_continue_token() {
        let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{"continue":"abc"},
            "status":"Failure","message":"The provided continue parameter is too old",
            "reason":"Expired","code":410}"#;
        let r = Response::new(StatusCode::GONE, body.to_vec());
        let s = r.status_object().expect("status");
        assert_eq!(s.metadata.continue_.as_deref(), Some("abc"));
        assert_eq!(s.reason.as_deref(), Some("Expired"));
        assert!(r.message().contains("too old"));
    }
}

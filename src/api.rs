//! One Kubernetes API call, the way the reaper needs it: raw, so the status code and the
//! `Retry-After` header stay visible (kube's typed errors hide headers); counted; 429 answered
//! with `Retry-After` plus jitter; a 401 answered once with a freshly signed token; and never
//! waiting past the run's deadline.
//!
//! Each attempt — the credentials for a new token, sending the request and reading the whole
//! body — is bounded by the time left before the deadline's margin, and by [`REQUEST`]'s
//! cap. A request the deadline cuts in flight got no answer: [`CallError::TimedOut`]. With
//! less than [`REQUEST`]'s `min_start` left, no attempt starts: [`CallError::Deadline`], the
//! work is left for the next run.
//!
//! Every request asks for a gzip-compressed answer (`Accept-Encoding: gzip`): the API server
//! compresses large responses (list pages) at a cost to its CPU too small to measure on the
//! testbed, and a page of JSON objects shrinks about twentyfold on the wire (BENCHMARKS.md,
//! "Control-plane cost per run"). The bytes counted are the bytes received, compressed.
//!
//! A list asks for Kubernetes protobuf first (`crate::protobuf`); its answer, an error's
//! `Status` included, is then protobuf, and [`Response::status_object`] reads either.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::io::Read;

use http::StatusCode;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use kube::client::Body;
use rand::Rng;
use serde::Deserialize;
use tracing::{debug, info, warn};

use crate::deadline::{Budget, CallLimits, Cut, Deadline};
use crate::eks::{self, ClusterAccess};
use crate::protobuf;

/// How many times one call is retried after 429 before giving up.
const MAX_THROTTLED_RETRIES: u32 = 12;
/// Back-off when a 429 carries no usable `Retry-After`.
const BASE_BACKOFF: Duration = Duration::from_millis(500);
/// Longest single wait.
const MAX_BACKOFF: Duration = Duration::from_secs(32);
/// Transport failures retried (connection reset, no answer within the cap) before giving up.
const MAX_TRANSPORT_RETRIES: u32 = 2;

/// Time limits of one request (sent and its body read): a hung API server holds a request
/// at most this long even when the run has time to spare (a list page of 500 objects takes
/// seconds at worst); an attempt needs a second left to start.
pub const REQUEST: CallLimits = CallLimits {
    cap: Duration::from_secs(60),
    min_start: Duration::from_secs(1),
};

/// Request and throttling counters for one cluster.
#[derive(Debug, Default)]
pub struct ApiStats {
    requests: AtomicU64,
    throttled: AtomicU64,
    bytes: AtomicU64,
    timed_out: OnceLock<String>,
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

    /// Response body bytes received from the API server as they came over the wire
    /// (compressed when the server compressed them; list pages, mostly).
    pub fn bytes_received(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The first call that got no answer in time (which request, how long it waited).
    pub fn first_timeout(&self) -> Option<&str> {
        self.timed_out.get().map(String::as_str)
    }

    fn timed_out(&self, cut: Cut) -> CallError {
        let _ = self.timed_out.set(cut.to_string());
        CallError::TimedOut(cut)
    }
}

/// A response: status and body.
pub struct Response {
    /// HTTP status.
    pub status: StatusCode,
    /// Raw body, as received (not copied: a list page can be megabytes).
    body: Box<dyn AsRef<[u8]> + Send + Sync>,
    /// 429s this call got (and waited out) before this answer.
    throttled: u32,
    /// The body is Kubernetes protobuf (its `Content-Type`), not JSON.
    protobuf: bool,
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
            throttled: 0,
            protobuf: false,
        }
    }

    /// A response whose body is Kubernetes protobuf.
    pub fn protobuf(status: StatusCode, body: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        Self {
            protobuf: true,
            ..Self::new(status, body)
        }
    }

    /// Whether the body is Kubernetes protobuf (else JSON).
    pub fn is_protobuf(&self) -> bool {
        self.protobuf
    }

    /// 429s this call got (and waited out) before this answer: the adaptive concurrency
    /// limit reads them as overload even when the call ended well.
    pub fn throttled_before(&self) -> u32 {
        self.throttled
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        (*self.body).as_ref()
    }

    /// The Kubernetes `Status` in the body, when there is one.
    pub fn status_object(&self) -> Option<ApiStatus> {
        if !self.protobuf {
            return serde_json::from_slice(self.body()).ok();
        }
        let s: protobuf::Status = protobuf::decode(self.body(), &["Status"]).ok()?;
        Some(ApiStatus {
            message: s.message,
            reason: s.reason,
            metadata: StatusMeta {
                continue_: s.metadata.and_then(|m| protobuf::text(m.continue_)),
            },
        })
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
    /// No time left before the deadline to send the request, or to wait for a retry (429
    /// back-off, transport retry): nothing is in flight, the work is left for the next run.
    #[error("deadline reached: no time left to send or retry the request")]
    Deadline,
    /// A request (or the credentials for its token) got no answer in time: cut at the
    /// deadline in flight, or past its cap after every retry. The server may have applied it.
    #[error(transparent)]
    TimedOut(Cut),
    /// Could not reach the API server or read its answer.
    #[error("API server unreachable: {0}")]
    Transport(#[source] Box<kube::Error>),
    /// Could not build a client (credentials, token).
    #[error(transparent)]
    Access(#[from] crate::eks::Error),
    /// A gzip-compressed answer could not be decompressed.
    #[error("API server's compressed answer unreadable: {0}")]
    Compressed(#[source] std::io::Error),
}

/// Sends the request built by `make` (called again for each retry).
///
/// Long on purpose: one retry loop whose arms (429 with `Retry-After`, a transport failure,
/// an answer cut at the deadline or at its cap, a 401 once) share the same counters and
/// the same question, "is there time for another try?"; split up, that question would be
/// answered in several places.
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
        if let Budget::NoTimeLeft { .. } = deadline.budget(REQUEST) {
            return Err(CallError::Deadline);
        }
        let mut request = make()
            .map_err(|e| CallError::Transport(Box::new(kube::Error::BuildRequest(e))))?
            .map(Body::from);
        request
            .headers_mut()
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let name = format!("{} {}", request.method(), request.uri().path());
        // Signing a new token may resolve credentials (an STS AssumeRole call).
        let client = match deadline
            .bound(eks::TOKEN_CREDENTIALS, eks::AWS_CALL, access.client())
            .await
        {
            Ok(client) => client?,
            Err(Cut::NoTimeLeft { .. }) => return Err(CallError::Deadline),
            Err(cut) => return Err(stats.timed_out(cut)),
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let exchange = async {
            let response = client.send(request).await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let gzipped = response
                .headers()
                .get(CONTENT_ENCODING)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
            let is_protobuf = response
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| protobuf::is_media_type(v.as_bytes()));
            // A body cut off mid-way is not retried: the request itself was answered.
            let body = response.into_body().collect_bytes().await;
            Ok::<_, kube::Error>((status, retry_after, (gzipped, is_protobuf, body)))
        };
        let (status, retry_after, (gzipped, is_protobuf, body)) = match deadline
            .bound(&name, REQUEST, exchange)
            .await
        {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                transport_failures += 1;
                let wait = backoff(transport_failures);
                if transport_failures > MAX_TRANSPORT_RETRIES {
                    return Err(CallError::Transport(Box::new(e)));
                }
                if deadline.would_pass(wait + REQUEST.min_start) {
                    return Err(CallError::Deadline);
                }
                warn!(cluster = access.cluster(), error = %e, "API request failed; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(Cut::NoTimeLeft { .. }) => return Err(CallError::Deadline),
            Err(cut @ Cut::AtDeadline { .. }) => return Err(stats.timed_out(cut)),
            Err(cut @ Cut::AtLimit { .. }) => {
                // The server may be hung or just slow: retried like a transport failure,
                // but a request that got no answer is never reported as "no time to start".
                transport_failures += 1;
                let wait = backoff(transport_failures);
                if transport_failures > MAX_TRANSPORT_RETRIES
                    || deadline.would_pass(wait + REQUEST.min_start)
                {
                    return Err(stats.timed_out(cut));
                }
                warn!(cluster = access.cluster(), error = %cut, "API request got no answer; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let body = body.map_err(|e| CallError::Transport(Box::new(e)))?;
        stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        let body = if gzipped {
            gunzip(&body).map_err(CallError::Compressed)?.into()
        } else {
            body
        };

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
            if deadline.would_pass(wait + REQUEST.min_start) {
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
        let mut response = Response::new(status, body);
        response.throttled = throttled;
        response.protobuf = is_protobuf;
        return Ok(response);
    }
}

/// The body of a `Content-Encoding: gzip` answer, decompressed.
fn gunzip(compressed: &[u8]) -> std::io::Result<Vec<u8>> {
    // A compressed list page is typically a twentieth of its JSON.
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(20));
    flate2::read::GzDecoder::new(compressed).read_to_end(&mut out)?;
    Ok(out)
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
    fn gunzip_restores_the_body_and_refuses_a_broken_one() {
        use std::io::Write;
        let page = br#"{"kind":"PodList","items":[]}"#.repeat(100);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&page).expect("write");
        let compressed = encoder.finish().expect("finish");
        assert!(compressed.len() < page.len() / 5);
        assert_eq!(gunzip(&compressed).expect("gunzip"), page);
        assert!(gunzip(&compressed[..compressed.len() / 2]).is_err());
        assert!(gunzip(&page).is_err());
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

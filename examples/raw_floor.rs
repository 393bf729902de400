//! The "raw floor" for `BENCHMARKS.md`: the fastest plain way to delete every Job (or Pod)
//! of one namespace through the same client stack as eks-reaper (kube 5 + hyper + rustls
//! with aws-lc-rs, one bearer token, the same timeouts, no client-side retry layer).
//!
//! No policy, no report, no deadline: list the names (metadata only, `limit` + `continue`),
//! then send the DELETEs `--concurrency` at a time, each with the same body the reaper sends
//! (`propagationPolicy: Background` for Jobs, a `uid` precondition). A 429 is counted and
//! retried after its `Retry-After`, so a throttled floor still finishes. What this reaches is
//! what the API server itself takes at that concurrency: the practical limit for eks-reaper.
//!
//! ```sh
//! BENCH_TOKEN=... cargo run --release --example raw_floor -- \
//!     --server https://127.0.0.1:6443 --ca ca.crt --namespace bulk --concurrency 16
//! ```
//!
//! Prints one JSON object: listed, listMs, deleted, deleteMs, deletesPerSecond (over the
//! delete phase), totalDeletesPerSecond (list + delete), requests, throttled, statuses.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::client::Body;
use kube::core::params::{DeleteParams, ListParams, Preconditions, PropagationPolicy};
use kube::core::{ObjectList, PartialObjectMeta, Request};

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// API server URL.
    #[arg(long)]
    server: String,
    /// CA bundle (PEM) of the API server.
    #[arg(long)]
    ca: std::path::PathBuf,
    /// Namespace whose objects are deleted.
    #[arg(long)]
    namespace: String,
    /// `jobs` or `pods`.
    #[arg(long, default_value = "jobs")]
    resource: String,
    /// DELETEs in flight.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// `limit` per list page.
    #[arg(long, default_value_t = 500)]
    page_size: u32,
    /// Optional label selector for the list.
    #[arg(long)]
    selector: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let token = std::env::var("BENCH_TOKEN").map_err(|_| "BENCH_TOKEN is not set")?;
    let client = client(&args, token)?;
    let started = Instant::now();

    let path = match args.resource.as_str() {
        "jobs" => Job::url_path(&(), Some(&args.namespace)),
        "pods" => Pod::url_path(&(), Some(&args.namespace)),
        other => return Err(format!("--resource must be jobs or pods, not {other}").into()),
    };
    let requests = AtomicU64::new(0);

    // ---- list (names and uids only) ----------------------------------------------------
    let mut targets: Vec<(String, String)> = Vec::new();
    let mut continue_token = None;
    loop {
        let lp = ListParams {
            limit: Some(args.page_size),
            continue_token: continue_token.take(),
            label_selector: args.selector.clone(),
            ..ListParams::default()
        };
        let req = Request::new(path.as_str())
            .list_metadata(&lp)?
            .map(Body::from);
        requests.fetch_add(1, Ordering::Relaxed);
        let resp = client.send(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect_bytes().await?;
        if !status.is_success() {
            return Err(format!("list: HTTP {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        let page: ObjectList<PartialObjectMeta<Job>> = serde_json::from_slice(&body)?;
        targets.extend(page.items.into_iter().map(|o| {
            (
                o.metadata.name.unwrap_or_default(),
                o.metadata.uid.unwrap_or_default(),
            )
        }));
        continue_token = page.metadata.continue_.filter(|c| !c.is_empty());
        if continue_token.is_none() {
            break;
        }
    }
    let list_ms = started.elapsed().as_millis();
    let listed = targets.len();

    // ---- delete ------------------------------------------------------------------------
    let throttled = AtomicU64::new(0);
    let statuses: Mutex<BTreeMap<u16, u64>> = Mutex::new(BTreeMap::new());
    let is_job = args.resource == "jobs";
    let delete_started = Instant::now();
    futures::stream::iter(targets)
        .for_each_concurrent(args.concurrency.max(1), |(name, uid)| {
            let (client, path, requests, throttled, statuses) =
                (&client, &path, &requests, &throttled, &statuses);
            async move {
                let dp = DeleteParams {
                    propagation_policy: is_job.then_some(PropagationPolicy::Background),
                    preconditions: Some(Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                loop {
                    let req = match Request::new(path.as_str()).delete(&name, &dp) {
                        Ok(r) => r.map(Body::from),
                        Err(_) => return count(statuses, 0),
                    };
                    requests.fetch_add(1, Ordering::Relaxed);
                    let resp = match client.send(req).await {
                        Ok(r) => r,
                        Err(_) => return count(statuses, 0),
                    };
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(1);
                    // Read the body so the connection goes back to the pool.
                    let _ = resp.into_body().collect_bytes().await;
                    if status == 429 {
                        throttled.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(retry_after)).await;
                        continue;
                    }
                    return count(statuses, status);
                }
            }
        })
        .await;
    let delete_secs = delete_started.elapsed().as_secs_f64();
    let total_secs = started.elapsed().as_secs_f64();
    let statuses = statuses.into_inner().unwrap_or_default();
    let deleted: u64 = statuses
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let report = serde_json::json!({
        "resource": args.resource,
        "namespace": args.namespace,
        "concurrency": args.concurrency,
        "listed": listed,
        "listMs": list_ms,
        "deleted": deleted,
        "deleteMs": (delete_secs * 1000.0).round(),
        "totalMs": (total_secs * 1000.0).round(),
        "deletesPerSecond": (deleted as f64 / delete_secs * 10.0).round() / 10.0,
        "totalDeletesPerSecond": (deleted as f64 / total_secs * 10.0).round() / 10.0,
        "requests": requests.load(Ordering::Relaxed),
        "throttled": throttled.load(Ordering::Relaxed),
        "statuses": statuses,
    });
    println!("{report}");
    Ok(())
}

fn count(statuses: &Mutex<BTreeMap<u16, u64>>, status: u16) {
    if let Ok(mut s) = statuses.lock() {
        *s.entry(status).or_default() += 1;
    }
}

/// The same client settings as `eks_reaper::eks::client::kube_client`.
fn client(args: &Args, token: String) -> Result<kube::Client, Box<dyn std::error::Error>> {
    let pem = std::fs::read_to_string(&args.ca)?;
    let mut config = kube::Config::new(args.server.parse()?);
    config.root_cert = Some(pem_to_der(&pem)?);
    config.auth_info.token = Some(token.into());
    config.read_timeout = Some(Duration::from_secs(60));
    config.reset_reader_on_write = true;
    config.default_retry = false;
    Ok(kube::Client::try_from(config)?)
}

fn pem_to_der(pem: &str) -> Result<Vec<Vec<u8>>, base64::DecodeError> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            block = Some(String::new());
        } else if line.starts_with("-----END CERTIFICATE") {
            if let Some(b64) = block.take() {
                out.push(base64::engine::general_purpose::STANDARD.decode(b64)?);
            }
        } else if let Some(b) = block.as_mut() {
            b.push_str(line);
        }
    }
    Ok(out)
}

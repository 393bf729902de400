//! Shared harness for the integration tests: the running testbed (env.json), an admin kube
//! client for fixtures, a fresh namespace per test, and the real binary behind AWS's Lambda
//! Runtime Interface Emulator (a real Runtime API server).
//!
//! The testbed must be up (`scripts/testbed up`); its state dir is `$EKS_REAPER_TESTBED`
//! (default `/tmp/eks-reaper-testbed`).

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Label every fixture carries, with the test's run id.
pub const RUN_LABEL: &str = "eks-reaper.test/run";
/// The EC2-like node the Fargate stand-in keeps for non-Fargate pods.
pub const EC2_NODE: &str = "ip-10-0-0-10.ec2.internal";
/// Stand-in annotation: leave this pod's status to the test.
const KUBELET_NONE: (&str, &str) = ("testbed.eks-reaper/kubelet", "none");
/// Jobs managed by "someone else", so the real job controller leaves their status to us.
const MANAGED_BY: &str = "testbed.eks-reaper/bulk";

/// The running testbed.
pub struct Testbed {
    /// env.json.
    pub env: HashMap<String, String>,
    /// Admin (system:masters) client for fixtures.
    pub admin: kube::Client,
}

impl Testbed {
    /// Loads env.json and builds the admin client; panics with a clear message if the testbed
    /// is not up.
    pub async fn connect() -> Testbed {
        let dir = std::env::var("EKS_REAPER_TESTBED")
            .unwrap_or_else(|_| "/tmp/eks-reaper-testbed".to_owned());
        let path = PathBuf::from(&dir).join("env.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "testbed not up ({}: {e}); run scripts/testbed up",
                path.display()
            )
        });
        let raw: HashMap<String, Value> = serde_json::from_str(&text).expect("env.json");
        let env: HashMap<String, String> = raw
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, s)
            })
            .collect();
        let kubeconfig = Kubeconfig::read_from(&env["KUBECONFIG"]).expect("admin kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kube config");
        let admin = kube::Client::try_from(config).expect("admin client");
        Testbed { env, admin }
    }

    /// A fresh namespace for one test, labelled with a fresh run id.
    pub async fn namespace(&self, test: &str) -> Fixtures {
        let run = format!("{:08x}", rand::random::<u32>());
        let prefix: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let name = format!("it-{prefix}-{run}");
        let ns: Namespace = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {RUN_LABEL: run}}
        }))
        .expect("namespace");
        Api::<Namespace>::all(self.admin.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        Fixtures {
            client: self.admin.clone(),
            namespace: name,
            run,
        }
    }

    /// An EC2 client on moto (the reaper's identity; moto accepts any).
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new(
                self.env["AWS_REGION"].clone(),
            ))
            .endpoint_url(self.env["AWS_ENDPOINT_URL"].clone())
            .credentials_provider(aws_credential_types::Credentials::new(
                self.env["AWS_ACCESS_KEY_ID"].clone(),
                self.env["AWS_SECRET_ACCESS_KEY"].clone(),
                None,
                None,
                "testbed",
            ))
            .load()
            .await;
        aws_sdk_ec2::Client::new(&conf)
    }

    /// Free IPv4 addresses in the Fargate subnets, per moto.
    pub async fn fargate_available_ips(&self) -> i64 {
        let ids: Vec<String> = self.env["TESTBED_FARGATE_SUBNETS"]
            .split(',')
            .map(str::to_owned)
            .collect();
        let out = self
            .ec2()
            .await
            .describe_subnets()
            .set_subnet_ids(Some(ids))
            .send()
            .await
            .expect("DescribeSubnets");
        out.subnets()
            .iter()
            .map(|s| i64::from(s.available_ip_address_count().unwrap_or(0)))
            .sum()
    }

    /// The Lambda environment of a realistic deployment: the reaper identity, the region,
    /// the AWS endpoint overrides, JSON logs, a private metrics namespace, and the given
    /// `REAPER_*` settings.
    pub fn lambda_env(&self, settings: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ]
        .iter()
        .filter_map(|k| self.env.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
        env.push(("AWS_LAMBDA_LOG_FORMAT".to_owned(), "JSON".to_owned()));
        env.push((
            "AWS_LAMBDA_FUNCTION_NAME".to_owned(),
            "eks-reaper".to_owned(),
        ));
        env.push(("AWS_LAMBDA_FUNCTION_TIMEOUT".to_owned(), "120".to_owned()));
        env.push((
            "REAPER_CLUSTERS".to_owned(),
            self.env["TESTBED_CLUSTER"].clone(),
        ));
        // Metrics go to moto's CloudWatch as in production, but under a namespace of this
        // test's own, so tests that read metrics back never see another test's data points.
        env.push((
            "REAPER_METRICS_NAMESPACE".to_owned(),
            format!("EKSReaperIT/{:08x}", rand::random::<u32>()),
        ));
        for (k, v) in settings {
            set(&mut env, k, v);
        }
        env
    }
}

/// Sets or replaces one variable.
pub fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value.to_owned()));
}

/// Fixtures in one test namespace.
pub struct Fixtures {
    /// Admin client.
    pub client: kube::Client,
    /// The namespace.
    pub namespace: String,
    /// Run id (label value).
    pub run: String,
}

/// RFC 3339, second precision, `ago` in the past.
pub fn ago(ago: Duration) -> String {
    let t = Timestamp::now() - jiff::SignedDuration::try_from(ago).expect("small duration");
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Minutes.
pub fn mins(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// How a fixture Job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `Complete=True`.
    Succeeded,
    /// `Failed=True`.
    Failed,
}

impl Fixtures {
    /// Jobs API in the namespace.
    pub fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Pods API in the namespace.
    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// A Job that finished `finished_ago`, written as a workflow engine's Job would look:
    /// created, then its status (interim condition, terminal condition, times) through the
    /// status subresource. `extra` is merged into the Job (annotations, spec fields).
    pub async fn finished_job(
        &self,
        name: &str,
        end: End,
        finished_ago: Duration,
        extra: Value,
    ) -> Job {
        let mut body = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": self.namespace, "labels": {RUN_LABEL: self.run}},
            "spec": {
                "backoffLimit": 0,
                "managedBy": MANAGED_BY,
                "template": {
                    "metadata": {"labels": {RUN_LABEL: self.run}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "task", "image": "busybox:1.36"}]}
                }
            }
        });
        merge(&mut body, extra);
        let job: Job = serde_json::from_value(body).expect("job");
        let api = self.jobs();
        let created = api
            .create(&PostParams::default(), &job)
            .await
            .expect("create job");
        let finish = ago(finished_ago);
        let start = ago(finished_ago + Duration::from_secs(30));
        let (interim, terminal) = match end {
            End::Succeeded => ("SuccessCriteriaMet", "Complete"),
            End::Failed => ("FailureTarget", "Failed"),
        };
        let cond = |t: &str| {
            json!({"type": t, "status": "True", "reason": "Test", "message": "fixture",
                                     "lastProbeTime": finish, "lastTransitionTime": finish})
        };
        let mut status = json!({
            "startTime": start, "active": 0, "ready": 0, "terminating": 0,
            "succeeded": u8::from(end == End::Succeeded), "failed": u8::from(end == End::Failed),
            "uncountedTerminatedPods": {},
            "conditions": [cond(interim), cond(terminal)]
        });
        if end == End::Succeeded {
            status["completionTime"] = json!(finish);
        }
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .expect("job status");
        let _ = created;
        api.get(name).await.expect("get job")
    }

    /// A Job that has not finished (no status yet; nobody will run it).
    pub async fn active_job(&self, name: &str) -> Job {
        let body = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": self.namespace, "labels": {RUN_LABEL: self.run}},
            "spec": {
                "backoffLimit": 0,
                "managedBy": MANAGED_BY,
                "template": {
                    "metadata": {"labels": {RUN_LABEL: self.run}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "task", "image": "busybox:1.36"}]}
                }
            }
        });
        let job: Job = serde_json::from_value(body).expect("job");
        self.jobs()
            .create(&PostParams::default(), &job)
            .await
            .expect("create job")
    }

    /// A finished pod on the EC2-like node, owned by `owner` (a Job) or bare.
    pub async fn finished_pod(
        &self,
        name: &str,
        owner: Option<&Job>,
        end: End,
        finished_ago: Duration,
    ) -> Pod {
        let mut meta = json!({
            "name": name, "namespace": self.namespace,
            "labels": {RUN_LABEL: self.run},
            "annotations": {KUBELET_NONE.0: KUBELET_NONE.1}
        });
        if let Some(job) = owner {
            meta["ownerReferences"] = json!([{
                "apiVersion": "batch/v1", "kind": "Job",
                "name": job.metadata.name, "uid": job.metadata.uid,
                "controller": true, "blockOwnerDeletion": true
            }]);
        }
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"restartPolicy": "Never", "nodeName": EC2_NODE,
                     "containers": [{"name": "task", "image": "busybox:1.36"}]}
        }))
        .expect("pod");
        let api = self.pods();
        api.create(&PostParams::default(), &pod)
            .await
            .expect("create pod");
        let finish = ago(finished_ago);
        let start = ago(finished_ago + Duration::from_secs(30));
        let ok = end == End::Succeeded;
        let status = json!({
            "phase": if ok { "Succeeded" } else { "Failed" },
            "startTime": start,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": start},
                {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": finish}
            ],
            "containerStatuses": [{
                "name": "task", "image": "busybox:1.36", "imageID": "", "ready": false,
                "restartCount": 0, "started": false,
                "state": {"terminated": {"exitCode": if ok { 0 } else { 1 },
                          "reason": if ok { "Completed" } else { "Error" },
                          "startedAt": start, "finishedAt": finish}}
            }]
        });
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .expect("pod status")
    }

    /// Whether a Job with this name exists (and its uid).
    pub async fn job_uid(&self, name: &str) -> Option<String> {
        self.jobs()
            .get_opt(name)
            .await
            .expect("get job")
            .and_then(|j| j.metadata.uid)
    }

    /// Whether a pod with this name exists.
    pub async fn pod_exists(&self, name: &str) -> bool {
        self.pods().get_opt(name).await.expect("get pod").is_some()
    }

    /// Deletes the namespace (best effort).
    pub async fn cleanup(self) {
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.namespace, &DeleteParams::background())
            .await;
    }
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

/// Waits until `check` holds, polling; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > end {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- the Lambda, through the Runtime Interface Emulator ---------------------------------

fn rie_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let root = env!("CARGO_MANIFEST_DIR");
        let out = std::process::Command::new(format!("{root}/testbed/lambda-rie/build.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("testbed/lambda-rie/build.sh");
        assert!(out.status.success(), "building the Lambda RIE failed");
        String::from_utf8(out.stdout)
            .expect("path")
            .trim()
            .to_owned()
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The eks-reaper binary running as a Lambda function behind the RIE.
pub struct Lambda {
    child: Child,
    port: u16,
}

/// What an invocation returned.
#[derive(Debug)]
pub struct Invocation {
    /// HTTP status from the RIE.
    pub status: u16,
    /// The function's response (the report) or its error (`errorType`, `errorMessage`).
    pub body: Value,
}

impl Invocation {
    /// The report, asserting the invocation succeeded.
    pub fn report(&self) -> &Value {
        assert!(
            self.body.get("errorType").is_none(),
            "invocation failed: {}",
            self.body
        );
        &self.body
    }

    /// The report's single cluster entry.
    pub fn cluster(&self) -> &Value {
        &self.report()["clusters"][0]
    }

    /// `(errorType, errorMessage)`, asserting the invocation failed.
    pub fn error(&self) -> (String, String) {
        let t = self.body["errorType"]
            .as_str()
            .unwrap_or_else(|| panic!("invocation succeeded: {}", self.body));
        (
            t.to_owned(),
            self.body["errorMessage"].as_str().unwrap_or("").to_owned(),
        )
    }
}

impl Lambda {
    /// Starts the RIE with the real binary as the function's bootstrap.
    pub async fn start(env: &[(String, String)]) -> Lambda {
        let port = free_port();
        let runtime_port = free_port();
        let mut cmd = Command::new(rie_path());
        cmd.arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--runtime-api-address")
            .arg(format!("127.0.0.1:{runtime_port}"))
            .arg(env!("CARGO_BIN_EXE_eks-reaper"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let child = cmd.spawn().expect("start aws-lambda-rie");
        let lambda = Lambda { child, port };
        eventually(Duration::from_secs(20), "the RIE to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        lambda
    }

    /// Invokes the function with `event` and waits for its answer.
    pub async fn invoke(&self, event: &Value) -> Invocation {
        let body = event.to_string();
        let request = format!(
            "POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect to the RIE");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send invocation");
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(180), stream.read_to_end(&mut raw))
            .await
            .expect("invocation timed out")
            .expect("read invocation response");
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text.split_once("\r\n\r\n").expect("HTTP response");
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let payload = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_owned()
        };
        let body =
            serde_json::from_str(payload.trim()).unwrap_or_else(|_| Value::String(payload.clone()));
        Invocation { status, body }
    }

    /// Stops the RIE and the function.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

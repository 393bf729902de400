//! The running testbed (env.json), an admin kube client for fixtures, and a fresh namespace
//! per test with Job and Pod fixtures written as a workflow engine's would look.
//!
//! The testbed must be up (`scripts/testbed up`); its state dir is `$EKS_REAPER_TESTBED`
//! (default `/tmp/eks-reaper-testbed`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

/// Label every fixture carries, with the test's run id.
pub const RUN_LABEL: &str = "eks-reaper.test/run";

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
            env: self.env.clone(),
        }
    }

    /// The AWS configuration of the reaper's identity for the endpoint in env.json under
    /// `endpoint_key` (moto accepts any identity).
    pub async fn aws(&self, endpoint_key: &str) -> aws_types::SdkConfig {
        super::aws_config(
            &self.env["AWS_REGION"],
            &self.env[endpoint_key],
            &self.env["AWS_ACCESS_KEY_ID"],
            &self.env["AWS_SECRET_ACCESS_KEY"],
        )
        .await
    }

    /// An EC2 client on moto.
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.aws("AWS_ENDPOINT_URL").await)
    }

    /// The testbed's CloudWatch (the CBOR bridge in front of moto), as the product reaches
    /// it.
    pub async fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.aws("AWS_ENDPOINT_URL_CLOUDWATCH").await)
    }

    /// The subnet IDs env.json lists under `key` (`TESTBED_SUBNETS`,
    /// `TESTBED_FARGATE_SUBNETS`).
    pub fn subnet_ids(&self, key: &str) -> Vec<String> {
        self.env[key].split(',').map(str::to_owned).collect()
    }

    /// moto's `DescribeSubnets` for the subnets env.json lists under `key`.
    pub async fn subnets(&self, key: &str) -> Vec<aws_sdk_ec2::types::Subnet> {
        self.ec2()
            .await
            .describe_subnets()
            .set_subnet_ids(Some(self.subnet_ids(key)))
            .send()
            .await
            .expect("DescribeSubnets")
            .subnets
            .unwrap_or_default()
    }

    /// Free IPv4 addresses in the Fargate subnets, per moto.
    pub async fn fargate_available_ips(&self) -> i64 {
        self.subnets("TESTBED_FARGATE_SUBNETS")
            .await
            .iter()
            .map(|s| i64::from(s.available_ip_address_count().unwrap_or(0)))
            .sum()
    }

    /// The reaper identity's AWS environment (region, moto endpoints, access keys).
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ]
        .iter()
        .filter_map(|k| self.env.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect()
    }

    /// The Lambda environment of a realistic deployment: the reaper identity, the region,
    /// the AWS endpoint overrides, JSON logs, a private metrics namespace, and the given
    /// `REAPER_*` settings.
    pub fn lambda_env(&self, settings: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.aws_env();
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
    /// env.json: the stand-ins' names (`TESTBED_EC2_NODE`, `TESTBED_KUBELET_ANNOTATION`,
    /// `TESTBED_BULK_MANAGER`).
    pub env: HashMap<String, String>,
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

    /// A Job of this test's run that the real Job controller leaves alone (`managedBy`
    /// another manager): its status is the test's to write.
    fn job_manifest(&self, name: &str) -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": self.namespace, "labels": {RUN_LABEL: self.run}},
            "spec": {
                "backoffLimit": 0,
                "managedBy": self.env["TESTBED_BULK_MANAGER"],
                "template": {
                    "metadata": {"labels": {RUN_LABEL: self.run}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "task", "image": "busybox:1.36"}]}
                }
            }
        })
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
        let mut body = self.job_manifest(name);
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
        let body = self.job_manifest(name);
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
        let extra = match owner {
            Some(job) => json!({"metadata": {"ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job",
                "name": job.metadata.name, "uid": job.metadata.uid,
                "controller": true, "blockOwnerDeletion": true
            }]}}),
            None => json!({}),
        };
        self.finished_pod_shaped(name, extra, end, finished_ago)
            .await
    }

    /// A finished pod on the EC2-like node, `extra` merged into its manifest (labels, owner
    /// references, scheduler), as some engine would have created it.
    pub async fn finished_pod_shaped(
        &self,
        name: &str,
        extra: Value,
        end: End,
        finished_ago: Duration,
    ) -> Pod {
        let mut body = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name, "namespace": self.namespace,
                "labels": {RUN_LABEL: self.run},
                // The stand-in's kubelet leaves this pod's status to the test.
                "annotations": {&self.env["TESTBED_KUBELET_ANNOTATION"]: "none"}
            },
            "spec": {"restartPolicy": "Never", "nodeName": self.env["TESTBED_EC2_NODE"],
                     "containers": [{"name": "task", "image": "busybox:1.36"}]}
        });
        merge(&mut body, extra);
        let pod: Pod = serde_json::from_value(body).expect("pod");
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

/// Merges `extra` into `base`, objects key by key, anything else replaced.
pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

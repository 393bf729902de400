//! The real binary as a Lambda function behind AWS's Runtime Interface Emulator (a real
//! Runtime API server).

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::{eventually, free_port, root};

fn rie_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = std::process::Command::new(root().join("testbed/lambda-rie/build.sh"))
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

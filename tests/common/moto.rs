//! moto in server mode on a free loopback port, for the Rust tests that call AWS APIs
//! without the whole testbed.
//!
//! Uses the testbed's Python venv (`scripts/lib/common.sh`); set `EKS_REAPER_PYTHON` to use
//! another interpreter with `moto[server]`.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, root};

/// Kills the child process when the test ends, pass or fail.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Python with moto: `EKS_REAPER_PYTHON`, or the testbed venv (created if missing).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("EKS_REAPER_PYTHON") {
        return p.into();
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg("source scripts/lib/common.sh && echo \"$(venv)/bin/python\"")
        .current_dir(root())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "venv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().into()
}

/// Blocks until something accepts connections on `port` (30 s at most).
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// moto on a free port; returns the process and its port.
pub fn start() -> (Process, u16) {
    let port = free_port();
    let moto = Process(
        Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts"),
    );
    wait_for_port(port);
    (moto, port)
}

/// An SDK config for `endpoint` with static test credentials, in eu-west-1.
pub async fn sdk_config(endpoint: &str) -> aws_types::SdkConfig {
    super::aws_config("eu-west-1", endpoint, "AKIDTESTBED", "secret").await
}

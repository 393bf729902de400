//! The real binary as the CLI: run with the reaper identity's AWS environment (never the
//! developer's), and kubeconfigs for the testbed's apiserver written to private files.

use std::path::PathBuf;
use std::process::Output;

use super::Testbed;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_eks-reaper");

/// A command with a clean environment: `PATH`, `HOME`, the given variables, nothing else
/// (no `REAPER_*`, `KUBECONFIG` or AWS profile of the developer's leaks in).
pub fn command(program: &str, env: &[(String, String)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear();
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("RUST_LOG", "info");
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.kill_on_drop(true);
    cmd
}

/// Runs the binary with `args` and the reaper identity's AWS environment plus `extra`.
pub async fn reaper(tb: &Testbed, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut env = tb.aws_env();
    for (k, v) in extra {
        super::set(&mut env, k, v);
    }
    command(BIN, &env)
        .args(args)
        .output()
        .await
        .expect("run eks-reaper")
}

/// The process's stdout, parsed as JSON; panics with stdout and stderr when it is not.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); status {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// stdout and stderr, for assertion messages.
pub fn shown(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes a kubeconfig for the testbed's apiserver (its CA), with one context `name` whose
/// user is the exec credential plugin `exec_args` run through this binary; returns its path.
pub fn exec_kubeconfig(tb: &Testbed, name: &str, exec_args: &[&str]) -> PathBuf {
    let args: Vec<String> = exec_args.iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {name}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: {bin:?}
      args: [{args}]
      interactiveMode: Never
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
current-context: {name}
",
        server = tb.env["TESTBED_APISERVER"],
        ca = tb.env["TESTBED_CA_FILE"],
        bin = BIN,
        args = args.join(", "),
    );
    let path = std::env::temp_dir().join(format!(
        "eks-reaper-it-{name}-{:08x}.kubeconfig",
        rand::random::<u32>()
    ));
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

//! Progress on a terminal, through the real binary on a pseudo-terminal (`script` gives it
//! one) against the testbed: a bar per cluster and pass with count, rate and ETA, log lines
//! (`RUST_LOG=info`, as the harness sets it) intact above it, per-object lines only with
//! `-vv`; and off a terminal, the output as it
//! always was (JSON report on stdout, every line on stderr, no terminal codes).

mod common;

use common::cli;
use common::{End, Fixtures, Testbed, mins};
use futures::StreamExt;

/// Due Jobs: enough that the deletions (one at a time) outlast a few bar redraws.
const JOBS: usize = 150;

async fn due_jobs(fx: &Fixtures, n: usize) {
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |i| async move {
            fx.finished_job(
                &format!("etl-{i:04}"),
                End::Succeeded,
                mins(30),
                serde_json::json!({}),
            )
            .await;
        })
        .await;
}

fn run_args(tb: &Testbed, fx: &Fixtures) -> Vec<String> {
    [
        "run",
        "--cluster",
        &tb.env["TESTBED_CLUSTER"],
        "--namespaces",
        &fx.namespace,
        "--concurrency",
        "1",
        "--metrics-sink",
        "none",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// The terminal's text without escape sequences, split into lines at `\n` and `\r`.
fn screen_lines(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let mut plain = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .split(['\n', '\r'])
        .map(|l| l.trim_end().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Runs the binary on a 120×40 pseudo-terminal (stdin, stdout and stderr all on it);
/// returns everything the terminal received.
async fn on_a_terminal(tb: &Testbed, args: &[String]) -> (std::process::ExitStatus, Vec<u8>) {
    let quoted: Vec<String> = std::iter::once(cli::BIN.to_owned())
        .chain(args.iter().cloned())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let inner = format!("stty cols 120 rows 40; exec {}", quoted.join(" "));
    let out = cli::command("script", &tb.aws_env())
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("script");
    (out.status, out.stdout)
}

#[tokio::test]
async fn on_a_terminal_a_bar_per_pass_and_log_lines_intact_above_it() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("progress-tty").await;
    due_jobs(&fx, JOBS).await;

    let (status, raw) = on_a_terminal(&tb, &run_args(&tb, &fx)).await;
    let lines = screen_lines(&raw);
    let shown = lines.join("\n");
    assert!(status.success(), "{shown}");
    // A bar for the Jobs pass, with its count, rate and ETA.
    let cluster = &tb.env["TESTBED_CLUSTER"];
    let bar = lines
        .iter()
        .find(|l| {
            l.starts_with(&format!("{cluster} jobs"))
                && l.contains(&format!("/{JOBS} "))
                && l.contains("/s")
                && l.contains("ETA")
        })
        .unwrap_or_else(|| panic!("no Jobs bar with count, rate and ETA in:\n{shown}"));
    assert!(bar.contains("(listed "), "{bar}");
    // Log lines come out whole, not torn by the bar.
    assert!(
        lines.iter().any(|l| l.contains("INFO")
            && l.contains("cluster done")
            && l.contains(&format!("jobs_deleted={JOBS}"))),
        "{shown}"
    );
    // No line per object without -vv.
    assert!(
        !lines
            .iter()
            .any(|l| l.contains(" deleted ") && l.contains(&fx.namespace)),
        "{shown}"
    );
    // The report table follows.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("CLUSTER") && l.contains("BACKLOG")),
        "{shown}"
    );
    assert_eq!(
        fx.jobs()
            .list(&Default::default())
            .await
            .expect("jobs")
            .items
            .len(),
        0
    );
    fx.cleanup().await;
}

#[tokio::test]
async fn verbose_on_a_terminal_logs_every_object() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("progress-verbose").await;
    due_jobs(&fx, 20).await;
    let mut args = run_args(&tb, &fx);
    args.push("-vv".to_owned());
    let (status, raw) = on_a_terminal(&tb, &args).await;
    let lines = screen_lines(&raw);
    let shown = lines.join("\n");
    assert!(status.success(), "{shown}");
    let per_object = lines
        .iter()
        .filter(|l| l.contains("INFO") && l.contains(" deleted ") && l.contains(&fx.namespace))
        .count();
    assert_eq!(per_object, 20, "{shown}");
    fx.cleanup().await;
}

#[tokio::test]
async fn off_a_terminal_the_output_is_unchanged() {
    let tb = Testbed::connect().await;
    let fx = tb.namespace("progress-pipe").await;
    due_jobs(&fx, 20).await;
    let args = run_args(&tb, &fx);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cli::reaper(&tb, &args, &[]).await;
    assert!(out.status.success(), "{}", cli::shown(&out));
    // The JSON report on stdout, every object's line on stderr, no terminal codes.
    assert_eq!(cli::json(&out)["clusters"][0]["jobs"]["deleted"], 20);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    let per_object = stderr
        .lines()
        .filter(|l| l.contains(" deleted ") && l.contains(&fx.namespace))
        .count();
    assert_eq!(per_object, 20, "{stderr}");
    fx.cleanup().await;
}

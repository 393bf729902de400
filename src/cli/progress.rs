//! Progress on a terminal: one bar per cluster and pass (objects due and dealt with, rate,
//! ETA), log lines printed above the bars, per-object log lines only with `-v`.
//!
//! The bars are tracing spans drawn by `tracing-indicatif`, opened by [`Bars`] (an
//! [`Observer`] of the run) under their own target; the log lines go through the same
//! layer's writer, which suspends the bars while a line is written, so lines and bars never
//! tear. Off a terminal, or with JSON logs, none of this is installed and the output is the
//! plain log lines, as before.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use tracing::Span;
use tracing_indicatif::IndicatifLayer;
use tracing_indicatif::span_ext::IndicatifSpanExt;
use tracing_indicatif::style::ProgressStyle;
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::prune::observe::Observer;
use crate::prune::pass::Pass;

/// Target of the progress spans: only these become bars.
pub const TARGET: &str = "eks_reaper::progress";

/// The bar: `etl jobs (listed 1200) [#####     ] 480/1000 312/s ETA 2s`.
const TEMPLATE: &str = "{msg} [{wide_bar}] {pos}/{len} {per_sec} ETA {eta}";

/// The AWS SDK's own crates: their warnings (a region or credential source that did not
/// answer) carry `Debug` dumps of whole responses, and the run reports the failure that
/// matters itself, once. Only `-vv` (or `RUST_LOG`) shows them.
const SDK_QUIET: &str =
    "aws_config=error,aws_smithy_runtime=error,aws_smithy_http_client=error,aws_runtime=error";

/// The log filter: `RUST_LOG` when set; on a terminal nothing at verbosity 0, info at 1,
/// debug at 2 and above; off a terminal info, as the Lambda logs.
fn filter(terminal: bool, verbosity: u8) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(match (terminal, verbosity) {
            (true, 0) => "off".to_owned(),
            (true, 1) | (false, _) => format!("info,{SDK_QUIET}"),
            (true, _) => "debug".to_owned(),
        })
    })
}

/// Installs the logging: on a terminal (text logs), progress bars, with log lines above
/// them only when asked (`-v` info, `-vv` debug and per-object lines); otherwise plain
/// lines on stderr exactly as the Lambda-compatible CLI always printed them. Returns
/// whether bars are drawn.
pub fn init_tracing(verbosity: u8) -> bool {
    let json = crate::report::json_logs_from_env();
    let terminal = std::io::stderr().is_terminal();
    let filter = || filter(terminal && !json, verbosity);
    let verbose = verbosity >= 2;
    if json || !terminal {
        let builder = fmt()
            .with_env_filter(filter())
            .with_target(false)
            .with_writer(std::io::stderr);
        if json {
            builder.json().init();
        } else {
            builder.with_ansi(false).init();
        }
        return false;
    }
    let bars = IndicatifLayer::new().with_progress_style(style());
    let lines = fmt::layer()
        .with_target(false)
        .with_ansi(true)
        .with_writer(bars.get_stderr_writer())
        .with_filter(filter().and(filter_fn(move |meta| verbose || !is_per_object(meta))));
    tracing_subscriber::registry()
        .with(lines)
        .with(bars.with_filter(filter_fn(|meta| meta.target() == TARGET)))
        .init();
    true
}

/// A log line about one object (it names a namespace and an object): one per object of a
/// run, so 100,000 of them for a large backlog.
pub fn is_per_object(meta: &tracing::Metadata<'_>) -> bool {
    let fields = meta.fields();
    meta.is_event() && fields.field("namespace").is_some() && fields.field("name").is_some()
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(TEMPLATE)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>-")
}

/// The bars of a run: one span per cluster and pass, open while the pass runs.
#[derive(Default)]
pub struct Bars {
    open: Mutex<HashMap<(String, Pass), Bar>>,
}

struct Bar {
    span: Span,
    listed: u64,
}

impl Bars {
    fn with(&self, cluster: &str, pass: Pass, f: impl FnOnce(&mut Bar)) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bar) = open.get_mut(&(cluster.to_owned(), pass)) {
            f(bar);
        }
    }
}

impl Observer for Bars {
    fn pass_started(&self, cluster: &str, pass: Pass) {
        let span = tracing::info_span!(target: TARGET, parent: None, "pass", cluster, pass = pass.as_str());
        span.pb_set_style(&style());
        span.pb_set_length(0);
        span.pb_set_message(&format!("{cluster} {}", pass.as_str()));
        span.pb_start();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.insert((cluster.to_owned(), pass), Bar { span, listed: 0 });
    }

    fn page_listed(&self, cluster: &str, pass: Pass, objects: u64, remaining: Option<u64>) {
        self.with(cluster, pass, |bar| {
            bar.listed += objects;
            let of = remaining.map_or(String::new(), |r| format!(" of ~{}", bar.listed + r));
            bar.span.pb_set_message(&format!(
                "{cluster} {} (listed {}{of})",
                pass.as_str(),
                bar.listed
            ));
        });
    }

    fn due(&self, cluster: &str, pass: Pass) {
        self.with(cluster, pass, |bar| bar.span.pb_inc_length(1));
    }

    fn handled(&self, cluster: &str, pass: Pass) {
        self.with(cluster, pass, |bar| bar.span.pb_inc(1));
    }

    fn pass_finished(&self, cluster: &str, pass: Pass) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        // Dropping the span closes it: its bar goes.
        open.remove(&(cluster.to_owned(), pass));
    }
}

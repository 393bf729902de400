//! eks-reaper binary: Lambda mode when `AWS_LAMBDA_RUNTIME_API` is set, otherwise the CLI.

// Computing the layout of the entry futures (Lambda runtime → handler → run → cluster →
// connect → AWS SDK, each holding the next) nests rustc's queries past its default limit
// of 128.
#![recursion_limit = "256"]

use std::process::ExitCode;

use clap::Parser;
use eks_reaper::{cli, lambda};

// One thread: a run is a few hundred requests a second in flight, each needing microseconds
// of CPU, and Lambda gives under one vCPU at the default memory size. With worker threads,
// every answer woke a parked worker through the kernel (futex, eventfd); on one thread the
// event loop picks answers up from epoll itself. See BENCHMARKS.md, "CPU per deletion".
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return match lambda::serve().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("eks-reaper: lambda runtime: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = cli::Cli::parse();
    let bars = cli::progress::init_tracing(cli.verbose);
    cli::main(cli, bars).await
}

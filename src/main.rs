//! eks-reaper binary: Lambda mode when `AWS_LAMBDA_RUNTIME_API` is set, otherwise the CLI.

// Computing the layout of the entry futures (Lambda runtime → handler → run → cluster →
// connect → AWS SDK, each holding the next) nests rustc's queries past its default limit
// of 128.
#![recursion_limit = "256"]

use std::process::ExitCode;

use clap::Parser;
use eks_reaper::{cli, lambda};

#[tokio::main]
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

//! eks-reaper binary: Lambda mode when `AWS_LAMBDA_RUNTIME_API` is set, otherwise the CLI.

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
    cli::init_tracing();
    cli::main(cli::Cli::parse()).await
}

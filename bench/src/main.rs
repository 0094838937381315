//! `pds-bench`: the load driver of the side-by-side benchmark (bench/run).
//!
//! `pds-bench run` drives one PDS that is already listening (on loopback
//! only) with the whole workload and writes its figures as JSON;
//! `pds-bench report` reads several such files and prints the table with
//! the ratio of each server to the first (the reference), and writes the
//! same as JSON. Every phase is bounded in time; the driver stops by itself.
//!
//! The driver runs on one thread (a current-thread tokio runtime), so it
//! never takes more than one of the machine's cores; its CPU time per
//! phase is reported beside the server's, to show it had CPU to spare.

mod report;
mod stats;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "pds-bench", about = "Side-by-side PDS benchmark driver")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive one running server with the workload; write its figures.
    Run(workload::RunArgs),
    /// Print the table of several runs (the first is the baseline).
    Report {
        /// Write the combined figures here as JSON.
        #[arg(long)]
        out: PathBuf,
        /// Markdown table written here too.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// The runs' JSON files; the first is the baseline of the ratios.
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))
            .and_then(|rt| rt.block_on(workload::run(args))),
        Command::Report {
            out,
            markdown,
            files,
        } => report::report(&files, &out, markdown.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pds-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The `cxr` command-line tool: parses arguments, calls the libraries, prints.
//! Kept thin on purpose; the work lives in cxr-core, cxr-nn and cxr-server.

mod commands;

use clap::{Parser, Subcommand};

use cxr_core::allocator::{Allocator, keep_freed_memory};

// Freed buffers are kept for reuse instead of going back to the OS (see cxr_core::allocator).
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

#[derive(Parser, Debug)]
#[command(
    name = "cxr",
    version,
    about = "Screen chest X-rays for tuberculosis and other lung abnormality, offline.",
    long_about = "Screen chest X-rays for tuberculosis and other lung abnormality, offline.\n\n\
                  Research software, not a medical device."
)]
struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect, check and split data sets.
    #[command(subcommand)]
    Data(commands::data::DataCommand),
    /// List, fetch and import pretrained backbone weights.
    #[command(subcommand)]
    Weights(commands::weights::WeightsCommand),
    /// Find the lungs on X-rays (mask, outline, JSON), or train a lung model.
    Segment(commands::segment::SegmentArgs),
    /// Train a TB classifier (the paper's two-phase recipe by default); resumable.
    Train(commands::train::TrainArgs),
    /// Compare backbones: one recipe, the same cross-validation folds, one report; resumable.
    Compare(commands::compare::CompareArgs),
    /// Evaluate a model on labelled images: metrics with CIs, WHO operating points, HTML report.
    Eval(commands::eval::EvalArgs),
    /// Choose a model's operating points on validation images; write a calibrated model file.
    Calibrate(commands::calibrate::CalibrateArgs),
    /// Screen X-rays: probability, decision and quality flags per image (CSV or JSON lines).
    Predict(commands::predict::PredictArgs),
    /// Grad-CAM heat maps of the TB score as PNG overlays, with per-lung-zone scores.
    Explain(commands::explain::ExplainArgs),
    /// The screening service: HTTP API and a web page (http://127.0.0.1:8080/ by default).
    Serve(commands::serve::ServeArgs),
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(cmd) => commands::data::run(cmd, cli.json),
        Command::Weights(cmd) => commands::weights::run(cmd, cli.json),
        Command::Segment(args) => commands::segment::run(args, cli.json),
        Command::Train(args) => commands::train::run(args, cli.json),
        Command::Compare(args) => commands::compare::run(args, cli.json),
        Command::Eval(args) => commands::eval::run(args, cli.json),
        Command::Calibrate(args) => commands::calibrate::run(args, cli.json),
        Command::Predict(args) => commands::predict::run(args, cli.json),
        Command::Explain(args) => commands::explain::run(args, cli.json),
        Command::Serve(args) => commands::serve::run(args, cli.json),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", commands::error_text(&err));
            std::process::ExitCode::from(2)
        }
    }
}

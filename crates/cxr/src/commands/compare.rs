//! `cxr compare`: train several backbones with one recipe on the same cross-validation folds
//! and write one report (table, curves, paired DeLong tests); rerun to continue after a kill.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Args;
use cxr_nn::compare::measure::SpeedConfig;
use cxr_nn::compare::{
    CompareError, CompareReport, CompareRequest, REPORT_MD, RecipeVariant, compare,
};
use cxr_nn::train::recipe::Recipe;
use cxr_nn::train::{CacheDirs, TrainError};

static STOP: AtomicBool = AtomicBool::new(false);

/// Exit status after Ctrl-C, as shells report a SIGINT death.
const INTERRUPTED: u8 = 130;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Recipe file (TOML, as `cxr train --recipe`); its backbone is replaced by each of
    /// --backbones.
    recipe: PathBuf,
    /// Data set, as for `cxr train`.
    data: PathBuf,
    /// Comma-separated backbones (`cxr weights list`; those without pretrained weights train
    /// from scratch).
    #[arg(long, value_delimiter = ',', required = true)]
    backbones: Vec<String>,
    /// Comma-separated further recipe files, each trained with every backbone on the same
    /// folds and reported as `<backbone>+<file stem>` (e.g. the same recipe with lung crops).
    #[arg(long, value_delimiter = ',')]
    recipes: Vec<PathBuf>,
    /// A folder of X-rays without labels, for recipes with a `[pseudo_labels]` section.
    #[arg(long, value_name = "DIR")]
    unlabelled: Option<PathBuf>,
    /// Cross-validation folds, the same for every backbone (seeded by the recipe's seed).
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Comparison folder; rerunning with the same folder continues where it stopped.
    #[arg(long)]
    out: PathBuf,
    /// Images per forward pass when timing inference.
    #[arg(long, default_value_t = SpeedConfig::default().batch)]
    timing_batch: usize,
    /// Timed forward passes (after one untimed warm-up).
    #[arg(long, default_value_t = SpeedConfig::default().batches)]
    timing_batches: usize,
}

pub fn run(args: CompareArgs, json: bool) -> anyhow::Result<ExitCode> {
    let request = CompareRequest {
        data: args.data,
        out: args.out,
        recipe: Recipe::from_file(&args.recipe)?,
        backbones: args.backbones,
        variants: args
            .recipes
            .iter()
            .map(|path| {
                let name = path
                    .file_stem()
                    .map(|stem| stem.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok(RecipeVariant {
                    name,
                    recipe: Recipe::from_file(path)?,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        folds: args.folds,
        unlabelled: args.unlabelled,
        timing: SpeedConfig {
            batch: args.timing_batch,
            batches: args.timing_batches,
        },
    };
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            std::process::exit(i32::from(INTERRUPTED));
        }
        eprintln!("\nstopping after this batch (Ctrl-C again to quit at once)...");
    })
    .context("cannot install the Ctrl-C handler")?;
    match compare(&request, &CacheDirs::for_user()?, &STOP) {
        Ok(report) => {
            print_report(&report, &request, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(CompareError::Train(err @ TrainError::Interrupted)) => {
            eprintln!("{err}: run the same command again to continue");
            Ok(ExitCode::from(INTERRUPTED))
        }
        Err(err) => Err(err.into()),
    }
}

fn print_report(
    report: &CompareReport,
    request: &CompareRequest,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    for r in &report.results {
        let auc = r
            .pooled_auc
            .map_or("-".into(), |e| format!("{:.3}", e.value));
        let mut versus = r.versus_best.map_or("best".to_string(), |t| {
            format!("p = {:.3} vs best", t.p_value)
        });
        if let Some(t) = r.versus_main {
            versus += &format!(
                ", {:+.3} (p = {:.3}) vs the main recipe",
                t.difference, t.p_value
            );
        }
        println!(
            "{:<28} AUC {:.3} [{:.3}, {:.3}] over folds, pooled {auc}, {:.1} images/s, {}",
            r.backbone,
            r.auc_ci.value,
            r.auc_ci.lower,
            r.auc_ci.upper,
            r.costs.images_per_second,
            versus
        );
    }
    println!("report: {}", request.out.join(REPORT_MD).display());
    println!("{}", cxr_nn::model_file::NOTICE);
    Ok(())
}

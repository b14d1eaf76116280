//! `cxr eval`: score a labelled data set with a model (and optionally a second one) and write
//! the evaluation report: JSON, a self-contained HTML page, and per-image predictions as CSV.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use cxr_core::dataset::{Dataset, Item, Split};
use cxr_core::metrics::{BinaryMetrics, BootstrapConfig};
use cxr_core::report::{EvaluationConfig, ModelScores, Report};
use cxr_nn::predict::{ScreenOptions, Screener};
use indicatif::{ProgressBar, ProgressStyle};

use super::data::SourceArgs;

#[derive(Args, Debug)]
#[command(allow_missing_positional = true)]
pub struct EvalArgs {
    /// Model file (.safetensors with a model card) [default: the shipped model].
    model: Option<PathBuf>,
    #[command(flatten)]
    data: SourceArgs,
    /// Which images to evaluate [default: the test split if the data set has one, else all].
    #[arg(long, value_enum)]
    split: Option<SplitChoice>,
    /// A second model scored on the same images: adds its curves and DeLong's paired test.
    #[arg(long, value_name = "MODEL2")]
    compare: Option<PathBuf>,
    /// Folder for report.json, report.html and predictions.csv.
    #[arg(long, default_value = "eval")]
    out: PathBuf,
    /// Bootstrap resamples for the AUC interval.
    #[arg(long, default_value_t = 2000)]
    resamples: usize,
    /// Bootstrap seed: the same seed gives the same interval.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// A part of a data set to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitChoice {
    All,
    Train,
    Val,
    Test,
}

impl SplitChoice {
    /// The items of `dataset` in this part; `None` (no choice) means test if any, else all.
    pub fn select(choice: Option<Self>, dataset: &Dataset) -> Vec<Item> {
        let has_test = dataset.items.iter().any(|item| item.split == Split::Test);
        let wanted = match choice {
            Some(Self::All) => None,
            Some(Self::Train) => Some(Split::Train),
            Some(Self::Val) => Some(Split::Val),
            Some(Self::Test) => Some(Split::Test),
            None if has_test => Some(Split::Test),
            None => None,
        };
        dataset
            .items
            .iter()
            .filter(|item| wanted.is_none_or(|split| item.split == split))
            .cloned()
            .collect()
    }
}

pub fn run(args: EvalArgs, json: bool) -> anyhow::Result<ExitCode> {
    let model = super::model_or_shipped(args.model)?;
    let (dataset, names) = args.data.open_for_model(&model)?;
    let items = SplitChoice::select(args.split, &dataset);
    anyhow::ensure!(
        !items.is_empty(),
        "{}: no images in the chosen split",
        dataset.source.display()
    );
    let labels: Vec<bool> = items.iter().map(|item| names.refers(item.label)).collect();
    let mut models = vec![score_model(&model, &items)?];
    if let Some(other) = &args.compare {
        models.push(score_model(other, &items)?);
    }
    let config = EvaluationConfig {
        bootstrap: BootstrapConfig {
            resamples: args.resamples,
            seed: args.seed,
            ..EvaluationConfig::default().bootstrap
        },
        ..EvaluationConfig::default()
    };
    let data = format!("{} ({} images)", dataset.source.display(), items.len());
    let report = Report::build(
        "Chest X-ray TB screening: evaluation",
        &data,
        &labels,
        &models,
        &config,
    )?;
    let (json_path, html_path) = report.write(&args.out)?;
    let csv_path = args.out.join("predictions.csv");
    write_predictions(&csv_path, &items, &models)?;
    if json {
        println!("{}", report.to_json());
    } else {
        for evaluation in &report.evaluations {
            let auc = evaluation.auc.auc;
            println!(
                "{}: {} images ({} TB), AUC {:.4} [{:.4}, {:.4}], Brier {:.4}, ECE {:.4}",
                evaluation.model,
                evaluation.cases,
                evaluation.positives,
                auc.value,
                auc.lower,
                auc.upper,
                evaluation.calibration.brier_score,
                evaluation.calibration.expected_calibration_error
            );
            let line = |name: &str, threshold: f64, metrics: &BinaryMetrics| {
                println!(
                    "    {name:<12} threshold {threshold:.4}: sensitivity {}, specificity {}, \
                     accuracy {}",
                    interval(metrics.sensitivity),
                    interval(metrics.specificity),
                    interval(metrics.accuracy)
                )
            };
            if !evaluation.card_points.is_empty() {
                println!("  the model card's thresholds, applied as they are:");
                for point in &evaluation.card_points {
                    line(&point.name, point.threshold, &point.metrics);
                }
            }
            println!("  thresholds chosen on these images (optimistic):");
            for point in &evaluation.operating_points {
                line(point.name.as_str(), point.threshold, &point.metrics);
            }
        }
        for comparison in &report.comparisons {
            println!(
                "paired DeLong {} vs {}: difference {:+.4}, z {:.3}, p {:.4}",
                comparison.model_a,
                comparison.model_b,
                comparison.test.difference,
                comparison.test.z,
                comparison.test.p_value
            );
        }
        println!(
            "wrote {}, {} and {}",
            html_path.display(),
            json_path.display(),
            csv_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Every item's probability under the model at `path`, with a progress bar. Any unreadable
/// image stops the evaluation: metrics over a silently shrunken set would mislead.
pub fn score_model(path: &Path, items: &[Item]) -> anyhow::Result<ModelScores> {
    let screener = Screener::load(Some(path))?;
    let probabilities = score_items(&screener, items)?;
    let (_, default_threshold) = screener
        .operating_point(Some("default"))
        .or_else(|_| screener.operating_point(None))?;
    let card_points = screener
        .card()
        .operating_points
        .iter()
        .map(|point| (point.name.clone(), point.threshold))
        .collect();
    Ok(ModelScores {
        model: path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        ),
        probabilities,
        default_threshold,
        card_points,
    })
}

/// Probabilities of `items` under `screener`, failing on the first unreadable image.
pub fn score_items(screener: &Screener, items: &[Item]) -> anyhow::Result<Vec<f64>> {
    let paths: Vec<PathBuf> = items.iter().map(|item| item.path.clone()).collect();
    let bar = progress_bar(paths.len(), "scoring");
    let results =
        screener.screen_files(&paths, &ScreenOptions::default(), |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    results
        .into_iter()
        .map(|result| Ok(result?.probability))
        .collect()
}

/// `0.912 [0.871, 0.941]`, or `-` where the rate is undefined.
pub fn interval(estimate: Option<cxr_core::metrics::Estimate>) -> String {
    estimate.map_or("-".into(), |e| {
        format!("{:.3} [{:.3}, {:.3}]", e.value, e.lower, e.upper)
    })
}

/// The progress bar of the per-image commands, on stderr.
pub fn progress_bar(len: usize, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed_precise}<{eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(message);
    bar
}

fn write_predictions(path: &Path, items: &[Item], models: &[ModelScores]) -> anyhow::Result<()> {
    let mut writer =
        csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut header = vec!["path".to_string(), "label".to_string()];
    header.extend(models.iter().map(|m| format!("probability_{}", m.model)));
    writer.write_record(&header)?;
    for (index, item) in items.iter().enumerate() {
        let mut record = vec![item.path.display().to_string(), item.label.to_string()];
        record.extend(
            models
                .iter()
                .map(|m| format!("{:.6}", m.probabilities[index])),
        );
        writer.write_record(&record)?;
    }
    writer
        .flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

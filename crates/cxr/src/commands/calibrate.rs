//! `cxr calibrate`: choose a model's operating points on validation data and write a new
//! model file whose card holds them (thresholds, with sensitivity and specificity CIs).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cxr_core::metrics::{ConfidenceLevel, ThresholdRule, delong_auc, roc_curve, select_threshold};
use cxr_core::report::{
    OperatingPointName, RatedOperatingPoint, choose_operating_points, rate_threshold,
};
use cxr_nn::classifier;
use cxr_nn::device::inference_device;
use cxr_nn::model_file::{OperatingPoint, Validation};
use cxr_nn::predict::Screener;

use super::data::SourceArgs;
use super::eval::{SplitChoice, interval, score_items};

/// Name of the point chosen by `--target-sensitivity`; the new card's default.
const TARGET_POINT: &str = "target";

#[derive(Args, Debug)]
#[command(allow_missing_positional = true)]
pub struct CalibrateArgs {
    /// Model file to calibrate (left unchanged) [default: the shipped model].
    model: Option<PathBuf>,
    #[command(flatten)]
    data: SourceArgs,
    /// Calibration images: validation data, never the test set [default: the val split if
    /// the data set has one, else all].
    #[arg(long, value_enum)]
    split: Option<SplitChoice>,
    /// Sensitivity the `target` operating point (the new default) must reach.
    #[arg(long, default_value_t = 0.90)]
    target_sensitivity: f64,
    /// The calibrated model file to write.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: CalibrateArgs, json: bool) -> anyhow::Result<ExitCode> {
    let model = super::model_or_shipped(args.model)?;
    let (dataset, names) = args.data.open_for_model(&model)?;
    let has_val = dataset
        .items
        .iter()
        .any(|i| i.split == cxr_core::dataset::Split::Val);
    let split = args
        .split
        .or(has_val.then_some(SplitChoice::Val))
        .unwrap_or(SplitChoice::All);
    let items = SplitChoice::select(Some(split), &dataset);
    anyhow::ensure!(
        !items.is_empty(),
        "{}: no images in the chosen split",
        dataset.source.display()
    );
    let (networks, mut card) = classifier::load_networks(&model, &inference_device())?;
    let classifiers: Vec<_> = networks.iter().map(|n| n.classifier.clone()).collect();
    let screener = Screener::from_networks(&model, networks, card.clone(), None)?;
    let scores = score_items(&screener, &items)?;
    let labels: Vec<bool> = items.iter().map(|item| names.refers(item.label)).collect();
    let confidence = ConfidenceLevel::default();
    let (_, default_threshold) = screener.operating_point(None)?;
    let named = choose_operating_points(&scores, &labels, default_threshold, confidence)?;
    let target_threshold = select_threshold(
        &roc_curve(&scores, &labels)?,
        ThresholdRule::Sensitivity(args.target_sensitivity),
    )?
    .threshold;
    // Rated by the same rule as the named points; its enum name is replaced by "target" below.
    let target = rate_threshold(
        OperatingPointName::WhoMin,
        target_threshold,
        &scores,
        &labels,
        confidence,
    )?;
    let source = format!(
        "{} ({:?} split, {} images)",
        dataset.source.display(),
        split,
        items.len()
    );
    let target_rule = format!("sensitivity >= {}", args.target_sensitivity);
    anyhow::ensure!(
        target.threshold.is_finite(),
        "no finite threshold reaches {target_rule} on these images"
    );
    // Only "call nobody positive" gives an infinite threshold (e.g. Youden's J on tied scores):
    // useless as a decision rule, so such a point is left off the card.
    let (finite, infinite): (Vec<_>, Vec<_>) =
        named.iter().partition(|point| point.threshold.is_finite());
    for point in infinite {
        eprintln!(
            "note: no finite threshold meets {}; not stored",
            point.description
        );
    }
    card.operating_points = finite
        .into_iter()
        .map(|point| card_point(point.name.as_str(), &point.description, point, &source))
        .chain([card_point(TARGET_POINT, &target_rule, &target, &source)])
        .collect();
    card.default_operating_point = TARGET_POINT.to_string();
    card.validation.push(Validation {
        name: format!("calibration: {source}"),
        images: items.len(),
        auc: Some(delong_auc(&scores, &labels, confidence)?.auc),
        accuracy: target.metrics.accuracy,
        sensitivity: target.metrics.sensitivity,
        specificity: target.metrics.specificity,
        threshold: target.threshold,
    });
    classifier::save(&args.out, &classifiers, &card)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&card.operating_points)?);
    } else {
        for point in &card.operating_points {
            println!(
                "{:<12} threshold {:.4}: sensitivity {}, specificity {} ({})",
                point.name,
                point.threshold,
                interval(point.sensitivity),
                interval(point.specificity),
                point.rule
            );
        }
        println!(
            "wrote {} (default operating point: {TARGET_POINT})",
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The card's form of a chosen point.
fn card_point(name: &str, rule: &str, point: &RatedOperatingPoint, source: &str) -> OperatingPoint {
    OperatingPoint {
        name: name.to_string(),
        threshold: point.threshold,
        rule: format!("{rule}, chosen on {source}"),
        sensitivity: point.metrics.sensitivity,
        specificity: point.metrics.specificity,
    }
}

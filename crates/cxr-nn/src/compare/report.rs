//! The comparison as people read it: `report.md` (one table row per backbone, the paired
//! tests against the best) and validation accuracy and loss of every backbone on shared axes.

use std::fmt::Write;
use std::path::Path;

use cxr_core::metrics::{Estimate, PairedAucTest};
use cxr_core::report::{CurveSeries, curves_png};

use super::{CompareError, CompareReport, REPORT_MD, Trained};
use crate::train::checkpoint::write_atomic;
use crate::train::log::EpochRecord;

pub const CURVES_ACCURACY: &str = "curves_accuracy.png";
pub const CURVES_LOSS: &str = "curves_loss.png";

/// What an epoch record contributes to a chart.
type Measure = fn(&EpochRecord) -> f64;

pub(super) fn write(
    dir: &Path,
    report: &CompareReport,
    done: &[Trained],
) -> Result<(), CompareError> {
    write_atomic(&dir.join(REPORT_MD), markdown(report).as_bytes())?;
    let recipe = &report.request.recipe;
    let fine_tuning_from = (recipe.fine_tune.epochs > 0).then_some(recipe.frozen.epochs);
    let charts: [(&str, &str, Measure); 2] = [
        (
            CURVES_ACCURACY,
            "Validation accuracy (mean over folds)",
            |r| r.val_accuracy,
        ),
        (CURVES_LOSS, "Validation loss (mean over folds)", |r| {
            r.val_loss
        }),
    ];
    for (file, title, value) in charts {
        let means: Vec<Vec<f64>> = done
            .iter()
            .map(|t| mean_per_epoch(&t.histories, value))
            .collect();
        let series: Vec<CurveSeries> = done
            .iter()
            .zip(&means)
            .map(|(t, values)| CurveSeries {
                name: &t.name,
                values,
            })
            .collect();
        let png = curves_png(title, &series, fine_tuning_from)
            .map_err(|err| CompareError::Plot(format!("{file}: {err}")))?;
        write_atomic(&dir.join(file), &png)?;
    }
    Ok(())
}

/// Epoch `i`'s value averaged over the folds that ran it.
fn mean_per_epoch(histories: &[Vec<EpochRecord>], value: Measure) -> Vec<f64> {
    let epochs = histories.iter().map(Vec::len).max().unwrap_or(0);
    (0..epochs)
        .map(|i| {
            let values: Vec<f64> = histories
                .iter()
                .filter_map(|h| h.get(i))
                .map(value)
                .collect();
            values.iter().sum::<f64>() / values.len().max(1) as f64
        })
        .collect()
}

fn markdown(report: &CompareReport) -> String {
    let request = &report.request;
    let mut md = String::new();
    // Writing into a String cannot fail.
    let recipes = match request.variants.len() {
        0 => "one recipe".to_string(),
        n => format!(
            "the main recipe and {n} variant{} (rows `backbone+variant`: {})",
            if n == 1 { "" } else { "s" },
            request
                .variants
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let _ = writeln!(
        md,
        "# Backbone comparison\n\n{} images of `{}`, {}-fold cross-validation (seed {}), \
         {recipes}; every row held out the same images in the same folds.\n",
        report.images,
        request.data.display(),
        request.folds,
        request.recipe.seed
    );
    let _ = writeln!(
        md,
        "| backbone | weights | AUC mean [95 % CI over folds] | pooled AUC [DeLong 95 % CI] | \
         accuracy @WHO | sensitivity @WHO | specificity @WHO | parameters | GMACs | input | images/s | \
         peak RSS MiB (+inference) | training s | vs best: dAUC, p | vs main recipe: dAUC, p |"
    );
    let _ = writeln!(md, "|{}", "---|".repeat(15));
    for r in &report.results {
        let paired = |t: &PairedAucTest| format!("{:+.3}, {}", t.difference, p_value(t.p_value));
        let versus = r.versus_best.as_ref().map_or("best".to_string(), paired);
        let versus_main = r.versus_main.as_ref().map_or("-".to_string(), paired);
        let memory = match (r.costs.peak_rss_mib, r.costs.baseline_rss_mib) {
            (Some(peak), Some(base)) => format!("{peak:.0} (+{:.0})", peak - base),
            _ => "not measured".to_string(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} M | {} | {} px | {:.1} | {} | {:.0} | {} | {} |",
            r.backbone,
            if r.pretrained {
                "pretrained"
            } else {
                "from scratch"
            },
            estimate(Some(r.auc_ci)),
            estimate(r.pooled_auc),
            estimate(r.who.accuracy),
            estimate(r.who.sensitivity),
            estimate(r.who.specificity),
            r.costs.parameters as f64 / 1e6,
            r.costs
                .giga_macs
                .map_or("-".to_string(), |g| format!("{g:.2}")),
            r.costs.input_size,
            r.costs.images_per_second,
            memory,
            r.training_seconds,
            versus,
            versus_main
        );
    }
    if let Some(e) = &report.ensemble {
        let _ = writeln!(
            md,
            "| ensemble of every row (mean logit) | | {} | {} | {} | {} | {} | {:.2} M | {} | | {:.1} | | | {:+.3}, {} | - |",
            estimate(Some(e.auc_ci)),
            estimate(e.pooled_auc),
            estimate(e.who.accuracy),
            estimate(e.who.sensitivity),
            estimate(e.who.specificity),
            e.parameters as f64 / 1e6,
            e.giga_macs.map_or("-".to_string(), |g| format!("{g:.2}")),
            e.images_per_second,
            e.versus_best.difference,
            p_value(e.versus_best.p_value)
        );
    }
    let _ = writeln!(
        md,
        "\nWHO operating point: per fold, the highest threshold with sensitivity >= 0.90 on that \
         fold's validation images and the other folds' held-out images, applied to its held-out images; counts pooled over folds \
         (Wilson intervals). \"vs best\": DeLong's paired test of the pooled out-of-fold scores \
         against {}'s; \"vs main recipe\", for a variant's row, against the same backbone with the main \
         recipe. GMACs: billions of multiply-accumulates per image in the trunk's \
         convolutions at the input size (torchvision's \"GFLOPS\"). The ensemble row averages \
         every row's held-out scores image by image on the logit scale (its WHO thresholds \
         chosen on the averaged scores too); its parameters, GMACs and images/s are \
         those of running every member in turn. Backbones marked \"from scratch\" have no pretrained weights here: they \
         start from random weights and phase 2 trains every stage. images/s: {} forward passes \
         of {} images at the input size, BatchNorm folded, on this machine (the classifier \
         alone: a recipe that crops to the lungs also runs the lung model on every image). Peak RSS: the whole \
         process while timing (before the backbone trains); in brackets what timing added, \
         which memory left resident by earlier backbones in the same process can understate \
         (rerun one backbone per process for clean figures). Training seconds: the folds' \
         epoch times summed (computing the cached trunk outputs included; the final model \
         not).\n\nCurves: `curves_accuracy.png`, `curves_loss.png` (validation, mean over \
         folds per epoch).",
        report.best, request.timing.batches, request.timing.batch
    );
    md
}

/// `p = 0.042`, or `p < 0.001` where three decimals would read zero.
fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_string()
    } else {
        format!("p = {p:.3}")
    }
}

fn estimate(e: Option<Estimate>) -> String {
    e.map_or("-".to_string(), |e| {
        format!("{:.3} [{:.3}, {:.3}]", e.value, e.lower, e.upper)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_p_values_do_not_read_as_zero() {
        assert_eq!(p_value(0.0004), "p < 0.001");
        assert_eq!(p_value(0.0421), "p = 0.042");
    }
}

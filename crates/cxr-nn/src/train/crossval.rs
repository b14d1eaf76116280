//! Cross-validation figures: per held-out fold AUC, accuracy, sensitivity and specificity,
//! their mean and spread over folds, and the same measured on all out-of-fold scores pooled.

use serde::{Deserialize, Serialize};

use cxr_core::metrics::{ClassFigures, class_figures};

use super::data::{Labels, Partition};
use super::run::RunOutcome;
use super::{TrainError, validation};
use crate::model_file::Validation;

/// A figure over folds: mean, sample standard deviation, minimum and maximum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    /// One entry per fold, measured on its held-out (test) images at threshold 0.5.
    pub folds: Vec<Validation>,
    pub auc: Spread,
    pub accuracy: Spread,
    pub sensitivity: Spread,
    pub specificity: Spread,
    /// Every image scored by the run that held it out, measured together.
    pub pooled: Validation,
    /// Each fold's raw scores, for pairing models trained on the same folds (`cxr compare`).
    #[serde(default)]
    pub scores: Vec<FoldScores>,
    /// A multi-class model's per-class figures on the pooled out-of-fold probabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassFigures>,
}

/// One fold's images (indices into the data set) with their labels and the run's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldScores {
    pub val: Vec<usize>,
    pub val_labels: Vec<bool>,
    pub val_scores: Vec<f64>,
    pub test: Vec<usize>,
    pub test_labels: Vec<bool>,
    pub test_scores: Vec<f64>,
}

/// Summarises the runs' held-out scores; with `class_names` (a multi-class model), also
/// per class.
pub fn summarise(
    partitions: &[Partition],
    outcomes: &[RunOutcome],
    labels: &Labels,
    class_names: Option<&[String]>,
) -> Result<CrossValidation, TrainError> {
    let mut folds = Vec::new();
    let mut scores = Vec::new();
    let (mut all_scores, mut all_labels) = (Vec::new(), Vec::new());
    let (mut all_rows, mut all_classes) = (Vec::new(), Vec::new());
    let labels_of = |indices: &[usize]| labels.screening(indices);
    for (k, (partition, outcome)) in partitions.iter().zip(outcomes).enumerate() {
        all_rows.extend_from_slice(&outcome.test_classes);
        all_classes.extend(labels.classes_of(&partition.test));
        let fold_labels = labels_of(&partition.test);
        let name = format!("fold {} held out ({} images)", k + 1, fold_labels.len());
        folds.push(validation(&name, &outcome.test_scores, &fold_labels)?);
        all_scores.extend_from_slice(&outcome.test_scores);
        all_labels.extend_from_slice(&fold_labels);
        scores.push(FoldScores {
            val: partition.val.clone(),
            val_labels: labels_of(&partition.val),
            val_scores: outcome.val_scores.clone(),
            test: partition.test.clone(),
            test_labels: fold_labels,
            test_scores: outcome.test_scores.clone(),
        });
    }
    let name = format!(
        "{}-fold cross-validation, out-of-fold scores pooled ({} images)",
        folds.len(),
        all_scores.len()
    );
    let pooled = validation(&name, &all_scores, &all_labels)?;
    let classes = match class_names {
        Some(class_names) => Some(class_figures(&name, class_names, &all_rows, &all_classes)?),
        None => None,
    };
    let spread = |value: fn(&Validation) -> Option<f64>| {
        spread(&folds.iter().filter_map(value).collect::<Vec<_>>())
    };
    Ok(CrossValidation {
        auc: spread(|v| v.auc.map(|e| e.value)),
        accuracy: spread(|v| v.accuracy.map(|e| e.value)),
        sensitivity: spread(|v| v.sensitivity.map(|e| e.value)),
        specificity: spread(|v| v.specificity.map(|e| e.value)),
        folds,
        pooled,
        scores,
        classes,
    })
}

fn spread(values: &[f64]) -> Spread {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    Spread {
        mean,
        sd: variance.sqrt(),
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_uses_the_sample_standard_deviation() {
        let s = spread(&[0.8, 0.9, 1.0]);
        assert!((s.mean - 0.9).abs() < 1e-12);
        assert!((s.sd - 0.1).abs() < 1e-12);
        assert_eq!((s.min, s.max), (0.8, 1.0));
    }
}

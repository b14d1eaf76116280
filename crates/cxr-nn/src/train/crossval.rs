//! Cross-validation figures: per held-out fold AUC, accuracy, sensitivity and specificity,
//! their mean and spread over folds, and the same measured on all out-of-fold scores pooled.

use serde::{Deserialize, Serialize};

use cxr_core::metrics::{
    ClassFigures, ConfidenceLevel, ConfusionMatrix, Estimate, ThresholdRule, class_figures,
    roc_curve, select_threshold,
};

use super::data::{Labels, Partition};
use super::run::RunOutcome;
use super::{TrainError, validation};
use crate::classifier::mean_log_odds;
use crate::model_file::Validation;

/// The WHO target product profile's minimum sensitivity for a TB triage test; each fold's
/// threshold is the highest that reaches it on that fold's calibration scores.
pub const WHO_MIN_SENSITIVITY: f64 = 0.90;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhoPoint {
    /// Thresholds chosen per fold.
    pub thresholds: Vec<f64>,
    pub accuracy: Option<Estimate>,
    pub sensitivity: Option<Estimate>,
    pub specificity: Option<Estimate>,
}

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
    /// At each fold's WHO threshold (sensitivity >= 0.90 on its validation images and the
    /// other folds' held-out images), applied to its held-out images; counts pooled over
    /// folds. `None` when those images lack a class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<WhoPoint>,
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
    let mut scores = Vec::new();
    let (mut all_rows, mut all_classes) = (Vec::new(), Vec::new());
    let labels_of = |indices: &[usize]| labels.screening(indices);
    for (partition, outcome) in partitions.iter().zip(outcomes) {
        all_rows.extend_from_slice(&outcome.test_classes);
        all_classes.extend(labels.classes_of(&partition.test));
        scores.push(FoldScores {
            val: partition.val.clone(),
            val_labels: labels_of(&partition.val),
            val_scores: outcome.val_scores.clone(),
            test: partition.test.clone(),
            test_labels: labels_of(&partition.test),
            test_scores: outcome.test_scores.clone(),
        });
    }
    let mut cross_validation = from_scores(scores)?;
    if let Some(class_names) = class_names {
        let name = &cross_validation.pooled.name;
        cross_validation.classes = Some(class_figures(name, class_names, &all_rows, &all_classes)?);
    }
    Ok(cross_validation)
}

/// The figures of held-out scores, fold by fold and pooled (screening figures only).
pub fn from_scores(scores: Vec<FoldScores>) -> Result<CrossValidation, TrainError> {
    let mut folds = Vec::new();
    for (k, fold) in scores.iter().enumerate() {
        let name = format!("fold {} held out ({} images)", k + 1, fold.test.len());
        folds.push(validation(&name, &fold.test_scores, &fold.test_labels)?);
    }
    let (all_scores, all_labels) = pooled(&scores);
    let name = format!(
        "{}-fold cross-validation, out-of-fold scores pooled ({} images)",
        folds.len(),
        all_scores.len()
    );
    let pooled = validation(&name, &all_scores, &all_labels)?;
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
        who: who_point(&scores).ok(),
        scores,
        classes: None,
    })
}

/// Every fold's held-out scores and labels, one fold after another.
pub fn pooled(scores: &[FoldScores]) -> (Vec<f64>, Vec<bool>) {
    let scores_of = scores.iter().flat_map(|f| f.test_scores.iter().copied());
    let labels_of = scores.iter().flat_map(|f| f.test_labels.iter().copied());
    (scores_of.collect(), labels_of.collect())
}

/// Whether two cross-validations validated and held out the same images, with the same labels,
/// fold by fold: their scores can then be paired image by image.
pub fn same_folds(a: &CrossValidation, b: &CrossValidation) -> bool {
    a.scores.len() == b.scores.len()
        && a.scores.iter().zip(&b.scores).all(|(a, b)| {
            (&a.val, &a.val_labels, &a.test, &a.test_labels)
                == (&b.val, &b.val_labels, &b.test, &b.test_labels)
        })
}

/// The cross-validation of an ensemble of models trained on the same folds: each image's
/// probability is the members' combined by [`mean_log_odds`], as the ensemble's model file
/// scores it.
/// `None` when the members did not score the same images in the same folds.
pub fn mean_logit_ensemble(
    members: &[&CrossValidation],
) -> Option<Result<CrossValidation, TrainError>> {
    let first = members.first()?;
    if !members.iter().all(|cv| same_folds(cv, first)) {
        return None;
    }
    let mean = |of: fn(&FoldScores) -> &Vec<f64>, fold: usize| -> Vec<f64> {
        let n = of(&first.scores[fold]).len();
        (0..n)
            .map(|i| {
                let probabilities: Vec<f64> =
                    members.iter().map(|cv| of(&cv.scores[fold])[i]).collect();
                mean_log_odds(&probabilities)
            })
            .collect()
    };
    let scores = (0..first.scores.len())
        .map(|fold| FoldScores {
            val_scores: mean(|f| &f.val_scores, fold),
            test_scores: mean(|f| &f.test_scores, fold),
            ..first.scores[fold].clone()
        })
        .collect();
    Some(from_scores(scores))
}

/// The scores a model's thresholds are chosen on: its own validation scores and the held-out
/// scores of every fold but `leave_out` (the fold being measured, if any).
///
/// The models of one cross-validated recipe score on one scale, so the other folds' held-out
/// scores add four to five times the images of one validation split: a threshold for
/// sensitivity 0.90 set on the ~56 positives of one split lands several points either side
/// of it on new images.
pub fn calibration_scores(
    val_scores: &[f64],
    val_labels: &[bool],
    folds: &[FoldScores],
    leave_out: Option<usize>,
) -> (Vec<f64>, Vec<bool>) {
    let mut scores = val_scores.to_vec();
    let mut labels = val_labels.to_vec();
    for (k, fold) in folds.iter().enumerate() {
        if Some(k) != leave_out {
            scores.extend_from_slice(&fold.test_scores);
            labels.extend_from_slice(&fold.test_labels);
        }
    }
    (scores, labels)
}

/// Each fold's threshold for sensitivity >= 0.90, chosen as a model card's is: on the fold's
/// validation scores and the other folds' held-out scores ([`calibration_scores`]).
pub fn who_thresholds(folds: &[FoldScores]) -> Result<Vec<f64>, cxr_core::metrics::MetricsError> {
    folds
        .iter()
        .enumerate()
        .map(|(k, fold)| {
            let (scores, labels) =
                calibration_scores(&fold.val_scores, &fold.val_labels, folds, Some(k));
            let roc = roc_curve(&scores, &labels)?;
            let rule = ThresholdRule::Sensitivity(WHO_MIN_SENSITIVITY);
            Ok(select_threshold(&roc, rule)?.threshold)
        })
        .collect()
}

/// Each fold's WHO threshold ([`who_thresholds`]) applied to its held-out images; the
/// confusion counts summed over folds.
pub fn who_point(folds: &[FoldScores]) -> Result<WhoPoint, cxr_core::metrics::MetricsError> {
    who_point_at(folds, who_thresholds(folds)?)
}

/// The held-out images of each fold called at that fold's given threshold, counts summed.
pub fn who_point_at(
    folds: &[FoldScores],
    thresholds: Vec<f64>,
) -> Result<WhoPoint, cxr_core::metrics::MetricsError> {
    let mut total = ConfusionMatrix {
        true_positives: 0,
        false_positives: 0,
        true_negatives: 0,
        false_negatives: 0,
    };
    for (fold, &threshold) in folds.iter().zip(&thresholds) {
        let m = ConfusionMatrix::at_threshold(&fold.test_scores, &fold.test_labels, threshold)?;
        total.true_positives += m.true_positives;
        total.false_positives += m.false_positives;
        total.true_negatives += m.true_negatives;
        total.false_negatives += m.false_negatives;
    }
    let metrics = total.metrics(ConfidenceLevel::default());
    Ok(WhoPoint {
        thresholds,
        accuracy: metrics.accuracy,
        sensitivity: metrics.sensitivity,
        specificity: metrics.specificity,
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

    fn fold(test_scores: Vec<f64>) -> FoldScores {
        FoldScores {
            val: vec![0, 1],
            val_labels: vec![false, true],
            val_scores: vec![0.3, 0.6],
            test: vec![2, 3, 4, 5],
            test_labels: vec![false, true, false, true],
            test_scores,
        }
    }

    #[test]
    fn an_ensemble_averages_log_odds_fold_by_fold() {
        // Member a ranks one pair wrong, member b another; together they rank every pair right.
        let a = from_scores(vec![fold(vec![0.1, 0.9, 0.5, 0.4])]).expect("a");
        let b = from_scores(vec![fold(vec![0.5, 0.6, 0.2, 0.45])]).expect("b");
        let ensemble = mean_logit_ensemble(&[&a, &b])
            .expect("same folds")
            .expect("figures");
        let scores = &ensemble.scores[0].test_scores;
        let odds = |p: f64| p / (1.0 - p);
        // The geometric mean of the odds: sqrt(1/9 * 1) = 1/3, i.e. p = 0.25.
        assert!((scores[0] - 0.25).abs() < 1e-12, "{scores:?}");
        assert!((odds(scores[1]) - (9.0f64 * 1.5).sqrt()).abs() < 1e-9);
        assert!((ensemble.scores[0].val_scores[0] - 0.3).abs() < 1e-12);
        let auc = |cv: &CrossValidation| cv.pooled.auc.expect("AUC").value;
        assert_eq!((auc(&a), auc(&b)), (0.75, 0.75));
        assert_eq!(auc(&ensemble), 1.0);

        // Members that held out other images do not make an ensemble.
        let mut other = fold(vec![0.1, 0.9, 0.5, 0.4]);
        other.test = vec![5, 4, 3, 2];
        let other = from_scores(vec![other]).expect("other");
        assert!(mean_logit_ensemble(&[&a, &other]).is_none());
    }

    #[test]
    fn the_who_threshold_comes_from_validation_and_the_other_folds_and_counts_pool() {
        let fold = |test_scores: Vec<f64>| FoldScores {
            val: vec![0, 1],
            val_labels: vec![false, true],
            val_scores: vec![0.3, 0.6],
            test: vec![2, 3],
            test_labels: vec![false, true],
            test_scores,
        };
        let (a, b) = (fold(vec![0.2, 0.25]), fold(vec![0.1, 0.35]));
        // Sensitivity 0.9 needs both positives of the calibration scores: fold a's threshold
        // comes from its validation positive (0.6) and b's held-out one (0.35), never from
        // its own held-out 0.25; b's from 0.6 and a's held-out 0.25.
        let point = who_point(&[a.clone(), b.clone()]).expect("who");
        assert_eq!(point.thresholds, vec![0.35, 0.25]);
        let sensitivity = point.sensitivity.expect("sensitivity").value;
        let specificity = point.specificity.expect("specificity").value;
        assert_eq!((sensitivity, specificity), (0.5, 1.0));

        let (scores, labels) = calibration_scores(&[0.7], &[true], &[a, b], Some(1));
        assert_eq!(scores, vec![0.7, 0.2, 0.25]);
        assert_eq!(labels, vec![true, false, true]);
    }

    #[test]
    fn spread_uses_the_sample_standard_deviation() {
        let s = spread(&[0.8, 0.9, 1.0]);
        assert!((s.mean - 0.9).abs() < 1e-12);
        assert!((s.sd - 0.1).abs() < 1e-12);
        assert_eq!((s.min, s.max), (0.8, 1.0));
    }
}

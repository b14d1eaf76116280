//! Evaluation metrics for a binary classifier's scores: ROC/PR curves, AUC with confidence
//! intervals, confusion-matrix rates, threshold selection and calibration; and per-class
//! figures for classifiers over more than two classes (`multiclass`).
//!
//! Conventions shared by every function here:
//! - `scores[i]` is the model's score for case `i` (higher means "more likely positive") and
//!   `labels[i]` is `true` for a positive case; both slices have the same length.
//! - Scores must be finite: NaN has no order, and `+inf` is reserved for the ROC curve's
//!   "predict nothing positive" threshold.
//! - A case is predicted positive when `score >= threshold`.
//! - Curves and AUC follow scikit-learn's semantics, and the test suite checks them against
//!   scikit-learn on committed fixtures (`tools/reference/metrics`).

mod bootstrap;
mod calibration;
mod confusion;
mod delong;
mod estimate;
mod multiclass;
pub mod normal;
mod pr;
mod ranking;
mod roc;
mod threshold;

pub use bootstrap::{BootstrapConfig, BootstrapEstimate, bootstrap_auc, bootstrap_ci};
pub use calibration::{
    DEFAULT_CALIBRATION_BINS, ReliabilityBin, ReliabilityDiagram, brier_score, reliability_diagram,
};
pub use confusion::{BinaryMetrics, ConfusionMatrix};
pub use delong::{DelongAuc, PairedAucTest, delong_auc, delong_paired_test};
pub use estimate::{ConfidenceLevel, Estimate, Proportion};
pub use multiclass::{ClassFigures, OneVsRest, class_figures, predicted_class};
pub use pr::{PrecisionRecallCurve, precision_recall_curve};
pub use roc::{RocCurve, roc_curve};
pub use threshold::{OperatingPoint, ThresholdRule, select_threshold};

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("no cases: {metric} needs at least one scored case")]
    Empty { metric: &'static str },
    #[error("{scores} scores but {labels} labels: {metric} needs one score per label")]
    LengthMismatch {
        metric: &'static str,
        scores: usize,
        labels: usize,
    },
    #[error("score {index} is {value}: {metric} needs finite scores")]
    NonFiniteScore {
        metric: &'static str,
        index: usize,
        value: f64,
    },
    #[error(
        "{metric} needs at least {needed_positives} positive and {needed_negatives} negative \
         case(s), got {positives} positive and {negatives} negative"
    )]
    NotEnoughCases {
        metric: &'static str,
        needed_positives: usize,
        needed_negatives: usize,
        positives: usize,
        negatives: usize,
    },
    #[error("score {index} is {value}: {metric} needs probabilities in [0, 1]")]
    NotAProbability {
        metric: &'static str,
        index: usize,
        value: f64,
    },
    #[error("{name} = {value} is invalid: {expected}")]
    InvalidParameter {
        name: &'static str,
        value: f64,
        expected: &'static str,
    },
    #[error("{metric} is undefined on these cases")]
    Undefined { metric: &'static str },
}

/// Checks the conventions above: equal lengths, at least one case, finite scores.
fn check_scores(metric: &'static str, scores: &[f64], labels: &[bool]) -> Result<(), MetricsError> {
    if scores.len() != labels.len() {
        return Err(MetricsError::LengthMismatch {
            metric,
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    if scores.is_empty() {
        return Err(MetricsError::Empty { metric });
    }
    match scores.iter().position(|score| !score.is_finite()) {
        Some(index) => Err(MetricsError::NonFiniteScore {
            metric,
            index,
            value: scores[index],
        }),
        None => Ok(()),
    }
}

/// Checks that there are enough cases of each class; returns (positives, negatives).
fn check_class_counts(
    metric: &'static str,
    labels: &[bool],
    (needed_positives, needed_negatives): (usize, usize),
) -> Result<(usize, usize), MetricsError> {
    let positives = labels.iter().filter(|&&label| label).count();
    let negatives = labels.len() - positives;
    if positives < needed_positives || negatives < needed_negatives {
        return Err(MetricsError::NotEnoughCases {
            metric,
            needed_positives,
            needed_negatives,
            positives,
            negatives,
        });
    }
    Ok((positives, negatives))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_mismatched_lengths() {
        let error = check_scores("AUC", &[0.1, 0.2], &[true]).unwrap_err();
        assert_eq!(
            error,
            MetricsError::LengthMismatch {
                metric: "AUC",
                scores: 2,
                labels: 1
            }
        );
    }

    #[test]
    fn rejects_empty_input() {
        let error = check_scores("AUC", &[], &[]).unwrap_err();
        assert_eq!(error, MetricsError::Empty { metric: "AUC" });
    }

    #[test]
    fn rejects_nan_and_infinite_scores_naming_the_case() {
        let error = check_scores("AUC", &[0.1, f64::NAN], &[true, false]).unwrap_err();
        assert!(matches!(
            error,
            MetricsError::NonFiniteScore { index: 1, .. }
        ));
        assert!(error.to_string().contains("score 1 is NaN"));
        let error = check_scores("AUC", &[f64::INFINITY], &[true]).unwrap_err();
        assert!(matches!(
            error,
            MetricsError::NonFiniteScore { index: 0, .. }
        ));
    }

    #[test]
    fn counts_classes_and_rejects_a_missing_one() {
        assert_eq!(
            check_class_counts("AUC", &[true, false, true], (1, 1)),
            Ok((2, 1))
        );
        let error = check_class_counts("AUC", &[true, true], (1, 1)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "AUC needs at least 1 positive and 1 negative case(s), got 2 positive and 0 negative"
        );
    }
}

//! The confusion matrix at a decision threshold and the rates read from it (accuracy,
//! sensitivity, specificity, PPV, NPV, F1), with Wilson confidence intervals.

use serde::{Deserialize, Serialize};

use super::{ConfidenceLevel, Estimate, MetricsError, Proportion, check_scores};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub true_positives: usize,
    pub false_positives: usize,
    pub true_negatives: usize,
    pub false_negatives: usize,
}

/// Every rate of a confusion matrix with its confidence interval; a rate is `None` when its
/// denominator is zero (e.g. PPV when nothing was predicted positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    pub accuracy: Option<Estimate>,
    pub sensitivity: Option<Estimate>,
    pub specificity: Option<Estimate>,
    pub ppv: Option<Estimate>,
    pub npv: Option<Estimate>,
    /// F1 is not a proportion of cases, so it has no Wilson interval; use `bootstrap_ci`.
    pub f1: Option<f64>,
}

impl ConfusionMatrix {
    /// Counts from predicting positive every case with `score >= threshold`.
    pub fn at_threshold(
        scores: &[f64],
        labels: &[bool],
        threshold: f64,
    ) -> Result<Self, MetricsError> {
        check_scores("confusion matrix", scores, labels)?;
        if threshold.is_nan() {
            return Err(MetricsError::InvalidParameter {
                name: "threshold",
                value: threshold,
                expected: "a number (cases with score >= threshold are predicted positive)",
            });
        }
        let mut matrix = Self {
            true_positives: 0,
            false_positives: 0,
            true_negatives: 0,
            false_negatives: 0,
        };
        for (&score, &label) in scores.iter().zip(labels) {
            let count = match (score >= threshold, label) {
                (true, true) => &mut matrix.true_positives,
                (true, false) => &mut matrix.false_positives,
                (false, false) => &mut matrix.true_negatives,
                (false, true) => &mut matrix.false_negatives,
            };
            *count += 1;
        }
        Ok(matrix)
    }

    pub fn total(&self) -> usize {
        self.true_positives + self.false_positives + self.true_negatives + self.false_negatives
    }

    pub fn accuracy(&self) -> Proportion {
        Proportion {
            successes: self.true_positives + self.true_negatives,
            trials: self.total(),
        }
    }

    /// True positive rate (recall): positives predicted positive.
    pub fn sensitivity(&self) -> Proportion {
        Proportion {
            successes: self.true_positives,
            trials: self.true_positives + self.false_negatives,
        }
    }

    /// True negative rate: negatives predicted negative.
    pub fn specificity(&self) -> Proportion {
        Proportion {
            successes: self.true_negatives,
            trials: self.true_negatives + self.false_positives,
        }
    }

    /// Positive predictive value (precision): predicted positives that are positive.
    pub fn ppv(&self) -> Proportion {
        Proportion {
            successes: self.true_positives,
            trials: self.true_positives + self.false_positives,
        }
    }

    /// Negative predictive value: predicted negatives that are negative.
    pub fn npv(&self) -> Proportion {
        Proportion {
            successes: self.true_negatives,
            trials: self.true_negatives + self.false_negatives,
        }
    }

    /// Harmonic mean of PPV and sensitivity; `None` with no positives and none predicted.
    pub fn f1(&self) -> Option<f64> {
        let denominator = 2 * self.true_positives + self.false_positives + self.false_negatives;
        (denominator > 0).then(|| 2.0 * self.true_positives as f64 / denominator as f64)
    }

    /// All rates with Wilson intervals at `confidence`.
    pub fn metrics(&self, confidence: ConfidenceLevel) -> BinaryMetrics {
        BinaryMetrics {
            accuracy: self.accuracy().wilson(confidence),
            sensitivity: self.sensitivity().wilson(confidence),
            specificity: self.specificity().wilson(confidence),
            ppv: self.ppv().wilson(confidence),
            npv: self.npv().wilson(confidence),
            f1: self.f1(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCORES: [f64; 6] = [0.9, 0.5, 0.5, 0.3, 0.2, 0.7];
    const LABELS: [bool; 6] = [true, true, false, true, false, false];

    #[test]
    fn a_score_equal_to_the_threshold_is_predicted_positive() {
        let matrix = ConfusionMatrix::at_threshold(&SCORES, &LABELS, 0.5).unwrap();
        assert_eq!(
            matrix,
            ConfusionMatrix {
                true_positives: 2,
                false_positives: 2,
                true_negatives: 1,
                false_negatives: 1
            }
        );
        assert_eq!(matrix.sensitivity().value(), Some(2.0 / 3.0));
        assert_eq!(matrix.specificity().value(), Some(1.0 / 3.0));
        assert_eq!(matrix.ppv().value(), Some(0.5));
        assert_eq!(matrix.npv().value(), Some(0.5));
        assert_eq!(matrix.accuracy().value(), Some(0.5));
        assert_eq!(matrix.f1(), Some(4.0 / 7.0));
    }

    #[test]
    fn rates_without_a_denominator_are_none() {
        let matrix = ConfusionMatrix::at_threshold(&SCORES, &LABELS, 1.0).unwrap();
        let metrics = matrix.metrics(ConfidenceLevel::default());
        assert_eq!(metrics.ppv, None);
        assert_eq!(
            metrics.sensitivity.map(|estimate| estimate.value),
            Some(0.0)
        );
        assert_eq!(metrics.f1, Some(0.0));
    }

    #[test]
    fn rejects_a_nan_threshold() {
        let error = ConfusionMatrix::at_threshold(&SCORES, &LABELS, f64::NAN).unwrap_err();
        assert!(matches!(
            error,
            MetricsError::InvalidParameter {
                name: "threshold",
                ..
            }
        ));
    }
}

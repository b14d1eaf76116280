//! DeLong's nonparametric variance of the AUC, by Sun & Xu's O(n log n) midrank algorithm
//! (IEEE Signal Processing Letters 21(11), 2014): AUC confidence intervals and paired tests.

use serde::{Deserialize, Serialize};

use super::ranking::midranks;
use super::{ConfidenceLevel, Estimate, MetricsError, check_class_counts, check_scores, normal};

/// The AUC with its DeLong standard error and Wald interval (clipped to [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DelongAuc {
    pub auc: Estimate,
    pub std_error: f64,
}

/// DeLong's test of two models' AUCs on the same cases (H0: equal AUCs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedAucTest {
    pub auc_a: f64,
    pub auc_b: f64,
    /// `auc_a - auc_b`.
    pub difference: f64,
    /// Standard error of the difference, which accounts for the correlation between models.
    pub std_error: f64,
    /// `difference / std_error`; 0 when both are 0, ±infinity when only the error is 0.
    pub z: f64,
    /// Two-sided p-value of `z`.
    pub p_value: f64,
}

/// The AUC and its confidence interval; needs two cases of each class for the variance.
pub fn delong_auc(
    scores: &[f64],
    labels: &[bool],
    confidence: ConfidenceLevel,
) -> Result<DelongAuc, MetricsError> {
    let model = StructuralComponents::new("DeLong AUC", scores, labels)?;
    let std_error = model.covariance(&model).sqrt();
    let half_width = confidence.z() * std_error;
    Ok(DelongAuc {
        auc: Estimate {
            value: model.auc,
            lower: (model.auc - half_width).max(0.0),
            upper: (model.auc + half_width).min(1.0),
        },
        std_error,
    })
}

/// Compares model A's and model B's scores for the same cases (`labels`).
pub fn delong_paired_test(
    scores_a: &[f64],
    scores_b: &[f64],
    labels: &[bool],
) -> Result<PairedAucTest, MetricsError> {
    const METRIC: &str = "DeLong paired test";
    let a = StructuralComponents::new(METRIC, scores_a, labels)?;
    let b = StructuralComponents::new(METRIC, scores_b, labels)?;
    let variance = a.covariance(&a) + b.covariance(&b) - 2.0 * a.covariance(&b);
    // Rounding can leave a tiny negative variance when the two models rank identically.
    let std_error = variance.max(0.0).sqrt();
    let difference = a.auc - b.auc;
    let z = if difference == 0.0 {
        0.0
    } else {
        difference / std_error
    };
    Ok(PairedAucTest {
        auc_a: a.auc,
        auc_b: b.auc,
        difference,
        std_error,
        z,
        p_value: normal::two_sided_p_value(z),
    })
}

/// DeLong's placement values of one model: for each positive, the fraction of negatives it
/// outscores (V10), and for each negative, the fraction of positives that outscore it (V01),
/// ties counting one half. Their means are the AUC, their variances give its variance.
struct StructuralComponents {
    auc: f64,
    positive_placements: Vec<f64>,
    negative_placements: Vec<f64>,
}

impl StructuralComponents {
    fn new(metric: &'static str, scores: &[f64], labels: &[bool]) -> Result<Self, MetricsError> {
        check_scores(metric, scores, labels)?;
        check_class_counts(metric, labels, (2, 2))?;
        let class_scores = |class: bool| -> Vec<f64> {
            scores
                .iter()
                .zip(labels)
                .filter(|&(_, &label)| label == class)
                .map(|(&score, _)| score)
                .collect()
        };
        let positives = class_scores(true);
        let negatives = class_scores(false);
        let (m, n) = (positives.len(), negatives.len());
        let within_positives = midranks(&positives);
        let within_negatives = midranks(&negatives);
        let combined = midranks(&[positives, negatives].concat());
        // A case's rank among all cases minus its rank within its class counts the cases of
        // the other class below it.
        let positive_placements: Vec<f64> = (0..m)
            .map(|i| (combined[i] - within_positives[i]) / n as f64)
            .collect();
        let negative_placements = (0..n)
            .map(|j| 1.0 - (combined[m + j] - within_negatives[j]) / m as f64)
            .collect();
        let positive_rank_sum: f64 = combined[..m].iter().sum();
        let auc = (positive_rank_sum - (m * (m + 1)) as f64 / 2.0) / (m as f64 * n as f64);
        Ok(Self {
            auc,
            positive_placements,
            negative_placements,
        })
    }

    /// DeLong's covariance between two models' AUCs (their variance when `other` is `self`).
    fn covariance(&self, other: &Self) -> f64 {
        let m = self.positive_placements.len() as f64;
        let n = self.negative_placements.len() as f64;
        sample_covariance(&self.positive_placements, &other.positive_placements) / m
            + sample_covariance(&self.negative_placements, &other.negative_placements) / n
    }
}

/// Unbiased (n - 1) covariance of two equally long samples of at least two values.
fn sample_covariance(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean_x = x.iter().sum::<f64>() / n;
    let mean_y = y.iter().sum::<f64>() / n;
    let products: f64 = x
        .iter()
        .zip(y)
        .map(|(a, b)| (a - mean_x) * (b - mean_y))
        .sum();
    products / (n - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_curve;

    const SCORES: [f64; 8] = [0.9, 0.8, 0.7, 0.7, 0.6, 0.4, 0.3, 0.1];
    const LABELS: [bool; 8] = [true, true, false, true, false, true, false, false];

    #[test]
    fn auc_agrees_with_the_trapezoid_rule() {
        let delong = delong_auc(&SCORES, &LABELS, ConfidenceLevel::default()).unwrap();
        let trapezoid = roc_curve(&SCORES, &LABELS).unwrap().auc();
        assert!((delong.auc.value - trapezoid).abs() < 1e-12);
        assert!(delong.auc.contains(trapezoid) && delong.std_error > 0.0);
    }

    #[test]
    fn perfect_separation_has_zero_variance() {
        let labels = [true, true, false, false];
        let delong = delong_auc(&[0.9, 0.8, 0.2, 0.1], &labels, ConfidenceLevel::default());
        let delong = delong.unwrap();
        assert_eq!((delong.auc.value, delong.std_error), (1.0, 0.0));
        assert_eq!((delong.auc.lower, delong.auc.upper), (1.0, 1.0));
    }

    #[test]
    fn a_model_compared_with_itself_shows_no_difference() {
        let test = delong_paired_test(&SCORES, &SCORES, &LABELS).unwrap();
        assert_eq!((test.difference, test.z, test.p_value), (0.0, 0.0, 1.0));
    }

    #[test]
    fn a_different_ranking_gives_a_finite_z() {
        let other = [0.2, 0.8, 0.7, 0.9, 0.6, 0.4, 0.3, 0.1];
        let test = delong_paired_test(&SCORES, &other, &LABELS).unwrap();
        assert!(test.z.is_finite() && test.p_value > 0.0 && test.p_value < 1.0);
        assert_eq!(test.difference, test.auc_a - test.auc_b);
    }

    #[test]
    fn needs_two_cases_per_class_and_matching_lengths() {
        let one_positive = delong_auc(&[0.9, 0.2, 0.1], &[true, false, false], Default::default());
        assert!(matches!(
            one_positive,
            Err(MetricsError::NotEnoughCases { positives: 1, .. })
        ));
        let mismatch = delong_paired_test(&SCORES, &SCORES[..7], &LABELS);
        assert!(matches!(mismatch, Err(MetricsError::LengthMismatch { .. })));
    }
}

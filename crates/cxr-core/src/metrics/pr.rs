//! The precision-recall curve and average precision, with scikit-learn's semantics
//! (`precision_recall_curve` and `average_precision_score`).

use serde::Serialize;

use super::ranking::ThresholdCounts;
use super::{MetricsError, check_class_counts, check_scores};

/// One point per distinct score plus the start of the curve, ordered like `RocCurve`.
///
/// Point 0 is recall 0, precision 1 at threshold `+inf`; point `k > 0` comes from predicting
/// `score >= thresholds[k]` positive, thresholds descending. These are scikit-learn's arrays
/// reversed (its last point, which has no threshold, is our first). Like `RocCurve`, it
/// serialises for reports only (the `+inf` threshold becomes `null`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrecisionRecallCurve {
    pub thresholds: Vec<f64>,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
}

/// The precision-recall curve; needs at least one positive case.
pub fn precision_recall_curve(
    scores: &[f64],
    labels: &[bool],
) -> Result<PrecisionRecallCurve, MetricsError> {
    const METRIC: &str = "precision-recall curve";
    check_scores(METRIC, scores, labels)?;
    let (positives, _) = check_class_counts(METRIC, labels, (1, 0))?;
    let counts = ThresholdCounts::new(scores, labels);
    // Every distinct score predicts at least its own case positive, so no division by zero.
    let precision = counts
        .true_positives
        .iter()
        .zip(&counts.false_positives)
        .map(|(&tp, &fp)| tp as f64 / (tp + fp) as f64);
    let recall = counts
        .true_positives
        .iter()
        .map(|&tp| tp as f64 / positives as f64);
    Ok(PrecisionRecallCurve {
        thresholds: [f64::INFINITY]
            .into_iter()
            .chain(counts.thresholds)
            .collect(),
        precision: [1.0].into_iter().chain(precision).collect(),
        recall: [0.0].into_iter().chain(recall).collect(),
    })
}

impl PrecisionRecallCurve {
    /// Average precision: precision at each threshold weighted by the recall it adds,
    /// `sum_k (R_k - R_(k-1)) P_k`, with no interpolation between points.
    pub fn average_precision(&self) -> f64 {
        (1..self.recall.len())
            .map(|k| (self.recall[k] - self.recall[k - 1]) * self.precision[k])
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_curve() {
        let curve =
            precision_recall_curve(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert_eq!(curve.thresholds, vec![f64::INFINITY, 0.8, 0.4, 0.35, 0.1]);
        assert_eq!(curve.precision, vec![1.0, 1.0, 0.5, 2.0 / 3.0, 0.5]);
        assert_eq!(curve.recall, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        assert!((curve.average_precision() - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-15);
    }

    #[test]
    fn needs_a_positive_but_not_a_negative() {
        assert!(precision_recall_curve(&[0.3], &[false]).is_err());
        let curve = precision_recall_curve(&[0.3, 0.6], &[true, true]).unwrap();
        assert_eq!(curve.average_precision(), 1.0);
    }
}

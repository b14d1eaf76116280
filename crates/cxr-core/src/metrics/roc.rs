//! The receiver operating characteristic curve and the area under it, with scikit-learn's
//! semantics (`roc_curve(drop_intermediate=False)` and `roc_auc_score`).

use serde::Serialize;

use super::ranking::ThresholdCounts;
use super::{ConfusionMatrix, MetricsError, check_class_counts, check_scores};

/// One point per distinct score plus the origin.
///
/// Point 0 is (0, 0) at threshold `+inf` (nothing predicted positive); point `k > 0` is the
/// result of predicting `score >= thresholds[k]` positive, thresholds descending. Every
/// distinct score is kept (scikit-learn's `drop_intermediate=False`): collinear points do not
/// change the area, and threshold selection needs them all. Serialisable for reports only:
/// serde_json writes the `+inf` threshold as `null`, so it would not read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocCurve {
    pub thresholds: Vec<f64>,
    pub false_positive_rate: Vec<f64>,
    pub true_positive_rate: Vec<f64>,
    pub true_positives: Vec<usize>,
    pub false_positives: Vec<usize>,
    pub positives: usize,
    pub negatives: usize,
}

/// The ROC curve of `scores` against `labels`; needs both classes.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Result<RocCurve, MetricsError> {
    const METRIC: &str = "ROC curve";
    check_scores(METRIC, scores, labels)?;
    let (positives, negatives) = check_class_counts(METRIC, labels, (1, 1))?;
    let counts = ThresholdCounts::new(scores, labels);
    let thresholds = [f64::INFINITY]
        .into_iter()
        .chain(counts.thresholds)
        .collect();
    let true_positives: Vec<usize> = [0].into_iter().chain(counts.true_positives).collect();
    let false_positives: Vec<usize> = [0].into_iter().chain(counts.false_positives).collect();
    let rate = |counts: &[usize], total: usize| -> Vec<f64> {
        counts
            .iter()
            .map(|&count| count as f64 / total as f64)
            .collect()
    };
    Ok(RocCurve {
        thresholds,
        false_positive_rate: rate(&false_positives, negatives),
        true_positive_rate: rate(&true_positives, positives),
        true_positives,
        false_positives,
        positives,
        negatives,
    })
}

impl RocCurve {
    /// Area under the curve by the trapezoid rule: a run of tied scores spanning both classes
    /// is a diagonal segment, so each positive-negative tie counts one half.
    pub fn auc(&self) -> f64 {
        let x = &self.false_positive_rate;
        let y = &self.true_positive_rate;
        (1..x.len())
            .map(|k| (x[k] - x[k - 1]) * (y[k] + y[k - 1]) / 2.0)
            .sum()
    }

    /// The confusion matrix of point `k`, i.e. at threshold `thresholds[k]`.
    pub fn confusion_at(&self, k: usize) -> Option<ConfusionMatrix> {
        let true_positives = *self.true_positives.get(k)?;
        let false_positives = *self.false_positives.get(k)?;
        Some(ConfusionMatrix {
            true_positives,
            false_positives,
            true_negatives: self.negatives - false_positives,
            false_negatives: self.positives - true_positives,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_origin_and_ends_at_one_one() {
        let curve = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert_eq!(curve.thresholds, vec![f64::INFINITY, 0.8, 0.4, 0.35, 0.1]);
        assert_eq!(curve.false_positive_rate, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(curve.true_positive_rate, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_eq!(curve.auc(), 0.75);
    }

    #[test]
    fn ties_across_classes_count_one_half() {
        let curve = roc_curve(&[0.5, 0.5], &[true, false]).unwrap();
        assert_eq!(curve.auc(), 0.5);
    }

    #[test]
    fn needs_both_classes() {
        let error = roc_curve(&[0.1, 0.9], &[true, true]).unwrap_err();
        assert!(matches!(
            error,
            MetricsError::NotEnoughCases { negatives: 0, .. }
        ));
    }

    #[test]
    fn confusion_at_reads_counts_of_a_point() {
        let curve = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        let matrix = curve.confusion_at(2).unwrap();
        assert_eq!(
            matrix,
            ConfusionMatrix {
                true_positives: 1,
                false_positives: 1,
                true_negatives: 1,
                false_negatives: 1
            }
        );
        assert_eq!(curve.confusion_at(5), None);
    }
}

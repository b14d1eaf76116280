//! Choosing a decision threshold on a ROC curve: for a target sensitivity, for a target
//! specificity, or by Youden's J; the result is a named operating point.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfusionMatrix, MetricsError, RocCurve};

/// How to pick a threshold from the curve's candidates (its distinct scores and `+inf`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdRule {
    /// The highest threshold whose sensitivity is at least the target (0 < target <= 1):
    /// the most specific way to miss no more positives than allowed.
    Sensitivity(f64),
    /// The lowest threshold whose specificity is at least the target (0 < target <= 1).
    Specificity(f64),
    /// The threshold maximising sensitivity + specificity - 1 (the highest one on ties).
    Youden,
}

impl fmt::Display for ThresholdRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sensitivity(target) => write!(f, "sensitivity >= {target}"),
            Self::Specificity(target) => write!(f, "specificity >= {target}"),
            Self::Youden => f.write_str("Youden's J"),
        }
    }
}

/// A threshold and what it does on the cases it was chosen on.
///
/// `threshold` is `+inf` when only "predict nothing positive" meets the rule (specificity 1
/// with a negative at the top score); serde_json writes that as `null`, which does not read
/// back into an `OperatingPoint`: check `threshold.is_finite()` before storing one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// The rule that chose it, e.g. "sensitivity >= 0.9"; callers may rename it.
    pub name: String,
    pub threshold: f64,
    pub sensitivity: f64,
    pub specificity: f64,
    pub confusion: ConfusionMatrix,
}

/// Applies `rule` to `curve`.
pub fn select_threshold(
    curve: &RocCurve,
    rule: ThresholdRule,
) -> Result<OperatingPoint, MetricsError> {
    let points = 0..curve.thresholds.len();
    let sensitivity = |k: usize| curve.true_positives[k] as f64 / curve.positives as f64;
    let specificity =
        |k: usize| (curve.negatives - curve.false_positives[k]) as f64 / curve.negatives as f64;
    // Sensitivity rises and specificity falls along the curve (thresholds descending).
    let chosen = match rule {
        ThresholdRule::Sensitivity(target) => {
            check_target("target sensitivity", target)?;
            points.clone().find(|&k| sensitivity(k) >= target)
        }
        ThresholdRule::Specificity(target) => {
            check_target("target specificity", target)?;
            points.clone().rev().find(|&k| specificity(k) >= target)
        }
        ThresholdRule::Youden => points.clone().reduce(|best, k| {
            let j = |k: usize| curve.true_positive_rate[k] - curve.false_positive_rate[k];
            if j(k) > j(best) { k } else { best }
        }),
    };
    // A valid target is always met at one end of the curve, where the rate is 1.
    let k = chosen.ok_or(MetricsError::Undefined {
        metric: "threshold selection",
    })?;
    let confusion = curve.confusion_at(k).ok_or(MetricsError::Undefined {
        metric: "threshold selection",
    })?;
    Ok(OperatingPoint {
        name: rule.to_string(),
        threshold: curve.thresholds[k],
        sensitivity: sensitivity(k),
        specificity: specificity(k),
        confusion,
    })
}

fn check_target(name: &'static str, target: f64) -> Result<(), MetricsError> {
    if target > 0.0 && target <= 1.0 {
        Ok(())
    } else {
        Err(MetricsError::InvalidParameter {
            name,
            value: target,
            expected: "a fraction in (0, 1], e.g. 0.9",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::roc_curve;

    // Positives 0.9, 0.7, 0.6, 0.3; negatives 0.8, 0.5, 0.4, 0.2, 0.1.
    fn curve() -> RocCurve {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];
        let labels = [true, false, true, true, false, false, true, false, false];
        roc_curve(&scores, &labels).unwrap()
    }

    #[test]
    fn target_sensitivity_takes_the_highest_threshold_that_meets_it() {
        let point = select_threshold(&curve(), ThresholdRule::Sensitivity(0.75)).unwrap();
        assert_eq!(point.threshold, 0.6);
        assert_eq!((point.sensitivity, point.specificity), (0.75, 0.8));
        assert_eq!(point.name, "sensitivity >= 0.75");
        let point = select_threshold(&curve(), ThresholdRule::Sensitivity(1.0)).unwrap();
        assert_eq!(point.threshold, 0.3);
    }

    #[test]
    fn target_specificity_takes_the_lowest_threshold_that_meets_it() {
        let point = select_threshold(&curve(), ThresholdRule::Specificity(0.6)).unwrap();
        assert_eq!(point.threshold, 0.5);
        assert_eq!((point.sensitivity, point.specificity), (0.75, 0.6));
        let point = select_threshold(&curve(), ThresholdRule::Specificity(1.0)).unwrap();
        assert_eq!((point.threshold, point.sensitivity), (0.9, 0.25));
    }

    #[test]
    fn youden_maximises_sensitivity_plus_specificity() {
        let point = select_threshold(&curve(), ThresholdRule::Youden).unwrap();
        // J = 0.75 + 0.8 - 1 = 0.55 at 0.6 beats 1 + 0.4 - 1 = 0.4 at 0.3.
        assert_eq!(point.threshold, 0.6);
        assert_eq!(point.confusion.false_positives, 1);
    }

    #[test]
    fn rejects_targets_outside_zero_one() {
        for target in [0.0, 1.5, f64::NAN] {
            let error = select_threshold(&curve(), ThresholdRule::Specificity(target));
            assert!(matches!(error, Err(MetricsError::InvalidParameter { .. })));
        }
    }
}

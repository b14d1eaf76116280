//! The named operating points of a TB screening model (default, Youden, WHO's minimum and
//! optimal sensitivity, 70 % specificity), chosen on scored cases and rated with Wilson CIs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::metrics::{
    BinaryMetrics, ConfidenceLevel, ConfusionMatrix, MetricsError, ThresholdRule, roc_curve,
    select_threshold,
};

/// An operating point every report shows and every model card may hold.
///
/// The WHO target product profile for a TB triage test asks for sensitivity >= 0.90 with
/// specificity >= 0.70 at minimum, and sensitivity >= 0.95 with specificity >= 0.80 as the
/// optimum: hence one point per sensitivity target and one at the minimum specificity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OperatingPointName {
    /// The model's own threshold (0.5 for a sigmoid output unless calibrated otherwise).
    Default,
    /// Maximum sensitivity + specificity - 1.
    Youden,
    /// Sensitivity >= 0.90 (WHO minimum).
    WhoMin,
    /// Specificity >= 0.70 (WHO minimum).
    #[serde(rename = "spec-70")]
    Spec70,
    /// Sensitivity >= 0.95 (WHO optimal).
    WhoOptimal,
}

impl OperatingPointName {
    pub const ALL: [Self; 5] = [
        Self::Default,
        Self::Youden,
        Self::WhoMin,
        Self::Spec70,
        Self::WhoOptimal,
    ];

    /// The name users type and files store, e.g. `who-min`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Youden => "youden",
            Self::WhoMin => "who-min",
            Self::Spec70 => "spec-70",
            Self::WhoOptimal => "who-optimal",
        }
    }

    /// What the point means, for reports.
    pub fn description(self) -> &'static str {
        match self {
            Self::Default => "model's default threshold",
            Self::Youden => "Youden's J (max sensitivity + specificity - 1)",
            Self::WhoMin => "sensitivity >= 0.90 (WHO minimum)",
            Self::Spec70 => "specificity >= 0.70 (WHO minimum)",
            Self::WhoOptimal => "sensitivity >= 0.95 (WHO optimal)",
        }
    }

    /// The ROC rule that chooses this point; `None` for the default, which is given.
    pub fn rule(self) -> Option<ThresholdRule> {
        match self {
            Self::Default => None,
            Self::Youden => Some(ThresholdRule::Youden),
            Self::WhoMin => Some(ThresholdRule::Sensitivity(0.90)),
            Self::Spec70 => Some(ThresholdRule::Specificity(0.70)),
            Self::WhoOptimal => Some(ThresholdRule::Sensitivity(0.95)),
        }
    }
}

impl fmt::Display for OperatingPointName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`OperatingPointName::ALL`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "unknown operating point {given:?}; expected one of default, youden, who-min, spec-70, who-optimal"
)]
pub struct UnknownOperatingPoint {
    pub given: String,
}

impl FromStr for OperatingPointName {
    type Err = UnknownOperatingPoint;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|name| name.as_str() == text)
            .ok_or_else(|| UnknownOperatingPoint {
                given: text.to_string(),
            })
    }
}

/// A threshold and how the model does there on the cases it was chosen on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatedOperatingPoint {
    pub name: OperatingPointName,
    pub description: String,
    /// Cases with `score >= threshold` are called positive. `+inf` (written as JSON `null`)
    /// only when nothing but "call no case positive" meets the rule.
    pub threshold: f64,
    pub confusion: ConfusionMatrix,
    /// Accuracy, sensitivity, specificity, PPV, NPV with Wilson intervals. On the cases that
    /// chose the threshold these are optimistic; rate a calibrated threshold on other cases.
    pub metrics: BinaryMetrics,
}

/// Every named operating point, chosen on `scores`/`labels`, with `default_threshold` as the
/// default one.
pub fn choose_operating_points(
    scores: &[f64],
    labels: &[bool],
    default_threshold: f64,
    confidence: ConfidenceLevel,
) -> Result<Vec<RatedOperatingPoint>, MetricsError> {
    let curve = roc_curve(scores, labels)?;
    OperatingPointName::ALL
        .into_iter()
        .map(|name| {
            let threshold = match name.rule() {
                Some(rule) => select_threshold(&curve, rule)?.threshold,
                None => default_threshold,
            };
            rate_threshold(name, threshold, scores, labels, confidence)
        })
        .collect()
}

/// How `threshold` does on `scores`/`labels`, e.g. a calibrated point on a test set.
pub fn rate_threshold(
    name: OperatingPointName,
    threshold: f64,
    scores: &[f64],
    labels: &[bool],
    confidence: ConfidenceLevel,
) -> Result<RatedOperatingPoint, MetricsError> {
    let confusion = ConfusionMatrix::at_threshold(scores, labels, threshold)?;
    Ok(RatedOperatingPoint {
        name,
        description: name.description().to_string(),
        threshold,
        confusion,
        metrics: confusion.metrics(confidence),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Positives 0.9, 0.7, 0.6, 0.3; negatives 0.8, 0.5, 0.4, 0.2, 0.1.
    const SCORES: [f64; 9] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];
    const LABELS: [bool; 9] = [true, false, true, true, false, false, true, false, false];

    #[test]
    fn names_round_trip_through_text_and_json() {
        for name in OperatingPointName::ALL {
            assert_eq!(name.as_str().parse::<OperatingPointName>(), Ok(name));
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{name}\""));
        }
        let error = "who".parse::<OperatingPointName>().unwrap_err();
        assert!(error.to_string().contains("who-min"), "{error}");
    }

    #[test]
    fn chooses_every_point_by_its_rule() {
        let points =
            choose_operating_points(&SCORES, &LABELS, 0.5, ConfidenceLevel::default()).unwrap();
        let threshold = |name| points.iter().find(|p| p.name == name).unwrap().threshold;
        assert_eq!(threshold(OperatingPointName::Default), 0.5);
        assert_eq!(threshold(OperatingPointName::Youden), 0.6);
        // Sensitivity 0.9 and 0.95 both need all four positives: down to 0.3.
        assert_eq!(threshold(OperatingPointName::WhoMin), 0.3);
        assert_eq!(threshold(OperatingPointName::WhoOptimal), 0.3);
        // Specificity >= 0.7 of five negatives needs four below: lowest such threshold is 0.6.
        assert_eq!(threshold(OperatingPointName::Spec70), 0.6);
    }

    #[test]
    fn rated_points_carry_wilson_intervals() {
        let point = rate_threshold(
            OperatingPointName::WhoMin,
            0.3,
            &SCORES,
            &LABELS,
            ConfidenceLevel::default(),
        )
        .unwrap();
        let sensitivity = point.metrics.sensitivity.unwrap();
        assert_eq!(sensitivity.value, 1.0);
        assert!(
            sensitivity.lower < 1.0 && sensitivity.lower > 0.4,
            "{sensitivity:?}"
        );
        assert_eq!(point.confusion.false_positives, 3);
    }
}

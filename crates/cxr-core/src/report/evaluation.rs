//! Everything a paper reports about one binary model on one labelled data set, computed from
//! its scores alone, plus the paired comparison of models scored on the same cases.

use serde::Serialize;

use super::operating_points::{RatedOperatingPoint, choose_operating_points};
use crate::metrics::{
    BinaryMetrics, BootstrapConfig, BootstrapEstimate, ConfidenceLevel, ConfusionMatrix, DelongAuc,
    MetricsError, PairedAucTest, PrecisionRecallCurve, ReliabilityDiagram, RocCurve, bootstrap_auc,
    brier_score, delong_auc, delong_paired_test, precision_recall_curve, reliability_diagram,
    roc_curve,
};

/// How to compute a report's intervals and bins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvaluationConfig {
    pub confidence: ConfidenceLevel,
    /// Seeded, stratified: the same seed gives the same AUC interval.
    pub bootstrap: BootstrapConfig,
    pub calibration_bins: usize,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            confidence: ConfidenceLevel::default(),
            bootstrap: BootstrapConfig {
                seed: 42,
                ..BootstrapConfig::default()
            },
            calibration_bins: crate::metrics::DEFAULT_CALIBRATION_BINS,
        }
    }
}

/// One model's probabilities for the cases of a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelScores {
    /// How the report names the model (its file name, say).
    pub model: String,
    /// Probability of the positive class per case, in [0, 1].
    pub probabilities: Vec<f64>,
    /// The threshold of the model's `default` operating point.
    pub default_threshold: f64,
    /// The operating points the model card holds (name, threshold), chosen on other data (its
    /// validation images, or `cxr calibrate`'s): rated here as they are, with no look at these
    /// labels, they are what a user of the model gets.
    pub card_points: Vec<(String, f64)>,
}

/// A threshold fixed before these cases were seen (a model card's), rated on them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixedPoint {
    pub name: String,
    pub threshold: f64,
    pub confusion: ConfusionMatrix,
    pub metrics: BinaryMetrics,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    pub brier_score: f64,
    pub expected_calibration_error: f64,
    pub reliability: ReliabilityDiagram,
}

/// One model's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub model: String,
    pub cases: usize,
    pub positives: usize,
    pub negatives: usize,
    /// AUC with DeLong's interval.
    pub auc: DelongAuc,
    /// The same AUC with a seeded stratified bootstrap interval, as a cross-check.
    pub auc_bootstrap: BootstrapEstimate,
    pub average_precision: f64,
    pub calibration: Calibration,
    /// The model card's thresholds rated on these cases: the honest figures.
    pub card_points: Vec<FixedPoint>,
    /// Thresholds chosen on these very cases by each rule, in
    /// [`OperatingPointName::ALL`](super::OperatingPointName::ALL) order, `default` first:
    /// optimistic, since each threshold saw the labels it is rated on.
    pub operating_points: Vec<RatedOperatingPoint>,
    pub roc: RocCurve,
    pub precision_recall: PrecisionRecallCurve,
}

/// DeLong's paired test of two models on the same cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub model_a: String,
    pub model_b: String,
    pub test: PairedAucTest,
}

/// Evaluates `model` against `labels`.
pub fn evaluate(
    model: &ModelScores,
    labels: &[bool],
    config: &EvaluationConfig,
) -> Result<Evaluation, MetricsError> {
    let scores = &model.probabilities;
    let reliability = reliability_diagram(scores, labels, config.calibration_bins)?;
    let roc = roc_curve(scores, labels)?;
    let positives = roc.positives;
    Ok(Evaluation {
        model: model.model.clone(),
        cases: labels.len(),
        positives,
        negatives: roc.negatives,
        auc: delong_auc(scores, labels, config.confidence)?,
        auc_bootstrap: bootstrap_auc(
            scores,
            labels,
            &BootstrapConfig {
                confidence: config.confidence,
                ..config.bootstrap
            },
        )?,
        average_precision: precision_recall_curve(scores, labels)?.average_precision(),
        calibration: Calibration {
            brier_score: brier_score(scores, labels)?,
            expected_calibration_error: reliability.expected_calibration_error(),
            reliability,
        },
        card_points: model
            .card_points
            .iter()
            .map(|(name, threshold)| {
                let confusion = ConfusionMatrix::at_threshold(scores, labels, *threshold)?;
                Ok(FixedPoint {
                    name: name.clone(),
                    threshold: *threshold,
                    confusion,
                    metrics: confusion.metrics(config.confidence),
                })
            })
            .collect::<Result<_, MetricsError>>()?,
        operating_points: choose_operating_points(
            scores,
            labels,
            model.default_threshold,
            config.confidence,
        )?,
        precision_recall: precision_recall_curve(scores, labels)?,
        roc,
    })
}

/// Compares model `a` with model `b` on the same cases.
pub fn compare(
    a: &ModelScores,
    b: &ModelScores,
    labels: &[bool],
) -> Result<Comparison, MetricsError> {
    Ok(Comparison {
        model_a: a.model.clone(),
        model_b: b.model.clone(),
        test: delong_paired_test(&a.probabilities, &b.probabilities, labels)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::OperatingPointName;

    fn model(probabilities: Vec<f64>) -> ModelScores {
        ModelScores {
            model: "m".into(),
            probabilities,
            default_threshold: 0.5,
            card_points: vec![("who-min".into(), 0.25)],
        }
    }

    #[test]
    fn a_perfect_ranking_has_auc_one_and_every_point_separates() {
        let labels = [false, false, false, true, true, true];
        let scores = model(vec![0.1, 0.2, 0.3, 0.7, 0.8, 0.9]);
        let evaluation = evaluate(&scores, &labels, &EvaluationConfig::default()).unwrap();
        assert_eq!(evaluation.auc.auc.value, 1.0);
        assert_eq!((evaluation.positives, evaluation.negatives), (3, 3));
        assert_eq!(evaluation.average_precision, 1.0);
        assert_eq!(
            evaluation.operating_points[0].name,
            OperatingPointName::Default
        );
        for point in &evaluation.operating_points {
            assert_eq!(
                point.metrics.accuracy.unwrap().value,
                1.0,
                "{:?}",
                point.name
            );
        }
    }

    #[test]
    fn card_thresholds_are_rated_as_given_not_chosen_again() {
        // At the card's 0.25, one normal (0.3) is called positive; the rules chosen on these
        // cases would not make that mistake, which is why both are reported.
        let labels = [false, false, false, true, true, true];
        let scores = model(vec![0.1, 0.2, 0.3, 0.7, 0.8, 0.9]);
        let evaluation = evaluate(&scores, &labels, &EvaluationConfig::default()).unwrap();
        let card = &evaluation.card_points[0];
        assert_eq!((card.name.as_str(), card.threshold), ("who-min", 0.25));
        assert_eq!(card.confusion.false_positives, 1);
        assert_eq!(card.metrics.sensitivity.unwrap().value, 1.0);
        assert!((card.metrics.specificity.unwrap().value - 2.0 / 3.0).abs() < 1e-12);
        let chosen = evaluation
            .operating_points
            .iter()
            .find(|p| p.name == OperatingPointName::WhoMin)
            .unwrap();
        assert_eq!(chosen.confusion.false_positives, 0);
    }

    #[test]
    fn probabilities_outside_zero_one_are_refused() {
        let labels = [false, true];
        let error = evaluate(
            &model(vec![0.2, 1.5]),
            &labels,
            &EvaluationConfig::default(),
        );
        assert!(matches!(
            error,
            Err(MetricsError::NotAProbability { index: 1, .. })
        ));
    }
}

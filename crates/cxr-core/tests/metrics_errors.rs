//! Every metric turns bad input (no cases, mismatched lengths, NaN scores, a missing class)
//! into a `MetricsError` instead of panicking or returning NaN.

use cxr_core::metrics::{
    BootstrapConfig, ConfidenceLevel, ConfusionMatrix, MetricsError, bootstrap_auc, brier_score,
    delong_auc, delong_paired_test, precision_recall_curve, reliability_diagram, roc_curve,
};

type Metric = fn(&[f64], &[bool]) -> Result<(), MetricsError>;

/// Each public entry point, reduced to "did it accept these scores and labels".
fn metrics() -> Vec<(&'static str, Metric)> {
    vec![
        ("roc_curve", |s, l| roc_curve(s, l).map(drop)),
        ("precision_recall_curve", |s, l| {
            precision_recall_curve(s, l).map(drop)
        }),
        ("delong_auc", |s, l| {
            delong_auc(s, l, ConfidenceLevel::default()).map(drop)
        }),
        ("delong_paired_test", |s, l| {
            delong_paired_test(s, s, l).map(drop)
        }),
        ("bootstrap_auc", |s, l| {
            let config = BootstrapConfig {
                resamples: 10,
                ..BootstrapConfig::default()
            };
            bootstrap_auc(s, l, &config).map(drop)
        }),
        ("confusion matrix", |s, l| {
            ConfusionMatrix::at_threshold(s, l, 0.5).map(drop)
        }),
        ("brier_score", |s, l| brier_score(s, l).map(drop)),
        ("reliability_diagram", |s, l| {
            reliability_diagram(s, l, 10).map(drop)
        }),
    ]
}

#[test]
fn empty_input_is_an_error() {
    for (name, metric) in metrics() {
        let error = metric(&[], &[]).unwrap_err();
        assert!(
            matches!(error, MetricsError::Empty { .. }),
            "{name}: {error}"
        );
    }
}

#[test]
fn mismatched_lengths_are_an_error() {
    for (name, metric) in metrics() {
        let error = metric(&[0.2, 0.4, 0.6], &[true, false]).unwrap_err();
        assert!(
            matches!(
                error,
                MetricsError::LengthMismatch {
                    scores: 3,
                    labels: 2,
                    ..
                }
            ),
            "{name}: {error}"
        );
    }
}

#[test]
fn nan_scores_are_an_error_naming_the_case() {
    let scores = [0.2, 0.9, f64::NAN, 0.3, 0.8, 0.1];
    let labels = [false, true, true, false, true, false];
    for (name, metric) in metrics() {
        let error = metric(&scores, &labels).unwrap_err();
        assert!(
            matches!(error, MetricsError::NonFiniteScore { index: 2, .. }),
            "{name}: {error}"
        );
    }
}

#[test]
fn auc_family_needs_both_classes_and_precision_recall_only_positives() {
    let scores = [0.2, 0.9, 0.4];
    for (name, metric) in metrics() {
        let all_positive = metric(&scores, &[true; 3]);
        let all_negative = metric(&scores, &[false; 3]);
        match name {
            "roc_curve" | "delong_auc" | "delong_paired_test" | "bootstrap_auc" => {
                let error = all_positive.unwrap_err();
                assert!(
                    matches!(error, MetricsError::NotEnoughCases { negatives: 0, .. }),
                    "{name}: {error}"
                );
            }
            "precision_recall_curve" => {
                assert_eq!(all_positive, Ok(()));
                let error = all_negative.unwrap_err();
                assert!(
                    matches!(error, MetricsError::NotEnoughCases { positives: 0, .. }),
                    "{name}: {error}"
                );
            }
            _ => assert!(all_positive.is_ok() && all_negative.is_ok(), "{name}"),
        }
    }
}

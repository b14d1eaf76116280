//! Properties of the seeded stratified bootstrap, which has no scikit-learn counterpart:
//! determinism, coverage of the estimate, narrowing with n, agreement with DeLong and Wilson.

use cxr_core::metrics::{
    BootstrapConfig, ConfidenceLevel, ConfusionMatrix, bootstrap_auc, bootstrap_ci, delong_auc,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `cases` scored cases, 40 % positive, with overlapping score ranges (AUC about 0.84) and
/// scores rounded to 3 decimals so that ties occur.
fn synthetic(cases: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<bool> = (0..cases).map(|i| i % 5 < 2).collect();
    let scores = labels
        .iter()
        .map(|&positive| {
            let score = 0.7 * rng.random::<f64>() + if positive { 0.3 } else { 0.0 };
            (score * 1000.0).round() / 1000.0
        })
        .collect();
    (scores, labels)
}

fn config(seed: u64) -> BootstrapConfig {
    BootstrapConfig {
        seed,
        ..BootstrapConfig::default()
    }
}

#[test]
fn same_seed_same_interval_other_seed_other_interval() {
    let (scores, labels) = synthetic(200, 1);
    let first = bootstrap_auc(&scores, &labels, &config(7)).unwrap();
    let again = bootstrap_auc(&scores, &labels, &config(7)).unwrap();
    let other = bootstrap_auc(&scores, &labels, &config(8)).unwrap();
    assert_eq!(first, again);
    assert_ne!(first.estimate.lower, other.estimate.lower);
    assert_eq!(first.estimate.value, other.estimate.value);
}

#[test]
fn interval_contains_the_estimate_and_narrows_with_more_cases() {
    let width = |cases: usize| {
        let (scores, labels) = synthetic(cases, 2);
        let auc = bootstrap_auc(&scores, &labels, &config(3)).unwrap();
        assert!(
            auc.estimate.contains(auc.estimate.value),
            "{cases} cases: {auc:?}"
        );
        assert_eq!((auc.resamples_used, auc.resamples_skipped), (2000, 0));
        auc.estimate.width()
    };
    let (small, large) = (width(100), width(800));
    // The width shrinks like 1/sqrt(n): about 0.35 for 8 times the cases.
    assert!(
        large < 0.5 * small,
        "100 cases: {small}, 800 cases: {large}"
    );
}

#[test]
fn auc_interval_agrees_with_delong() {
    let (scores, labels) = synthetic(400, 4);
    let bootstrap = bootstrap_auc(&scores, &labels, &config(5)).unwrap();
    let delong = delong_auc(&scores, &labels, ConfidenceLevel::default()).unwrap();
    assert!((bootstrap.estimate.value - delong.auc.value).abs() < 1e-12);
    let gap = (bootstrap.estimate.lower - delong.auc.lower)
        .abs()
        .max((bootstrap.estimate.upper - delong.auc.upper).abs());
    assert!(gap < 0.01, "bootstrap {bootstrap:?} vs DeLong {delong:?}");
    let ratio = bootstrap.std_error / delong.std_error;
    assert!(
        (0.9..1.1).contains(&ratio),
        "standard errors differ by {ratio}"
    );
}

#[test]
fn sensitivity_interval_agrees_with_wilson() {
    let (scores, labels) = synthetic(500, 6);
    let threshold = 0.6;
    let sensitivity = |scores: &[f64], labels: &[bool]| {
        let matrix = ConfusionMatrix::at_threshold(scores, labels, threshold).ok()?;
        matrix.sensitivity().value()
    };
    let bootstrap = bootstrap_ci(&scores, &labels, &config(9), sensitivity).unwrap();
    let matrix = ConfusionMatrix::at_threshold(&scores, &labels, threshold).unwrap();
    let wilson = matrix
        .sensitivity()
        .wilson(ConfidenceLevel::default())
        .unwrap();
    assert_eq!(bootstrap.estimate.value, wilson.value);
    assert!(
        (bootstrap.estimate.lower - wilson.lower).abs() < 0.02,
        "{bootstrap:?} {wilson:?}"
    );
    assert!(
        (bootstrap.estimate.upper - wilson.upper).abs() < 0.02,
        "{bootstrap:?} {wilson:?}"
    );
}

#[test]
fn a_lower_confidence_level_gives_a_nested_interval() {
    let (scores, labels) = synthetic(200, 10);
    let wide = bootstrap_auc(&scores, &labels, &config(11)).unwrap();
    let narrow_config = BootstrapConfig {
        confidence: ConfidenceLevel::new(0.8).unwrap(),
        ..config(11)
    };
    let narrow = bootstrap_auc(&scores, &labels, &narrow_config).unwrap();
    assert!(wide.estimate.lower < narrow.estimate.lower);
    assert!(narrow.estimate.upper < wide.estimate.upper);
}

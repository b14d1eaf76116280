//! Checks cxr-core's metrics against scikit-learn, scipy and statsmodels on the committed
//! fixtures made by tools/reference/metrics/make_fixtures.py.

use cxr_core::metrics::{
    ConfidenceLevel, ConfusionMatrix, ReliabilityBin, ThresholdRule, brier_score, delong_auc,
    delong_paired_test, normal, precision_recall_curve, reliability_diagram, roc_curve,
    select_threshold,
};
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/metrics/reference.json"
);
/// Everything computed from the same counts in the same order agrees far closer than this.
const TOLERANCE: f64 = 1e-9;
/// p-values pass through a different erfc implementation.
const P_VALUE_TOLERANCE: f64 = 1e-6;

fn fixture() -> Value {
    let text = std::fs::read_to_string(FIXTURE).expect("reading the metrics fixture");
    serde_json::from_str(&text).expect("parsing the metrics fixture")
}

/// A fixture number; JSON has no literal for infinities, so the generator writes strings.
fn number(value: &Value) -> f64 {
    match value {
        Value::String(text) => text.parse().expect("a number written as a string"),
        other => other.as_f64().expect("a number"),
    }
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(number)
        .collect()
}

fn count(value: &Value) -> usize {
    value.as_u64().expect("a count") as usize
}

fn assert_close(actual: f64, expected: f64, tolerance: f64, what: &str) {
    let equal = actual == expected || (actual - expected).abs() <= tolerance;
    assert!(
        equal,
        "{what}: got {actual}, the reference gives {expected}"
    );
}

/// Compares each named array with the array of that name in `expected`, element by element.
fn assert_arrays_close(actual: &[(&str, &[f64])], expected: &Value, what: &str) {
    for &(field, values) in actual {
        let expected = numbers(&expected[field]);
        assert_eq!(
            values.len(),
            expected.len(),
            "{what} {field}: lengths differ"
        );
        for (k, (&a, &e)) in values.iter().zip(&expected).enumerate() {
            assert_close(a, e, TOLERANCE, &format!("{what} {field}[{k}]"));
        }
    }
}

/// Compares each named value with the field of that name in `expected`.
fn assert_fields_close(actual: &[(&str, f64)], expected: &Value, what: &str) {
    for &(field, value) in actual {
        assert_close(
            value,
            number(&expected[field]),
            TOLERANCE,
            &format!("{what} {field}"),
        );
    }
}

/// Compares each named count with the field of that name in `expected`.
fn assert_counts_equal(actual: &[(&str, usize)], expected: &Value, what: &str) {
    for &(field, value) in actual {
        assert_eq!(value, count(&expected[field]), "{what} {field}");
    }
}

struct Case {
    name: String,
    scores: Vec<f64>,
    scores_b: Vec<f64>,
    labels: Vec<bool>,
    expected: Value,
}

fn cases() -> Vec<Case> {
    let fixture = fixture();
    let cases = fixture["cases"].as_array().expect("a list of cases");
    assert!(cases.len() >= 6, "the fixture lost cases");
    cases
        .iter()
        .map(|case| Case {
            name: case["name"].as_str().expect("a case name").to_string(),
            scores: numbers(&case["scores"]),
            scores_b: numbers(&case["scores_b"]),
            labels: case["labels"]
                .as_array()
                .expect("labels")
                .iter()
                .map(|label| label.as_bool().expect("a boolean label"))
                .collect(),
            expected: case["expected"].clone(),
        })
        .collect()
}

#[test]
fn normal_distribution_matches_scipy() {
    let fixture = fixture();
    let functions = [
        ("cdf", normal::cdf as fn(f64) -> f64),
        ("quantile", normal::quantile),
        ("two_sided_p_value", normal::two_sided_p_value),
    ];
    for (name, function) in functions {
        for pair in fixture["normal"][name]
            .as_array()
            .expect("argument-value pairs")
        {
            let (x, expected) = (number(&pair[0]), number(&pair[1]));
            let actual = function(x);
            // Relative, because tail probabilities reach 1e-308.
            let error = if expected == 0.0 {
                actual.abs()
            } else {
                ((actual - expected) / expected).abs()
            };
            assert!(
                error < 1e-12,
                "{name}({x}) = {actual}, scipy gives {expected}"
            );
        }
    }
}

#[test]
fn roc_curve_and_auc_match_scikit_learn() {
    for case in cases() {
        let curve = roc_curve(&case.scores, &case.labels).unwrap();
        let what = format!("{}: ROC", case.name);
        let arrays = [
            ("thresholds", curve.thresholds.as_slice()),
            ("fpr", &curve.false_positive_rate),
            ("tpr", &curve.true_positive_rate),
        ];
        assert_arrays_close(&arrays, &case.expected["roc"], &what);
        assert_fields_close(&[("auc", curve.auc())], &case.expected, &what);
    }
}

#[test]
fn precision_recall_curve_and_average_precision_match_scikit_learn() {
    for case in cases() {
        let curve = precision_recall_curve(&case.scores, &case.labels).unwrap();
        let what = format!("{}: PR", case.name);
        // scikit-learn orders the points by ascending threshold and has no +inf threshold.
        let reversed = |values: &[f64]| values.iter().rev().copied().collect::<Vec<_>>();
        let arrays = [
            ("thresholds", reversed(&curve.thresholds[1..])),
            ("precision", reversed(&curve.precision)),
            ("recall", reversed(&curve.recall)),
        ];
        let arrays = arrays
            .each_ref()
            .map(|(field, values)| (*field, values.as_slice()));
        assert_arrays_close(&arrays, &case.expected["precision_recall"], &what);
        let average_precision = [("average_precision", curve.average_precision())];
        assert_fields_close(&average_precision, &case.expected, &what);
    }
}

#[test]
fn delong_interval_matches_the_reference_implementation() {
    for case in cases() {
        let delong = delong_auc(&case.scores, &case.labels, ConfidenceLevel::default()).unwrap();
        let actual = [
            ("auc", delong.auc.value),
            ("std_error", delong.std_error),
            ("lower", delong.auc.lower),
            ("upper", delong.auc.upper),
        ];
        let what = format!("{}: DeLong", case.name);
        assert_fields_close(&actual, &case.expected["delong"], &what);
    }
}

#[test]
fn paired_delong_test_matches_the_reference_implementation() {
    for case in cases() {
        let test = delong_paired_test(&case.scores, &case.scores_b, &case.labels).unwrap();
        let expected = &case.expected["delong_paired"];
        let actual = [
            ("auc_a", test.auc_a),
            ("auc_b", test.auc_b),
            ("difference", test.difference),
            ("std_error", test.std_error),
            ("z", test.z),
        ];
        let what = format!("{}: paired DeLong", case.name);
        assert_fields_close(&actual, expected, &what);
        let p_value = number(&expected["p_value"]);
        assert_close(
            test.p_value,
            p_value,
            P_VALUE_TOLERANCE,
            &format!("{what} p-value"),
        );
    }
}

#[test]
fn confusion_matrix_and_wilson_intervals_match_scikit_learn_and_statsmodels() {
    for case in cases() {
        for expected in case.expected["confusion"]
            .as_array()
            .expect("confusion list")
        {
            let threshold = number(&expected["threshold"]);
            let matrix = ConfusionMatrix::at_threshold(&case.scores, &case.labels, threshold);
            let matrix = matrix.unwrap();
            let what = format!("{} at {threshold}:", case.name);
            let counts = [
                ("true_positives", matrix.true_positives),
                ("false_positives", matrix.false_positives),
                ("true_negatives", matrix.true_negatives),
                ("false_negatives", matrix.false_negatives),
            ];
            assert_counts_equal(&counts, expected, &what);
            let metrics = matrix.metrics(ConfidenceLevel::default());
            let rates = [
                ("accuracy", metrics.accuracy),
                ("sensitivity", metrics.sensitivity),
                ("specificity", metrics.specificity),
                ("ppv", metrics.ppv),
                ("npv", metrics.npv),
            ];
            for (field, actual) in rates {
                let what = format!("{what} {field}");
                let Some(actual) = actual else {
                    assert!(expected[field].is_null(), "{what} is undefined here only");
                    continue;
                };
                let bounds = [
                    ("value", actual.value),
                    ("lower", actual.lower),
                    ("upper", actual.upper),
                ];
                assert_fields_close(&bounds, &expected[field], &what);
            }
            match metrics.f1 {
                Some(f1) => assert_fields_close(&[("f1", f1)], expected, &what),
                None => assert!(expected["f1"].is_null(), "{what} F1 is undefined here only"),
            }
        }
    }
}

/// Parses the fixture's rule names, e.g. "sensitivity >= 0.9", back into rules.
fn rule(name: &str) -> ThresholdRule {
    let target = |text: &str| text.parse::<f64>().expect("a target fraction");
    match name.split_once(" >= ") {
        Some(("sensitivity", text)) => ThresholdRule::Sensitivity(target(text)),
        Some(("specificity", text)) => ThresholdRule::Specificity(target(text)),
        _ => ThresholdRule::Youden,
    }
}

#[test]
fn operating_points_match_the_rules_applied_to_scikit_learn_curves() {
    for case in cases() {
        let curve = roc_curve(&case.scores, &case.labels).unwrap();
        for expected in case.expected["operating_points"]
            .as_array()
            .expect("points")
        {
            let name = expected["name"].as_str().expect("a rule name");
            let point = select_threshold(&curve, rule(name)).unwrap();
            let what = format!("{}, {name}:", case.name);
            assert_eq!(point.name, name);
            let rates = [
                ("threshold", point.threshold),
                ("sensitivity", point.sensitivity),
                ("specificity", point.specificity),
            ];
            assert_fields_close(&rates, expected, &what);
            let counts = [
                ("true_positives", point.confusion.true_positives),
                ("false_positives", point.confusion.false_positives),
            ];
            assert_counts_equal(&counts, expected, &what);
        }
    }
}

#[test]
fn brier_score_and_calibration_match_scikit_learn() {
    for case in cases() {
        let brier = brier_score(&case.scores, &case.labels).unwrap();
        assert_fields_close(&[("brier_score", brier)], &case.expected, &case.name);
        for expected in case.expected["calibration"]
            .as_array()
            .expect("calibrations")
        {
            let bins = count(&expected["bins"]);
            let diagram = reliability_diagram(&case.scores, &case.labels, bins).unwrap();
            let what = format!("{}, {bins} bins:", case.name);
            let counts: Vec<usize> = diagram.bins.iter().map(|bin| bin.count).collect();
            let expected_counts: Vec<usize> = expected["counts"]
                .as_array()
                .expect("counts")
                .iter()
                .map(count)
                .collect();
            assert_eq!(counts, expected_counts, "{what} counts");
            // calibration_curve lists non-empty bins only.
            let non_empty = |field: fn(&ReliabilityBin) -> Option<f64>| -> Vec<f64> {
                diagram.bins.iter().filter_map(field).collect()
            };
            let observed = non_empty(|bin| bin.observed_fraction);
            let predicted = non_empty(|bin| bin.mean_predicted);
            let arrays = [
                ("observed_fraction", observed.as_slice()),
                ("mean_predicted", &predicted),
            ];
            assert_arrays_close(&arrays, expected, &what);
            let ece = [(
                "expected_calibration_error",
                diagram.expected_calibration_error(),
            )];
            assert_fields_close(&ece, expected, &what);
        }
    }
}

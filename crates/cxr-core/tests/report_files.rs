//! An evaluation report of two models written to disk: the JSON holds every metric, operating
//! point and the paired DeLong test; the HTML page embeds its four figures as PNG.

use base64::Engine;
use cxr_core::metrics::{ConfidenceLevel, delong_auc};
use cxr_core::report::{EvaluationConfig, ModelScores, OperatingPointName, Report};

/// 200 cases; `noise` blurs how well the score separates the classes (seeded, deterministic).
fn scores(labels: &[bool], noise: f64, seed: u64) -> Vec<f64> {
    let mut state = seed;
    labels
        .iter()
        .map(|&label| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1442695040888963407);
            let uniform = (state >> 11) as f64 / (1u64 << 53) as f64;
            let centre = if label { 0.65 } else { 0.35 };
            (centre + noise * (uniform - 0.5)).clamp(0.0, 1.0)
        })
        .collect()
}

#[test]
fn a_two_model_report_has_its_metrics_comparison_and_figures() {
    let labels: Vec<bool> = (0..200).map(|i| i % 5 < 2).collect();
    let models = [
        ModelScores {
            model: "good <model>".into(),
            probabilities: scores(&labels, 0.6, 1),
            default_threshold: 0.5,
            card_points: vec![("target".into(), 0.4)],
        },
        ModelScores {
            model: "worse".into(),
            probabilities: scores(&labels, 1.2, 2),
            default_threshold: 0.5,
            card_points: Vec::new(),
        },
    ];
    let report = Report::build(
        "synthetic",
        "generated",
        &labels,
        &models,
        &EvaluationConfig::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (json_path, html_path) = report.write(&dir.path().join("eval")).unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json_path).unwrap()).unwrap();
    let first = &json["evaluations"][0];
    let expected = delong_auc(
        &models[0].probabilities,
        &labels,
        ConfidenceLevel::default(),
    )
    .unwrap();
    assert_eq!(
        first["auc"]["auc"]["value"].as_f64(),
        Some(expected.auc.value)
    );
    assert_eq!(
        (first["positives"].as_u64(), first["negatives"].as_u64()),
        (Some(80), Some(120))
    );
    let names: Vec<&str> = first["operating_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|point| point["name"].as_str().unwrap())
        .collect();
    let all: Vec<&str> = OperatingPointName::ALL.iter().map(|n| n.as_str()).collect();
    assert_eq!(names, all);
    let who_min = &first["operating_points"][2];
    assert!(who_min["metrics"]["sensitivity"]["value"].as_f64().unwrap() >= 0.9);
    assert!(
        who_min["metrics"]["specificity"]["lower"]
            .as_f64()
            .is_some()
    );
    let comparison = &json["comparisons"][0];
    assert_eq!(comparison["model_b"], "worse");
    assert!(comparison["test"]["difference"].as_f64().unwrap() > 0.0);
    assert!(comparison["test"]["p_value"].as_f64().unwrap() < 0.05);

    let html = std::fs::read_to_string(html_path).unwrap();
    assert!(html.contains("good &lt;model&gt;") && !html.contains("good <model>"));
    assert!(html.contains("Paired comparison"));
    assert!(
        html.contains("The model card&#39;s thresholds")
            || html.contains("The model card's thresholds")
    );
    assert!(html.contains("<td>target</td><td>from the model card</td><td>0.4000</td>"));
    let images: Vec<&str> = html.split("data:image/png;base64,").skip(1).collect();
    assert_eq!(images.len(), 4);
    for encoded in images {
        let end = encoded.find('"').unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(&encoded[..end])
            .unwrap();
        let picture = image::load_from_memory(&png).unwrap();
        assert!(picture.width() >= 400 && picture.height() >= 300);
    }
}

#[test]
fn one_class_only_is_refused_naming_the_model() {
    let labels = vec![true; 10];
    let model = ModelScores {
        model: "lonely".into(),
        probabilities: vec![0.7; 10],
        default_threshold: 0.5,
        card_points: Vec::new(),
    };
    let error =
        Report::build("t", "d", &labels, &[model], &EvaluationConfig::default()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("lonely") && message.contains("negative"),
        "{message}"
    );
}

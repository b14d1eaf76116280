//! `cxr calibrate`: operating points chosen on labelled images land in a new model file's
//! card, and `cxr predict` then decides at them.

mod screening_support;

use cxr_nn::model_file::WeightPrecision;
use cxr_nn::model_file::read_card;
use std::path::Path;

use screening_support::{
    cxr, labelled_set, text, tiny_ensemble, tiny_model, tiny_model_with_lung_crop,
};

/// `cxr calibrate MODEL DATA [extra] --out OUT`, which must succeed.
fn calibrate(model: &Path, data: &Path, extra: &[&str], out: &Path) {
    let mut args = vec!["calibrate", model.to_str().unwrap(), data.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    let output = cxr(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

/// The JSON line of `cxr --json predict MODEL IMAGE [extra]`, which must succeed.
fn predict(model: &Path, image: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "--json",
        "predict",
        model.to_str().unwrap(),
        image.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = cxr(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn calibrated_points_are_stored_and_used_by_predict() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(&dir.path().join("tiny.safetensors"));
    let data = labelled_set(&dir.path().join("val"), 12);
    let calibrated = dir.path().join("calibrated.safetensors");
    calibrate(&model, &data, &["--target-sensitivity", "0.8"], &calibrated);

    let card = read_card(&calibrated).unwrap();
    let names: Vec<&str> = card
        .operating_points
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    // A random network may tie scores, leaving points such as Youden's without a finite
    // threshold: those are left off, the others keep their order.
    assert!(
        names.contains(&"who-min") && names.last() == Some(&"target"),
        "{names:?}"
    );
    assert!(
        card.operating_points
            .iter()
            .all(|p| p.threshold.is_finite())
    );
    assert_eq!(card.default_operating_point, "target");
    let target = card.operating_point("target").unwrap();
    assert!(target.sensitivity.unwrap().value >= 0.8);
    assert!(
        target.rule.contains("sensitivity >= 0.8"),
        "{}",
        target.rule
    );
    assert_eq!(card.validation.last().unwrap().images, 12);
    assert_eq!(
        read_card(&model).unwrap().operating_points.len(),
        0,
        "input model changed"
    );

    let image = data.join("CHNCXR_0001_0.png");
    let line = predict(&calibrated, &image, &[]);
    assert_eq!(line["operating_point"], "target");
    assert_eq!(line["threshold"].as_f64(), Some(target.threshold));
    let line = predict(&calibrated, &image, &["--operating-point", "who-min"]);
    assert_eq!(line["operating_point"], "who-min");
}

#[test]
fn without_a_model_argument_the_shipped_model_is_calibrated() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = tiny_model(&dir.path().join("shipped.safetensors"));
    let data = labelled_set(&dir.path().join("val"), 12);
    let calibrated = dir.path().join("calibrated.safetensors");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cxr"))
        .args(["calibrate", data.to_str().unwrap(), "--out"])
        .arg(&calibrated)
        .env("CXR_MODEL", &shipped)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let card = read_card(&calibrated).unwrap();
    assert_eq!(
        card.operating_points.last().map(|p| p.name.as_str()),
        Some("target")
    );
    // The shipped file itself is left as it was.
    assert!(
        read_card(&shipped)
            .unwrap()
            .operating_points
            .iter()
            .all(|p| p.name != "target")
    );
}

#[test]
fn an_ensemble_is_calibrated_predicted_and_explained_like_one_network() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_ensemble(&dir.path().join("ensemble.safetensors"));
    let data = labelled_set(&dir.path().join("val"), 12);
    let calibrated = dir.path().join("calibrated.safetensors");
    calibrate(&model, &data, &[], &calibrated);
    let card = read_card(&calibrated).unwrap();
    assert_eq!(card.members.len(), 2);
    assert_eq!(card.weights, WeightPrecision::F16);
    assert_eq!(card.default_operating_point, "target");
    let size = |path: &Path| std::fs::metadata(path).unwrap().len();
    assert!(
        size(&calibrated).abs_diff(size(&model)) < 4096,
        "weights rewritten at another precision"
    );

    let image = data.join("CHNCXR_0001_0.png");
    let line = predict(&calibrated, &image, &[]);
    assert_eq!(line["operating_point"], "target");
    let probability = line["probability"].as_f64().unwrap();

    let out = dir.path().join("heat");
    let output = cxr(&[
        "--json",
        "explain",
        calibrated.to_str().unwrap(),
        image.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line: serde_json::Value =
        serde_json::from_slice(output.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let explained = line["probability"].as_f64().unwrap();
    assert!(
        (explained - probability).abs() < 1e-5,
        "{explained} vs {probability}"
    );
}

#[test]
fn a_model_that_crops_to_the_lungs_is_calibrated_through_its_lung_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model_with_lung_crop(&dir.path().join("crop.safetensors"));
    let data = labelled_set(&dir.path().join("val"), 12);
    let calibrated = dir.path().join("calibrated.safetensors");
    // Scoring the calibration images needs the lung model the card pins (the shipped model
    // crops one member's X-rays): without it every image failed.
    calibrate(&model, &data, &[], &calibrated);
    let card = read_card(&calibrated).unwrap();
    assert_eq!(card.default_operating_point, "target");
    assert_eq!(card.validation.last().unwrap().images, 12);
    let line = predict(&calibrated, &data.join("CHNCXR_0001_0.png"), &[]);
    assert_eq!(line["operating_point"], "target");
}

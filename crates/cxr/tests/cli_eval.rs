//! `cxr eval`: a labelled folder scored by two models gives report.json (with the paired
//! DeLong test), a self-contained report.html and predictions.csv.

mod screening_support;

use screening_support::{cxr, labelled_set, text, tiny_model, tiny_three_class_model, write_png};

#[test]
fn writes_the_report_files_for_two_models() {
    let dir = tempfile::tempdir().unwrap();
    let first = tiny_model(&dir.path().join("first.safetensors"));
    let second = tiny_model(&dir.path().join("second.safetensors"));
    let data = labelled_set(&dir.path().join("data"), 12);
    let out = dir.path().join("eval");
    let output = cxr(&[
        "eval",
        first.to_str().unwrap(),
        data.to_str().unwrap(),
        "--compare",
        second.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--resamples",
        "200",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("first.safetensors: 12 images (6 TB), AUC"),
        "{stdout}"
    );
    assert!(stdout.contains("who-min"), "{stdout}");
    assert!(stdout.contains("paired DeLong"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["evaluations"].as_array().unwrap().len(), 2);
    assert_eq!(report["comparisons"][0]["model_b"], "second.safetensors");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("data:image/png;base64,").count(), 4);
    let predictions = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert_eq!(predictions.lines().count(), 13);
    assert!(predictions.starts_with("path,label,probability_first.safetensors"));
}

#[test]
fn without_a_model_argument_the_shipped_model_is_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = tiny_model(&dir.path().join("shipped.safetensors"));
    let data = labelled_set(&dir.path().join("data"), 4);
    let evaluate = |model: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cxr"))
            .args(["eval", data.to_str().unwrap(), "--resamples", "50", "--out"])
            .arg(dir.path().join("e"))
            .env("CXR_MODEL", model)
            .output()
            .unwrap()
    };
    let output = evaluate(shipped.to_str().unwrap());
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("shipped.safetensors: 4 images (2 TB), AUC"),
        "{}",
        text(&output.stdout)
    );
    // A shipped model that is not there is named, not mistaken for the data folder.
    let missing = dir.path().join("gone.safetensors");
    let output = evaluate(missing.to_str().unwrap());
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("gone.safetensors"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_missing_image_stops_the_evaluation_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(&dir.path().join("m.safetensors"));
    let data = labelled_set(&dir.path().join("data"), 4);
    std::fs::write(data.join("CHNCXR_0009_1.png"), b"broken").unwrap();
    let output = cxr(&[
        "eval",
        model.to_str().unwrap(),
        data.to_str().unwrap(),
        "--out",
        dir.path().join("e").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("CHNCXR_0009_1.png"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_multi_class_model_reads_its_classes_and_refers_only_its_refer_classes() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_three_class_model(&dir.path().join("three.safetensors"));
    let data = dir.path().join("data");
    for (class, seeds) in [("normal", 0..4), ("tb", 4..8), ("age-related", 8..12)] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for seed in seeds {
            write_png(&data.join(class).join(format!("{seed}.png")), seed);
        }
    }
    let out = dir.path().join("eval");
    let output = cxr(&[
        "eval",
        model.to_str().unwrap(),
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--resamples",
        "100",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("three.safetensors: 12 images (4 TB), AUC"),
        "{stdout}"
    );

    let screened = cxr(&[
        "--json",
        "predict",
        "--model",
        model.to_str().unwrap(),
        data.join("tb").join("4.png").to_str().unwrap(),
    ]);
    assert!(screened.status.success(), "{}", text(&screened.stderr));
    let line: serde_json::Value = serde_json::from_str(text(&screened.stdout).trim()).unwrap();
    let decision = line["decision"].as_str().unwrap();
    let positive = line["probability"].as_f64().unwrap() >= line["threshold"].as_f64().unwrap();
    assert_eq!(
        decision,
        if positive {
            "tb"
        } else {
            "normal or age-related"
        }
    );
    // One probability per class, summing to 1; the screening probability is the tb one.
    let classes = line["classes"].as_array().unwrap();
    let names: Vec<&str> = classes
        .iter()
        .map(|c| c["class"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["normal", "tb", "age-related"]);
    let probabilities: Vec<f64> = classes
        .iter()
        .map(|c| c["probability"].as_f64().unwrap())
        .collect();
    assert!(
        (probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-5,
        "{probabilities:?}"
    );
    assert!((probabilities[1] - line["probability"].as_f64().unwrap()).abs() < 1e-5);

    let csv = cxr(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        data.join("tb").to_str().unwrap(),
    ]);
    let csv = text(&csv.stdout);
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",lung_crop,p_normal,p_tb,p_age-related"),
        "{header}"
    );
    assert_eq!(csv.lines().count(), 5);
}

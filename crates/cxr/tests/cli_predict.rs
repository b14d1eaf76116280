//! `cxr predict`: CSV and JSON lines per image, PNG and DICOM scored alike, bad files reported
//! without stopping the run, exit status non-zero only when nothing could be read.

mod screening_support;

use screening_support::{cxr, text, tiny_model, write_dicom, write_png};

#[test]
fn screens_png_and_dicom_and_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(&dir.path().join("tiny.safetensors"));
    let png = dir.path().join("a.png");
    let dicom = dir.path().join("a.dcm");
    let broken = dir.path().join("broken.png");
    write_png(&png, 3);
    write_dicom(&dicom, 3);
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let missing = dir.path().join("missing.png");
    let paths = [&png, &dicom, &broken, &missing].map(|p| p.to_str().unwrap().to_string());
    let mut args = vec!["predict".to_string(), model.to_str().unwrap().to_string()];
    args.extend(paths.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let output = cxr(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4);
    let probability = |row: &csv::StringRecord| row[1].parse::<f64>().unwrap();
    // The 12-bit DICOM holds the same picture as the 8-bit PNG, up to quantisation.
    assert!((probability(&rows[0]) - probability(&rows[1])).abs() < 0.02);
    assert_eq!(&rows[0][3], "default");
    assert!(["tb", "normal"].contains(&&rows[0][5]));
    for row in &rows[2..] {
        assert!(row[1].is_empty() && !row[7].is_empty(), "{row:?}");
    }
    assert!(rows[2][7].contains("broken.png"));
    assert!(text(&output.stderr).contains("2 of 4 files could not be screened"));

    let mut json_args = vec!["--json"];
    json_args.extend(&args);
    json_args.extend(["--tta", "2"]);
    let output = cxr(&json_args);
    let lines: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0]["probability"].as_f64().is_some());
    assert!(lines[0]["spread"].as_f64().is_some(), "{}", lines[0]);
    assert!(lines[0]["flags"].is_array());
    assert!(lines[3]["error"].as_str().unwrap().contains("missing.png"));
}

#[test]
fn nothing_readable_or_an_unknown_operating_point_fails() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(&dir.path().join("tiny.safetensors"));
    let model = model.to_str().unwrap();
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"not an image").unwrap();
    let output = cxr(&["predict", model, junk.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));

    let png = dir.path().join("a.png");
    write_png(&png, 1);
    let output = cxr(&[
        "predict",
        model,
        png.to_str().unwrap(),
        "--operating-point",
        "who-min",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no operating point \"who-min\""));
}

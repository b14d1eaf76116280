//! `cxr predict`: CSV and JSON lines per image, PNG and DICOM scored alike, bad files reported
//! without stopping the run, exit status non-zero only when nothing could be read.

mod screening_support;

use std::path::{Path, PathBuf};

use screening_support::{cxr, text, tiny_model, tiny_model_with_lung_crop, write_dicom, write_png};

fn shenzhen(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/shenzhen/images")
        .join(name)
}

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

    // A missing model file: named, with the reason said once.
    let absent = dir.path().join("absent.safetensors");
    let output = cxr(&["predict", absent.to_str().unwrap(), png.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("absent.safetensors"), "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}

#[test]
fn a_model_trained_on_lung_crops_crops_real_x_rays_and_explains_only_the_crop() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model_with_lung_crop(&dir.path().join("crop.safetensors"));
    let xray = shenzhen("CHNCXR_0001_0.png");
    let output = cxr(&["predict", model.to_str().unwrap(), xray.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    assert_eq!(&reader.headers().unwrap()[8], "lung_crop");
    let row = reader.records().next().unwrap().unwrap();
    let region: Vec<usize> = row[8].split(' ').map(|v| v.parse().unwrap()).collect();
    let decoded = cxr_core::decode_file(&xray, &Default::default()).unwrap();
    let (width, height) = (decoded.image.width, decoded.image.height);
    // Both lungs of a frontal X-ray: most of its width and height, inside it.
    assert!(
        region[0] + region[2] <= width && region[1] + region[3] <= height,
        "{region:?}"
    );
    assert!(
        region[2] > width / 2 && region[3] > height / 3,
        "{region:?}"
    );
    assert!(region[2] < width || region[3] < height, "{region:?}");

    // The heat map covers the region the model saw and nothing outside it.
    let screener = cxr_nn::predict::Screener::load(Some(&model)).unwrap();
    let explanation = cxr_nn::explain::explain(
        &screener,
        &xray,
        &decoded,
        cxr_nn::explain::CamMethod::GradCam,
        None,
    )
    .unwrap();
    let inside = |x: usize, y: usize| {
        (region[0]..region[0] + region[2]).contains(&x)
            && (region[1]..region[1] + region[3]).contains(&y)
    };
    for (index, &heat) in explanation.heat.pixels.iter().enumerate() {
        if !inside(index % width, index / width) {
            assert_eq!(heat, 0.0, "heat outside the crop at {index}");
        }
    }

    // No usable lung model: refused before any image, saying why.
    let other = dir.path().join("other-lungs.safetensors");
    std::fs::write(&other, b"not a model").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cxr"))
        .args(["predict", model.to_str().unwrap(), xray.to_str().unwrap()])
        .env("CXR_LUNG_MODEL", &other)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("lung model") && stderr.contains("other-lungs.safetensors"),
        "{stderr}"
    );
}

#[test]
fn a_large_x_ray_is_cropped_like_its_small_copy() {
    // Lungs of a 2048 px X-ray are found on a copy scaled down to 1024 px; the box must land
    // where the 512 px original's box lands, scaled up.
    let lungs = cxr_nn::segmentation::LungSegmenter::load(
        &cxr_nn::segmentation::default_model_path().unwrap(),
    )
    .unwrap();
    let xray = cxr_core::decode_file(&shenzhen("CHNCXR_0327_1.png"), &Default::default()).unwrap();
    let large = cxr_core::preprocess::fit(
        &xray.image,
        &cxr_core::preprocess::PreprocessSpec {
            input_size: cxr_core::preprocess::InputSize {
                width: 2048,
                height: 2048,
            },
            ..Default::default()
        },
    )
    .unwrap();
    let spec = cxr_core::lungs::LungCropSpec::default();
    let small_box = lungs
        .crop(&xray.image, &spec)
        .unwrap()
        .region
        .expect("lungs found");
    let large_box = lungs
        .crop(&large, &spec)
        .unwrap()
        .region
        .expect("lungs found");
    let scale = large.width as f64 / xray.image.width as f64;
    for (small, large) in [
        (small_box.x, large_box.x),
        (small_box.y, large_box.y),
        (small_box.width, large_box.width),
        (small_box.height, large_box.height),
    ] {
        let expected = small as f64 * scale;
        assert!(
            (large as f64 - expected).abs() <= 0.03 * large.max(1) as f64 + 16.0,
            "{small_box:?} vs {large_box:?}"
        );
    }
}

//! `cxr explain`: one heat-map overlay PNG per readable image (X-ray beside the X-ray with the
//! heat map, colour bar, caption), JSON lines with the probability; bad files go on.

mod screening_support;

use screening_support::{cxr, text, tiny_model, write_dicom, write_png};

#[test]
fn writes_overlays_for_png_and_dicom() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(&dir.path().join("tiny.safetensors"));
    let png = dir.path().join("a.png");
    let dicom = dir.path().join("b.dcm");
    write_png(&png, 2);
    write_dicom(&dicom, 2);
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"junk").unwrap();
    let out = dir.path().join("maps");
    let output = cxr(&[
        "--json",
        "explain",
        model.to_str().unwrap(),
        png.to_str().unwrap(),
        dicom.to_str().unwrap(),
        junk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--method",
        "grad-cam-plus-plus",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let lines: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[2]["error"].as_str().unwrap().contains("junk.png"));
    let (p_png, p_dicom) = (
        lines[0]["probability"].as_f64().unwrap(),
        lines[1]["probability"].as_f64().unwrap(),
    );
    assert!((p_png - p_dicom).abs() < 0.02, "{p_png} vs {p_dicom}");
    for name in ["a_heatmap.png", "b_heatmap.png"] {
        let overlay = image::open(out.join(name)).unwrap();
        // Two 256 px panels side by side, a colour bar, a caption band.
        assert!(overlay.width() > 512 && overlay.height() > 256, "{name}");
    }
}

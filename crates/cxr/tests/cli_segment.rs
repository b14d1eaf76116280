//! `cxr segment train` and `cxr segment` run as a user would: a tiny model trained from
//! scratch on synthetic pairs, its outputs per image, bad input, and the shipped model on
//! real X-rays.

use std::path::Path;
use std::process::Output;

const SHENZHEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/shenzhen/images"
);
const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/lungs-mobilenet-v2.safetensors"
);

fn cxr(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cxr"))
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A 64 px "X-ray" with two bright lungs (width varying with `seed`) and its mask, NLM-named.
fn write_pair(root: &Path, seed: usize) {
    let half_width = 7 + seed % 4;
    let (mut image, mut mask) = (vec![50u8; 64 * 64], vec![0u8; 64 * 64]);
    for centre in [18, 46] {
        for y in 12..52 {
            for x in centre - half_width..centre + half_width {
                image[y * 64 + x] = 200;
                mask[y * 64 + x] = 255;
            }
        }
    }
    let name = format!("CHNCXR_{:04}_{}", seed + 1, seed % 2);
    let save = |path: &Path, pixels: &[u8]| {
        image::save_buffer(path, pixels, 64, 64, image::ExtendedColorType::L8).unwrap();
    };
    save(&root.join("images").join(format!("{name}.png")), &image);
    save(&root.join("masks").join(format!("{name}_mask.png")), &mask);
}

#[test]
fn trains_a_model_then_segments_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("images")).unwrap();
    std::fs::create_dir_all(data.join("masks")).unwrap();
    for seed in 0..8 {
        write_pair(&data, seed);
    }
    let run = dir.path().join("run");
    let (data_arg, run_arg) = (data.to_str().unwrap(), run.to_str().unwrap());
    let train_args = [
        "--json",
        "segment",
        "train",
        data_arg,
        "--out",
        run_arg,
        "--epochs",
        "2",
        "--input-size",
        "32",
        "--batch-size",
        "4",
        "--from-scratch",
        "--val",
        "0.25",
    ];
    let trained = cxr(&train_args);
    assert_eq!(trained.status.code(), Some(0), "{}", text(&trained));
    let stdout = String::from_utf8_lossy(&trained.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(summary["held_out"]["images"], 2, "{summary}");
    assert!(summary["held_out"]["cleaned"]["dice"].as_f64().is_some());
    let model = run.join("lungs.safetensors");
    assert!(model.is_file());

    let again = cxr(&train_args);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("--resume"), "{}", text(&again));

    // One unreadable file among the inputs: reported, the others still written, exit 1.
    std::fs::write(data.join("images").join("broken.png"), b"not a png").unwrap();
    let out = dir.path().join("out");
    let images = data.join("images");
    let segmented = cxr(&[
        "--json",
        "segment",
        "--model",
        model.to_str().unwrap(),
        images.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(segmented.status.code(), Some(1), "{}", text(&segmented));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&segmented.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 9);
    let broken: Vec<_> = lines.iter().filter(|l| l.get("error").is_some()).collect();
    assert_eq!(broken.len(), 1);
    assert!(broken[0]["path"].as_str().unwrap().ends_with("broken.png"));
    let first = lines.iter().find(|l| l.get("error").is_none()).unwrap();
    for key in ["area_fraction", "bounding_box", "checks_passed", "failures"] {
        assert!(first.get(key).is_some(), "{key} missing from {first}");
    }
    for suffix in ["_mask.png", "_lungs.png", "_lungs.json"] {
        assert!(
            out.join(format!("CHNCXR_0001_0{suffix}")).is_file(),
            "{suffix}"
        );
    }
}

#[test]
fn segmenting_needs_inputs_and_an_output_folder() {
    let no_inputs = cxr(&["segment", "--out", "x"]);
    assert_eq!(no_inputs.status.code(), Some(2));
    assert!(
        text(&no_inputs).contains("name X-ray files"),
        "{}",
        text(&no_inputs)
    );
    let dir = tempfile::tempdir().unwrap();
    let not_a_model = dir.path().join("model.safetensors");
    std::fs::write(&not_a_model, b"junk").unwrap();
    let bad_model = cxr(&[
        "segment",
        "--model",
        not_a_model.to_str().unwrap(),
        dir.path().to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    assert_eq!(bad_model.status.code(), Some(2));
    assert!(
        text(&bad_model).contains("model.safetensors"),
        "{}",
        text(&bad_model)
    );
}

#[test]
fn the_shipped_model_finds_both_lungs_on_real_x_rays() {
    let images = Path::new(SHENZHEN);
    if !images.is_dir() || !Path::new(SHIPPED).is_file() {
        eprintln!("skipped: needs {SHENZHEN} and {SHIPPED}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inputs = ["CHNCXR_0001_0.png", "CHNCXR_0400_1.png"].map(|name| images.join(name));
    let out = dir.path().to_str().unwrap();
    let output = cxr(&[
        "--json",
        "segment",
        inputs[0].to_str().unwrap(),
        inputs[1].to_str().unwrap(),
        "--out",
        out,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let report: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(report["checks_passed"], true, "{report}");
        let area = report["area_fraction"].as_f64().unwrap();
        assert!((0.1..0.5).contains(&area), "{report}");
    }
}

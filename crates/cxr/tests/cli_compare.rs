//! `cxr compare` as a user runs it: SIGKILLed while training its second backbone, then run
//! again with the same command, which finishes without retraining the first backbone.

#[path = "../../cxr-nn/tests/train_support/mod.rs"]
mod train_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn compare(recipe: &Path, data: &Path, out: &Path, weights: &Path, backbones: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cxr"));
    command
        .arg("compare")
        .args([recipe, data])
        .args([
            "--backbones",
            backbones,
            "--folds",
            "3",
            "--timing-batches",
            "1",
        ])
        .arg("--out")
        .arg(out)
        .env("CXR_CACHE_DIR", weights);
    command
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn a_killed_comparison_continues_with_the_backbones_not_yet_done() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 9);
    let caches = train_support::private_caches(dir.path());
    let recipe = dir.path().join("tiny.toml");
    std::fs::write(&recipe, train_support::tiny_recipe(6, 1).to_toml()).expect("recipe");
    let out = dir.path().join("compare");
    let backbones = "efficientnet-lite0,alexnet";

    let mut child = compare(&recipe, &data, &out, &caches.weights, backbones)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cxr");
    let second = out.join("alexnet/fold-1/checkpoint.bin");
    let started = Instant::now();
    while !second.is_file() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cxr compare ended ({status}) before training its second backbone");
        }
        assert!(started.elapsed() < Duration::from_secs(180), "too slow");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(!out.join("report.md").exists(), "finished before the kill");
    let first_model = out.join("efficientnet-lite0/model.safetensors");
    let before = modified(&first_model);

    let output = compare(&recipe, &data, &out, &caches.weights, backbones)
        .output()
        .expect("rerun");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("efficientnet-lite0 already trained, skipped"),
        "{stderr}"
    );
    assert_eq!(
        modified(&first_model),
        before,
        "the first backbone retrained"
    );
    let csv = std::fs::read_to_string(out.join("alexnet/fold-1/metrics.csv")).expect("csv");
    assert_eq!(
        csv.lines().count(),
        1 + 6 + 1,
        "every epoch logged once:\n{csv}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).expect("report");
    assert!(md.contains("| efficientnet-lite0 | pretrained |"), "{md}");
    assert!(md.contains("| alexnet | from scratch |"), "{md}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("alexnet") && stdout.contains("images/s"),
        "{stdout}"
    );
}

#[test]
fn an_unknown_backbone_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let recipe = dir.path().join("r.toml");
    std::fs::write(&recipe, "").expect("recipe");
    let output = compare(
        &recipe,
        dir.path(),
        &dir.path().join("out"),
        dir.path(),
        "mobilenet-v2,resnet50",
    )
    .output()
    .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("resnet50") && stderr.contains("xception"),
        "{stderr}"
    );
}

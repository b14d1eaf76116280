//! `cxr weights` run as a user would, against an empty cache in a temporary folder: the list,
//! its JSON form, and the errors for unknown names and unidentifiable files.

use std::path::Path;
use std::process::Output;

fn cxr(cache: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cxr"))
        .env("CXR_CACHE_DIR", cache)
        .args(args)
        .output()
        .expect("cxr runs")
}

#[test]
fn list_shows_every_known_weight_as_not_fetched() {
    let cache = tempfile::tempdir().expect("temp dir");
    let output = cxr(cache.path(), &["weights", "list"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for name in [
        "mobilenet-v2",
        "efficientnet-lite0",
        "efficientnet-lite1",
        "efficientnet-lite2",
        "inception-v3",
        "xception",
    ] {
        let line = text.lines().find(|line| line.starts_with(name));
        assert!(
            line.is_some_and(|l| l.contains("not fetched")),
            "{name}: {text}"
        );
    }

    let output = cxr(cache.path(), &["--json", "weights", "list"]);
    let entries: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(entries.len(), 6);
    assert!(
        entries
            .iter()
            .all(|e| e["cached"].is_null() && e["sha256"].as_str().is_some())
    );
}

#[test]
fn unknown_names_and_files_fail_with_a_reason() {
    let cache = tempfile::tempdir().expect("temp dir");
    let output = cxr(cache.path(), &["weights", "fetch", "resnet-50"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown weights") && stderr.contains("mobilenet-v2"),
        "{stderr}"
    );

    let file = cache.path().join("mine.pth");
    std::fs::write(&file, b"not weights").expect("write");
    let path = file.to_string_lossy();
    let output = cxr(cache.path(), &["weights", "import", &path]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a known weight file"), "{stderr}");
}

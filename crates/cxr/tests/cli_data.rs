//! `cxr data check` and `cxr data split` run as a user would: on synthetic trees made in a
//! temporary folder (counts, leakage, unreadable files, exit codes) and on the Shenzhen set.

#[path = "../../cxr-core/tests/dataset_support/mod.rs"]
mod dataset_support;

use std::path::Path;
use std::process::Output;

use dataset_support::{shenzhen, write_block_png};

fn cxr(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cxr"))
        .args(args)
        .output()
        .unwrap()
}

fn json_of(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!("{err}: {}", String::from_utf8_lossy(&output.stdout));
    })
}

/// `train/{normal,tb}` and `val/{normal,tb}` with 6 distinct images and 2 masks.
fn clean_tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let files = [
        "train/normal/n1.png",
        "train/normal/n2.png",
        "train/normal/n1_mask.png",
        "train/tb/t1.png",
        "train/tb/t2.png",
        "train/tb/t2_mask.png",
        "val/normal/n3.png",
        "val/tb/t3.png",
    ];
    for (seed, file) in files.iter().enumerate() {
        write_block_png(&root.path().join(file), seed as u64, 64);
    }
    root
}

fn dir_arg(root: &Path) -> &str {
    root.to_str().unwrap()
}

#[test]
fn a_clean_tree_is_counted_and_exits_zero() {
    let root = clean_tree();
    let output = cxr(&["data", "check", dir_arg(root.path())]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("6 images: 3 normal, 3 tb; 2 with masks"),
        "{text}"
    );
    assert!(text.contains("no problems found"), "{text}");

    let report = json_of(&cxr(&["--json", "data", "check", dir_arg(root.path())]));
    assert_eq!(report["class_totals"], serde_json::json!([3, 3]));
    assert_eq!(report["parts"][0]["split"], "train");
    assert_eq!(report["parts"][0]["per_class"], serde_json::json!([2, 2]));
    assert_eq!(report["parts"][1]["per_class"], serde_json::json!([1, 1]));
    assert_eq!(report["masks"], 2);
}

#[test]
fn a_copy_across_splits_and_an_unreadable_file_exit_one() {
    let root = clean_tree();
    let r = root.path();
    std::fs::copy(r.join("train/tb/t1.png"), r.join("val/tb/t1_copy.png")).unwrap();
    std::fs::write(r.join("val/normal/truncated.png"), b"\x89PNG\r\n\x1a\n").unwrap();

    let output = cxr(&["--json", "data", "check", dir_arg(r)]);
    assert_eq!(output.status.code(), Some(1));
    let report = json_of(&output);
    let unreadable = &report["unreadable"][0];
    assert!(
        unreadable["path"]
            .as_str()
            .unwrap()
            .ends_with("truncated.png")
    );
    assert!(!unreadable["reason"].as_str().unwrap().is_empty());
    let duplicates = &report["exact_duplicates"];
    assert_eq!(duplicates.as_array().unwrap().len(), 1);
    assert_eq!(duplicates[0]["cross_split"], true);
    assert_eq!(report["problems"].as_array().unwrap().len(), 2);

    let text = String::from_utf8_lossy(&cxr(&["data", "check", dir_arg(r)]).stdout).to_string();
    assert!(text.contains("truncated.png"), "{text}");
    assert!(text.contains("[across splits]"), "{text}");
}

#[test]
fn a_third_class_folder_needs_a_class_list() {
    let root = clean_tree();
    let r = root.path();
    write_block_png(&r.join("train/age-related/a1.png"), 40, 64);
    write_block_png(&r.join("val/age-related/a2.png"), 41, 64);

    let output = cxr(&["data", "check", dir_arg(r)]);
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("unknown class 'age-related'"), "{error}");

    let listed = [
        "data",
        "check",
        dir_arg(r),
        "--classes",
        "normal,tb,age-related",
    ];
    let output = cxr(&listed);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("8 images: 3 normal, 3 tb, 2 age-related"),
        "{text}"
    );
    let output = cxr(&[&listed[..], &["--refer", "covid"]].concat());
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("refer class 'covid'"), "{error}");
}

#[test]
fn an_unreadable_data_set_exits_two_naming_the_path() {
    let root = tempfile::tempdir().unwrap();
    let output = cxr(&["data", "check", dir_arg(root.path())]);
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains(dir_arg(root.path())) && error.contains("no images found"),
        "{error}"
    );
}

#[test]
fn split_writes_a_manifest_that_check_reads_back() {
    let root = clean_tree();
    let manifest = root.path().join("manifest.csv");
    let manifest_arg = manifest.to_str().unwrap();
    let output = cxr(&[
        "--json",
        "data",
        "split",
        dir_arg(root.path()),
        "--out",
        manifest_arg,
        "--folds",
        "3",
        "--seed",
        "7",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let summary = json_of(&output);
    let folds: Vec<_> = summary["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["fold"].clone(), p["per_class"].clone()))
        .collect();
    let fold = |i: usize| (serde_json::json!(i), serde_json::json!([1, 1]));
    assert_eq!(folds, [fold(0), fold(1), fold(2)]);

    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        text.starts_with("path,label,label_name,group,mask,split,fold\n"),
        "{text}"
    );
    assert!(text.contains("train/normal/n1.png,0,normal,,train/normal/n1_mask.png,train,"));

    let report = json_of(&cxr(&["--json", "data", "check", manifest_arg]));
    assert_eq!(report["layout"], "manifest");
    assert_eq!(report["parts"], summary["parts"]);
    assert_eq!(report["masks"], 2);
}

#[test]
fn split_rejects_a_validation_share_with_folds() {
    let root = clean_tree();
    let out = root.path().join("m.csv");
    let output = cxr(&[
        "data",
        "split",
        dir_arg(root.path()),
        "--out",
        out.to_str().unwrap(),
        "--val",
        "0.2",
        "--folds",
        "3",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!out.exists());
}

#[test]
fn shenzhen_has_276_normal_286_tb_and_484_masks() {
    let Some(root) = shenzhen() else { return };
    let output = cxr(&["data", "check", dir_arg(&root)]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("562 images: 276 normal, 286 tb; 484 with masks"),
        "{text}"
    );
    assert!(text.contains("sizes: 512x512 (562)"), "{text}");
}

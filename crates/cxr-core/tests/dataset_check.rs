//! `check` on small synthetic data sets built in a temporary folder: counts, masks,
//! unreadable files, exact and near duplicates, and leakage across splits.

use std::path::Path;

mod dataset_support;

use cxr_core::dataset::{CheckOptions, ClassNames, Dataset, Layout, Split, check};
use dataset_support::write_block_png;

fn paths(report_paths: &[std::path::PathBuf], root: &Path) -> Vec<String> {
    report_paths
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().display().to_string())
        .collect()
}

#[test]
fn a_clean_split_folder_tree_is_counted_and_passes() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    write_block_png(&r.join("train/normal/a.png"), 1, 64);
    write_block_png(&r.join("train/normal/a_mask.png"), 2, 64);
    write_block_png(&r.join("train/abnormal/b.png"), 3, 64);
    write_block_png(&r.join("train/abnormal/c.png"), 4, 64);
    write_block_png(&r.join("val/normal/d.png"), 5, 64);
    let dataset = Dataset::open(r, &ClassNames::default()).unwrap();
    assert_eq!(dataset.layout, Layout::SplitFolders);
    let report = check(&dataset, &CheckOptions::default(), &|| {});
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.images, report.masks), (4, 1));
    assert_eq!(report.class_totals, [2, 2]);
    let parts: Vec<_> = report
        .parts
        .iter()
        .map(|p| (p.split, p.per_class.clone()))
        .collect();
    assert_eq!(
        parts,
        [(Split::Train, vec![1, 2]), (Split::Val, vec![1, 0])]
    );
    assert_eq!(report.sizes[0].value, [64, 64]);
}

#[test]
fn duplicates_across_splits_and_unreadable_files_are_problems() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    write_block_png(&r.join("train/normal/a.png"), 1, 64);
    write_block_png(&r.join("val/normal/a_copy.png"), 1, 64);
    write_block_png(&r.join("train/abnormal/b.png"), 2, 64);
    write_block_png(&r.join("test/abnormal/b_resized.png"), 2, 128);
    write_block_png(&r.join("train/abnormal/c.png"), 3, 64);
    write_block_png(&r.join("train/abnormal/c_again.png"), 3, 64);
    std::fs::write(
        r.join("val/normal/broken.png"),
        b"\x89PNG\r\n\x1a\n not really",
    )
    .unwrap();
    let dataset = Dataset::open(r, &ClassNames::default()).unwrap();
    let report = check(&dataset, &CheckOptions::default(), &|| {});

    assert_eq!(
        paths(&[report.unreadable[0].path.clone()], r),
        ["val/normal/broken.png"]
    );
    let mut exact: Vec<_> = report
        .exact_duplicates
        .iter()
        .map(|d| (paths(&d.paths, r), d.cross_split))
        .collect();
    exact.sort();
    let expected =
        |a: &str, b: &str, cross_split| (vec![a.to_string(), b.to_string()], cross_split);
    assert_eq!(
        exact,
        [
            expected("train/abnormal/c.png", "train/abnormal/c_again.png", false),
            expected("train/normal/a.png", "val/normal/a_copy.png", true),
        ]
    );
    let near = &report.near_duplicates;
    assert_eq!(near.len(), 1, "{near:?}");
    assert_eq!(
        paths(&near[0].paths, r),
        ["test/abnormal/b_resized.png", "train/abnormal/b.png"]
    );
    assert!(near[0].cross_split && !near[0].labels_differ);
    assert_eq!(
        report.problems,
        [
            "1 unreadable file(s)",
            "1 set(s) of identical files across splits (leakage)",
            "1 near-duplicate pair(s) across splits (likely leakage)",
        ]
    );
}

#[test]
fn identical_files_with_different_labels_are_a_problem_even_without_splits() {
    let root = tempfile::tempdir().unwrap();
    write_block_png(&root.path().join("normal/a.png"), 1, 64);
    write_block_png(&root.path().join("abnormal/a.png"), 1, 64);
    let dataset = Dataset::open(root.path(), &ClassNames::default()).unwrap();
    let report = check(&dataset, &CheckOptions::default(), &|| {});
    assert!(report.exact_duplicates[0].labels_differ);
    assert!(!report.exact_duplicates[0].cross_split);
    assert_eq!(
        report.problems,
        ["1 set(s) of identical files with different labels"]
    );
}

#[test]
fn unreadable_layouts_are_errors_naming_the_path() {
    let root = tempfile::tempdir().unwrap();
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = Dataset::open(&empty, &ClassNames::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("empty") && err.contains("no images found"),
        "{err}"
    );

    let unlabelled = root.path().join("unlabelled");
    write_block_png(&unlabelled.join("scan.png"), 1, 64);
    let err = Dataset::open(&unlabelled, &ClassNames::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unlabelled") && err.contains("unknown data set layout"),
        "{err}"
    );

    let missing = root.path().join("missing");
    let err = Dataset::open(&missing, &ClassNames::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing"), "{err}");
}

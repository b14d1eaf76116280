//! The Shenzhen set read every way it can be: NLM names, its labels.csv, and a manifest
//! written by `write_manifest`; plus the near-duplicate threshold measured on its X-rays.

mod dataset_support;

use std::path::Path;

use cxr_core::dataset::check::DEFAULT_NEAR_DUPLICATE_BITS;
use cxr_core::dataset::phash::perceptual_hash;
use cxr_core::dataset::{
    CheckOptions, ClassNames, Dataset, Layout, Split, SplitPlan, check, write_manifest,
};
use cxr_core::{DecodeLimits, decode_bytes, decode_file};
use dataset_support::shenzhen;

#[test]
fn nlm_names_and_labels_csv_give_the_same_data_set() {
    let Some(root) = shenzhen() else { return };
    let names = ClassNames::default();
    let by_names = Dataset::open(&root, &names).unwrap();
    let by_csv = Dataset::open(&root.join("labels.csv"), &names).unwrap();
    assert_eq!(by_names.layout, Layout::NlmNames);
    assert_eq!(by_csv.layout, Layout::Manifest);
    assert_eq!(by_names.class_counts(), [276, 286]);
    assert_eq!(by_names.class_names, ["normal", "tb"]);
    assert_eq!(
        by_names.items.iter().filter(|i| i.mask.is_some()).count(),
        484
    );
    assert_eq!(by_names.items, by_csv.items);
    assert_eq!(by_names.class_names, by_csv.class_names);
}

#[test]
fn a_written_manifest_reads_back_with_its_splits_and_folds() {
    let Some(root) = shenzhen() else { return };
    let mut dataset = Dataset::open(&root, &ClassNames::default()).unwrap();
    let plan = SplitPlan {
        val: 0.0,
        test: 0.2,
        folds: Some(5),
        seed: 3,
    };
    dataset.assign_splits(&plan).unwrap();
    let out = tempfile::tempdir().unwrap();
    let manifest = out.path().join("manifest.csv");
    write_manifest(&dataset, &manifest).unwrap();
    let reread = Dataset::open(&manifest, &ClassNames::default()).unwrap();
    let canonical = |items: &[cxr_core::dataset::Item]| -> Vec<_> {
        items
            .iter()
            .map(|i| {
                let mask = i.mask.as_ref().map(|m| m.canonicalize().unwrap());
                (
                    i.path.canonicalize().unwrap(),
                    i.label,
                    i.split,
                    i.fold,
                    mask,
                )
            })
            .collect()
    };
    assert_eq!(canonical(&dataset.items), canonical(&reread.items));
    assert_eq!(reread.class_names, dataset.class_names);
    let test = reread
        .items
        .iter()
        .filter(|i| i.split == Split::Test)
        .count();
    assert_eq!(test, 55 + 57);
}

#[test]
fn check_finds_no_problem_in_the_shenzhen_set() {
    let Some(root) = shenzhen() else { return };
    let dataset = Dataset::open(&root, &ClassNames::default()).unwrap();
    let report = check(&dataset, &CheckOptions::default(), &|| {});
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.images, 562);
    assert_eq!(report.masks, 484);
    assert_eq!(report.sizes.len(), 1);
    assert_eq!(
        (report.sizes[0].value, report.sizes[0].images),
        ([512, 512], 562)
    );
    assert_eq!(report.bit_depths[0].value, 8);
    assert!(report.exact_duplicates.is_empty() && report.near_duplicates.is_empty());
}

/// A copy shrunk to 300 x 280 and saved as JPEG, decoded again.
fn resized_jpeg_copy(path: &Path) -> cxr_core::GrayImage {
    let original = image::open(path).unwrap().to_luma8();
    let small = image::imageops::resize(&original, 300, 280, image::imageops::FilterType::Triangle);
    let mut jpeg = std::io::Cursor::new(Vec::new());
    small.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    decode_bytes(
        jpeg.get_ref(),
        Path::new("copy.jpg"),
        &DecodeLimits::default(),
    )
    .unwrap()
    .image
}

/// The default threshold must separate copies from distinct X-rays with room on both sides.
#[test]
fn near_duplicate_threshold_separates_copies_from_distinct_xrays() {
    let Some(root) = shenzhen() else { return };
    let dataset = Dataset::open(&root, &ClassNames::default()).unwrap();
    let hashes: Vec<_> = dataset
        .items
        .iter()
        .map(|i| {
            perceptual_hash(
                &decode_file(&i.path, &DecodeLimits::default())
                    .unwrap()
                    .image,
            )
        })
        .collect();
    let closest_distinct = (0..hashes.len())
        .flat_map(|a| (a + 1..hashes.len()).map(move |b| (a, b)))
        .map(|(a, b)| hashes[a].distance(&hashes[b]))
        .min()
        .unwrap();
    let farthest_copy = dataset
        .items
        .iter()
        .zip(&hashes)
        .step_by(10)
        .map(|(item, hash)| hash.distance(&perceptual_hash(&resized_jpeg_copy(&item.path))))
        .max()
        .unwrap();
    eprintln!(
        "closest distinct pair: {closest_distinct} bits; farthest copy: {farthest_copy} bits"
    );
    assert!(
        farthest_copy + 6 <= DEFAULT_NEAR_DUPLICATE_BITS,
        "{farthest_copy}"
    );
    assert!(
        closest_distinct >= DEFAULT_NEAR_DUPLICATE_BITS + 12,
        "{closest_distinct}"
    );
}

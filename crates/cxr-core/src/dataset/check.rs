//! `cxr data check`: reads every image of a data set once and reports counts, unreadable
//! files, exact and near duplicates (above all across splits: leakage) and image formats.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::phash::{PerceptualHash, perceptual_hash};
use super::{Dataset, Item, Layout, PartCount, Split};
use crate::decode::{DecodeLimits, decode_bytes, read_file};
use crate::image::SourceFormat;

/// What `check` looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// Largest perceptual-hash distance (of 256 bits) at which two images count as near
    /// duplicates.
    pub near_duplicate_bits: u32,
    pub limits: DecodeLimits,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            near_duplicate_bits: DEFAULT_NEAR_DUPLICATE_BITS,
            limits: DecodeLimits::default(),
        }
    }
}

/// On the Shenzhen set, distinct X-rays are at least 46 bits apart and copies resized and
/// re-encoded as JPEG at most 14 (tests/dataset_phash.rs measures both).
pub const DEFAULT_NEAR_DUPLICATE_BITS: u32 = 24;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub path: PathBuf,
    pub reason: String,
}

/// Files with identical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DuplicateSet {
    pub sha256: String,
    pub paths: Vec<PathBuf>,
    /// Copies sit in different splits or folds: the evaluation would see training images.
    pub cross_split: bool,
    /// Copies carry different labels.
    pub labels_differ: bool,
}

/// Two different files whose pictures look alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NearDuplicate {
    pub paths: [PathBuf; 2],
    /// Perceptual-hash distance in bits (of 256).
    pub distance: u32,
    pub cross_split: bool,
    pub labels_differ: bool,
}

/// How many images share one value of a property (size, bit depth, format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tally<T> {
    pub value: T,
    pub images: usize,
}

/// Everything `cxr data check` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    pub source: PathBuf,
    pub layout: Layout,
    pub images: usize,
    pub class_names: Vec<String>,
    /// Indexed by label.
    pub class_totals: Vec<usize>,
    pub parts: Vec<PartCount>,
    pub masks: usize,
    pub unreadable: Vec<Unreadable>,
    pub exact_duplicates: Vec<DuplicateSet>,
    pub near_duplicates: Vec<NearDuplicate>,
    pub near_duplicate_bits: u32,
    /// `[width, height]`.
    pub sizes: Vec<Tally<[usize; 2]>>,
    pub bit_depths: Vec<Tally<u16>>,
    pub formats: Vec<Tally<SourceFormat>>,
    /// One line per kind of problem; empty when the data set is fit for use.
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What reading one file gave.
struct Inspection {
    sha256: Option<String>,
    picture: Result<Picture, String>,
}

struct Picture {
    hash: PerceptualHash,
    size: [usize; 2],
    bit_depth: u16,
    format: SourceFormat,
}

fn inspect(item: &Item, limits: &DecodeLimits) -> Inspection {
    let bytes = match read_file(&item.path, limits) {
        Ok(bytes) => bytes,
        Err(err) => {
            return Inspection {
                sha256: None,
                picture: Err(err.kind.to_string()),
            };
        }
    };
    let picture = decode_bytes(&bytes, &item.path, limits)
        .map(|decoded| Picture {
            hash: perceptual_hash(&decoded.image),
            size: [decoded.info.original_width, decoded.info.original_height],
            bit_depth: decoded.info.bit_depth,
            format: decoded.info.format,
        })
        .map_err(|err| err.kind.to_string());
    Inspection {
        sha256: Some(hex::encode(Sha256::digest(&bytes))),
        picture,
    }
}

/// Reads every image (in parallel) and reports on the data set; `on_image` is called once per
/// image read, for progress display.
pub fn check(
    dataset: &Dataset,
    options: &CheckOptions,
    on_image: &(dyn Fn() + Sync),
) -> CheckReport {
    let inspections: Vec<Inspection> = dataset
        .items
        .par_iter()
        .map(|item| {
            let inspection = inspect(item, &options.limits);
            on_image();
            inspection
        })
        .collect();
    let items = &dataset.items;
    let exact_duplicates = exact_duplicates(items, &inspections);
    let near_duplicates = near_duplicates(items, &inspections, options.near_duplicate_bits);
    let unreadable: Vec<Unreadable> = items
        .iter()
        .zip(&inspections)
        .filter_map(|(item, inspection)| {
            let reason = inspection.picture.as_ref().err()?;
            Some(Unreadable {
                path: item.path.clone(),
                reason: reason.clone(),
            })
        })
        .collect();
    let pictures: Vec<&Picture> = inspections
        .iter()
        .filter_map(|i| i.picture.as_ref().ok())
        .collect();
    let mut report = CheckReport {
        source: dataset.source.clone(),
        layout: dataset.layout,
        images: items.len(),
        class_names: dataset.class_names.clone(),
        class_totals: dataset.class_counts(),
        parts: dataset.part_counts(),
        masks: items.iter().filter(|i| i.mask.is_some()).count(),
        unreadable,
        exact_duplicates,
        near_duplicates,
        near_duplicate_bits: options.near_duplicate_bits,
        sizes: tally(pictures.iter().map(|p| p.size)),
        bit_depths: tally(pictures.iter().map(|p| p.bit_depth)),
        formats: tally(pictures.iter().map(|p| p.format)),
        problems: Vec::new(),
    };
    report.problems = problems(&report);
    report
}

fn problems(report: &CheckReport) -> Vec<String> {
    let mut problems = Vec::new();
    let mut add = |count: usize, what: &str| {
        if count > 0 {
            problems.push(format!("{count} {what}"));
        }
    };
    add(report.unreadable.len(), "unreadable file(s)");
    let exact = &report.exact_duplicates;
    add(
        exact.iter().filter(|d| d.cross_split).count(),
        "set(s) of identical files across splits (leakage)",
    );
    add(
        exact.iter().filter(|d| d.labels_differ).count(),
        "set(s) of identical files with different labels",
    );
    add(
        report
            .near_duplicates
            .iter()
            .filter(|d| d.cross_split)
            .count(),
        "near-duplicate pair(s) across splits (likely leakage)",
    );
    problems
}

/// Two copies leak when both have been assigned and sit in different splits or folds.
fn leaks(a: &Item, b: &Item) -> bool {
    let assigned = |item: &Item| item.split != Split::Unassigned;
    assigned(a) && assigned(b) && (a.split, a.fold) != (b.split, b.fold)
}

fn exact_duplicates(items: &[Item], inspections: &[Inspection]) -> Vec<DuplicateSet> {
    let mut by_hash: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, inspection) in inspections.iter().enumerate() {
        if let Some(sha) = &inspection.sha256 {
            by_hash.entry(sha).or_default().push(i);
        }
    }
    by_hash
        .into_iter()
        .filter(|(_, copies)| copies.len() > 1)
        .map(|(sha, copies)| {
            let pairs = || {
                copies
                    .iter()
                    .flat_map(|&a| copies.iter().map(move |&b| (&items[a], &items[b])))
            };
            DuplicateSet {
                sha256: sha.to_string(),
                paths: copies.iter().map(|&i| items[i].path.clone()).collect(),
                cross_split: pairs().any(|(a, b)| leaks(a, b)),
                labels_differ: pairs().any(|(a, b)| a.label != b.label),
            }
        })
        .collect()
}

/// All pairs within `max_bits` of each other, except byte-identical files (reported as exact).
fn near_duplicates(
    items: &[Item],
    inspections: &[Inspection],
    max_bits: u32,
) -> Vec<NearDuplicate> {
    let hashed: Vec<(usize, &PerceptualHash, Option<&String>)> = inspections
        .iter()
        .enumerate()
        .filter_map(|(i, ins)| Some((i, &ins.picture.as_ref().ok()?.hash, ins.sha256.as_ref())))
        .collect();
    hashed
        .par_iter()
        .enumerate()
        .flat_map_iter(|(n, &(a, hash_a, sha_a))| {
            hashed[n + 1..]
                .iter()
                .filter_map(move |&(b, hash_b, sha_b)| {
                    let distance = hash_a.distance(hash_b);
                    (sha_a != sha_b && distance <= max_bits).then(|| NearDuplicate {
                        paths: [items[a].path.clone(), items[b].path.clone()],
                        distance,
                        cross_split: leaks(&items[a], &items[b]),
                        labels_differ: items[a].label != items[b].label,
                    })
                })
        })
        .collect()
}

/// Counts of each distinct value, most common first (ties in order of first appearance).
/// A linear search, as data sets have only a handful of distinct sizes and formats.
fn tally<T: PartialEq>(values: impl Iterator<Item = T>) -> Vec<Tally<T>> {
    let mut tallies: Vec<Tally<T>> = Vec::new();
    for value in values {
        match tallies.iter_mut().find(|t| t.value == value) {
            Some(tally) => tally.images += 1,
            None => tallies.push(Tally { value, images: 1 }),
        }
    }
    tallies.sort_by_key(|t| std::cmp::Reverse(t.images));
    tallies
}

//! Data sets of labelled chest X-rays: finding them on disk in any of the supported layouts,
//! splitting them into train/validation/test or folds, and checking them for problems.

pub mod check;
pub mod classes;
mod files;
mod folders;
pub mod manifest;
mod nlm;
pub mod phash;
pub mod split;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use check::{CheckOptions, CheckReport, check};
pub use classes::{ClassListError, ClassNames, NEGATIVE, POSITIVE};
pub use files::{is_image, list_images};
pub use manifest::write_manifest;
pub use split::{SplitError, SplitPlan};

/// The part of the data an image belongs to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
    /// Not yet assigned (layouts without split folders).
    #[default]
    Unassigned,
}

impl Split {
    pub const ALL: [Split; 4] = [Split::Train, Split::Val, Split::Test, Split::Unassigned];

    /// Reads a split folder name or manifest value, ignoring case; `None` if it is not one.
    pub fn parse(name: &str) -> Option<Split> {
        match name.trim().to_ascii_lowercase().as_str() {
            "train" | "training" => Some(Split::Train),
            "val" | "valid" | "validation" => Some(Split::Val),
            "test" | "testing" => Some(Split::Test),
            "" | "unassigned" => Some(Split::Unassigned),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
            Split::Unassigned => "unassigned",
        }
    }
}

/// One labelled image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub path: PathBuf,
    /// Index into [`Dataset::class_names`].
    pub label: usize,
    pub split: Split,
    /// Cross-validation fold, when the data set was split into folds.
    pub fold: Option<usize>,
    /// Patient or other group id: images sharing one never go to different splits or folds.
    pub group: Option<String>,
    pub mask: Option<PathBuf>,
}

/// The number of images of each class in one split (and fold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartCount {
    pub split: Split,
    pub fold: Option<usize>,
    /// Indexed by label.
    pub per_class: Vec<usize>,
}

/// How the data set was laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `ROOT/{train,val,test}/{class}/`.
    SplitFolders,
    /// `ROOT/{class}/`.
    ClassFolders,
    /// NLM file names `XXXXXX_####_<label>.png` in `ROOT` or `ROOT/images`.
    NlmNames,
    /// A CSV manifest.
    Manifest,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::SplitFolders => "split and class folders",
            Layout::ClassFolders => "class folders",
            Layout::NlmNames => "NLM file names",
            Layout::Manifest => "CSV manifest",
        })
    }
}

/// A labelled set of images.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The folder or manifest file it was read from.
    pub source: PathBuf,
    pub layout: Layout,
    /// Display name per label index.
    pub class_names: Vec<String>,
    /// Sorted by path.
    pub items: Vec<Item>,
}

/// Why a data set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no images found", path.display())]
    Empty { path: PathBuf },
    #[error(
        "{}: unknown data set layout: expected ROOT/{{train,val,test}}/{{class}}/, ROOT/{{class}}/, \
         NLM file names like CHNCXR_0001_0.png in ROOT or ROOT/images, or a CSV manifest file",
        path.display()
    )]
    UnknownLayout { path: PathBuf },
    #[error("{}: unknown class '{name}' (accepted {accepted})", path.display())]
    UnknownClass {
        path: PathBuf,
        name: String,
        accepted: String,
    },
    #[error("{}: line {line}: {reason}", path.display())]
    BadRow {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{}: {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
}

/// An item found on disk, with the class name its source used (a folder name, say).
pub(crate) struct Discovered {
    pub item: Item,
    pub class_name: Option<String>,
}

impl Dataset {
    /// Reads a data set from a folder (split folders, class folders or NLM names) or a CSV
    /// manifest file.
    pub fn open(path: &Path, names: &ClassNames) -> Result<Dataset, DatasetError> {
        if path.is_file() {
            let found = manifest::read_manifest(path, names)?;
            return Dataset::from_discovered(path, Layout::Manifest, names, found);
        }
        if !path.is_dir() {
            return Err(DatasetError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
        if let Some((layout, found)) = folders::discover(path, names)? {
            return Dataset::from_discovered(path, layout, names, found);
        }
        if let Some(found) = nlm::discover(path)? {
            return Dataset::from_discovered(path, Layout::NlmNames, names, found);
        }
        let has_content =
            !files::list_images(path)?.is_empty() || !files::list_subdirs(path)?.is_empty();
        Err(if has_content {
            DatasetError::UnknownLayout {
                path: path.to_path_buf(),
            }
        } else {
            DatasetError::Empty {
                path: path.to_path_buf(),
            }
        })
    }

    fn from_discovered(
        source: &Path,
        layout: Layout,
        names: &ClassNames,
        found: Vec<Discovered>,
    ) -> Result<Dataset, DatasetError> {
        if found.is_empty() {
            return Err(DatasetError::Empty {
                path: source.to_path_buf(),
            });
        }
        let mut class_names = names.display_names();
        let mut named = vec![false; class_names.len()];
        let mut items = Vec::with_capacity(found.len());
        for Discovered { item, class_name } in found {
            if item.label >= class_names.len() {
                return Err(DatasetError::UnknownClass {
                    path: item.path,
                    name: item.label.to_string(),
                    accepted: names.describe(),
                });
            }
            if let Some(name) = class_name.filter(|_| !named[item.label]) {
                class_names[item.label] = name;
                named[item.label] = true;
            }
            items.push(item);
        }
        items.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Dataset {
            source: source.to_path_buf(),
            layout,
            class_names,
            items,
        })
    }

    /// Number of items per label index.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for item in &self.items {
            counts[item.label] += 1;
        }
        counts
    }

    /// Images per class in each split and fold, in split then fold order.
    pub fn part_counts(&self) -> Vec<PartCount> {
        let mut parts: BTreeMap<(Split, Option<usize>), Vec<usize>> = BTreeMap::new();
        for item in &self.items {
            parts
                .entry((item.split, item.fold))
                .or_insert_with(|| vec![0; self.class_names.len()])[item.label] += 1;
        }
        parts
            .into_iter()
            .map(|((split, fold), per_class)| PartCount {
                split,
                fold,
                per_class,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_parse_ignoring_case() {
        assert_eq!(Split::parse("Training"), Some(Split::Train));
        assert_eq!(Split::parse("VALIDATION"), Some(Split::Val));
        assert_eq!(Split::parse("test"), Some(Split::Test));
        assert_eq!(Split::parse(""), Some(Split::Unassigned));
        assert_eq!(Split::parse("holdout"), None);
        for split in Split::ALL {
            assert_eq!(Split::parse(split.as_str()), Some(split));
        }
    }
}

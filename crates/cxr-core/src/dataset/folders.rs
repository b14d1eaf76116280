//! The paper's folder layout: `ROOT/{train,val[,test]}/{class}/*.png`, or `ROOT/{class}/*.png`
//! without splits. Class folders are named by [`ClassNames`]; `masks/` folders are skipped.

use std::path::Path;

use super::files::{dir_name, find_mask, list_images, list_subdirs};
use super::{ClassNames, DatasetError, Discovered, Item, Layout, Split};

const MASKS_DIR: &str = "masks";

/// Reads the folder layout under `root`, or `None` when `root` has neither split nor class
/// folders.
pub(super) fn discover(
    root: &Path,
    names: &ClassNames,
) -> Result<Option<(Layout, Vec<Discovered>)>, DatasetError> {
    let subdirs = list_subdirs(root)?;
    let split_dirs: Vec<_> = subdirs
        .iter()
        .filter_map(|dir| {
            Split::parse(dir_name(dir))
                .filter(|split| *split != Split::Unassigned)
                .map(|split| (split, dir))
        })
        .collect();
    if !split_dirs.is_empty() {
        let mut found = Vec::new();
        for (split, dir) in split_dirs {
            found.extend(read_class_dirs(dir, split, names)?);
        }
        return Ok(Some((Layout::SplitFolders, found)));
    }
    let has_class_dir = subdirs
        .iter()
        .any(|dir| names.label_of(dir_name(dir)).is_some());
    if has_class_dir {
        let found = read_class_dirs(root, Split::Unassigned, names)?;
        return Ok(Some((Layout::ClassFolders, found)));
    }
    Ok(None)
}

/// Every class folder under `dir` must be a known class, so that no images are silently left out.
fn read_class_dirs(
    dir: &Path,
    split: Split,
    names: &ClassNames,
) -> Result<Vec<Discovered>, DatasetError> {
    let mut found = Vec::new();
    for class_dir in list_subdirs(dir)? {
        let name = dir_name(&class_dir);
        if name.eq_ignore_ascii_case(MASKS_DIR) {
            continue;
        }
        let label = names
            .label_of(name)
            .ok_or_else(|| DatasetError::UnknownClass {
                path: class_dir.clone(),
                name: name.to_string(),
                accepted: names.describe(),
            })?;
        for path in list_images(&class_dir)? {
            found.push(Discovered {
                item: Item {
                    mask: find_mask(&path),
                    path,
                    label,
                    split,
                    fold: None,
                    group: None,
                },
                class_name: Some(name.to_string()),
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{NEGATIVE, POSITIVE};

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn split_folders_give_split_label_and_class_name() {
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("train/Normal/a.png"));
        touch(&root.path().join("train/TB/b.png"));
        touch(&root.path().join("val/normal/c.png"));
        touch(&root.path().join("val/normal/masks/c_mask.png"));
        let (layout, found) = discover(root.path(), &ClassNames::default())
            .unwrap()
            .unwrap();
        assert_eq!(layout, Layout::SplitFolders);
        let summary: Vec<_> = found
            .iter()
            .map(|d| (d.item.split, d.item.label, d.item.mask.is_some()))
            .collect();
        assert_eq!(
            summary,
            [
                (Split::Train, NEGATIVE, false),
                (Split::Train, POSITIVE, false),
                (Split::Val, NEGATIVE, true),
            ]
        );
        assert_eq!(found[0].class_name.as_deref(), Some("Normal"));
    }

    #[test]
    fn class_folders_without_splits_are_unassigned() {
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("normal/a.png"));
        touch(&root.path().join("abnormal/b.jpg"));
        let (layout, found) = discover(root.path(), &ClassNames::default())
            .unwrap()
            .unwrap();
        assert_eq!(layout, Layout::ClassFolders);
        assert!(found.iter().all(|d| d.item.split == Split::Unassigned));
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn unknown_class_folder_is_an_error_naming_it() {
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("train/normal/a.png"));
        touch(&root.path().join("train/pneumonia/b.png"));
        let err = discover(root.path(), &ClassNames::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("pneumonia"), "{err}");
    }

    #[test]
    fn folders_without_known_names_are_not_this_layout() {
        let root = tempfile::tempdir().unwrap();
        touch(&root.path().join("images/a.png"));
        assert!(
            discover(root.path(), &ClassNames::default())
                .unwrap()
                .is_none()
        );
    }
}

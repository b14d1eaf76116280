//! NLM file names (Shenzhen `CHNCXR_0001_0.png`, Montgomery `MCUCXR_0001_1.png`): the last
//! number is the label (0 normal, 1 tuberculosis). Images sit in `ROOT` or `ROOT/images`.

use std::path::Path;

use super::files::{find_mask, list_images, stem};
use super::{DatasetError, Discovered, Item, NEGATIVE, POSITIVE, Split};

/// The class names NLM uses (as in the Shenzhen `labels.csv`).
const CLASS_NAMES: [&str; 2] = ["normal", "tb"];

/// `Some(label suffix)` when the stem looks like `LETTERS_DIGITS_DIGITS`.
fn label_suffix(stem: &str) -> Option<&str> {
    let mut parts = stem.split('_');
    let (prefix, number, label) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = parts.next().is_none()
        && !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_alphanumeric())
        && digits(number)
        && digits(label);
    well_formed.then_some(label)
}

/// Reads NLM-named images from `root` or `root/images`, or `None` when neither holds any.
/// Once a folder holds NLM names, every image in it must follow them.
pub(super) fn discover(root: &Path) -> Result<Option<Vec<Discovered>>, DatasetError> {
    for dir in [root.to_path_buf(), root.join("images")] {
        if !dir.is_dir() {
            continue;
        }
        let images = list_images(&dir)?;
        if !images.iter().any(|p| label_suffix(stem(p)).is_some()) {
            continue;
        }
        return images
            .into_iter()
            .map(read_item)
            .collect::<Result<_, _>>()
            .map(Some);
    }
    Ok(None)
}

fn read_item(path: std::path::PathBuf) -> Result<Discovered, DatasetError> {
    let suffix = label_suffix(stem(&path));
    let label = match suffix {
        Some("0") => NEGATIVE,
        Some("1") => POSITIVE,
        _ => {
            return Err(DatasetError::UnknownClass {
                name: suffix.unwrap_or("no label suffix").to_string(),
                path,
                accepted: "NLM file names end in _0 (normal) or _1 (tb)".to_string(),
            });
        }
    };
    Ok(Discovered {
        item: Item {
            mask: find_mask(&path),
            path,
            label,
            split: Split::Unassigned,
            fold: None,
            group: None,
        },
        class_name: Some(CLASS_NAMES[label].to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_read_from_well_formed_names_only() {
        assert_eq!(label_suffix("CHNCXR_0001_0"), Some("0"));
        assert_eq!(label_suffix("MCUCXR_0104_1"), Some("1"));
        assert_eq!(label_suffix("CHNCXR_0001"), None);
        assert_eq!(label_suffix("CHNCXR_0001_0_extra"), None);
        assert_eq!(label_suffix("scan_a_1"), None);
    }

    #[test]
    fn images_folder_and_masks_are_found() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["images", "masks"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        for name in ["images/CHNCXR_0001_0.png", "images/CHNCXR_0002_1.png"] {
            std::fs::write(root.path().join(name), b"x").unwrap();
        }
        std::fs::write(root.path().join("masks/CHNCXR_0002_1_mask.png"), b"x").unwrap();
        let found = discover(root.path()).unwrap().unwrap();
        let summary: Vec<_> = found
            .iter()
            .map(|d| (d.item.label, d.item.mask.is_some(), d.class_name.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (NEGATIVE, false, Some("normal".into())),
                (POSITIVE, true, Some("tb".into()))
            ]
        );
    }

    #[test]
    fn a_non_binary_suffix_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("CHNCXR_0001_0.png"), b"x").unwrap();
        std::fs::write(root.path().join("CHNCXR_0002_2.png"), b"x").unwrap();
        let err = discover(root.path()).err().unwrap().to_string();
        assert!(err.contains("CHNCXR_0002_2.png"), "{err}");
    }
}

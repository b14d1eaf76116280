//! File-system helpers shared by the layout readers: which files are images, listing
//! directories in a stable order, and finding the lung mask that belongs to an image.

use std::path::{Path, PathBuf};

use super::DatasetError;

const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "dcm", "dicom"];
const MASK_SUFFIX: &str = "_mask";

/// The file name without its extension, or "" when it has none that is valid UTF-8.
pub(crate) fn stem(path: &Path) -> &str {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or("")
}

/// True for PNG/JPEG/DICOM files that are not themselves masks (`<stem>_mask.*`).
pub fn is_image(path: &Path) -> bool {
    let extension_ok = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)));
    extension_ok && !stem(path).ends_with(MASK_SUFFIX)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let io_error = |source| DatasetError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Image files directly inside `dir`, sorted by path.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    Ok(read_dir_sorted(dir)?
        .into_iter()
        .filter(|p| p.is_file() && is_image(p))
        .collect())
}

/// Subdirectories of `dir` (not hidden), sorted by path.
pub(crate) fn list_subdirs(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    Ok(read_dir_sorted(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect())
}

/// The name of the last path component, for matching folder names.
pub(crate) fn dir_name(dir: &Path) -> &str {
    dir.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// `<stem>_mask.png` beside the image, in a `masks/` folder inside its folder, or in a
/// `masks/` folder next to its folder (the NLM/Kaggle layout `images/` + `masks/`).
pub(crate) fn find_mask(image: &Path) -> Option<PathBuf> {
    let dir = image.parent()?;
    let name = format!("{}{MASK_SUFFIX}.png", stem(image));
    let mut candidates = vec![dir.join(&name), dir.join("masks").join(&name)];
    if let Some(parent) = dir.parent() {
        candidates.push(parent.join("masks").join(&name));
    }
    candidates.into_iter().find(|c| c.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_extension_and_masks_excluded() {
        assert!(is_image(Path::new("a/x.PNG")));
        assert!(is_image(Path::new("x.dcm")));
        assert!(!is_image(Path::new("x_mask.png")));
        assert!(!is_image(Path::new("notes.txt")));
        assert!(!is_image(Path::new("noextension")));
    }

    #[test]
    fn masks_are_found_beside_inside_and_next_to_the_image_folder() {
        let root = tempfile::tempdir().unwrap();
        let images = root.path().join("images");
        std::fs::create_dir_all(images.join("masks")).unwrap();
        std::fs::create_dir_all(root.path().join("masks")).unwrap();
        for name in ["a", "b", "c", "d"] {
            std::fs::write(images.join(format!("{name}.png")), b"x").unwrap();
        }
        std::fs::write(images.join("a_mask.png"), b"x").unwrap();
        std::fs::write(images.join("masks/b_mask.png"), b"x").unwrap();
        std::fs::write(root.path().join("masks/c_mask.png"), b"x").unwrap();

        assert_eq!(
            find_mask(&images.join("a.png")),
            Some(images.join("a_mask.png"))
        );
        assert_eq!(
            find_mask(&images.join("b.png")),
            Some(images.join("masks/b_mask.png"))
        );
        assert_eq!(
            find_mask(&images.join("c.png")),
            Some(root.path().join("masks/c_mask.png"))
        );
        assert_eq!(find_mask(&images.join("d.png")), None);
        assert_eq!(list_images(&images).unwrap().len(), 4);
    }
}

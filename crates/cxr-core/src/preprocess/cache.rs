//! A disk cache of fitted images (decoded, resized, CLAHE; before augmentation and
//! normalisation), keyed by the file's SHA-256 and the spec's fit-relevant fields.
//!
//! Entry format (little-endian): magic `CXRFIT\0\0`, format version u32, width u32, height u32,
//! checksum u64 (FNV-1a over the payload's 8-byte words), then width * height f32 pixels.
//! Entries are written to a temporary name and renamed into place, so readers never see half
//! an entry; any entry that fails validation is recomputed and rewritten.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::{PreprocessError, PreprocessSpec, crop_lungs, fit, required_lung_model};
use crate::decode::{DecodeError, DecodeLimits, decode_bytes, read_limited};
use crate::image::GrayImage;
use crate::lungs::LungCropper;

const MAGIC: &[u8; 8] = b"CXRFIT\0\0";
/// Bump when the entry layout or the fitting algorithm changes: old entries then miss.
const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 8;

/// Counters since the cache was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Served from disk.
    pub hits: u64,
    /// Not on disk: computed and stored.
    pub misses: u64,
    /// On disk but invalid (truncated, corrupt, wrong size): recomputed and stored.
    pub repaired: u64,
}

/// A directory of fitted images, safe to share between threads and processes.
pub struct PreprocessCache {
    dir: PathBuf,
    /// The lung model for specs that crop to the lungs; its sha256 is in their fingerprint.
    lungs: Option<Arc<dyn LungCropper>>,
    hits: AtomicU64,
    misses: AtomicU64,
    repaired: AtomicU64,
}

impl std::fmt::Debug for PreprocessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreprocessCache")
            .field("dir", &self.dir)
            .field(
                "lung_model_sha256",
                &self.lungs.as_ref().map(|lungs| lungs.lung_model_sha256()),
            )
            .field("stats", &self.stats())
            .finish()
    }
}

impl PreprocessCache {
    /// Opens (creating if needed) a cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, PreprocessError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| PreprocessError::Cache {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            lungs: None,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            repaired: AtomicU64::new(0),
        })
    }

    /// Crops to the lungs with `lungs` for specs that name a lung crop.
    pub fn with_lungs(mut self, lungs: Arc<dyn LungCropper>) -> Self {
        self.lungs = Some(lungs);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            repaired: self.repaired.load(Ordering::Relaxed),
        }
    }

    /// The fitted image for the file at `path` (lung crop when the spec names one, then
    /// [`fit`]), from disk when cached. Finish it with `to_tensor`, with or without augmentation.
    pub fn get_or_compute(
        &self,
        path: &Path,
        spec: &PreprocessSpec,
        limits: &DecodeLimits,
    ) -> Result<GrayImage, PreprocessError> {
        spec.validate()?;
        let lungs = self.lungs.as_deref();
        // Checked before the lookup, so that a cached entry cannot hide a missing or wrong
        // lung model.
        required_lung_model(spec, lungs)?;
        let bytes = read_limited(path, limits).map_err(|kind| DecodeError {
            path: path.to_path_buf(),
            kind,
        })?;
        let entry = self.entry_path(&bytes, spec);
        let expected = (spec.input_size.width, spec.input_size.height);
        match fs::read(&entry) {
            Ok(stored) => match parse_entry(&stored, expected) {
                Some(image) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(image);
                }
                None => self.repaired.fetch_add(1, Ordering::Relaxed),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.misses.fetch_add(1, Ordering::Relaxed)
            }
            // Unreadable entries are treated like corrupt ones: recompute and replace.
            Err(_) => self.repaired.fetch_add(1, Ordering::Relaxed),
        };
        let decoded = decode_bytes(&bytes, path, limits)?.image;
        let cropped = crop_lungs(&decoded, spec, lungs).map_err(|error| match error {
            PreprocessError::LungCrop(reason) => {
                PreprocessError::LungCrop(format!("{}: {reason}", path.display()))
            }
            other => other,
        })?;
        let fitted = fit(cropped.as_ref().map_or(&decoded, |crop| &crop.image), spec)?;
        self.store(&entry, &fitted)?;
        Ok(fitted)
    }

    /// `<dir>/<sha256(file sha256, format version, fit-relevant spec)>.fit`; the spec's lung
    /// crop, when it has one, counts with the sha256 of the lung model that cuts it.
    fn entry_path(&self, file_bytes: &[u8], spec: &PreprocessSpec) -> PathBuf {
        let mut key = Sha256::new();
        key.update(Sha256::digest(file_bytes));
        key.update(FORMAT_VERSION.to_le_bytes());
        key.update(spec.fit_fingerprint().as_bytes());
        if spec.lung_crop.is_some()
            && let Some(lungs) = &self.lungs
        {
            key.update(lungs.lung_model_sha256().as_bytes());
        }
        self.dir
            .join(format!("{}.fit", hex::encode(key.finalize())))
    }

    fn store(&self, entry: &Path, image: &GrayImage) -> Result<(), PreprocessError> {
        static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);
        let temp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            entry
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("entry"),
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        ));
        let cache_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PreprocessError::Cache { path, source }
        };
        fs::write(&temp, encode_entry(image)).map_err(cache_error(&temp))?;
        fs::rename(&temp, entry).map_err(|source| {
            // Best effort: a leftover temporary file is harmless but untidy.
            let _ = fs::remove_file(&temp);
            cache_error(entry)(source)
        })
    }
}

fn encode_entry(image: &GrayImage) -> Vec<u8> {
    let mut payload = Vec::with_capacity(image.pixels.len() * 4);
    for p in &image.pixels {
        payload.extend_from_slice(&p.to_le_bytes());
    }
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(image.width as u32).to_le_bytes());
    bytes.extend_from_slice(&(image.height as u32).to_le_bytes());
    bytes.extend_from_slice(&checksum(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

/// The image in `bytes`, or `None` when anything about the entry is off.
fn parse_entry(bytes: &[u8], (width, height): (usize, usize)) -> Option<GrayImage> {
    let (header, payload) = bytes.split_at_checked(HEADER_LEN)?;
    let u32_at = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let valid = &header[..8] == MAGIC
        && u32_at(8) == FORMAT_VERSION
        && u32_at(12) as usize == width
        && u32_at(16) as usize == height
        && payload.len() == width * height * 4
        && header[20..28] == checksum(payload).to_le_bytes();
    if !valid {
        return None;
    }
    let pixels = payload
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    GrayImage::new(width, height, pixels)
}

/// FNV-1a over 8-byte words (the tail zero-padded): cheap, and catches truncation and flips.
fn checksum(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.chunks(8).fold(OFFSET, |hash, chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        (hash ^ u64::from_le_bytes(word)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lungs::{BoundingBox, CropOutcome, LungCropSpec};

    /// "Finds" the lungs in the left half of every image.
    struct LeftHalf(&'static str);

    impl LungCropper for LeftHalf {
        fn lung_model_sha256(&self) -> &str {
            self.0
        }

        fn crop(&self, image: &GrayImage, _: &LungCropSpec) -> Result<CropOutcome, String> {
            let region = BoundingBox {
                x: 0,
                y: 0,
                width: image.width / 2,
                height: image.height,
            };
            Ok(CropOutcome {
                image: region.crop(image),
                region: Some(region),
                fallback: None,
            })
        }
    }

    #[test]
    fn a_lung_crop_spec_needs_its_lung_model_and_caches_the_crop() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ramp.png");
        image::GrayImage::from_fn(64, 32, |x, _| image::Luma([(x * 4) as u8]))
            .save(&file)
            .unwrap();
        let plain = PreprocessSpec {
            input_size: super::super::InputSize {
                width: 16,
                height: 16,
            },
            ..PreprocessSpec::default()
        };
        let cropping = PreprocessSpec {
            lung_crop: Some(LungCropSpec {
                lung_model_sha256: "aaaa".into(),
                ..LungCropSpec::default()
            }),
            ..plain.clone()
        };
        let limits = DecodeLimits::default();

        let without = PreprocessCache::new(dir.path().join("c")).unwrap();
        let error = without
            .get_or_compute(&file, &cropping, &limits)
            .unwrap_err();
        assert!(error.to_string().contains("no lung model"), "{error}");

        let other = PreprocessCache::new(dir.path().join("c")).unwrap();
        let other = other.with_lungs(Arc::new(LeftHalf("bbbb")));
        let error = other.get_or_compute(&file, &cropping, &limits).unwrap_err();
        assert!(error.to_string().contains("aaaa"), "{error}");

        let cache = PreprocessCache::new(dir.path().join("c")).unwrap();
        let cache = cache.with_lungs(Arc::new(LeftHalf("aaaa")));
        let cropped = cache.get_or_compute(&file, &cropping, &limits).unwrap();
        let whole = cache.get_or_compute(&file, &plain, &limits).unwrap();
        // The left half is the dark half of the ramp.
        let mean = |image: &GrayImage| image.pixels.iter().sum::<f32>() / image.pixels.len() as f32;
        assert!(mean(&cropped) < 0.6 * mean(&whole));
        assert_eq!(
            cache.get_or_compute(&file, &cropping, &limits).unwrap(),
            cropped
        );
        assert_eq!(cache.stats().hits, 1);
        assert_eq!(cache.stats().misses, 2);
    }

    #[test]
    fn entries_round_trip() {
        let image = GrayImage::new(3, 2, vec![0.0, 0.1, 0.2, 0.3, 0.4, 1.0]).unwrap();
        let bytes = encode_entry(&image);
        assert_eq!(bytes.len(), HEADER_LEN + 24);
        assert_eq!(parse_entry(&bytes, (3, 2)), Some(image));
    }

    #[test]
    fn damaged_entries_are_rejected() {
        let image = GrayImage::filled(4, 4, 0.5);
        let good = encode_entry(&image);
        assert!(parse_entry(&good, (4, 5)).is_none(), "wrong size");
        assert!(
            parse_entry(&good[..good.len() - 1], (4, 4)).is_none(),
            "truncated"
        );
        assert!(parse_entry(&good[..10], (4, 4)).is_none(), "header only");
        let mut flipped = good.clone();
        flipped[HEADER_LEN + 5] ^= 0x10;
        assert!(parse_entry(&flipped, (4, 4)).is_none(), "payload bit flip");
        let mut versioned = good;
        versioned[8] = 99;
        assert!(
            parse_entry(&versioned, (4, 4)).is_none(),
            "other format version"
        );
    }
}

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
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::{PreprocessError, PreprocessSpec, fit};
use crate::decode::{DecodeError, DecodeLimits, decode_bytes, read_limited};
use crate::image::GrayImage;

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
#[derive(Debug)]
pub struct PreprocessCache {
    dir: PathBuf,
    hits: AtomicU64,
    misses: AtomicU64,
    repaired: AtomicU64,
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
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            repaired: AtomicU64::new(0),
        })
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

    /// The fitted image for the file at `path` (see [`fit`]), from disk when cached.
    /// Finish it with `to_tensor`, with or without augmentation.
    pub fn get_or_compute(
        &self,
        path: &Path,
        spec: &PreprocessSpec,
        limits: &DecodeLimits,
    ) -> Result<GrayImage, PreprocessError> {
        spec.validate()?;
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
        let fitted = fit(&decode_bytes(&bytes, path, limits)?.image, spec)?;
        self.store(&entry, &fitted)?;
        Ok(fitted)
    }

    /// `<dir>/<sha256(file sha256, format version, fit-relevant spec)>.fit`.
    fn entry_path(&self, file_bytes: &[u8], spec: &PreprocessSpec) -> PathBuf {
        let mut key = Sha256::new();
        key.update(Sha256::digest(file_bytes));
        key.update(FORMAT_VERSION.to_le_bytes());
        key.update(spec.fit_fingerprint().as_bytes());
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

//! Shared by the decode integration tests: encoders that make test inputs in memory,
//! and the path of the real Shenzhen chest X-rays (absent on some machines).
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

use cxr_core::{DecodeError, DecodeLimits, DecodedImage, decode_bytes};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

pub fn decode(bytes: &[u8]) -> Result<DecodedImage, DecodeError> {
    decode_bytes(
        bytes,
        Path::new("in-memory test image"),
        &DecodeLimits::default(),
    )
}

/// PNG bytes of `samples` (16-bit layouts take native-endian bytes).
pub fn png(width: u32, height: u32, color: ExtendedColorType, samples: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(samples, width, height, color)
        .expect("test PNG encodes");
    out
}

pub fn jpeg(width: u32, height: u32, color: ExtendedColorType, samples: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 95)
        .write_image(samples, width, height, color)
        .expect("test JPEG encodes");
    out
}

/// An 8-bit image whose value rises by one per pixel along each row (wrapping at 256).
pub fn ramp(width: usize, height: usize) -> Vec<u8> {
    (0..width * height)
        .map(|i| (i % width % 256) as u8)
        .collect()
}

/// The real Shenzhen images, or `None` with the reason printed.
pub fn shenzhen_images() -> Option<PathBuf> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/shenzhen/images"
    ));
    if dir.is_dir() {
        Some(dir.to_path_buf())
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

pub fn assert_close(actual: f32, expected: f32, tolerance: f32) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} differs from {expected} by more than {tolerance}"
    );
}

//! Shared by the data set tests here and by the `cxr data` CLI tests (included by path):
//! synthetic test pictures, and the location of the real Shenzhen set (absent on some machines).
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

/// Saves a `side` x `side` PNG of 16 x 16 pseudo-random blocks: different seeds give
/// unrelated pictures, the same seed at another side the same picture resized.
pub fn write_block_png(path: &Path, seed: u64, side: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let blocks: Vec<u8> = (0..16 * 16)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 56) as u8
        })
        .collect();
    let block = side / 16;
    let picture = image::GrayImage::from_fn(side, side, |x, y| {
        image::Luma([blocks[((y / block) * 16 + x / block) as usize]])
    });
    picture.save(path).unwrap();
}

/// The Shenzhen set's root folder, or `None` with the reason printed.
pub fn shenzhen() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/shenzhen"
    ));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

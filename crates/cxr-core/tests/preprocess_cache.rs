//! The preprocessing cache on real files: misses then hits, invalidation by content and by
//! spec, and recovery from damaged entries.

use std::fs;
use std::path::{Path, PathBuf};

use cxr_core::DecodeLimits;
use cxr_core::preprocess::{
    CacheStats, InputSize, PreprocessCache, PreprocessSpec, ResizeMode, fit,
};

/// Writes a 96 x 80 8-bit gray PNG with a pattern depending on `seed`.
fn write_png(dir: &Path, name: &str, seed: u8) -> PathBuf {
    let image = image::GrayImage::from_fn(96, 80, |x, y| {
        image::Luma([(x as u8).wrapping_mul(3) ^ (y as u8) ^ seed])
    });
    let path = dir.join(name);
    image.save(&path).unwrap();
    path
}

fn small_spec() -> PreprocessSpec {
    PreprocessSpec {
        input_size: InputSize {
            width: 32,
            height: 24,
        },
        ..PreprocessSpec::default()
    }
}

fn entries(cache: &PreprocessCache) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fit"))
        .collect();
    found.sort();
    found
}

/// A scratch folder holding one PNG (`a.png`, pattern `seed`) and an empty cache.
struct Fixture {
    dir: tempfile::TempDir,
    png: PathBuf,
    cache: PreprocessCache,
    limits: DecodeLimits,
}

impl Fixture {
    /// The fitted image for `path` through the cache; panics on error (tests only).
    fn fitted(&self, path: &Path, spec: &PreprocessSpec) -> cxr_core::GrayImage {
        self.cache.get_or_compute(path, spec, &self.limits).unwrap()
    }
}

fn fixture(seed: u8) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let png = write_png(dir.path(), "a.png", seed);
    let cache = PreprocessCache::new(dir.path().join("cache")).unwrap();
    Fixture {
        dir,
        png,
        cache,
        limits: DecodeLimits::default(),
    }
}

#[test]
fn second_read_is_a_hit_and_equals_the_computed_image() {
    let f = fixture(0);

    let computed = f.fitted(&f.png, &small_spec());
    let cached = f.fitted(&f.png, &small_spec());
    assert_eq!(
        f.cache.stats(),
        CacheStats {
            hits: 1,
            misses: 1,
            repaired: 0
        }
    );
    assert_eq!(computed, cached);
    let direct = fit(
        &cxr_core::decode_file(&f.png, &f.limits).unwrap().image,
        &small_spec(),
    )
    .unwrap();
    assert_eq!(cached, direct);
    assert_eq!(entries(&f.cache).len(), 1, "no temporary files left behind");
    assert_eq!(fs::read_dir(f.cache.dir()).unwrap().count(), 1);
}

#[test]
fn the_key_is_the_content_not_the_path() {
    let f = fixture(0);
    let copy = f.dir.path().join("copy.png");
    fs::copy(&f.png, &copy).unwrap();

    f.fitted(&f.png, &small_spec());
    f.fitted(&copy, &small_spec());
    assert_eq!(f.cache.stats().hits, 1);

    // Same path, new content: a miss, and the new image.
    let rewritten = write_png(f.dir.path(), "a.png", 77);
    let changed = f.fitted(&rewritten, &small_spec());
    assert_eq!(f.cache.stats().misses, 2);
    assert_ne!(changed, f.fitted(&copy, &small_spec()));
}

#[test]
fn a_spec_change_that_alters_the_fitted_image_misses() {
    let f = fixture(5);
    let spec = small_spec();

    f.fitted(&f.png, &spec);
    let letterboxed = PreprocessSpec {
        resize: ResizeMode::Letterbox,
        ..spec.clone()
    };
    f.fitted(&f.png, &letterboxed);
    let bigger = PreprocessSpec {
        input_size: InputSize {
            width: 40,
            height: 40,
        },
        ..spec.clone()
    };
    assert_eq!(f.fitted(&f.png, &bigger).width, 40);
    assert_eq!(f.cache.stats().misses, 3);

    // Normalisation and channels act after the cache: same entry.
    let keras = PreprocessSpec {
        normalisation: cxr_core::preprocess::Normalisation::SymmetricUnit,
        channels: 1,
        ..spec
    };
    f.fitted(&f.png, &keras);
    assert_eq!(f.cache.stats().hits, 1);
}

#[test]
fn damaged_entries_are_recomputed_and_rewritten() {
    let f = fixture(9);
    let good = f.fitted(&f.png, &small_spec());
    let entry = entries(&f.cache).remove(0);
    let intact = fs::read(&entry).unwrap();

    let mut flipped = intact.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let damages: [&[u8]; 3] = [&intact[..intact.len() / 2], b"not a cache entry", &flipped];
    for damage in damages {
        fs::write(&entry, damage).unwrap();
        assert_eq!(f.fitted(&f.png, &small_spec()), good);
        assert_eq!(fs::read(&entry).unwrap(), intact, "entry rewritten");
    }
    assert_eq!(
        f.cache.stats(),
        CacheStats {
            hits: 0,
            misses: 1,
            repaired: 3
        }
    );
    f.fitted(&f.png, &small_spec());
    assert_eq!(f.cache.stats().hits, 1);
}

#[test]
fn unreadable_inputs_are_errors_naming_the_file() {
    let f = fixture(0);
    let missing = f.dir.path().join("missing.png");
    let error = f
        .cache
        .get_or_compute(&missing, &small_spec(), &f.limits)
        .unwrap_err();
    assert!(error.to_string().contains("missing.png"), "{error}");

    let garbage = f.dir.path().join("garbage.png");
    fs::write(&garbage, b"definitely not an image").unwrap();
    let error = f
        .cache
        .get_or_compute(&garbage, &small_spec(), &f.limits)
        .unwrap_err();
    assert!(error.to_string().contains("garbage.png"), "{error}");
    assert!(entries(&f.cache).is_empty());
}

//! Criterion benchmarks of the preprocessing path and its parts: resize, CLAHE, augmentation,
//! normalisation, and decode + preprocess (and `preprocess_file`, which streams PNG rows) of a
//! real 512 px PNG and a 3000 px 16-bit PNG.

use std::hint::black_box;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use cxr_core::augment::AugmentConfig;
use cxr_core::preprocess::{
    ClaheParams, PreprocessSpec, fit, preprocess, preprocess_file, to_tensor,
};
use cxr_core::{DecodeLimits, GrayImage, decode_bytes};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A textured image with some large-scale structure, like an X-ray in spirit.
fn synthetic(side: usize) -> GrayImage {
    let pixels = (0..side * side)
        .map(|i| {
            let (x, y) = (
                (i % side) as f32 / side as f32,
                (i / side) as f32 / side as f32,
            );
            (0.5 + 0.3 * (6.0 * x).sin() * (4.0 * y).cos() + 0.05 * ((i * 7919) % 13) as f32 / 13.0)
                .clamp(0.0, 1.0)
        })
        .collect();
    GrayImage {
        width: side,
        height: side,
        pixels,
    }
}

/// The image as a 16-bit gray PNG in memory.
fn png_16bit(image: &GrayImage) -> Vec<u8> {
    let buffer = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(
        image.width as u32,
        image.height as u32,
        |x, y| image::Luma([(image.get(x as usize, y as usize) * 65535.0) as u16]),
    );
    let mut bytes = Vec::new();
    buffer
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encoding a PNG in memory");
    bytes
}

fn first_shenzhen_image() -> Option<PathBuf> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/shenzhen/images"
    ));
    let path = dir.join("CHNCXR_0001_0.png");
    if path.exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping the real-image benchmark: {} is absent",
            path.display()
        );
        None
    }
}

fn components(c: &mut Criterion) {
    let spec = PreprocessSpec::default();
    let small = synthetic(512);
    let large = synthetic(3000);
    let fitted = fit(&small, &spec).expect("fit");
    let mut group = c.benchmark_group("components");
    group.bench_function("fit 512 -> 299", |b| {
        b.iter(|| fit(black_box(&small), &spec))
    });
    group.sample_size(20);
    group.bench_function("fit 3000 -> 299", |b| {
        b.iter(|| fit(black_box(&large), &spec))
    });
    group.sample_size(100);
    let clahe = PreprocessSpec {
        clahe: Some(ClaheParams::default()),
        input_size: cxr_core::preprocess::InputSize {
            width: 512,
            height: 512,
        },
        ..PreprocessSpec::default()
    };
    group.bench_function("clahe 512 (no resize)", |b| {
        b.iter(|| fit(black_box(&small), &clahe))
    });
    group.bench_function("normalise 299 x 3", |b| {
        b.iter(|| to_tensor(black_box(&fitted), &spec, None))
    });
    let params = AugmentConfig::paper().sample(&mut ChaCha8Rng::seed_from_u64(0));
    group.bench_function("augment 299 (paper)", |b| {
        b.iter(|| params.apply(black_box(&fitted)))
    });
    group.finish();
}

fn whole_path(c: &mut Criterion) {
    let spec = PreprocessSpec::default();
    let limits = DecodeLimits::default();
    let mut inputs = Vec::new();
    if let Some(path) = first_shenzhen_image() {
        inputs.push((
            "shenzhen 512 8-bit PNG",
            std::fs::read(&path).expect("reading the Shenzhen image"),
        ));
    }
    inputs.push(("synthetic 3000 16-bit PNG", png_16bit(&synthetic(3000))));
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut group = c.benchmark_group("file");
    group.sample_size(20);
    for (name, bytes) in &inputs {
        let decode = || decode_bytes(black_box(bytes), Path::new(name), &limits).expect("decode");
        group.bench_function(format!("{name}: decode"), |b| b.iter(decode));
        group.bench_function(format!("{name}: decode + preprocess"), |b| {
            b.iter(|| preprocess(&decode().image, &spec, None).expect("preprocess"))
        });
        // The file path, where PNG rows stream into the resize (includes reading the file).
        let path = scratch
            .path()
            .join(format!("{}.png", name.replace(' ', "_")));
        std::fs::write(&path, bytes).expect("writing the benchmark image");
        group.bench_function(format!("{name}: preprocess_file"), |b| {
            b.iter(|| preprocess_file(black_box(&path), &spec, &limits).expect("preprocess_file"))
        });
    }
    group.finish();
}

criterion_group!(benches, components, whole_path);
criterion_main!(benches);

//! The whole path file -> tensor on real chest X-rays from ../shared/data/shenzhen, for every
//! preset: shapes, value ranges, and that resizing keeps the image's brightness.

use std::path::PathBuf;

use cxr_core::preprocess::{PRESET_NAMES, PreprocessSpec, fit, preprocess_file};
use cxr_core::{DecodeLimits, decode_file};

fn shenzhen_images(count: usize) -> Option<Vec<PathBuf>> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/shenzhen/images"
    ));
    let Ok(listing) = std::fs::read_dir(&dir) else {
        eprintln!("skipping: no Shenzhen images at {}", dir.display());
        return None;
    };
    let mut paths: Vec<PathBuf> = listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    paths.sort();
    paths.truncate(count);
    Some(paths)
}

fn mean(values: &[f32]) -> f64 {
    values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64
}

#[test]
fn every_preset_turns_real_images_into_well_formed_tensors() {
    let Some(paths) = shenzhen_images(4) else {
        return;
    };
    let limits = DecodeLimits::default();
    for name in PRESET_NAMES {
        let spec = PreprocessSpec::preset(name).unwrap();
        for path in &paths {
            let tensor = preprocess_file(path, &spec, &limits).unwrap();
            let size = spec.input_size;
            assert_eq!(tensor.shape(), [3, size.height, size.width], "{name}");
            // Every normalisation is an increasing affine map of [0, 1]: check its image.
            for c in 0..3 {
                let (low, high) = match &spec.normalisation {
                    cxr_core::preprocess::Normalisation::MeanStd { mean, std } => {
                        (-mean[c] / std[c], (1.0 - mean[c]) / std[c])
                    }
                    cxr_core::preprocess::Normalisation::Unit => (0.0, 1.0),
                    cxr_core::preprocess::Normalisation::SymmetricUnit => (-1.0, 1.0),
                    cxr_core::preprocess::Normalisation::EfficientNetLite => (-127.0 / 128.0, 1.0),
                };
                assert!(
                    tensor
                        .plane(c)
                        .iter()
                        .all(|v| (low - 1e-5..=high + 1e-5).contains(v)),
                    "{name} {}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn resizing_a_real_image_keeps_its_mean_brightness() {
    let Some(paths) = shenzhen_images(4) else {
        return;
    };
    let limits = DecodeLimits::default();
    for path in &paths {
        let decoded = decode_file(path, &limits).unwrap();
        let fitted = fit(&decoded.image, &PreprocessSpec::default()).unwrap();
        let (before, after) = (mean(&decoded.image.pixels), mean(&fitted.pixels));
        assert!(
            (before - after).abs() < 0.005,
            "{}: {before} vs {after}",
            path.display()
        );
    }
}

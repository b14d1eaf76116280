//! Shared by the Keras-family parity tests: fixtures, the large reference downloads, comparing.

use std::path::{Path, PathBuf};

use burn::store::ModuleSnapshot;
use burn::tensor::{Device, Tensor, TensorData};
use cxr_nn::import::keras::{KerasUnit, apply_keras_weights, layer_of, read_keras_or_tfjs};
use safetensors::SafeTensors;

const TOLERANCE: f32 = 1e-4;

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// A weight file the reference scripts download (`tools/reference/*/run.sh`), or `None` with
/// the reason printed: the files are tens of MB and not part of the repository.
pub fn reference_download(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tools/reference")
        .join(relative);
    if path.exists() {
        Some(path)
    } else {
        println!(
            "skipped: {} is absent (run its tools/reference/*/run.sh)",
            path.display()
        );
        None
    }
}

/// A named tensor of a fixture, as f32 values and its shape (u8 tensors widened).
pub fn tensor(file: &SafeTensors, name: &str) -> (Vec<f32>, Vec<usize>) {
    let view = file.tensor(name).unwrap();
    let values = match view.dtype() {
        safetensors::Dtype::U8 => view.data().iter().map(|&v| f32::from(v)).collect(),
        _ => view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    };
    (values, view.shape().to_vec())
}

/// Gray 8-bit pixels `[n, h, w]` -> `[n, 3, h, w]` scaled by x/127.5-1 (Keras' Inception and
/// Xception preprocessing).
pub fn symmetric_unit_input(file: &SafeTensors, device: &Device) -> Tensor<4> {
    let (pixels, shape) = tensor(file, "pixels");
    let [n, h, w] = [shape[0], shape[1], shape[2]];
    let gray = Tensor::<3>::from_data(TensorData::new(pixels, [n, h, w]), device);
    let gray = gray.div_scalar(127.5).sub_scalar(1.0).reshape([n, 1, h, w]);
    Tensor::cat(vec![gray.clone(), gray.clone(), gray], 1)
}

/// Fills a classifier head whose `Linear` fields are named like the Keras `Dense` `layers` of
/// the file at `path` (Keras or TF.js); the file's other layers are the trunk's.
pub fn load_head<M: ModuleSnapshot>(head: &mut M, path: &Path, layers: &[&str]) {
    let weights = read_keras_or_tfjs(path).unwrap();
    let units: Vec<KerasUnit> = layers
        .iter()
        .map(|layer| KerasUnit::Dense {
            path: layer.to_string(),
            layer: layer.to_string(),
        })
        .collect();
    let is_trunk = |name: &str| !layers.contains(&layer_of(name));
    apply_keras_weights(
        head,
        &weights,
        &units,
        is_trunk,
        &path.display().to_string(),
        "head",
    )
    .unwrap();
}

/// Global average pooling, `[n, c, h, w]` -> `[n, c]`.
pub fn pooled(features: Tensor<4>) -> Tensor<2> {
    let [n, c, _, _] = features.dims();
    features.mean_dim(3).mean_dim(2).reshape([n, c])
}

/// Each (fixture tensor name, our output) must agree to 1e-4; prints the differences.
pub fn assert_matches(label: &str, reference: &SafeTensors, outputs: Vec<(&str, Tensor<2>)>) {
    for (name, ours) in outputs {
        let diff = max_abs_diff(ours, &tensor(reference, name).0);
        println!("{label} {name}: max abs diff {diff:.2e}");
        assert!(diff <= TOLERANCE, "{label} {name}: max abs diff {diff}");
    }
}

fn max_abs_diff(actual: Tensor<2>, expected: &[f32]) -> f32 {
    let actual: Vec<f32> = actual.into_data().try_to_vec().unwrap();
    assert_eq!(actual.len(), expected.len());
    actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f32::max)
}

//! Preprocessed images into the tensor the networks take: the one place a batch is assembled,
//! shared by training, prediction and Grad-CAM; and indices as the tensor `select` takes.

use burn::tensor::{Device, Int, Tensor, TensorData};
use cxr_core::preprocess::ChwTensor;

/// Preprocessed images (all of one shape) as one `[n, c, h, w]` tensor.
pub fn batch_tensor(images: Vec<ChwTensor>, device: &Device) -> Tensor<4> {
    let [c, h, w] = images.first().map(ChwTensor::shape).unwrap_or([0, 0, 0]);
    let n = images.len();
    let data: Vec<f32> = images.into_iter().flat_map(|image| image.data).collect();
    Tensor::from_data(TensorData::new(data, [n, c, h, w]), device)
}

/// Indices (rows of a batch, columns of logits) as the `Int` tensor that `select` takes.
pub fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [indices.len()]), device)
}

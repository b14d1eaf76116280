//! Helpers shared by the unit tests of several modules.

use burn::tensor::Tensor;

/// The largest absolute difference between two tensors of one shape.
pub fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

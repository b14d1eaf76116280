//! Helpers shared by the unit tests of several modules.

use burn::tensor::Tensor;

/// The largest absolute difference between two tensors of one shape.
pub fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// The paper's head on `kind`'s features with 8 hidden units instead of 512: quick to build,
/// save and load in tests of how networks are stored.
pub fn small_head(kind: crate::backbones::BackboneKind) -> crate::classifier::HeadConfig {
    crate::classifier::HeadConfig {
        hidden: 8,
        ..crate::classifier::HeadConfig::paper(kind.spec().feature_channels)
    }
}

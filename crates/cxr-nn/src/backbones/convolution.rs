//! The one place that picks how a backbone convolution runs: our CPU kernels at inference
//! (dense, pointwise and depthwise, activation fused), the matrix-product form for pointwise
//! ones while training, and burn's own kernel for everything else (other backends, dilation).

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

pub use super::kernels::Activation;
use super::{kernels, pointwise};

/// `activation(conv.forward(x))`.
pub fn forward(conv: &Conv2d, x: Tensor<4>, activation: Activation) -> Tensor<4> {
    if let Some(plan) = kernels::conv2d_plan(conv, &x) {
        return kernels::conv2d(conv, x, plan, activation);
    }
    let y = if x.is_autodiff() && pointwise::is_plain(conv) {
        pointwise::as_matmul(conv, x)
    } else {
        conv.forward(x)
    };
    activate(y, activation)
}

/// `activation` applied by burn's ops, for the layers that the kernels do not run.
pub fn activate(y: Tensor<4>, activation: Activation) -> Tensor<4> {
    match activation {
        Activation::Identity => y,
        Activation::Relu => relu(y),
        // Two one-sided passes: burn's flex backend runs `clamp(0, 6)` about 40 % slower than
        // `relu` followed by `clamp_max` (measured on a 38 MB activation).
        Activation::Relu6 => relu(y).clamp_max(6.0),
    }
}

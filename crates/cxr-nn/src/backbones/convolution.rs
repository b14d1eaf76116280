//! The one place that picks how a backbone convolution runs: the matrix-product form for
//! pointwise ones while training, our CPU kernels for dense KxK ones at inference, and burn's
//! own kernel for everything else (depthwise, 1x1 at inference, other backends).

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::activation::relu as rectify;

use super::{kernels, pointwise};

/// `conv.forward(x)`, then ReLU when `relu` is set.
pub fn forward(conv: &Conv2d, x: Tensor<4>, relu: bool) -> Tensor<4> {
    if let Some(geometry) = kernels::conv2d_geometry(conv, &x) {
        return kernels::conv2d(conv, x, &geometry, relu);
    }
    let y = if x.is_autodiff() && pointwise::is_plain(conv) {
        pointwise::as_matmul(conv, x)
    } else {
        conv.forward(x)
    };
    if relu { rectify(y) } else { y }
}

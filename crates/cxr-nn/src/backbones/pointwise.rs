//! Stride-1 1x1 convolutions as a matrix product, for training (see `convolution`): burn flex's
//! convolution backward pass takes 12-15x its forward for these; a batched matmul's takes 3-6x.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// 1x1 kernel, stride 1, no dilation, no grouping, no padding.
pub(super) fn is_plain(conv: &Conv2d) -> bool {
    let unpadded = matches!(
        conv.padding,
        PaddingConfig2d::Valid | PaddingConfig2d::Same | PaddingConfig2d::Explicit(0, 0, 0, 0)
    );
    conv.kernel_size == [1, 1]
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && unpadded
}

/// `W[1, out, in] @ x[batch, in, h*w]`, plus the bias.
pub(super) fn as_matmul(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [batch, inputs, height, width] = x.dims();
    let [outputs, ..] = conv.weight.dims();
    let weight = conv.weight.val().reshape([1, outputs, inputs]);
    let y = weight
        .matmul(x.reshape([batch, inputs, height * width]))
        .reshape([batch, outputs, height, width]);
    match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, outputs, 1, 1]),
        None => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::training_device;
    use crate::test_support::max_abs_diff;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    #[test]
    fn the_matmul_form_matches_the_convolution_and_its_gradients() {
        let device = training_device();
        for padding in [PaddingConfig2d::Valid, PaddingConfig2d::Same] {
            let conv = Conv2dConfig::new([6, 5], [1, 1])
                .with_padding(padding)
                .init(&device);
            assert!(is_plain(&conv));
            let x =
                Tensor::<4>::random([3, 6, 4, 7], Distribution::Default, &device).require_grad();
            let by_conv = conv.forward(x.clone());
            let by_matmul = as_matmul(&conv, x.clone());
            assert!(max_abs_diff(by_conv.clone(), by_matmul.clone()) < 1e-5);

            let conv_grads = (by_conv.clone() * by_conv).sum().backward();
            let matmul_grads = (by_matmul.clone() * by_matmul).sum().backward();
            let weight_grad = |grads| conv.weight.val().grad(grads).expect("weight gradient");
            let input_grad = |grads| x.grad(grads).expect("input gradient");
            assert!(max_abs_diff(weight_grad(&conv_grads), weight_grad(&matmul_grads)) < 1e-4);
            assert!(max_abs_diff(input_grad(&conv_grads), input_grad(&matmul_grads)) < 1e-4);
            let bias = |grads| conv.bias.as_ref().unwrap().val().grad(grads).unwrap();
            let bias_difference = (bias(&conv_grads) - bias(&matmul_grads)).abs().max();
            assert!(bias_difference.into_scalar::<f32>() < 1e-4);
        }
    }

    #[test]
    fn only_plain_pointwise_convolutions_take_the_matmul_form() {
        let device = training_device();
        let strided = Conv2dConfig::new([4, 4], [1, 1]).with_stride([2, 2]);
        let grouped = Conv2dConfig::new([4, 4], [1, 1]).with_groups(2);
        let padded =
            Conv2dConfig::new([4, 4], [1, 1]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
        let three = Conv2dConfig::new([4, 4], [3, 3]);
        for config in [strided, grouped, padded, three] {
            assert!(!is_plain(&config.init(&device)));
        }
    }
}

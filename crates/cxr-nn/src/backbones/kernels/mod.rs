//! Hand-written CPU kernels for the inference layers where burn flex's generic ones are slow
//! (dense KxK convolutions, pooling); the rest of each network stays on burn's own ops.
//! Each kernel works on row-major f32 slices; this module moves tensors in and out of them and
//! says when a layer qualifies: an f32 tensor on the flex device that records no gradients.

mod im2col;
mod pooling;

use std::sync::atomic::{AtomicBool, Ordering};

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::tensor::{DType, Device, Tensor, TensorData};

pub use pooling::Reduce;

/// Off: every layer runs on burn's own kernels (for benchmarks that measure what these add).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns these kernels on (the default) or off for the whole process.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether `x` may take these kernels: inference (no autodiff graph to extend) on the CPU.
fn on_cpu_inference(x: &Tensor<4>) -> bool {
    ENABLED.load(Ordering::Relaxed)
        && !x.is_autodiff()
        && x.dtype() == DType::F32
        && x.device() == Device::flex()
}

/// Padding before and after along each axis, `Same` resolved as TensorFlow (and burn) do:
/// `ceil(size / stride)` outputs, the odd pixel after.
fn padding_pairs(
    padding: &PaddingConfig2d,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> ([usize; 2], [usize; 2]) {
    match *padding {
        PaddingConfig2d::Valid => ([0, 0], [0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ([top, left], [bottom, right]),
        PaddingConfig2d::Same => {
            let total = |axis: usize| {
                let needed =
                    (size[axis].div_ceil(stride[axis]).max(1) - 1) * stride[axis] + kernel[axis];
                needed.saturating_sub(size[axis])
            };
            let (height, width) = (total(0), total(1));
            (
                [height / 2, width / 2],
                [height - height / 2, width - width / 2],
            )
        }
    }
}

/// Outputs along one axis: `floor` (or `ceil`) of the padded span over the stride, plus one;
/// in ceil mode a last window that would start in the end padding is dropped (PyTorch's rule).
/// `None` when the kernel does not fit.
fn out_len(
    size: usize,
    before: usize,
    after: usize,
    kernel: usize,
    stride: usize,
    ceil: bool,
) -> Option<usize> {
    let span = (size + before + after).checked_sub(kernel)?;
    let mut out = if ceil {
        span.div_ceil(stride)
    } else {
        span / stride
    } + 1;
    if ceil && (out - 1) * stride >= size + before {
        out -= 1;
    }
    Some(out)
}

/// The outputs, along one axis, whose kernel tap at offset `tap` reads inside the input: output
/// `o` reads input `o * stride + tap - pad_before`, which must lie in `0..size`. Empty where
/// the tap only ever reads padding.
fn outputs_reading_input(
    size: usize,
    pad_before: usize,
    tap: usize,
    stride: usize,
    outputs: usize,
) -> std::ops::Range<usize> {
    let first = pad_before.saturating_sub(tap).div_ceil(stride).min(outputs);
    let end = (size + pad_before)
        .saturating_sub(tap)
        .div_ceil(stride)
        .clamp(first, outputs);
    first..end
}

fn floats(data: &TensorData) -> &[f32] {
    data.as_slice::<f32>().expect("converted to f32")
}

/// Where [`conv2d`] applies: a dense (ungrouped, undilated) KxK convolution on the CPU. Not
/// for the rest: flex's own 1x1 path is one matrix product already, and its depthwise one a
/// direct loop.
pub(super) fn conv2d_geometry(conv: &Conv2d, x: &Tensor<4>) -> Option<im2col::Geometry> {
    let [out_channels, in_channels, kh, kw] = conv.weight.dims();
    let [_, channels, height, width] = x.dims();
    let dense = conv.groups == 1 && conv.dilation == [1, 1] && channels == in_channels;
    if !dense || [kh, kw] == [1, 1] || !on_cpu_inference(x) {
        return None;
    }
    let window = Window {
        kernel: [kh, kw],
        stride: conv.stride,
        padding: &conv.padding,
        ceil_mode: false,
    };
    let (pad_begin, _, out_size) = window.place([height, width])?;
    Some(im2col::Geometry {
        in_channels,
        in_size: [height, width],
        out_channels,
        kernel: [kh, kw],
        stride: conv.stride,
        pad_begin,
        out_size,
    })
}

/// `conv` applied to `x`, then ReLU when `relu`, where [`conv2d_geometry`] gave `geometry`.
/// `x` is taken, not borrowed: a tensor nothing else holds gives up its buffer without a copy.
pub(super) fn conv2d(
    conv: &Conv2d,
    x: Tensor<4>,
    geometry: &im2col::Geometry,
    relu: bool,
) -> Tensor<4> {
    let batch = x.dims()[0];
    let device = x.device();
    let input = x.into_data();
    let weight = conv.weight.val().into_data().convert::<f32>();
    let bias = conv
        .bias
        .as_ref()
        .map(|bias| bias.val().into_data().convert::<f32>());
    let y = im2col::conv2d(
        floats(&input),
        batch,
        geometry,
        floats(&weight),
        bias.as_ref().map(floats),
        relu,
    );
    let [out_h, out_w] = geometry.out_size;
    Tensor::from_data(
        TensorData::new(y, [batch, geometry.out_channels, out_h, out_w]),
        &device,
    )
}

/// `pool.forward(x)`, by [`pooling`] where it applies.
pub fn pool2d(pool: &impl Pool, x: Tensor<4>) -> Tensor<4> {
    let planned = pool
        .window()
        .and_then(|(window, reduce)| Some((pool_geometry(&x, window)?, reduce)));
    match planned {
        Some((geometry, reduce)) => pool_on_cpu(x, &geometry, reduce),
        None => pool.burn_forward(x),
    }
}

/// burn's pooling modules, as [`pool2d`] sees them.
pub trait Pool {
    /// The window and the reduction; `None` for what the kernel does not cover.
    fn window(&self) -> Option<(Window<'_>, Reduce)>;
    fn burn_forward(&self, x: Tensor<4>) -> Tensor<4>;
}

/// The [`Window`] of either pooling module (they name these fields alike).
macro_rules! window_of {
    ($pool:expr) => {
        Window {
            kernel: $pool.kernel_size,
            stride: $pool.stride,
            padding: &$pool.padding,
            ceil_mode: $pool.ceil_mode,
        }
    };
}

impl Pool for MaxPool2d {
    fn window(&self) -> Option<(Window<'_>, Reduce)> {
        let window = window_of!(self);
        (self.dilation == [1, 1]).then_some((window, Reduce::Max))
    }

    fn burn_forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
}

impl Pool for AvgPool2d {
    fn window(&self) -> Option<(Window<'_>, Reduce)> {
        let window = window_of!(self);
        let reduce = if self.count_include_pad {
            Reduce::MeanWithPadding
        } else {
            Reduce::MeanOfInput
        };
        // Ceil-mode averages divide edge windows in ways the kernel does not reproduce.
        (!self.ceil_mode).then_some((window, reduce))
    }

    fn burn_forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward(x)
    }
}

/// A sliding window as burn's convolution and pooling modules describe it.
#[derive(Clone, Copy)]
pub struct Window<'a> {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: &'a PaddingConfig2d,
    ceil_mode: bool,
}

impl Window<'_> {
    /// Where the window goes over an input of `size`: padding before and after along each
    /// axis, and the output size; `None` when the kernel does not fit.
    fn place(&self, size: [usize; 2]) -> Option<([usize; 2], [usize; 2], [usize; 2])> {
        let (before, after) = padding_pairs(self.padding, size, self.kernel, self.stride);
        let out = |axis: usize| {
            out_len(
                size[axis],
                before[axis],
                after[axis],
                self.kernel[axis],
                self.stride[axis],
                self.ceil_mode,
            )
        };
        Some((before, after, [out(0)?, out(1)?]))
    }
}

/// Where the pooling kernel applies (on the CPU, and when the window fits the input).
fn pool_geometry(x: &Tensor<4>, window: Window) -> Option<pooling::Geometry> {
    if !on_cpu_inference(x) {
        return None;
    }
    let [_, _, height, width] = x.dims();
    let (pad_begin, pad_end, out_size) = window.place([height, width])?;
    Some(pooling::Geometry {
        in_size: [height, width],
        kernel: window.kernel,
        stride: window.stride,
        pad_begin,
        pad_end,
        out_size,
    })
}

/// Pools `x` where [`pool_geometry`] gave `geometry`; takes `x` as [`conv2d`] does.
fn pool_on_cpu(x: Tensor<4>, geometry: &pooling::Geometry, reduce: Reduce) -> Tensor<4> {
    let [batch, channels, ..] = x.dims();
    let device = x.device();
    let input = x.into_data();
    let y = pooling::pool2d(floats(&input), batch * channels, geometry, reduce);
    let [out_h, out_w] = geometry.out_size;
    Tensor::from_data(TensorData::new(y, [batch, channels, out_h, out_w]), &device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{inference_device, training_device};
    use crate::test_support::max_abs_diff;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
    use burn::tensor::Distribution;

    fn input(shape: [usize; 4]) -> Tensor<4> {
        Tensor::<4>::random(shape, Distribution::Default, &inference_device())
    }

    #[test]
    fn convolutions_match_burns() {
        let device = inference_device();
        let configs = [
            Conv2dConfig::new([4, 6], [3, 3]),
            Conv2dConfig::new([4, 6], [3, 3]).with_padding(PaddingConfig2d::Same),
            Conv2dConfig::new([4, 6], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Same),
            Conv2dConfig::new([4, 6], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
            Conv2dConfig::new([4, 6], [1, 7]).with_padding(PaddingConfig2d::Explicit(0, 3, 0, 3)),
            Conv2dConfig::new([4, 6], [5, 5]).with_bias(false),
        ];
        for config in configs {
            let conv = config.init(&device);
            for side in [10, 11] {
                let x = input([2, 4, side, side + 3]);
                for relu in [false, true] {
                    let got = conv2d(
                        &conv,
                        x.clone(),
                        &conv2d_geometry(&conv, &x).expect("dense, on the CPU"),
                        relu,
                    );
                    let expected = conv.forward(x.clone());
                    let expected = if relu {
                        burn::tensor::activation::relu(expected)
                    } else {
                        expected
                    };
                    assert_eq!(expected.dims(), got.dims(), "{config:?}");
                    assert!(max_abs_diff(expected, got) < 1e-5, "{config:?}");
                }
            }
        }
    }

    #[test]
    fn other_convolutions_are_left_to_burn() {
        let device = inference_device();
        let x = input([1, 4, 8, 8]);
        let pointwise = Conv2dConfig::new([4, 4], [1, 1]).init(&device);
        let depthwise = Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(4)
            .init(&device);
        let dilated = Conv2dConfig::new([4, 4], [3, 3])
            .with_dilation([2, 2])
            .init(&device);
        for conv in [pointwise, depthwise, dilated] {
            assert!(conv2d_geometry(&conv, &x).is_none());
        }
        let training = training_device();
        let conv = Conv2dConfig::new([4, 4], [3, 3]).init(&training);
        let tracked = Tensor::<4>::zeros([1, 4, 8, 8], &training).require_grad();
        assert!(conv2d_geometry(&conv, &tracked).is_none());
    }

    /// `pool` takes the kernel on `x`, and the kernel gives burn's result.
    fn assert_pool_matches<P: Pool>(pool: &P, x: &Tensor<4>, case: &str) {
        let (window, _) = pool.window().expect("a pool the kernel covers");
        assert!(pool_geometry(x, window).is_some(), "{case}");
        let (expected, got) = (pool.burn_forward(x.clone()), pool2d(pool, x.clone()));
        assert_eq!(expected.dims(), got.dims(), "{case}");
        assert!(max_abs_diff(expected, got) < 1e-6, "{case}");
    }

    #[test]
    fn pools_match_burns() {
        // Inception's and Xception's pools (3x3/2 valid and "same", Keras' 3x3/1 average over
        // real pixels, torchvision's counting the padding) and GoogLeNet's ceil-mode ones.
        let max_pools = [
            MaxPool2dConfig::new([3, 3]).with_strides([2, 2]),
            MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Same),
            MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_ceil_mode(true),
            MaxPool2dConfig::new([3, 3])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_ceil_mode(true),
            MaxPool2dConfig::new([2, 2])
                .with_strides([2, 2])
                .with_ceil_mode(true),
        ];
        let avg_pools = [
            AvgPool2dConfig::new([3, 3])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Same)
                .with_count_include_pad(false),
            AvgPool2dConfig::new([3, 3])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_count_include_pad(true),
        ];
        for side in [9, 10, 14] {
            let x = input([2, 3, side, side + 1]);
            for config in &max_pools {
                assert_pool_matches(&config.init(), &x, &format!("{config:?} at {side}"));
            }
            for config in &avg_pools {
                assert_pool_matches(&config.init(), &x, &format!("{config:?} at {side}"));
            }
        }
    }
}

//! Hand-written CPU kernels for the inference layers where burn flex's generic ones are slow
//! (convolutions with their activation fused, pooling); the rest stays on burn's own ops.
//! Each kernel works on row-major f32 slices; this module lends tensors' buffers to them and
//! says when a layer qualifies: an f32 tensor on the flex device that records no gradients.

mod depthwise;
mod im2col;
mod pooling;
#[cfg(test)]
mod reference;
mod winograd;

use std::sync::atomic::{AtomicBool, Ordering};

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::tensor::{DType, Device, Tensor, TensorData};
use burn_flex::{Flex, FlexTensor};

pub use pooling::Reduce;

/// Off: every layer runs on burn's own kernels (for benchmarks that measure what these add).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns these kernels on (the default) or off for the whole process.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Off: 3x3, 1x7 and 7x1 convolutions go through [`im2col`] too (for benchmarks of what
/// [`winograd`] adds).
static WINOGRAD: AtomicBool = AtomicBool::new(true);

/// Turns the Winograd kernels on (the default) or off for the whole process.
pub fn set_winograd_enabled(enabled: bool) {
    WINOGRAD.store(enabled, Ordering::Relaxed);
}

/// Whether `x` may take these kernels: inference (no autodiff graph to extend) on the CPU.
/// A module's parameters must pass too: a model on the training device records gradients for
/// them even when its input does not.
fn on_cpu_inference<const D: usize>(x: &Tensor<D>) -> bool {
    ENABLED.load(Ordering::Relaxed)
        && !x.is_autodiff()
        && x.dtype() == DType::F32
        && x.device() == Device::flex()
}

/// What a convolution applies to its output before writing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Relu,
    /// `min(max(v, 0), 6)`: MobileNetV2's and EfficientNet-Lite's.
    Relu6,
}

impl Activation {
    #[inline(always)]
    fn apply(self, values: &mut [f32]) {
        match self {
            Self::Identity => {}
            Self::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Self::Relu6 => values.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
        }
    }
}

/// The f32 values of a tensor on the flex device, read in place: a buffer that several
/// branches share (or a module's weight) is lent, not copied as `into_data` would copy it.
struct FloatView(FlexTensor);

impl FloatView {
    /// `None` unless `x` is an f32 tensor on the flex device.
    fn of<const D: usize>(x: &Tensor<D>) -> Option<Self> {
        if x.dtype() != DType::F32 {
            return None;
        }
        let tensor = x.clone().try_into_primitive::<Flex>().ok()?;
        // A strided view (a slice, a transpose) is made contiguous once.
        let tensor = match tensor.as_slice::<f32>() {
            Some(_) => tensor,
            None => tensor.to_contiguous(),
        };
        Some(Self(tensor))
    }

    fn values(&self) -> &[f32] {
        self.0.as_slice().expect("contiguous f32, checked by `of`")
    }
}

/// A kernel's result as a tensor of `shape` on the flex device.
fn tensor_from(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, shape), &Device::flex())
}

/// The output pointer, shared by tasks that write disjoint parts of it.
#[derive(Clone, Copy)]
pub(super) struct SharedOutput(pub(super) *mut f32);

impl SharedOutput {
    /// # Safety
    /// `offset` must lie inside the buffer.
    pub(super) unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}
// SAFETY: tasks write disjoint ranges (see the convolution kernels); nothing reads the buffer meanwhile.
unsafe impl Send for SharedOutput {}
unsafe impl Sync for SharedOutput {}

/// Where a convolution's kernel falls on its input: everything but the channel data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub in_channels: usize,
    pub in_size: [usize; 2],
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero rows above and columns left of the input; those below and right follow from the
    /// output size.
    pub pad_begin: [usize; 2],
    pub out_size: [usize; 2],
}

impl ConvGeometry {
    /// Multiply-accumulates per output value of a dense convolution.
    fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    fn out_pixels(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    /// Panics unless `x` (`batch` images), `weight` and `bias` have the lengths of a dense
    /// convolution of this geometry.
    fn assert_dense_operands(&self, batch: usize, x: &[f32], weight: &[f32], bias: Option<&[f32]>) {
        let [in_h, in_w] = self.in_size;
        assert_eq!(
            x.len(),
            batch * self.in_channels * in_h * in_w,
            "input length"
        );
        assert_eq!(
            weight.len(),
            self.out_channels * self.patch_len(),
            "weight length"
        );
        if let Some(bias) = bias {
            assert_eq!(bias.len(), self.out_channels, "bias length");
        }
    }

    /// A 1x1, stride-1, unpadded convolution: its input is already the matrix of columns.
    fn reads_input_as_columns(&self) -> bool {
        self.kernel == [1, 1]
            && self.stride == [1, 1]
            && self.pad_begin == [0, 0]
            && self.out_size == self.in_size
    }
}

/// Which kernel runs a convolution, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConvPlan {
    /// Ungrouped: [`im2col`].
    Dense(ConvGeometry),
    /// Ungrouped 3x3, 1x7 or 7x1, stride 1: [`winograd`].
    Winograd(ConvGeometry),
    /// One filter per channel: [`depthwise`].
    Depthwise(ConvGeometry),
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

/// How [`conv2d`] runs `conv` on `x`: `None` where it does not (dilated or partly grouped
/// convolutions, autodiff, other devices and dtypes), for burn's own kernel.
pub(super) fn conv2d_plan(conv: &Conv2d, x: &Tensor<4>) -> Option<ConvPlan> {
    let [out_channels, in_per_group, kh, kw] = conv.weight.dims();
    let [_, channels, height, width] = x.dims();
    let dense = conv.groups == 1 && channels == in_per_group;
    let depthwise = conv.groups == channels && in_per_group == 1 && out_channels == channels;
    let parameters_lendable = on_cpu_inference(&conv.weight.val())
        && (conv.bias.as_ref()).is_none_or(|bias| on_cpu_inference(&bias.val()));
    if !(dense || depthwise)
        || conv.dilation != [1, 1]
        || !on_cpu_inference(x)
        || !parameters_lendable
    {
        return None;
    }
    let window = Window {
        kernel: [kh, kw],
        stride: conv.stride,
        padding: &conv.padding,
        ceil_mode: false,
    };
    let (pad_begin, _, out_size) = window.place([height, width])?;
    let geometry = ConvGeometry {
        in_channels: channels,
        in_size: [height, width],
        out_channels,
        kernel: [kh, kw],
        stride: conv.stride,
        pad_begin,
        out_size,
    };
    Some(
        if dense && WINOGRAD.load(Ordering::Relaxed) && winograd::applies(&geometry) {
            ConvPlan::Winograd(geometry)
        } else if dense {
            ConvPlan::Dense(geometry)
        } else {
            ConvPlan::Depthwise(geometry)
        },
    )
}

/// `activation(conv(x))`, where [`conv2d_plan`] gave `plan`. Input, weight and bias are read in
/// place.
pub(super) fn conv2d(
    conv: &Conv2d,
    x: Tensor<4>,
    plan: ConvPlan,
    activation: Activation,
) -> Tensor<4> {
    let batch = x.dims()[0];
    let input = FloatView::of(&x).expect("checked by conv2d_plan");
    drop(x);
    let weight = FloatView::of(&conv.weight.val()).expect("checked by conv2d_plan");
    let bias = (conv.bias.as_ref()).map(|bias| FloatView::of(&bias.val()).expect("checked too"));
    let bias = bias.as_ref().map(FloatView::values);
    let (y, geometry) = match plan {
        ConvPlan::Dense(g) => {
            let y = im2col::conv2d(input.values(), batch, &g, weight.values(), bias, activation);
            (y, g)
        }
        ConvPlan::Winograd(g) => {
            let y = winograd::conv2d(input.values(), batch, &g, weight.values(), bias, activation);
            (y, g)
        }
        ConvPlan::Depthwise(g) => {
            let y = depthwise::depthwise2d(
                input.values(),
                batch,
                &g,
                weight.values(),
                bias,
                activation,
            );
            (y, g)
        }
    };
    let [out_h, out_w] = geometry.out_size;
    tensor_from(y, [batch, geometry.out_channels, out_h, out_w])
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

/// Pools `x` where [`pool_geometry`] gave `geometry`, reading it in place.
fn pool_on_cpu(x: Tensor<4>, geometry: &pooling::Geometry, reduce: Reduce) -> Tensor<4> {
    let [batch, channels, ..] = x.dims();
    let input = FloatView::of(&x).expect("checked by pool_geometry");
    let y = pooling::pool2d(input.values(), batch * channels, geometry, reduce);
    let [out_h, out_w] = geometry.out_size;
    tensor_from(y, [batch, channels, out_h, out_w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::convolution::activate;
    use crate::device::{inference_device, training_device};
    use crate::test_support::max_abs_diff;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
    use burn::tensor::Distribution;

    fn input(shape: [usize; 4]) -> Tensor<4> {
        Tensor::<4>::random(shape, Distribution::Default, &inference_device())
    }

    fn assert_conv_matches(conv: &Conv2d, x: &Tensor<4>, case: &str) {
        assert_conv_matches_within(conv, x, case, 1e-5);
    }

    fn assert_conv_matches_within(conv: &Conv2d, x: &Tensor<4>, case: &str, tolerance: f32) {
        let plan = conv2d_plan(conv, x).unwrap_or_else(|| panic!("{case}: not planned"));
        for activation in [Activation::Identity, Activation::Relu, Activation::Relu6] {
            let got = conv2d(conv, x.clone(), plan, activation);
            let expected = activate(conv.forward(x.clone()), activation);
            assert_eq!(expected.dims(), got.dims(), "{case}");
            assert!(
                max_abs_diff(expected, got) < tolerance,
                "{case} {activation:?}"
            );
        }
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
            Conv2dConfig::new([4, 6], [1, 1]),
            Conv2dConfig::new([4, 6], [1, 1]).with_stride([2, 2]),
            // Depthwise, as MobileNetV2, EfficientNet-Lite (TF "same") and Xception use them.
            Conv2dConfig::new([4, 4], [3, 3])
                .with_groups(4)
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
            Conv2dConfig::new([4, 4], [3, 3])
                .with_groups(4)
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Same),
            Conv2dConfig::new([4, 4], [5, 5])
                .with_groups(4)
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Same)
                .with_bias(false),
        ];
        for config in configs {
            let conv = config.init(&device);
            for side in [10, 11] {
                // Scaled so that ReLU6's upper bound is reached.
                let x = input([2, 4, side, side + 3]) * 20.0;
                assert_conv_matches(&conv, &x, &format!("{config:?} at {side}"));
            }
        }
    }

    #[test]
    fn wide_stride_1_convolutions_take_winograd_and_match_burn() {
        let device = inference_device();
        // 3x3 "same" and valid, on a small map and on one large enough for F(4x4, 3x3); 1x7 and
        // 7x1 "same" and as torchvision pads them.
        let (small, large) = ([2, 16, 11, 14], [1, 16, 66, 70]);
        let cases = [
            ([3, 3], PaddingConfig2d::Same, small),
            ([3, 3], PaddingConfig2d::Valid, small),
            ([3, 3], PaddingConfig2d::Same, large),
            ([3, 3], PaddingConfig2d::Valid, large),
            ([1, 7], PaddingConfig2d::Same, small),
            ([7, 1], PaddingConfig2d::Same, small),
            ([1, 7], PaddingConfig2d::Explicit(0, 3, 0, 3), small),
            ([7, 1], PaddingConfig2d::Explicit(3, 0, 3, 0), small),
        ];
        for (kernel, padding, shape) in cases {
            let conv = Conv2dConfig::new([16, 24], kernel)
                .with_padding(padding.clone())
                .init(&device);
            let x = input(shape) * 4.0;
            let plan = conv2d_plan(&conv, &x);
            assert!(matches!(plan, Some(ConvPlan::Winograd(_))), "{plan:?}");
            // F(4x4, 3x3) rounds more (see its module).
            let tolerance = if shape == large { 4e-5 } else { 1e-5 };
            let case = format!("{kernel:?} {padding:?} {shape:?}");
            assert_conv_matches_within(&conv, &x, &case, tolerance);
        }
    }

    #[test]
    fn a_shared_or_strided_input_is_read_as_it_is() {
        let device = inference_device();
        let conv = Conv2dConfig::new([4, 6], [1, 1]).init(&device);
        let x = input([2, 4, 6, 5]);
        // Held elsewhere (as a block's input is, by its residual branch).
        let kept = x.clone();
        assert_conv_matches(&conv, &x, "shared");
        // A view with strides: the channels of a larger tensor, and a transposed map.
        let wide = input([2, 8, 6, 5]);
        assert_conv_matches(&conv, &wide.slice([0..2, 2..6]), "channel slice");
        assert_conv_matches(&conv, &x.clone().swap_dims(2, 3), "transposed");
        assert_eq!(max_abs_diff(kept, x), 0.0);
    }

    #[test]
    fn other_convolutions_are_left_to_burn() {
        let device = inference_device();
        let x = input([1, 4, 8, 8]);
        let grouped = Conv2dConfig::new([4, 4], [3, 3])
            .with_groups(2)
            .init(&device);
        let dilated = Conv2dConfig::new([4, 4], [3, 3])
            .with_dilation([2, 2])
            .init(&device);
        for conv in [grouped, dilated] {
            assert!(conv2d_plan(&conv, &x).is_none());
        }
        let training = training_device();
        let conv = Conv2dConfig::new([4, 4], [3, 3]).init(&training);
        let tracked = Tensor::<4>::zeros([1, 4, 8, 8], &training).require_grad();
        assert!(conv2d_plan(&conv, &tracked).is_none());
        // A model on the training device, validated on an input that records nothing.
        let untracked = Tensor::<4>::zeros([1, 4, 8, 8], &device);
        assert!(conv2d_plan(&conv, &untracked).is_none());
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

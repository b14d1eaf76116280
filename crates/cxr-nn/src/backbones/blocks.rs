//! Building blocks shared by the backbones: convolution + BatchNorm (+ ReLU6 or ReLU), and the
//! inverted residual block of MobileNetV2 and EfficientNet-Lite, with BatchNorm folding.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::convolution::Activation;
use super::macs;

/// How a convolution pads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// `kernel / 2` on every side (PyTorch's usual choice).
    Symmetric,
    /// TensorFlow's "SAME": `ceil(size / stride)` outputs, the odd extra pixel of padding at the
    /// bottom and right. Differs from `Symmetric` on stride-2 convolutions of even-sized inputs.
    TfSame,
}

impl Padding {
    fn config(self, kernel: usize) -> PaddingConfig2d {
        match self {
            Self::Symmetric => {
                let p = kernel / 2;
                PaddingConfig2d::Explicit(p, p, p, p)
            }
            // burn's `Same` computes the same asymmetric split as TensorFlow, per input size.
            Self::TfSame => PaddingConfig2d::Same,
        }
    }
}

/// Keras' BatchNorm running-average momentum 0.99, in burn's sense (the weight of the new
/// batch), for the trunks that come from Keras (Xception, and those built of [`BasicConv`]):
/// the paper's recipe is Keras', and only fine-tuning moves the running averages.
/// torchvision's (0.1) would let one fine-tune epoch replace most of ImageNet's statistics.
pub const KERAS_BN_MOMENTUM: f64 = 0.01;

/// Settings shared by every convolution of one backbone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvStyle {
    pub padding: Padding,
    pub bn_epsilon: f64,
}

/// Shape of one convolution + BatchNorm unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvBnConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    /// ReLU6 after the BatchNorm (both MobileNetV2 and EfficientNet-Lite use ReLU6).
    pub relu6: bool,
}

impl ConvBnConfig {
    /// A pointwise (1x1) convolution.
    pub fn pointwise(in_channels: usize, out_channels: usize, relu6: bool) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel: 1,
            stride: 1,
            groups: 1,
            relu6,
        }
    }

    pub fn init(&self, style: ConvStyle, device: &Device) -> ConvBn {
        let conv = Conv2dConfig::new([self.in_channels, self.out_channels], [self.kernel; 2])
            .with_stride([self.stride; 2])
            .with_groups(self.groups)
            .with_padding(style.padding.config(self.kernel))
            .with_bias(false)
            .init(device);
        let bn = BatchNormConfig::new(self.out_channels)
            .with_epsilon(style.bn_epsilon)
            .init(device);
        ConvBn {
            conv,
            bn: Some(bn),
            relu6: self.relu6,
        }
    }
}

/// Convolution, BatchNorm, optional ReLU6. After [`ConvBn::fold_batchnorm`] the BatchNorm
/// lives inside the convolution's weight and bias and `bn` is `None`.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: Option<BatchNorm>,
    pub relu6: bool,
}

impl ConvBn {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let activation = if self.relu6 {
            Activation::Relu6
        } else {
            Activation::Identity
        };
        match &self.bn {
            // Folded: the activation runs inside the convolution, while the output is in cache.
            None => macs::conv2d(&self.conv, x, activation),
            Some(bn) => {
                let x = bn.forward(macs::conv2d(&self.conv, x, Activation::Identity));
                super::convolution::activate(x, activation)
            }
        }
    }

    /// Merges the BatchNorm's running statistics and affine parameters into the convolution,
    /// for inference: `w' = w * g / sqrt(var + eps)`, `b' = beta - mean * g / sqrt(var + eps)`.
    /// The result computes the same function with one pass over the activations fewer; it must
    /// not be trained further (the batch statistics are gone).
    pub fn fold_batchnorm(self) -> Self {
        let Some(bn) = self.bn else {
            return self;
        };
        let scale = scale_of(&bn);
        let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
        let mut conv = self.conv;
        let out_channels = scale.dims()[0];
        let weight = conv.weight.val() * scale.clone().reshape([out_channels, 1, 1, 1]);
        let bias = match conv.bias.take() {
            Some(bias) => bias.val() * scale + shift,
            None => shift,
        };
        conv.weight = Param::from_tensor(weight);
        conv.bias = Some(Param::from_tensor(bias));
        Self {
            conv,
            bn: None,
            relu6: self.relu6,
        }
    }
}

/// Convolution without bias + BatchNorm (eps 1e-3) + ReLU, kernel possibly rectangular: Keras'
/// `conv2d_bn` of Inception V3 and Inception-ResNet-v2, torchvision's `BasicConv2d` of
/// Inception V3 and GoogLeNet.
#[derive(Module, Debug)]
pub struct BasicConv {
    pub unit: ConvBn,
}

impl BasicConv {
    /// BatchNorm epsilon of all four originals.
    pub const BN_EPSILON: f64 = 1e-3;

    pub fn new(
        input: usize,
        output: usize,
        kernel: [usize; 2],
        stride: usize,
        padding: PaddingConfig2d,
        device: &Device,
    ) -> Self {
        let conv = Conv2dConfig::new([input, output], kernel)
            .with_stride([stride; 2])
            .with_padding(padding)
            .with_bias(false)
            .init(device);
        let bn = BatchNormConfig::new(output)
            .with_epsilon(Self::BN_EPSILON)
            .with_momentum(KERAS_BN_MOMENTUM)
            .init(device);
        Self {
            unit: ConvBn {
                conv,
                bn: Some(bn),
                relu6: false,
            },
        }
    }

    /// 1x1, stride 1.
    pub fn pointwise(input: usize, output: usize, device: &Device) -> Self {
        Self::same(input, output, [1, 1], device)
    }

    /// Stride 1, "same" padding (symmetric, as every kernel here is odd).
    pub fn same(input: usize, output: usize, kernel: [usize; 2], device: &Device) -> Self {
        Self::new(input, output, kernel, 1, PaddingConfig2d::Same, device)
    }

    /// Stride 1, no padding.
    pub fn valid(input: usize, output: usize, kernel: [usize; 2], device: &Device) -> Self {
        Self::new(input, output, kernel, 1, PaddingConfig2d::Valid, device)
    }

    /// 3x3, stride 2, no padding: the grid reductions.
    pub fn reduce(input: usize, output: usize, device: &Device) -> Self {
        Self::new(input, output, [3, 3], 2, PaddingConfig2d::Valid, device)
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let unit = &self.unit;
        match (&unit.bn, unit.relu6) {
            // Folded: the ReLU runs inside the convolution, as in `ConvBn`.
            (None, false) => macs::conv2d(&unit.conv, x, Activation::Relu),
            _ => relu(unit.forward(x)),
        }
    }

    pub fn fold_batchnorm(self) -> Self {
        Self {
            unit: self.unit.fold_batchnorm(),
        }
    }
}

/// `gamma / sqrt(var + eps)` of a BatchNorm.
fn scale_of(bn: &BatchNorm) -> Tensor<1> {
    bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt()
}

/// Shape of one inverted residual block (MobileNetV2's "bottleneck", EfficientNet's MBConv
/// without squeeze-and-excitation): 1x1 expansion, depthwise kxk, linear 1x1 projection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InvertedResidualConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub expand_ratio: usize,
    pub kernel: usize,
    pub stride: usize,
}

impl InvertedResidualConfig {
    pub fn init(&self, style: ConvStyle, device: &Device) -> InvertedResidual {
        let hidden = self.in_channels * self.expand_ratio;
        let expand = (self.expand_ratio != 1)
            .then(|| ConvBnConfig::pointwise(self.in_channels, hidden, true).init(style, device));
        let depthwise = ConvBnConfig {
            in_channels: hidden,
            out_channels: hidden,
            kernel: self.kernel,
            stride: self.stride,
            groups: hidden,
            relu6: true,
        }
        .init(style, device);
        let project = ConvBnConfig::pointwise(hidden, self.out_channels, false).init(style, device);
        InvertedResidual {
            expand,
            depthwise,
            project,
            residual: self.stride == 1 && self.in_channels == self.out_channels,
        }
    }
}

#[derive(Module, Debug)]
pub struct InvertedResidual {
    pub expand: Option<ConvBn>,
    pub depthwise: ConvBn,
    pub project: ConvBn,
    /// Adds the input to the output (stride 1 and as many channels out as in).
    pub residual: bool,
}

impl InvertedResidual {
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = match &self.expand {
            Some(expand) => expand.forward(input.clone()),
            None => input.clone(),
        };
        let x = self.project.forward(self.depthwise.forward(x));
        if self.residual { x + input } else { x }
    }

    pub fn fold_batchnorm(self) -> Self {
        Self {
            expand: self.expand.map(ConvBn::fold_batchnorm),
            depthwise: self.depthwise.fold_batchnorm(),
            project: self.project.fold_batchnorm(),
            residual: self.residual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{inference_device, training_device};
    use crate::test_support::max_abs_diff;
    use burn::tensor::Distribution;

    /// A BatchNorm with non-trivial statistics, so that folding has something to get wrong.
    fn randomise_bn(mut unit: ConvBn, device: &Device) -> ConvBn {
        let bn = unit.bn.as_mut().expect("fresh ConvBn has a BatchNorm");
        let [c] = bn.gamma.dims();
        let uniform = |lo, hi| Tensor::<1>::random([c], Distribution::Uniform(lo, hi), device);
        bn.gamma = Param::from_tensor(uniform(0.5, 1.5));
        bn.beta = Param::from_tensor(uniform(-1.0, 1.0));
        bn.running_mean = burn::module::RunningState::new(uniform(-1.0, 1.0));
        bn.running_var = burn::module::RunningState::new(uniform(0.1, 2.0));
        unit
    }

    #[test]
    fn folding_batchnorm_keeps_the_output() {
        let device = inference_device();
        let style = ConvStyle {
            padding: Padding::TfSame,
            bn_epsilon: 1e-3,
        };
        let config = ConvBnConfig {
            in_channels: 4,
            out_channels: 6,
            kernel: 3,
            stride: 2,
            groups: 2,
            relu6: true,
        };
        let unit = randomise_bn(config.init(style, &device), &device);
        let x = Tensor::<4>::random([2, 4, 10, 10], Distribution::Normal(0.0, 2.0), &device);
        let expected = unit.forward(x.clone());
        let folded = unit.fold_batchnorm();
        assert!(folded.bn.is_none());
        assert!(max_abs_diff(expected, folded.forward(x)) < 1e-5);
    }

    /// Output of a 3x3, stride-2 all-ones convolution of an 8x8 all-ones image.
    fn ones_conv_output(padding: Padding) -> Vec<f32> {
        let device = inference_device();
        let style = ConvStyle {
            padding,
            bn_epsilon: 1e-3,
        };
        let config = ConvBnConfig {
            in_channels: 1,
            out_channels: 1,
            kernel: 3,
            stride: 2,
            groups: 1,
            relu6: false,
        };
        let mut unit = config.init(style, &device);
        unit.conv.weight = Param::from_tensor(Tensor::ones([1, 1, 3, 3], &device));
        let unit = unit.fold_batchnorm();
        let y = unit.forward(Tensor::ones([1, 1, 8, 8], &device));
        assert_eq!(y.dims(), [1, 1, 4, 4]);
        y.into_data().try_to_vec::<f32>().expect("f32 output")
    }

    #[test]
    fn tf_same_padding_pads_bottom_right_on_stride_two() {
        // Each output counts the image pixels under its window (BatchNorm is near identity).
        let count = |v: f32| (v * (1.0f32 + 1e-3).sqrt()).round();
        let tf = ones_conv_output(Padding::TfSame);
        assert_eq!((count(tf[0]), count(tf[15])), (9.0, 4.0));
        let torch = ones_conv_output(Padding::Symmetric);
        assert_eq!((count(torch[0]), count(torch[15])), (4.0, 9.0));
    }

    #[test]
    fn residual_only_when_shapes_allow() {
        let device = inference_device();
        let style = ConvStyle {
            padding: Padding::Symmetric,
            bn_epsilon: 1e-5,
        };
        let block = |in_channels, out_channels, stride| {
            InvertedResidualConfig {
                in_channels,
                out_channels,
                expand_ratio: 6,
                kernel: 3,
                stride,
            }
            .init(style, &device)
        };
        assert!(block(8, 8, 1).residual);
        assert!(!block(8, 8, 2).residual);
        assert!(!block(8, 16, 1).residual);
        let unexpanded = InvertedResidualConfig {
            in_channels: 8,
            out_channels: 8,
            expand_ratio: 1,
            kernel: 3,
            stride: 1,
        }
        .init(style, &device);
        assert!(unexpanded.expand.is_none());
    }

    #[test]
    fn keras_trunks_move_their_running_mean_by_one_percent_a_training_step() {
        // A 1x1 convolution of weight 1 passes a constant 5 through: the batch mean is 5, and
        // Keras' momentum 0.99 moves the running mean from 0 to 0.05 (torchvision's to 0.5).
        let device = training_device();
        let mut unit = BasicConv::pointwise(1, 1, &device);
        unit.unit.conv.weight = Param::from_tensor(Tensor::ones([1, 1, 1, 1], &device));
        let x = Tensor::<4>::full([2, 1, 3, 3], 5.0, &device);
        let unit = unit.train();
        let _ = unit.forward(x);
        let bn = unit.unit.bn.as_ref().expect("a BatchNorm");
        let mean: f32 = bn.running_mean.value_sync().into_scalar();
        assert!((mean - 0.05).abs() < 1e-6, "running mean {mean}");
    }
}

//! Xception (Chollet 2017) as Keras builds it: 14 blocks of depthwise-separable convolutions with
//! residual connections, input x/127.5-1, BatchNorm eps 1e-3, TensorFlow "same" padding.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::blocks::{ConvBn, KERAS_BN_MOMENTUM};
use super::convolution::Activation;
use crate::import::keras::{KerasError, KerasUnit, KerasWeights, load_trunk, numbered_layers};

const BN_EPSILON: f64 = 1e-3;

/// Channels of the trunk's output (block14_sepconv2).
pub const FEATURE_CHANNELS: usize = 2048;

/// The stages in order, named like Keras' layer prefixes.
pub const STAGES: [&str; 14] = [
    "block1", "block2", "block3", "block4", "block5", "block6", "block7", "block8", "block9",
    "block10", "block11", "block12", "block13", "block14",
];

/// One Keras-style residual block (blocks 2-13): output channels of each separable convolution,
/// and whether it downsamples (stride-2 1x1 residual convolution + 3x3 max pool).
struct BlockLayout {
    sepconv_channels: &'static [usize],
    downsample: bool,
}

const BLOCKS: [BlockLayout; 12] = {
    const MIDDLE: BlockLayout = BlockLayout {
        sepconv_channels: &[728, 728, 728],
        downsample: false,
    };
    [
        BlockLayout {
            sepconv_channels: &[128, 128],
            downsample: true,
        },
        BlockLayout {
            sepconv_channels: &[256, 256],
            downsample: true,
        },
        BlockLayout {
            sepconv_channels: &[728, 728],
            downsample: true,
        },
        MIDDLE,
        MIDDLE,
        MIDDLE,
        MIDDLE,
        MIDDLE,
        MIDDLE,
        MIDDLE,
        MIDDLE,
        BlockLayout {
            sepconv_channels: &[728, 1024],
            downsample: true,
        },
    ]
};

fn conv_bn(
    input: usize,
    output: usize,
    kernel: usize,
    stride: usize,
    padding: PaddingConfig2d,
    device: &Device,
) -> ConvBn {
    let conv = Conv2dConfig::new([input, output], [kernel; 2])
        .with_stride([stride; 2])
        .with_padding(padding)
        .with_bias(false)
        .init(device);
    ConvBn {
        conv,
        bn: Some(
            BatchNormConfig::new(output)
                .with_epsilon(BN_EPSILON)
                .with_momentum(KERAS_BN_MOMENTUM)
                .init(device),
        ),
        relu6: false,
    }
}

/// Depthwise 3x3 then pointwise 1x1 (Keras' `SeparableConv2D`, no bias), then BatchNorm.
#[derive(Module, Debug)]
pub struct SeparableConvBn {
    pub depthwise: Conv2d,
    pub pointwise: ConvBn,
}

impl SeparableConvBn {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        let depthwise = Conv2dConfig::new([input, input], [3, 3])
            .with_groups(input)
            .with_padding(PaddingConfig2d::Same)
            .with_bias(false)
            .init(device);
        Self {
            depthwise,
            pointwise: conv_bn(input, output, 1, 1, PaddingConfig2d::Valid, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pointwise.forward(super::macs::conv2d(
            &self.depthwise,
            x,
            Activation::Identity,
        ))
    }

    fn fold_batchnorm(self) -> Self {
        Self {
            depthwise: self.depthwise,
            pointwise: self.pointwise.fold_batchnorm(),
        }
    }
}

/// Block 1: two plain 3x3 convolutions, 299 -> 147 px.
#[derive(Module, Debug)]
pub struct EntryBlock {
    pub conv1: ConvBn,
    pub conv2: ConvBn,
}

/// Blocks 2-13: ReLU + separable convolutions, added to a (projected) shortcut.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    /// Stride-2 1x1 convolution + BatchNorm on the shortcut of downsampling blocks.
    pub shortcut: Option<ConvBn>,
    pub sepconvs: Vec<SeparableConvBn>,
    pub pool: Option<MaxPool2d>,
    /// Block 2 feeds its first separable convolution without a ReLU (block 1 ended with one).
    pub relu_first: bool,
}

impl ResidualBlock {
    fn new(input: usize, layout: &BlockLayout, relu_first: bool, device: &Device) -> Self {
        let output = *layout.sepconv_channels.last().unwrap_or(&input);
        let mut channels = input;
        let sepconvs = layout
            .sepconv_channels
            .iter()
            .map(|&out| {
                let sepconv = SeparableConvBn::new(channels, out, device);
                channels = out;
                sepconv
            })
            .collect();
        let pool = MaxPool2dConfig::new([3, 3])
            .with_strides([2, 2])
            .with_padding(PaddingConfig2d::Same)
            .init();
        Self {
            shortcut: layout
                .downsample
                .then(|| conv_bn(input, output, 1, 2, PaddingConfig2d::Same, device)),
            sepconvs,
            pool: layout.downsample.then_some(pool),
            relu_first,
        }
    }

    fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input.clone();
        for (i, sepconv) in self.sepconvs.iter().enumerate() {
            if i > 0 || self.relu_first {
                x = relu(x);
            }
            x = sepconv.forward(x);
        }
        if let Some(pool) = &self.pool {
            x = super::kernels::pool2d(pool, x);
        }
        let shortcut = match &self.shortcut {
            Some(conv) => conv.forward(input),
            None => input,
        };
        x + shortcut
    }

    fn fold_batchnorm(self) -> Self {
        Self {
            shortcut: self.shortcut.map(ConvBn::fold_batchnorm),
            sepconvs: self
                .sepconvs
                .into_iter()
                .map(SeparableConvBn::fold_batchnorm)
                .collect(),
            pool: self.pool,
            relu_first: self.relu_first,
        }
    }
}

/// Block 14: two separable convolutions with ReLU after each, no shortcut.
#[derive(Module, Debug)]
pub struct ExitBlock {
    pub sepconv1: SeparableConvBn,
    pub sepconv2: SeparableConvBn,
}

/// The Xception feature trunk: 3 x 299 x 299 in, 2048 x 10 x 10 out.
#[derive(Module, Debug)]
pub struct Xception {
    pub block1: EntryBlock,
    /// Blocks 2-13.
    pub blocks: Vec<ResidualBlock>,
    pub block14: ExitBlock,
}

impl Xception {
    pub fn new(device: &Device) -> Self {
        let mut channels = 64;
        let blocks = BLOCKS
            .iter()
            .enumerate()
            .map(|(i, layout)| {
                let block = ResidualBlock::new(channels, layout, i > 0, device);
                channels = *layout.sepconv_channels.last().unwrap_or(&channels);
                block
            })
            .collect();
        Self {
            block1: EntryBlock {
                conv1: conv_bn(3, 32, 3, 2, PaddingConfig2d::Valid, device),
                conv2: conv_bn(32, 64, 3, 1, PaddingConfig2d::Valid, device),
            },
            blocks,
            block14: ExitBlock {
                sepconv1: SeparableConvBn::new(channels, 1536, device),
                sepconv2: SeparableConvBn::new(1536, FEATURE_CHANNELS, device),
            },
        }
    }

    /// Feature map after block 14, `[batch, 2048, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_stages(x, 0..self.num_stages())
    }

    /// Stages are Keras' blocks: block1 (entry convolutions), block2-13, block14 (exit).
    pub fn num_stages(&self) -> usize {
        self.blocks.len() + 2
    }

    /// Runs the stages `range` (indices into [`stage_names`]) on `x`.
    pub fn forward_stages(&self, x: Tensor<4>, range: std::ops::Range<usize>) -> Tensor<4> {
        let last = self.num_stages() - 1;
        range.fold(x, |x, index| match index {
            0 => relu(
                self.block1
                    .conv2
                    .forward(relu(self.block1.conv1.forward(x))),
            ),
            i if i == last => {
                let x = relu(self.block14.sepconv1.forward(x));
                relu(self.block14.sepconv2.forward(x))
            }
            i => self.blocks[i - 1].forward(x),
        })
    }

    /// Merges every BatchNorm into its convolution, for inference.
    pub fn fold_batchnorm(self) -> Self {
        Self {
            block1: EntryBlock {
                conv1: self.block1.conv1.fold_batchnorm(),
                conv2: self.block1.conv2.fold_batchnorm(),
            },
            blocks: self
                .blocks
                .into_iter()
                .map(ResidualBlock::fold_batchnorm)
                .collect(),
            block14: ExitBlock {
                sepconv1: self.block14.sepconv1.fold_batchnorm(),
                sepconv2: self.block14.sepconv2.fold_batchnorm(),
            },
        }
    }
}

/// The stage names, as Keras names its blocks: `block1` ... `block14`.
pub fn stage_names() -> Vec<String> {
    (1..=BLOCKS.len() + 2)
        .map(|n| format!("block{n}"))
        .collect()
}

/// Keras names: block layers are named (`block4_sepconv2`, `block4_sepconv2_bn`); the four
/// shortcut convolutions are not, so the n-th `conv2d_*` / `batch_normalization_*` in creation
/// order is the n-th downsampling block's. `None` when the file does not hold exactly four.
pub fn keras_units(weights: &KerasWeights) -> Option<Vec<KerasUnit>> {
    let shortcut_convs = numbered_layers(weights, "conv2d");
    let shortcut_bns = numbered_layers(weights, "batch_normalization");
    let downsampling = BLOCKS.iter().filter(|block| block.downsample).count();
    if shortcut_convs.len() != downsampling || shortcut_bns.len() != downsampling {
        return None;
    }
    let mut shortcuts = shortcut_convs.into_iter().zip(shortcut_bns);
    let separable = |path: String, layer: String| KerasUnit::SeparableConvBn {
        path,
        bn: format!("{layer}_bn"),
        sepconv: layer,
    };
    let mut units = vec![
        KerasUnit::conv_bn("block1.conv1", "block1_conv1", "block1_conv1_bn"),
        KerasUnit::conv_bn("block1.conv2", "block1_conv2", "block1_conv2_bn"),
    ];
    for (i, block) in BLOCKS.iter().enumerate() {
        let number = i + 2;
        if block.downsample {
            let (conv, bn) = shortcuts.next()?;
            units.push(KerasUnit::conv_bn(format!("blocks.{i}.shortcut"), conv, bn));
        }
        units.extend((0..block.sepconv_channels.len()).map(|j| {
            separable(
                format!("blocks.{i}.sepconvs.{j}"),
                format!("block{number}_sepconv{}", j + 1),
            )
        }));
    }
    units.push(separable(
        "block14.sepconv1".into(),
        "block14_sepconv1".into(),
    ));
    units.push(separable(
        "block14.sepconv2".into(),
        "block14_sepconv2".into(),
    ));
    Some(units)
}

/// Xception's named `block*` layers and its four unnamed shortcut layers.
fn is_trunk_layer(layer: &str) -> bool {
    layer.starts_with("block")
        || layer.starts_with("conv2d")
        || layer.starts_with("batch_normalization")
}

/// The Keras or TF.js Xception trunk in `path` (`.h5`, `.keras`, `model.json`, nsfwjs' `.js`),
/// and the layers outside the trunk (a classifier head) that it left out.
pub fn load_keras(path: &Path, device: &Device) -> Result<(Xception, Vec<String>), KerasError> {
    let mut net = Xception::new(device);
    let units = |weights: &KerasWeights| {
        keras_units(weights).ok_or_else(|| "  the file does not hold the four shortcut unnamed convolutions and BatchNorms of Xception".to_string())
    };
    let left_out = load_trunk(&mut net, path, "xception", units, is_trunk_layer)?;
    Ok((net, left_out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;

    #[test]
    fn tf_same_pooling_gives_keras_feature_sizes() {
        let device = inference_device();
        let net = Xception::new(&device);
        // 299 -> 10 and 150 -> 5, as Keras' Xception (the pneumonia model reports 5 x 5 x 2048).
        for (side, out) in [(299, 10), (150, 5)] {
            let x = Tensor::<4>::zeros([1, 3, side, side], &device);
            assert_eq!(net.forward(x).dims(), [1, FEATURE_CHANNELS, out, out]);
        }
    }
}

//! The lung segmentation network: a pretrained inverted-residual encoder (MobileNetV2 or
//! EfficientNet-Lite) cut at 1/16 of the input, and a light U-Net decoder with skip links.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use super::SegmentationError;
use crate::backbones::blocks::{ConvBn, ConvBnConfig, ConvStyle, InvertedResidual, Padding};
use crate::backbones::{Backbone, BackboneKind, InvertedResidualNet};

/// The encoder stops at this fraction of the input size: lungs are large, smooth shapes, and
/// the deeper, wider stages would more than double the model file for little gain.
const DEEPEST_STRIDE: usize = 16;

/// Decoder width at each upsampling step, deepest first (1/8, 1/4, 1/2 of the input).
const DECODER_WIDTHS: [usize; 3] = [64, 32, 16];

/// The decoder's convolutions: symmetric padding, PyTorch's BatchNorm epsilon.
const DECODER_STYLE: ConvStyle = ConvStyle {
    padding: Padding::Symmetric,
    bn_epsilon: 1e-5,
};

/// The backbone's stem and inverted residual blocks, grouped by resolution so that each
/// group's output is one skip link of the decoder.
#[derive(Module, Debug)]
pub struct Encoder {
    pub stem: ConvBn,
    /// `levels[k]` runs at 1/2^(k+1) of the input.
    pub levels: Vec<Vec<InvertedResidual>>,
}

/// One decoder step: upsample x2, concatenate the encoder's skip, fuse with a 3x3 convolution.
#[derive(Module, Debug)]
pub struct UpStep {
    pub fuse: ConvBn,
}

#[derive(Module, Debug)]
pub struct LungNet {
    pub encoder: Encoder,
    pub decoder: Vec<UpStep>,
    /// 1x1 convolution to one logit per pixel.
    pub classifier: Conv2d,
}

impl Encoder {
    /// Regroups a backbone's blocks by resolution, keeping those down to 1/16 of the input;
    /// the deeper blocks, the head and the ImageNet classifier are dropped.
    pub fn from_backbone(net: InvertedResidualNet) -> Self {
        let mut levels: Vec<Vec<InvertedResidual>> = vec![Vec::new()];
        let mut stride = 2; // after the stem
        for block in net.stages.into_iter().flatten() {
            let block_stride = block.depthwise.conv.stride[0];
            if stride * block_stride > DEEPEST_STRIDE {
                break;
            }
            if block_stride > 1 {
                stride *= block_stride;
                levels.push(Vec::new());
            }
            if let Some(level) = levels.last_mut() {
                level.push(block);
            }
        }
        Self {
            stem: net.stem,
            levels,
        }
    }

    /// Output channels of each level, shallowest first.
    pub fn level_channels(&self) -> Vec<usize> {
        let mut channels = self.stem.conv.weight.dims()[0];
        self.levels
            .iter()
            .map(|level| {
                if let Some(last) = level.last() {
                    channels = last.project.conv.weight.dims()[0];
                }
                channels
            })
            .collect()
    }

    /// Every level's output, shallowest first; the last one is the deepest feature map.
    pub fn forward(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let mut x = self.stem.forward(x);
        let mut outputs = Vec::with_capacity(self.levels.len());
        for level in &self.levels {
            x = level.iter().fold(x, |x, block| block.forward(x));
            outputs.push(x.clone());
        }
        outputs
    }

    /// Freezes the stem and the first `levels` levels: generic edge detectors that need no
    /// retraining, and whose backward pass at high resolution is the costliest part.
    pub fn freeze_early(mut self, levels: usize) -> Self {
        self.stem = self.stem.freeze();
        self.levels = self
            .levels
            .into_iter()
            .enumerate()
            .map(|(k, level)| {
                if k < levels {
                    level.into_iter().map(Module::freeze).collect()
                } else {
                    level
                }
            })
            .collect();
        self
    }

    pub fn fold_batchnorm(self) -> Self {
        Self {
            stem: self.stem.fold_batchnorm(),
            levels: self
                .levels
                .into_iter()
                .map(|level| {
                    level
                        .into_iter()
                        .map(InvertedResidual::fold_batchnorm)
                        .collect()
                })
                .collect(),
        }
    }
}

impl LungNet {
    /// A network with `kind`'s encoder (weights as given: pretrained or fresh) and a fresh
    /// decoder.
    pub fn new(backbone: InvertedResidualNet, device: &Device) -> Self {
        let encoder = Encoder::from_backbone(backbone);
        let channels = encoder.level_channels();
        let mut deep = channels.last().copied().unwrap_or(0);
        let skips = channels.iter().rev().skip(1);
        let decoder: Vec<UpStep> = skips
            .zip(DECODER_WIDTHS)
            .map(|(&skip, width)| {
                let fuse = ConvBnConfig {
                    in_channels: deep + skip,
                    out_channels: width,
                    kernel: 3,
                    stride: 1,
                    groups: 1,
                    relu6: true,
                }
                .init(DECODER_STYLE, device);
                deep = width;
                UpStep { fuse }
            })
            .collect();
        let classifier = Conv2dConfig::new([deep, 1], [1, 1]).init(device);
        Self {
            encoder,
            decoder,
            classifier,
        }
    }

    /// A network with freshly initialised weights throughout (tests, training from scratch).
    pub fn init(kind: BackboneKind, device: &Device) -> Result<Self, SegmentationError> {
        let layout = kind.layout().ok_or_else(|| not_an_encoder(kind))?;
        Ok(Self::new(layout.init(device), device))
    }

    /// A network whose encoder starts from `backbone` (e.g. ImageNet weights), a `kind`.
    pub fn from_backbone(
        kind: BackboneKind,
        backbone: Backbone,
        device: &Device,
    ) -> Result<Self, SegmentationError> {
        match backbone {
            Backbone::InvertedResidual(net) => Ok(Self::new(net, device)),
            _ => Err(not_an_encoder(kind)),
        }
    }

    /// Image batch `[n, 3, h, w]` (h, w multiples of 16) to lung logits `[n, 1, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, height, width] = x.dims();
        let mut features = self.encoder.forward(x);
        let mut x = features.pop().expect("an encoder has at least one level");
        for (step, skip) in self.decoder.iter().zip(features.into_iter().rev()) {
            let [_, _, h, w] = skip.dims();
            let up = resize(x, [h, w]);
            x = step.fuse.forward(Tensor::cat(vec![up, skip], 1));
        }
        resize(self.classifier.forward(x), [height, width])
    }

    /// The same network with every BatchNorm merged into its convolution, for inference.
    pub fn fold_batchnorm(self) -> Self {
        Self {
            encoder: self.encoder.fold_batchnorm(),
            decoder: self
                .decoder
                .into_iter()
                .map(|step| UpStep {
                    fuse: step.fuse.fold_batchnorm(),
                })
                .collect(),
            classifier: self.classifier,
        }
    }
}

/// Bilinear resize of a feature map to `[height, width]`.
pub fn resize(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let options = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_output_size(size)
        .with_align_corners(false);
    interpolate(x, options)
}

fn not_an_encoder(kind: BackboneKind) -> SegmentationError {
    SegmentationError::Config(format!(
        "{} cannot be the lung encoder; use mobilenet-v2 or efficientnet-lite0/1/2",
        kind.name()
    ))
}

//! The network shape shared by MobileNetV2 and EfficientNet-Lite: a strided stem, stages of
//! inverted residual blocks, a 1x1 head convolution, global average pooling and a linear layer.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::blocks::{ConvBn, ConvBnConfig, ConvStyle, InvertedResidual, InvertedResidualConfig};

/// One stage: `repeats` blocks with the same output width; the first one has the stride.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageLayout {
    pub expand_ratio: usize,
    pub out_channels: usize,
    pub repeats: usize,
    pub stride: usize,
    pub kernel: usize,
}

/// Everything that tells one such network from another.
#[derive(Debug, Clone, PartialEq)]
pub struct NetLayout {
    pub style: ConvStyle,
    /// Output channels of the 3x3, stride-2 stem.
    pub stem_channels: usize,
    pub stages: Vec<StageLayout>,
    /// Output channels of the 1x1 head convolution: the feature channels.
    pub head_channels: usize,
    pub num_classes: usize,
}

impl NetLayout {
    pub fn init(&self, device: &Device) -> InvertedResidualNet {
        let stem = ConvBnConfig {
            in_channels: 3,
            out_channels: self.stem_channels,
            kernel: 3,
            stride: 2,
            groups: 1,
            relu6: true,
        }
        .init(self.style, device);
        let mut in_channels = self.stem_channels;
        let stages = self
            .stages
            .iter()
            .map(|stage| {
                (0..stage.repeats)
                    .map(|i| {
                        let block = InvertedResidualConfig {
                            in_channels,
                            out_channels: stage.out_channels,
                            expand_ratio: stage.expand_ratio,
                            kernel: stage.kernel,
                            stride: if i == 0 { stage.stride } else { 1 },
                        };
                        in_channels = stage.out_channels;
                        block.init(self.style, device)
                    })
                    .collect()
            })
            .collect();
        let head =
            ConvBnConfig::pointwise(in_channels, self.head_channels, true).init(self.style, device);
        let classifier = LinearConfig::new(self.head_channels, self.num_classes).init(device);
        InvertedResidualNet {
            stem,
            stages,
            head,
            classifier: Some(classifier),
        }
    }

    /// Stage names in forward order: "stem", "block1".., "head" (EfficientNet's naming).
    pub fn stage_names(&self) -> Vec<String> {
        let blocks = (1..=self.stages.len()).map(|i| format!("block{i}"));
        std::iter::once("stem".to_string())
            .chain(blocks)
            .chain(std::iter::once("head".to_string()))
            .collect()
    }
}

#[derive(Module, Debug)]
pub struct InvertedResidualNet {
    pub stem: ConvBn,
    pub stages: Vec<Vec<InvertedResidual>>,
    pub head: ConvBn,
    /// The ImageNet classifier (dropout before it is a no-op at inference); `None` in a TB
    /// classifier, which has its own head and need not carry 1.28 M unused weights.
    pub classifier: Option<Linear>,
}

impl InvertedResidualNet {
    /// Number of named stages: the stem, each block stage, the head.
    pub fn num_stages(&self) -> usize {
        self.stages.len() + 2
    }

    /// Runs stages `range` (indices into [`NetLayout::stage_names`]) on `x`; running them all
    /// maps an image batch `[n, 3, h, w]` to the feature map `[n, channels, h/32, w/32]`.
    pub fn forward_stages(&self, x: Tensor<4>, range: std::ops::Range<usize>) -> Tensor<4> {
        let last = self.num_stages() - 1;
        range.fold(x, |x, index| match index {
            0 => self.stem.forward(x),
            i if i == last => self.head.forward(x),
            i => self.stages[i - 1]
                .iter()
                .fold(x, |x, block| block.forward(x)),
        })
    }

    /// The feature trunk: image batch to the last feature map, before pooling.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_stages(x, 0..self.num_stages())
    }

    /// Global average pooling of a feature map: `[n, c, h, w]` to `[n, c]`.
    pub fn pool(features: Tensor<4>) -> Tensor<2> {
        features.mean_dims(&[2, 3]).flatten(1, 3)
    }

    /// ImageNet logits `[n, classes]`, for checking the weights end to end; `None` once the
    /// classifier is dropped.
    pub fn classify(&self, x: Tensor<4>) -> Option<Tensor<2>> {
        let classifier = self.classifier.as_ref()?;
        Some(classifier.forward(Self::pool(self.features(x))))
    }

    /// The trunk alone, without the ImageNet classifier.
    pub fn without_classifier(self) -> Self {
        Self {
            classifier: None,
            ..self
        }
    }

    /// The same network with every BatchNorm merged into its convolution, for inference.
    pub fn fold_batchnorm(self) -> Self {
        Self {
            stem: self.stem.fold_batchnorm(),
            stages: self
                .stages
                .into_iter()
                .map(|stage| {
                    stage
                        .into_iter()
                        .map(InvertedResidual::fold_batchnorm)
                        .collect()
                })
                .collect(),
            head: self.head.fold_batchnorm(),
            classifier: self.classifier,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::BackboneKind;
    use crate::device::inference_device;
    use burn::tensor::Distribution;

    #[test]
    fn stages_run_in_pieces_give_the_whole_trunk() {
        let device = inference_device();
        let net = BackboneKind::MobileNetV2.init(&device);
        let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let split = 4;
        let early = net.forward_stages(x.clone(), 0..split);
        assert_eq!(early.dims()[1], 32, "block3 of MobileNetV2 has 32 channels");
        let late = net.forward_stages(early, split..net.num_stages());
        let diff = (late - net.features(x)).abs().max().into_scalar::<f32>();
        assert_eq!(diff, 0.0);
    }
}

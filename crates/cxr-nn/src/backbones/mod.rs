//! The pretrained backbones: which exist, what each expects and offers (as data), and how
//! to build one. Each architecture lives in its own module.

pub mod blocks;
pub mod efficientnet_lite;
pub mod inception_v3;
pub mod inverted_residual_net;
pub mod mobilenet_v2;
pub mod xception;

use std::ops::Range;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

pub use inception_v3::InceptionV3;
pub use inverted_residual_net::{InvertedResidualNet, NetLayout};
pub use xception::Xception;

/// A backbone architecture this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackboneKind {
    MobileNetV2,
    EfficientNetLite0,
    EfficientNetLite1,
    EfficientNetLite2,
    /// Keras' Inception V3 (its layer order and its average pooling over real pixels only).
    InceptionV3,
    Xception,
}

/// What the rest of cxr needs to know about a backbone, without building it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackboneSpec {
    pub name: &'static str,
    /// Native square input side, in pixels.
    pub input_size: usize,
    /// The cxr-core preprocessing preset (`PreprocessSpec::preset`) that feeds this backbone:
    /// its size and normalisation (torchvision's ImageNet mean/std, EfficientNet-Lite's
    /// (pixels - 127) / 128, or Keras' pixels / 127.5 - 1).
    pub preprocess_preset: &'static str,
    /// Channels of the feature map that `features()` returns.
    pub feature_channels: usize,
    /// Stage names in forward order, for freezing and for picking the Grad-CAM layer.
    pub stages: Vec<String>,
    /// Classes of the ImageNet classifier that ships with the pretrained weights; `None` for
    /// trunks published without one (Keras' "notop" files).
    pub imagenet_classes: Option<usize>,
}

impl BackboneSpec {
    /// Index of the stage called `name`, for `forward_stages` ranges.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|stage| stage == name)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown backbone {0:?}; known backbones: {known}", known = BackboneKind::names().join(", "))]
pub struct UnknownBackbone(pub String);

impl BackboneKind {
    pub const ALL: [Self; 6] = [
        Self::MobileNetV2,
        Self::EfficientNetLite0,
        Self::EfficientNetLite1,
        Self::EfficientNetLite2,
        Self::InceptionV3,
        Self::Xception,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "mobilenet-v2",
            Self::EfficientNetLite0 => "efficientnet-lite0",
            Self::EfficientNetLite1 => "efficientnet-lite1",
            Self::EfficientNetLite2 => "efficientnet-lite2",
            Self::InceptionV3 => "inception-v3",
            Self::Xception => "xception",
        }
    }

    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|kind| kind.name()).collect()
    }

    pub fn from_name(name: &str) -> Result<Self, UnknownBackbone> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnknownBackbone(name.to_string()))
    }

    /// The block layout of the inverted-residual networks; `None` for the others.
    pub fn layout(self) -> Option<NetLayout> {
        match self {
            Self::MobileNetV2 => Some(mobilenet_v2::layout()),
            Self::EfficientNetLite0 => Some(efficientnet_lite::layout(efficientnet_lite::LITE0)),
            Self::EfficientNetLite1 => Some(efficientnet_lite::layout(efficientnet_lite::LITE1)),
            Self::EfficientNetLite2 => Some(efficientnet_lite::layout(efficientnet_lite::LITE2)),
            Self::InceptionV3 | Self::Xception => None,
        }
    }

    pub fn spec(self) -> BackboneSpec {
        let trunk_only = |preset, stages: Vec<String>| BackboneSpec {
            name: self.name(),
            input_size: 299,
            preprocess_preset: preset,
            feature_channels: 2048,
            stages,
            imagenet_classes: None,
        };
        match (self, self.layout()) {
            (Self::InceptionV3, _) => trunk_only(
                "keras-inception",
                inception_v3::STAGES.iter().map(|s| s.to_string()).collect(),
            ),
            (Self::Xception, _) => trunk_only("keras-xception", xception::stage_names()),
            (_, Some(layout)) => BackboneSpec {
                name: self.name(),
                input_size: match self {
                    Self::EfficientNetLite1 => efficientnet_lite::LITE1.resolution,
                    Self::EfficientNetLite2 => efficientnet_lite::LITE2.resolution,
                    _ => 224,
                },
                preprocess_preset: match self {
                    Self::MobileNetV2 => "torchvision-mobilenet",
                    _ => self.name(),
                },
                feature_channels: layout.head_channels,
                stages: layout.stage_names(),
                imagenet_classes: Some(layout.num_classes),
            },
            (_, None) => unreachable!("every inverted-residual kind has a layout"),
        }
    }

    /// A freshly initialised network (random weights) of this architecture.
    pub fn init(self, device: &Device) -> Backbone {
        match (self, self.layout()) {
            (Self::InceptionV3, _) => {
                Backbone::InceptionV3(InceptionV3::new(inception_v3::PoolPadding::Keras, device))
            }
            (Self::Xception, _) => Backbone::Xception(Xception::new(device)),
            (_, Some(layout)) => Backbone::InvertedResidual(layout.init(device)),
            (_, None) => unreachable!("every inverted-residual kind has a layout"),
        }
    }

    /// How the parameter names of the original PyTorch release map onto ours, as
    /// (original prefix, our prefix) pairs; `None` when the published weights are not PyTorch's.
    pub fn torch_prefixes(self) -> Option<Vec<(String, String)>> {
        match self {
            Self::MobileNetV2 => Some(mobilenet_v2::torch_prefixes()),
            Self::EfficientNetLite0 => {
                Some(efficientnet_lite::torch_prefixes(efficientnet_lite::LITE0))
            }
            Self::EfficientNetLite1 => {
                Some(efficientnet_lite::torch_prefixes(efficientnet_lite::LITE1))
            }
            Self::EfficientNetLite2 => {
                Some(efficientnet_lite::torch_prefixes(efficientnet_lite::LITE2))
            }
            // torchvision's Inception V3 averages over padding (PoolPadding::Torchvision), so its
            // weights would not be Keras' network; Xception has no PyTorch release.
            Self::InceptionV3 | Self::Xception => None,
        }
    }
}

/// Any backbone, as one module: what classifiers, training and Grad-CAM hold.
#[derive(Module, Debug)]
pub enum Backbone {
    InvertedResidual(InvertedResidualNet),
    InceptionV3(InceptionV3),
    Xception(Xception),
}

impl Backbone {
    /// Number of named stages (`BackboneSpec::stages`).
    pub fn num_stages(&self) -> usize {
        match self {
            Self::InvertedResidual(net) => net.num_stages(),
            Self::InceptionV3(_) => inception_v3::STAGES.len(),
            Self::Xception(net) => net.num_stages(),
        }
    }

    /// Runs stages `range` on `x`; running them all maps an image batch `[n, 3, h, w]` to the
    /// feature map. Splitting the range lets training run the frozen stages without gradients.
    pub fn forward_stages(&self, x: Tensor<4>, range: Range<usize>) -> Tensor<4> {
        match self {
            Self::InvertedResidual(net) => net.forward_stages(x, range),
            Self::InceptionV3(net) => net.forward_stages(x, range),
            Self::Xception(net) => net.forward_stages(x, range),
        }
    }

    /// The feature trunk: image batch to the last feature map, before pooling.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_stages(x, 0..self.num_stages())
    }

    /// ImageNet logits, for checking pretrained weights end to end; `None` for trunks that
    /// were published without their classifier.
    pub fn imagenet_logits(&self, x: Tensor<4>) -> Option<Tensor<2>> {
        match self {
            Self::InvertedResidual(net) => Some(net.classify(x)),
            Self::InceptionV3(_) | Self::Xception(_) => None,
        }
    }

    /// The same network with every BatchNorm merged into its convolution, for inference.
    pub fn fold_batchnorm(self) -> Self {
        match self {
            Self::InvertedResidual(net) => Self::InvertedResidual(net.fold_batchnorm()),
            Self::InceptionV3(net) => Self::InceptionV3(net.fold_batchnorm()),
            Self::Xception(net) => Self::Xception(net.fold_batchnorm()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;
    use burn::module::Module;
    use burn::tensor::Tensor;

    #[test]
    fn names_round_trip() {
        for kind in BackboneKind::ALL {
            assert_eq!(BackboneKind::from_name(kind.name()).ok(), Some(kind));
        }
        let err = BackboneKind::from_name("resnet50").unwrap_err().to_string();
        assert!(err.contains("mobilenet-v2"), "{err}");
    }

    /// burn counts BatchNorm running statistics as parameters, so these are the float
    /// element counts of the original state dicts (all but `num_batches_tracked`); the
    /// trainable parts are torchvision's 3,504,872 and the Lite models' 4.65 M, 5.42 M, 6.09 M.
    #[test]
    fn parameter_counts_match_the_originals() {
        let device = inference_device();
        let counts: Vec<usize> = BackboneKind::ALL
            .iter()
            .map(|kind| kind.init(&device).num_params())
            .collect();
        // Keras' counts for the notop trunks: InceptionV3 21,802,784 and Xception 20,861,480.
        assert_eq!(
            counts,
            vec![
                3_538_984, 4_694_024, 5_470_344, 6_150_168, 21_802_784, 20_861_480
            ]
        );
    }

    #[test]
    fn features_are_one_thirty_second_of_the_input() {
        let device = inference_device();
        let kind = BackboneKind::EfficientNetLite0;
        let spec = kind.spec();
        let net = kind.init(&device);
        let side = 64;
        let x = Tensor::<4>::zeros([1, 3, side, side], &device);
        let features = net.features(x.clone());
        assert_eq!(
            features.dims(),
            [1, spec.feature_channels, side / 32, side / 32]
        );
        assert_eq!(
            net.imagenet_logits(x).map(|logits| logits.dims()),
            spec.imagenet_classes.map(|classes| [1, classes])
        );
        assert_eq!(spec.stages.len(), net.num_stages());
        assert_eq!(spec.stages.first().map(String::as_str), Some("stem"));
    }
}

//! The pretrained backbones: which exist, what each expects and offers (as data), and how
//! to build one. Each architecture lives in its own module.

pub mod blocks;
pub mod efficientnet_lite;
pub mod inception_v3;
pub mod inverted_residual_net;
pub mod mobilenet_v2;
pub mod xception;

use burn::tensor::Device;

pub use inverted_residual_net::{InvertedResidualNet, NetLayout};

/// A backbone architecture this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackboneKind {
    MobileNetV2,
    EfficientNetLite0,
    EfficientNetLite1,
    EfficientNetLite2,
}

/// What the rest of cxr needs to know about a backbone, without building it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackboneSpec {
    pub name: &'static str,
    /// Native square input side, in pixels.
    pub input_size: usize,
    /// The cxr-core preprocessing preset (`PreprocessSpec::preset`) that feeds this backbone:
    /// its size and normalisation (torchvision's ImageNet mean/std, or EfficientNet-Lite's
    /// (pixels - 127) / 128).
    pub preprocess_preset: &'static str,
    /// Channels of the feature map that `features()` returns.
    pub feature_channels: usize,
    /// Stage names in forward order, for freezing and for picking the Grad-CAM layer.
    pub stages: Vec<String>,
    /// Classes of the ImageNet classifier that ships with the pretrained weights.
    pub imagenet_classes: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown backbone {0:?}; known backbones: {known}", known = BackboneKind::names().join(", "))]
pub struct UnknownBackbone(pub String);

impl BackboneKind {
    pub const ALL: [Self; 4] = [
        Self::MobileNetV2,
        Self::EfficientNetLite0,
        Self::EfficientNetLite1,
        Self::EfficientNetLite2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "mobilenet-v2",
            Self::EfficientNetLite0 => "efficientnet-lite0",
            Self::EfficientNetLite1 => "efficientnet-lite1",
            Self::EfficientNetLite2 => "efficientnet-lite2",
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

    fn lite_variant(self) -> Option<efficientnet_lite::Variant> {
        match self {
            Self::MobileNetV2 => None,
            Self::EfficientNetLite0 => Some(efficientnet_lite::LITE0),
            Self::EfficientNetLite1 => Some(efficientnet_lite::LITE1),
            Self::EfficientNetLite2 => Some(efficientnet_lite::LITE2),
        }
    }

    pub fn layout(self) -> NetLayout {
        match self.lite_variant() {
            None => mobilenet_v2::layout(),
            Some(variant) => efficientnet_lite::layout(variant),
        }
    }

    pub fn spec(self) -> BackboneSpec {
        let layout = self.layout();
        let (input_size, preprocess_preset) = match self.lite_variant() {
            None => (224, "torchvision-mobilenet"),
            Some(variant) => (variant.resolution, self.name()),
        };
        BackboneSpec {
            name: self.name(),
            input_size,
            preprocess_preset,
            feature_channels: layout.head_channels,
            stages: layout.stage_names(),
            imagenet_classes: layout.num_classes,
        }
    }

    /// A freshly initialised network (random weights) of this architecture.
    pub fn init(self, device: &Device) -> InvertedResidualNet {
        self.layout().init(device)
    }

    /// How the parameter names of the original PyTorch release map onto ours, as
    /// (original prefix, our prefix) pairs.
    pub fn torch_prefixes(self) -> Vec<(String, String)> {
        match self.lite_variant() {
            None => mobilenet_v2::torch_prefixes(),
            Some(variant) => efficientnet_lite::torch_prefixes(variant),
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
        assert_eq!(counts, vec![3_538_984, 4_694_024, 5_470_344, 6_150_168]);
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
        assert_eq!(net.classify(x).dims(), [1, spec.imagenet_classes]);
        assert_eq!(spec.stages.len(), net.num_stages());
        assert_eq!(spec.stages.first().map(String::as_str), Some("stem"));
    }
}

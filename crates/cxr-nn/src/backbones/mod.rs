//! The pretrained backbones: which exist, what each expects and offers (as data), and how
//! to build one. Each architecture lives in its own module.

pub mod alexnet;
pub mod blocks;
mod boxed;
mod convolution;
pub mod efficientnet_lite;
pub mod googlenet;
pub mod inception_resnet_v2;
pub mod inception_v3;
pub mod inverted_residual_net;
pub mod kernels;
pub mod macs;
pub mod mobilenet_v2;
mod pointwise;
pub mod xception;

use std::ops::Range;

use burn::module::{Flag, Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::tensor::{Device, Tensor};

pub use alexnet::AlexNet;
pub use boxed::Boxed;
pub use googlenet::GoogLeNet;
pub use inception_resnet_v2::InceptionResNetV2;
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
    /// The student project's three; no pretrained weights for them here: trained from scratch.
    AlexNet,
    GoogLeNet,
    InceptionResNetV2,
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
    pub const ALL: [Self; 9] = [
        Self::MobileNetV2,
        Self::EfficientNetLite0,
        Self::EfficientNetLite1,
        Self::EfficientNetLite2,
        Self::InceptionV3,
        Self::Xception,
        Self::AlexNet,
        Self::GoogLeNet,
        Self::InceptionResNetV2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::MobileNetV2 => "mobilenet-v2",
            Self::EfficientNetLite0 => "efficientnet-lite0",
            Self::EfficientNetLite1 => "efficientnet-lite1",
            Self::EfficientNetLite2 => "efficientnet-lite2",
            Self::InceptionV3 => "inception-v3",
            Self::Xception => "xception",
            Self::AlexNet => "alexnet",
            Self::GoogLeNet => "googlenet",
            Self::InceptionResNetV2 => "inception-resnet-v2",
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
            _ => None,
        }
    }

    pub fn spec(self) -> BackboneSpec {
        let trunk_only = |input_size, preset, feature_channels, stages: Vec<String>| BackboneSpec {
            name: self.name(),
            input_size,
            preprocess_preset: preset,
            feature_channels,
            stages,
            imagenet_classes: None,
        };
        match (self, self.layout()) {
            (Self::InceptionV3, _) => trunk_only(
                299,
                "keras-inception",
                inception_v3::FEATURE_CHANNELS,
                inception_v3::STAGES.iter().map(|s| s.to_string()).collect(),
            ),
            (Self::Xception, _) => trunk_only(
                299,
                "keras-xception",
                xception::FEATURE_CHANNELS,
                xception::stage_names(),
            ),
            (Self::AlexNet, _) => trunk_only(
                224,
                "torchvision-alexnet",
                alexnet::FEATURE_CHANNELS,
                alexnet::stage_names(),
            ),
            (Self::GoogLeNet, _) => trunk_only(
                224,
                "torchvision-googlenet",
                googlenet::FEATURE_CHANNELS,
                googlenet::stage_names(),
            ),
            (Self::InceptionResNetV2, _) => trunk_only(
                299,
                "keras-inception-resnet-v2",
                inception_resnet_v2::FEATURE_CHANNELS,
                inception_resnet_v2::stage_names(),
            ),
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
            (Self::InceptionV3, _) => Backbone::InceptionV3(Boxed::new(InceptionV3::new(
                inception_v3::PoolPadding::Keras,
                device,
            ))),
            (Self::Xception, _) => Backbone::Xception(Boxed::new(Xception::new(device))),
            (Self::AlexNet, _) => Backbone::AlexNet(AlexNet::new(device)),
            (Self::GoogLeNet, _) => Backbone::GoogLeNet(GoogLeNet::new(device)),
            (Self::InceptionResNetV2, _) => {
                Backbone::InceptionResNetV2(InceptionResNetV2::new(device))
            }
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
            // weights would not be Keras' network; Xception has no PyTorch release; the
            // student project's three have no weights here at all.
            _ => None,
        }
    }
}

/// Any backbone, as one module: what classifiers, training and Grad-CAM hold. The two largest
/// are boxed: a classifier is moved by value through training, and each move of an unboxed
/// Inception V3 took 54 KB of stack (a test thread's 2 MB ran out).
// The others take under 2 KB; only AlexNet's 24 bytes make the difference "large".
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Backbone {
    InvertedResidual(InvertedResidualNet),
    InceptionV3(Boxed<InceptionV3>),
    Xception(Boxed<Xception>),
    AlexNet(AlexNet),
    GoogLeNet(GoogLeNet),
    InceptionResNetV2(InceptionResNetV2),
}

impl Backbone {
    /// Number of named stages (`BackboneSpec::stages`).
    pub fn num_stages(&self) -> usize {
        match self {
            Self::InvertedResidual(net) => net.num_stages(),
            Self::InceptionV3(_) => inception_v3::STAGES.len(),
            Self::Xception(net) => net.num_stages(),
            Self::AlexNet(net) => net.num_stages(),
            Self::GoogLeNet(net) => net.num_stages(),
            Self::InceptionResNetV2(net) => net.num_stages(),
        }
    }

    /// Runs stages `range` on `x`; running them all maps an image batch `[n, 3, h, w]` to the
    /// feature map. Splitting the range lets training run the frozen stages without gradients.
    pub fn forward_stages(&self, x: Tensor<4>, range: Range<usize>) -> Tensor<4> {
        match self {
            Self::InvertedResidual(net) => net.forward_stages(x, range),
            Self::InceptionV3(net) => net.forward_stages(x, range),
            Self::Xception(net) => net.forward_stages(x, range),
            Self::AlexNet(net) => net.forward_stages(x, range),
            Self::GoogLeNet(net) => net.forward_stages(x, range),
            Self::InceptionResNetV2(net) => net.forward_stages(x, range),
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
            Self::InvertedResidual(net) => net.classify(x),
            _ => None,
        }
    }

    /// The feature trunk without the ImageNet classifier that came with its weights: what a
    /// TB classifier keeps and stores (the other trunks were published without one).
    pub fn without_imagenet_classifier(self) -> Self {
        match self {
            Self::InvertedResidual(net) => Self::InvertedResidual(net.without_classifier()),
            other => other,
        }
    }

    /// The same network with every BatchNorm merged into its convolution, for inference.
    pub fn fold_batchnorm(self) -> Self {
        match self {
            Self::InvertedResidual(net) => Self::InvertedResidual(net.fold_batchnorm()),
            Self::InceptionV3(net) => Self::InceptionV3(net.map_inner(InceptionV3::fold_batchnorm)),
            Self::Xception(net) => Self::Xception(net.map_inner(Xception::fold_batchnorm)),
            // AlexNet has no BatchNorm.
            Self::AlexNet(net) => Self::AlexNet(net),
            Self::GoogLeNet(net) => Self::GoogLeNet(net.fold_batchnorm()),
            Self::InceptionResNetV2(net) => Self::InceptionResNetV2(net.fold_batchnorm()),
        }
    }

    /// The same network with every BatchNorm frozen: it normalises with its running statistics
    /// even where gradients flow, and neither its scale and shift nor its statistics change
    /// (Keras' `trainable = False`). Fine-tuning on a few hundred images this way keeps the
    /// features the head was trained on; with batch statistics they shift at the first step.
    pub fn freeze_batchnorm(self) -> Self {
        let mut batchnorm = BatchNormParams::default();
        self.visit(&mut batchnorm);
        self.freeze_group(ParamGroup::from_ids(batchnorm.ids))
    }

    /// Every value the BatchNorm layers hold (scale, shift, running mean and variance), in
    /// module order: what tells whether a training run changed them.
    pub fn batchnorm_values(&self) -> Vec<f32> {
        let mut batchnorm = BatchNormParams {
            values: Some(Vec::new()),
            ..BatchNormParams::default()
        };
        self.visit(&mut batchnorm);
        batchnorm.values.unwrap_or_default()
    }
}

/// Collects the parameters and training flags that live inside BatchNorm modules.
#[derive(Default)]
struct BatchNormParams {
    /// How many module levels deep the visit is inside a BatchNorm (0: outside).
    inside: usize,
    ids: Vec<ParamId>,
    /// Their values too, when asked for.
    values: Option<Vec<f32>>,
}

impl ModuleVisitor for BatchNormParams {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        if self.inside > 0 || container_type == "Struct:BatchNorm" {
            self.inside += 1;
        }
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.inside = self.inside.saturating_sub(1);
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.inside == 0 {
            return;
        }
        self.ids.push(param.id);
        if let Some(values) = &mut self.values {
            values.extend(param.val().into_data().iter::<f32>());
        }
    }

    fn visit_flag(&mut self, flag: &Param<Flag>) {
        if self.inside > 0 {
            self.ids.push(flag.id);
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
    fn frozen_batchnorm_trains_the_convolutions_on_running_statistics() {
        use crate::device::training_device;
        use burn::optim::GradientsParams;
        let device = training_device();
        let net = BackboneKind::MobileNetV2.init(&device);
        let x = Tensor::<4>::random([2, 3, 32, 32], burn::tensor::Distribution::Default, &device);
        let inference = net.clone().valid().features(x.clone().inner());
        let frozen = net.clone().freeze_batchnorm();
        let trained_frozen = frozen.features(x.clone());
        let trained_batch_statistics = net.features(x);
        let gap = |a: Tensor<4>, b: Tensor<4>| {
            (a - b.to_device(&device)).abs().max().into_scalar::<f32>()
        };
        // Fresh BatchNorms hold mean 0, variance 1: batch statistics give other features.
        assert!(gap(trained_batch_statistics, inference.clone()) > 0.1);
        let worst = gap(trained_frozen.clone(), inference);
        assert!(
            worst < 1e-4,
            "frozen BatchNorm differs from inference by {worst}"
        );

        let grads = GradientsParams::from_grads(trained_frozen.sum().backward(), &frozen);
        let mut batchnorm = BatchNormParams::default();
        frozen.visit(&mut batchnorm);
        assert!(!batchnorm.ids.is_empty());
        // BatchNorm's floats (scale and shift) are all 1-D; its flags carry no gradient.
        let trained = batchnorm
            .ids
            .iter()
            .filter(|&&id| grads.get::<1>(id).is_some())
            .count();
        assert_eq!(trained, 0, "BatchNorm parameters got gradients");
        assert!(!grads.is_empty(), "no convolution got a gradient");
    }

    #[test]
    fn names_round_trip() {
        for kind in BackboneKind::ALL {
            assert_eq!(BackboneKind::from_name(kind.name()).ok(), Some(kind));
        }
        let err = BackboneKind::from_name("resnet50").unwrap_err().to_string();
        assert!(err.contains("mobilenet-v2"), "{err}");
    }

    /// The parameter count the original framework reports for the trunk. burn counts BatchNorm
    /// running statistics as parameters, as PyTorch's state dicts hold them (all but
    /// `num_batches_tracked`). Keras' Inception nets use BatchNorm without a scale, so their
    /// count lacks one tensor per BatchNorm channel: folding turns the four BatchNorm tensors
    /// into one bias, so those channels number a third of what folding removes.
    fn original_parameter_count(kind: BackboneKind, net: Backbone) -> usize {
        let unfolded = net.num_params();
        match kind {
            BackboneKind::InceptionV3 | BackboneKind::InceptionResNetV2 => {
                let folded = net.fold_batchnorm().num_params();
                unfolded - (unfolded - folded) / 3
            }
            _ => unfolded,
        }
    }

    #[test]
    fn parameter_counts_match_the_originals() {
        let device = inference_device();
        let counts: Vec<(&str, usize)> = BackboneKind::ALL
            .iter()
            .map(|&kind| {
                (
                    kind.name(),
                    original_parameter_count(kind, kind.init(&device)),
                )
            })
            .collect();
        // torchvision / the Lite releases: state-dict element counts (trainable parts
        // 3,504,872 for MobileNetV2; 4.65 M, 5.42 M, 6.09 M for the Lite models; 5,599,904 for
        // GoogLeNet without fc); Keras' `count_params()` of the notop trunks.
        let originals = [
            ("mobilenet-v2", 3_538_984),
            ("efficientnet-lite0", 4_694_024),
            ("efficientnet-lite1", 5_470_344),
            ("efficientnet-lite2", 6_150_168),
            ("inception-v3", 21_802_784),
            ("xception", 20_861_480),
            ("alexnet", 2_469_696),
            ("googlenet", 5_614_464),
            ("inception-resnet-v2", 54_336_736),
        ];
        assert_eq!(counts, originals);
    }

    #[test]
    fn every_stage_list_matches_its_network() {
        let device = inference_device();
        for kind in BackboneKind::ALL {
            let spec = kind.spec();
            assert_eq!(
                spec.stages.len(),
                kind.init(&device).num_stages(),
                "{}",
                spec.name
            );
            assert_eq!(spec.stage_index(&spec.stages[1]), Some(1));
            cxr_core::preprocess::PreprocessSpec::preset(spec.preprocess_preset)
                .unwrap_or_else(|err| panic!("{}: {err}", spec.name));
        }
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

//! The TB classifier: a pretrained backbone plus the paper's head, one logit per image, and
//! how it is built from (and loaded with) its model card.

pub mod head;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

pub use head::{Head, HeadConfig, HeadOutputs, Scores};

use crate::backbones::{Backbone, BackboneKind};
use crate::model_file::{self, Architecture, ModelCard, ModelFileError, ModelKind};

/// Card parameter names of the head's shape.
const HEAD_HIDDEN: &str = "head_hidden";
const HEAD_DROPOUT: &str = "head_dropout";
/// Width of a softmax head's last layer; absent for the binary head.
const HEAD_CLASSES: &str = "head_classes";

/// File name of the shipped TB model.
pub const DEFAULT_MODEL_FILE: &str = "cxr-tb-default.safetensors";

/// Environment variable that names the default model file instead.
pub const MODEL_ENV: &str = "CXR_MODEL";

#[derive(Module, Debug)]
pub struct Classifier {
    pub backbone: Backbone,
    pub head: Head,
}

impl Classifier {
    pub fn new(backbone: Backbone, head: &HeadConfig, device: &Device) -> Self {
        Self {
            backbone,
            head: head.init(device),
        }
    }

    /// A randomly initialised classifier shaped as `card` describes.
    pub fn from_card(card: &ModelCard, device: &Device) -> Result<Self, String> {
        let kind =
            BackboneKind::from_name(&card.architecture.network).map_err(|e| e.to_string())?;
        Ok(Self::new(
            kind.init(device),
            &head_config(kind, card)?,
            device,
        ))
    }

    /// Images `[n, 3, h, w]` to screening logits `[n, 1]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head_logits(self.feature_map(images))
    }

    /// Images to probabilities of abnormality `[n, 1]`.
    pub fn probabilities(&self, images: Tensor<4>) -> Tensor<2> {
        sigmoid(self.forward(images))
    }

    /// The backbone's last feature map `[n, c, h/32, w/32]`: what Grad-CAM differentiates.
    pub fn feature_map(&self, images: Tensor<4>) -> Tensor<4> {
        self.backbone.features(images)
    }

    /// The head's screening logit on a feature map from [`Self::feature_map`].
    pub fn head_logits(&self, feature_map: Tensor<4>) -> Tensor<2> {
        self.head.forward(feature_map)
    }

    /// The same classifier with the backbone's BatchNorms folded, for fast inference.
    pub fn fold_batchnorm(self) -> Self {
        Self {
            backbone: self.backbone.fold_batchnorm(),
            head: self.head,
        }
    }
}

/// The architecture entry of a classifier card for `input_size` square inputs.
pub fn architecture(kind: BackboneKind, head: &HeadConfig, input_size: usize) -> Architecture {
    let mut params: std::collections::BTreeMap<String, f64> = [
        (HEAD_HIDDEN.to_string(), head.hidden as f64),
        (HEAD_DROPOUT.to_string(), head.dropout),
    ]
    .into_iter()
    .collect();
    if let HeadOutputs::Softmax { classes, .. } = head.outputs {
        params.insert(HEAD_CLASSES.to_string(), classes as f64);
    }
    Architecture {
        network: kind.name().to_string(),
        input_size,
        params,
    }
}

/// The head `card` describes: binary unless the card names refer classes, then a softmax
/// over its classes, whose count the architecture must agree with.
fn head_config(kind: BackboneKind, card: &ModelCard) -> Result<HeadConfig, String> {
    let paper = HeadConfig::paper(kind.spec().feature_channels);
    let outputs = if card.refer.is_empty() {
        HeadOutputs::Binary
    } else {
        let names = card.class_names()?;
        let classes = names.len();
        let width = card.param(HEAD_CLASSES, 0.0) as usize;
        if width != classes {
            return Err(format!(
                "the card lists {classes} classes but its head has {width} outputs"
            ));
        }
        HeadOutputs::softmax(&names)
    };
    Ok(HeadConfig {
        hidden: card.param(HEAD_HIDDEN, paper.hidden as f64) as usize,
        dropout: card.param(HEAD_DROPOUT, paper.dropout),
        outputs,
        ..paper
    })
}

/// Loads a classifier model file (as trained: BatchNorm not folded) and its card.
pub fn load(path: &Path, device: &Device) -> Result<(Classifier, ModelCard), ModelFileError> {
    let card = model_file::read_card(path)?;
    let classifier =
        Classifier::from_card(&card, device).map_err(|reason| ModelFileError::BadCard {
            path: path.to_path_buf(),
            reason,
        })?;
    model_file::load_into(classifier, path, ModelKind::Classifier)
}

/// Where the shipped TB model is: `$CXR_MODEL` if set, else
/// `models/cxr-tb-default.safetensors` found by [`model_file::shipped_model_path`].
pub fn default_model_path() -> Option<PathBuf> {
    model_file::shipped_model_path(DEFAULT_MODEL_FILE, MODEL_ENV)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;
    use cxr_core::preprocess::PreprocessSpec;

    /// Saves a small untrained classifier with `outputs`, loads it back and checks that both
    /// give the same scores, before and after folding BatchNorm.
    fn round_trip(outputs: HeadOutputs, classes: &[&str], refer: &[&str]) -> ModelCard {
        let device = inference_device();
        let kind = BackboneKind::EfficientNetLite0;
        let head = HeadConfig {
            hidden: 8,
            dropout: 0.25,
            outputs,
            ..HeadConfig::paper(kind.spec().feature_channels)
        };
        let model = Classifier::new(kind.init(&device), &head, &device);
        let mut card = ModelCard::new(
            ModelKind::Classifier,
            architecture(kind, &head, 224),
            PreprocessSpec::preset(kind.spec().preprocess_preset).expect("preset"),
            classes.iter().map(|c| c.to_string()).collect(),
        );
        card.refer = refer.iter().map(|c| c.to_string()).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tiny.safetensors");
        model_file::save(&path, &model, &card).expect("save");

        let (loaded, loaded_card) = load(&path, &device).expect("load");
        assert_eq!(loaded_card, card);
        assert_eq!(loaded.head.outputs, head.outputs);
        let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
        let diff = (model.forward(x.clone()) - loaded.forward(x.clone()))
            .abs()
            .max();
        assert_eq!(diff.into_scalar::<f32>(), 0.0);
        let folded = loaded.fold_batchnorm().probabilities(x.clone());
        let diff = (model.probabilities(x) - folded).abs().max();
        assert!(diff.into_scalar::<f32>() < 1e-4);
        card
    }

    #[test]
    fn a_saved_classifier_loads_back_from_its_card() {
        let card = round_trip(HeadOutputs::Binary, &["normal", "tb"], &[]);
        assert_eq!(card.decision_name(true), "tb");
        assert!(!card.architecture.params.contains_key(HEAD_CLASSES));
    }

    #[test]
    fn a_multi_class_classifier_loads_back_from_its_card() {
        let outputs = HeadOutputs::Softmax {
            classes: 3,
            refer: vec![1, 2],
        };
        let card = round_trip(
            outputs,
            &["normal", "tb", "age-related"],
            &["tb", "age-related"],
        );
        assert_eq!(card.decision_name(true), "tb or age-related");
        assert_eq!(card.decision_name(false), "normal");
        // A card whose head width disagrees with its classes is refused.
        let mut bad = card.clone();
        bad.classes.push("covid".into());
        let error = Classifier::from_card(&bad, &inference_device()).expect_err("mismatch");
        assert!(
            error.contains("4 classes but its head has 3 outputs"),
            "{error}"
        );
    }
}

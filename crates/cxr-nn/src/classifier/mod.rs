//! The TB classifier: a pretrained backbone plus the paper's head, one logit per image, and
//! how it is built from (and loaded with) its model card.

pub mod head;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

pub use head::{Head, HeadConfig};

use crate::backbones::{Backbone, BackboneKind};
use crate::model_file::{self, Architecture, ModelCard, ModelFileError, ModelKind};

/// Card parameter names of the head's shape.
const HEAD_HIDDEN: &str = "head_hidden";
const HEAD_DROPOUT: &str = "head_dropout";

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
            &head_config(kind, card),
            device,
        ))
    }

    /// Images `[n, 3, h, w]` to logits `[n, 1]`.
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

    /// The head on a feature map from [`Self::feature_map`].
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
    Architecture {
        network: kind.name().to_string(),
        input_size,
        params: [
            (HEAD_HIDDEN.to_string(), head.hidden as f64),
            (HEAD_DROPOUT.to_string(), head.dropout),
        ]
        .into_iter()
        .collect(),
    }
}

fn head_config(kind: BackboneKind, card: &ModelCard) -> HeadConfig {
    let paper = HeadConfig::paper(kind.spec().feature_channels);
    HeadConfig {
        hidden: card.param(HEAD_HIDDEN, paper.hidden as f64) as usize,
        dropout: card.param(HEAD_DROPOUT, paper.dropout),
        ..paper
    }
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

    #[test]
    fn a_saved_classifier_loads_back_from_its_card() {
        let device = inference_device();
        let kind = BackboneKind::EfficientNetLite0;
        let head = HeadConfig {
            hidden: 8,
            dropout: 0.25,
            ..HeadConfig::paper(kind.spec().feature_channels)
        };
        let model = Classifier::new(kind.init(&device), &head, &device);
        let card = ModelCard::new(
            ModelKind::Classifier,
            architecture(kind, &head, 224),
            PreprocessSpec::preset(kind.spec().preprocess_preset).expect("preset"),
            vec!["normal".into(), "tb".into()],
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tiny.safetensors");
        model_file::save(&path, &model, &card).expect("save");

        let (loaded, loaded_card) = load(&path, &device).expect("load");
        assert_eq!(loaded_card, card);
        let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
        let diff = (model.forward(x.clone()) - loaded.forward(x.clone()))
            .abs()
            .max();
        assert_eq!(diff.into_scalar::<f32>(), 0.0);
        let folded = loaded.fold_batchnorm().probabilities(x.clone());
        let diff = (model.probabilities(x) - folded).abs().max();
        assert!(diff.into_scalar::<f32>() < 1e-4);
    }
}

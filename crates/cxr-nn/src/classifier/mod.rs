//! The TB classifier: a pretrained backbone plus the paper's head, one logit per image, and
//! how it is built from (and loaded with) its model card.

pub mod ensemble;
pub mod head;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

pub use ensemble::{Ensemble, Network, load_networks, mean_log_odds, save};
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
    /// `backbone` with `head` on it; an ImageNet classifier that came with the backbone's
    /// weights is dropped.
    pub fn new(backbone: Backbone, head: &HeadConfig, device: &Device) -> Self {
        Self::seeded(backbone, head, 0, device)
    }

    /// [`Classifier::new`] with the head's initial weights drawn from `seed`.
    pub fn seeded(backbone: Backbone, head: &HeadConfig, seed: u64, device: &Device) -> Self {
        Self {
            backbone: backbone.without_imagenet_classifier(),
            head: head.init_seeded(seed, device),
        }
    }

    /// A randomly initialised classifier shaped as `card` describes.
    pub fn from_card(card: &ModelCard, device: &Device) -> Result<Self, String> {
        Self::from_architecture(&card.architecture, card, device)
    }

    /// A randomly initialised classifier of `architecture` (the card's own, or one of its
    /// members'), with a head for `card`'s classes.
    pub fn from_architecture(
        architecture: &Architecture,
        card: &ModelCard,
        device: &Device,
    ) -> Result<Self, String> {
        let kind = BackboneKind::from_name(&architecture.network).map_err(|e| e.to_string())?;
        Ok(Self::new(
            kind.init(device),
            &head_config(kind, architecture, card)?,
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

/// The head of `architecture` on `card`: binary unless the card names refer classes, then a
/// softmax over its classes, whose count the architecture must agree with.
fn head_config(
    kind: BackboneKind,
    architecture: &Architecture,
    card: &ModelCard,
) -> Result<HeadConfig, String> {
    let param =
        |name: &str, default: f64| architecture.params.get(name).copied().unwrap_or(default);
    let paper = HeadConfig::paper(kind.spec().feature_channels);
    let outputs = if card.refer.is_empty() {
        HeadOutputs::Binary
    } else {
        let names = card.class_names()?;
        let classes = names.len();
        let width = param(HEAD_CLASSES, 0.0) as usize;
        if width != classes {
            return Err(format!(
                "the card lists {classes} classes but its head has {width} outputs"
            ));
        }
        HeadOutputs::softmax(&names)
    };
    Ok(HeadConfig {
        hidden: param(HEAD_HIDDEN, paper.hidden as f64) as usize,
        dropout: param(HEAD_DROPOUT, paper.dropout),
        outputs,
        ..paper
    })
}

/// Loads a single-network classifier model file (as trained: BatchNorm not folded) and its
/// card; an ensemble is refused (see [`load_members`]).
pub fn load(path: &Path, device: &Device) -> Result<(Classifier, ModelCard), ModelFileError> {
    let card = model_file::read_card(path)?;
    if !card.members.is_empty() {
        return Err(ModelFileError::BadCard {
            path: path.to_path_buf(),
            reason: format!(
                "an ensemble of {} networks, where one network was expected",
                card.members.len()
            ),
        });
    }
    let classifier =
        Classifier::from_card(&card, device).map_err(|reason| ModelFileError::BadCard {
            path: path.to_path_buf(),
            reason,
        })?;
    model_file::load_into(
        classifier,
        path,
        ModelKind::Classifier,
        is_imagenet_classifier,
    )
}

/// Whether a stored tensor belongs to a backbone's ImageNet classifier, which files written
/// before classifiers dropped it still carry; loading skips it.
pub fn is_imagenet_classifier(name: &str) -> bool {
    name.split('.').any(|part| part == "classifier")
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
    use crate::test_support::small_head;
    use burn::tensor::Distribution;
    use cxr_core::preprocess::PreprocessSpec;

    /// Saves a small untrained classifier with `outputs` and a hidden layer `hidden` wide (0:
    /// a linear head, standardised as if fitted to training features), loads it back and
    /// checks that both give the same scores, before and after folding BatchNorm.
    fn round_trip(
        hidden: usize,
        outputs: HeadOutputs,
        classes: &[&str],
        refer: &[&str],
    ) -> ModelCard {
        let device = inference_device();
        let kind = BackboneKind::EfficientNetLite0;
        let head = HeadConfig {
            hidden,
            dropout: 0.25,
            outputs,
            ..HeadConfig::paper(kind.spec().feature_channels)
        };
        let mut model = Classifier::new(kind.init(&device), &head, &device);
        let channels = kind.spec().feature_channels;
        let features =
            Tensor::<2>::random([6, channels], Distribution::Uniform(-3.0, 5.0), &device);
        model.head.fit_standardization(features);
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
        let card = round_trip(8, HeadOutputs::Binary, &["normal", "tb"], &[]);
        assert_eq!(card.decision_name(true), "tb");
        assert!(!card.architecture.params.contains_key(HEAD_CLASSES));
    }

    #[test]
    fn a_linear_head_loads_back_with_its_standardisation() {
        let card = round_trip(0, HeadOutputs::Binary, &["normal", "tb"], &[]);
        assert_eq!(card.architecture.params[HEAD_HIDDEN], 0.0);
    }

    #[test]
    fn classifiers_drop_the_imagenet_classifier_and_older_files_with_it_still_load() {
        let device = inference_device();
        let kind = BackboneKind::MobileNetV2;
        let head = small_head(kind);
        let card = ModelCard::new(
            ModelKind::Classifier,
            architecture(kind, &head, 224),
            PreprocessSpec::preset(kind.spec().preprocess_preset).expect("preset"),
            vec!["normal".into(), "tb".into()],
        );
        let trunk_only = Classifier::new(kind.init(&device), &head, &device);
        let x = Tensor::<4>::ones([1, 3, 32, 32], &device);
        assert!(trunk_only.backbone.imagenet_logits(x.clone()).is_none());
        // As files were written before: the backbone with its ImageNet classifier.
        let older = Classifier {
            backbone: kind.init(&device),
            head: head.init(&device),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let (old_path, new_path) = (
            dir.path().join("old.safetensors"),
            dir.path().join("new.safetensors"),
        );
        model_file::save(&old_path, &older, &card).expect("save");
        model_file::save(&new_path, &trunk_only, &card).expect("save");
        let size = |path: &Path| std::fs::metadata(path).expect("size").len();
        // The classifier's 1.28 M weights and their names in the header.
        let dropped = size(&old_path) - size(&new_path) - (1280 * 1000 + 1000) * 4;
        assert!(dropped < 1000, "{dropped} bytes of header");
        let (loaded, _) = load(&old_path, &device).expect("older file");
        let diff = (older.forward(x.clone()) - loaded.forward(x)).abs().max();
        assert_eq!(diff.into_scalar::<f32>(), 0.0);
    }

    #[test]
    fn an_ensemble_file_is_not_loaded_as_one_network() {
        let device = inference_device();
        let kind = BackboneKind::EfficientNetLite0;
        let head = small_head(kind);
        let spec = PreprocessSpec::preset(kind.spec().preprocess_preset).expect("preset");
        let member = crate::model_file::Member {
            architecture: architecture(kind, &head, 224),
            preprocess: spec.clone(),
            trunk_of: None,
        };
        let mut card = ModelCard::new(
            ModelKind::Classifier,
            Architecture {
                network: crate::model_file::ENSEMBLE_NETWORK.into(),
                input_size: 224,
                params: Default::default(),
            },
            spec,
            vec!["normal".into(), "tb".into()],
        );
        card.members = vec![member.clone(), member];
        let networks = vec![Classifier::new(kind.init(&device), &head, &device); 2];
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ensemble.safetensors");
        let error = save(&path, &networks[..1], &card).expect_err("one network, two members");
        assert!(
            error.to_string().contains("describes 2 networks but 1"),
            "{error}"
        );
        save(&path, &networks, &card).expect("save");
        let error = load(&path, &device).expect_err("an ensemble");
        assert!(
            error.to_string().contains("an ensemble of 2 networks"),
            "{error}"
        );
        let (loaded, loaded_card) = load_networks(&path, &device).expect("networks");
        // The two members are one network twice: the file stores its trunk once.
        card.members[1].trunk_of = Some(0);
        assert_eq!((loaded.len(), loaded_card), (2, card));
    }

    #[test]
    fn a_multi_class_classifier_loads_back_from_its_card() {
        let outputs = HeadOutputs::Softmax {
            classes: 3,
            refer: vec![1, 2],
        };
        let card = round_trip(
            8,
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

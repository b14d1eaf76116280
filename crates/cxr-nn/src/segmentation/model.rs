//! The lung model's card and file: what goes on a `crate::model_file` card for a lung
//! network (its encoder, input spec, pixel threshold) and how to rebuild the network from it.

use std::path::Path;

use burn::tensor::Device;
use cxr_core::preprocess::PreprocessSpec;

use super::SegmentationError;
use super::net::LungNet;
use crate::backbones::BackboneKind;
use crate::model_file::{self, Architecture, ModelCard, ModelKind, OperatingPoint};

/// Lung networks are named after their encoder: `lung-unet-mobilenet-v2`.
const NETWORK_PREFIX: &str = "lung-unet-";

/// Pixels whose lung probability reaches this are lung.
pub const PIXEL_THRESHOLD: f64 = 0.5;

/// File name of the lung model shipped in `models/`.
pub const DEFAULT_MODEL_FILE: &str = "lungs-mobilenet-v2.safetensors";

/// Environment variable naming another default lung model.
pub const MODEL_ENV: &str = "CXR_LUNG_MODEL";

/// Where the shipped lung model is: `$CXR_LUNG_MODEL` if set, else
/// `models/lungs-mobilenet-v2.safetensors` found by [`model_file::shipped_model_path`].
pub fn default_model_path() -> Option<std::path::PathBuf> {
    model_file::shipped_model_path(DEFAULT_MODEL_FILE, MODEL_ENV)
}

/// A card for a lung network with `kind`'s encoder fed by `spec`, without training record.
pub fn lung_card(kind: BackboneKind, spec: PreprocessSpec) -> ModelCard {
    let architecture = Architecture {
        network: format!("{NETWORK_PREFIX}{}", kind.name()),
        input_size: spec.input_size.width,
        params: Default::default(),
    };
    let mut card = ModelCard::new(
        ModelKind::LungSegmentation,
        architecture,
        spec,
        vec!["background".to_string(), "lung".to_string()],
    );
    card.operating_points.push(OperatingPoint {
        name: "default".to_string(),
        threshold: PIXEL_THRESHOLD,
        rule: "a pixel is lung when its probability is at least 0.5".to_string(),
        sensitivity: None,
        specificity: None,
    });
    card.default_operating_point = "default".to_string();
    card
}

/// The encoder named on a lung model's card.
pub fn card_backbone(card: &ModelCard) -> Result<BackboneKind, SegmentationError> {
    let network = &card.architecture.network;
    let name = network
        .strip_prefix(NETWORK_PREFIX)
        .ok_or_else(|| SegmentationError::Config(format!("{network:?} is not a lung network")))?;
    Ok(BackboneKind::from_name(name)?)
}

/// The pixel threshold of the card's default operating point.
pub fn card_threshold(card: &ModelCard) -> f32 {
    card.default_point()
        .map_or(PIXEL_THRESHOLD, |point| point.threshold) as f32
}

pub fn save_model(net: &LungNet, card: &ModelCard, path: &Path) -> Result<(), SegmentationError> {
    Ok(model_file::save(path, net, card)?)
}

/// Reads a lung model file onto `device`: the card, then the network it describes.
pub fn load_model(path: &Path, device: &Device) -> Result<(LungNet, ModelCard), SegmentationError> {
    let card = model_file::read_card(path)?;
    let kind = card_backbone(&card).map_err(|err| SegmentationError::ModelFile {
        path: path.to_path_buf(),
        message: err.to_string(),
    })?;
    let net = LungNet::init(kind, device)?;
    Ok(model_file::load_into(
        net,
        path,
        ModelKind::LungSegmentation,
        |_| false,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;
    use burn::tensor::Tensor;

    #[test]
    fn a_saved_lung_model_loads_back_with_the_same_output() {
        let device = inference_device();
        let kind = BackboneKind::MobileNetV2;
        let net = LungNet::init(kind, &device).unwrap();
        let spec = PreprocessSpec::preset("torchvision-mobilenet").unwrap();
        let card = lung_card(kind, spec);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lungs.safetensors");
        save_model(&net, &card, &path).unwrap();
        let (loaded, loaded_card) = load_model(&path, &device).unwrap();
        assert_eq!(loaded_card, card);
        assert_eq!(card_backbone(&loaded_card).unwrap(), kind);
        assert_eq!(card_threshold(&loaded_card), 0.5);
        let x = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let diff = (net.forward(x.clone()) - loaded.forward(x)).abs().max();
        assert_eq!(diff.into_scalar::<f32>(), 0.0);
    }
}

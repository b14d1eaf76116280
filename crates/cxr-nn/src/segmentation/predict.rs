//! Inference with a lung model: an X-ray in, a lung probability map at the X-ray's own size
//! out (resized back bilinearly), its cleaned mask and checks, and the lung crop.

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use cxr_core::image::GrayImage;
use cxr_core::lungs::{
    CheckLimits, CleanupParams, CropOutcome, LungCheck, LungCropSpec, LungCropper, LungMask, check,
    clean, crop_to_lungs,
};
use cxr_core::preprocess::preprocess;
use cxr_core::report::fit_within;

use super::SegmentationError;
use super::model::{card_threshold, default_model_path, load_model};
use super::net::{LungNet, resize};
use crate::device::inference_device;
use crate::model_file::{ModelCard, file_sha256};

/// Longest side at which the lungs are found for a crop.
const CROP_SEGMENTATION_SIDE: usize = 1024;

/// The lungs of one X-ray, at its own size.
#[derive(Debug, Clone)]
pub struct Segmentation {
    pub probabilities: GrayImage,
    /// The cleaned mask (`cxr_core::lungs::clean`).
    pub mask: LungMask,
    pub check: LungCheck,
}

/// A loaded lung model, ready for inference (BatchNorm folded into the convolutions).
#[derive(Debug)]
pub struct LungSegmenter {
    net: LungNet,
    pub card: ModelCard,
    /// SHA-256 of the file it was loaded from; empty for a network that has no file yet.
    pub sha256: String,
}

impl LungSegmenter {
    pub fn load(path: &Path) -> Result<Self, SegmentationError> {
        let (net, card) = load_model(path, &inference_device())?;
        let mut segmenter = Self::new(net, card);
        segmenter.sha256 = file_sha256(path)?;
        Ok(segmenter)
    }

    /// The shipped lung model: `$CXR_LUNG_MODEL`, else `models/lungs-mobilenet-v2.safetensors`.
    pub fn load_shipped() -> Result<Self, SegmentationError> {
        let path = default_model_path().ok_or(SegmentationError::NoDefaultModel)?;
        Self::load(&path)
    }

    pub fn new(net: LungNet, card: ModelCard) -> Self {
        Self {
            net: net.fold_batchnorm(),
            card,
            sha256: String::new(),
        }
    }

    /// Pixels whose probability reaches this are lung.
    pub fn threshold(&self) -> f32 {
        card_threshold(&self.card)
    }

    /// The probability of lung at every pixel of `image`, same size as `image`.
    pub fn probabilities(&self, image: &GrayImage) -> Result<GrayImage, SegmentationError> {
        let spec = &self.card.preprocess;
        let tensor =
            preprocess(image, spec, None).map_err(|source| SegmentationError::Batch { source })?;
        let device = inference_device();
        let input = Tensor::<4>::from_data(
            TensorData::new(
                tensor.data,
                [1, tensor.channels, tensor.height, tensor.width],
            ),
            &device,
        );
        let logits = self.net.forward(input);
        let probabilities =
            burn::tensor::activation::sigmoid(resize(logits, [image.height, image.width]));
        let pixels = probabilities
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|err| SegmentationError::Tensor(format!("{err:?}")))?;
        Ok(GrayImage {
            width: image.width,
            height: image.height,
            pixels,
        })
    }

    /// Probabilities, cleaned mask and checks, with the default cleanup and check limits.
    pub fn segment(&self, image: &GrayImage) -> Result<Segmentation, SegmentationError> {
        let probabilities = self.probabilities(image)?;
        let params = CleanupParams {
            threshold: self.threshold(),
            ..CleanupParams::default()
        };
        let mask = clean(&probabilities, &params);
        let check = check(&mask, &CheckLimits::default());
        Ok(Segmentation {
            probabilities,
            mask,
            check,
        })
    }

    /// The preprocessing step `PreprocessSpec::lung_crop` names: `image` cut to its lungs plus
    /// the margin, or the full image with the reason when the lung checks fail.
    pub fn crop(
        &self,
        image: &GrayImage,
        spec: &LungCropSpec,
    ) -> Result<CropOutcome, SegmentationError> {
        // The box needs no more detail than this; a 3000 px X-ray would otherwise be cleaned
        // (morphology, components) at full size. `crop_to_lungs` scales the box back.
        let small = fit_within(image, CROP_SEGMENTATION_SIDE)
            .map_err(|error| SegmentationError::Scale(error.to_string()))?;
        let lungs = self.segment(&small)?;
        Ok(crop_to_lungs(image, &lungs.mask, &lungs.check, spec))
    }
}

impl LungCropper for LungSegmenter {
    fn lung_model_sha256(&self) -> &str {
        &self.sha256
    }

    fn crop(&self, image: &GrayImage, spec: &LungCropSpec) -> Result<CropOutcome, String> {
        LungSegmenter::crop(self, image, spec).map_err(|error| error.to_string())
    }
}

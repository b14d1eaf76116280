//! Image/mask pairs for training the lung network: read once, fitted to the network's input
//! size and kept in memory; batches are augmented with one warp shared by image and mask.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use cxr_core::augment::AugmentConfig;
use cxr_core::decode::{DecodeLimits, decode_file};
use cxr_core::image::GrayImage;
use cxr_core::preprocess::{PreprocessSpec, fit, to_tensor};
use rand::Rng;
use sha2::{Digest, Sha256};

use super::SegmentationError;
use crate::model_file::DataManifest;

/// One training example at the network's input size: the fitted X-ray and its lung mask
/// (resized the same way, so soft at the border).
#[derive(Debug, Clone)]
pub struct Pair {
    pub image: GrayImage,
    pub mask: GrayImage,
}

/// Reads and fits one X-ray and its mask; both must have the same size.
pub fn load_pair(
    image_path: &Path,
    mask_path: &Path,
    spec: &PreprocessSpec,
) -> Result<Pair, SegmentationError> {
    let limits = DecodeLimits::default();
    let image = decode_file(image_path, &limits)?.image;
    let mask = decode_file(mask_path, &limits)?.image;
    if (image.width, image.height) != (mask.width, mask.height) {
        return Err(SegmentationError::MaskSize {
            mask: mask_path.to_path_buf(),
            mask_size: (mask.width, mask.height),
            image_size: (image.width, image.height),
        });
    }
    let fit_to_input = |img: &GrayImage, path: &Path| {
        fit(img, spec).map_err(|source| SegmentationError::Preprocess {
            path: path.to_path_buf(),
            source,
        })
    };
    Ok(Pair {
        image: fit_to_input(&image, image_path)?,
        mask: fit_to_input(&mask, mask_path)?,
    })
}

/// Reads every (image, mask) pair, calling `progress` after each.
pub fn load_pairs(
    paths: &[(PathBuf, PathBuf)],
    spec: &PreprocessSpec,
    mut progress: impl FnMut(),
) -> Result<Vec<Pair>, SegmentationError> {
    paths
        .iter()
        .map(|(image, mask)| {
            let pair = load_pair(image, mask, spec);
            progress();
            pair
        })
        .collect()
}

/// Network inputs `[n, channels, h, w]` and mask targets `[n, 1, h, w]` for `pairs`, each
/// pair warped by its own draw from `augment` (none: as they are).
pub fn batch<R: Rng>(
    pairs: &[&Pair],
    spec: &PreprocessSpec,
    augment: Option<(&AugmentConfig, &mut R)>,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<4>), SegmentationError> {
    let (width, height) = (spec.input_size.width, spec.input_size.height);
    let mut inputs = Vec::with_capacity(pairs.len() * spec.channels * width * height);
    let mut targets = Vec::with_capacity(pairs.len() * width * height);
    let mut augment = augment;
    for pair in pairs {
        let params = augment.as_mut().map(|(config, rng)| config.sample(*rng));
        let tensor = to_tensor(&pair.image, spec, params.as_ref())
            .map_err(|source| SegmentationError::Batch { source })?;
        inputs.extend(tensor.data);
        match params {
            Some(params) => targets.extend(params.geometric().apply(&pair.mask).pixels),
            None => targets.extend_from_slice(&pair.mask.pixels),
        }
    }
    let n = pairs.len();
    let inputs = TensorData::new(inputs, [n, spec.channels, height, width]);
    let targets = TensorData::new(targets, [n, 1, height, width]);
    Ok((
        Tensor::from_data(inputs, device),
        Tensor::from_data(targets, device),
    ))
}

/// The card's record of the training data: SHA-256 over the sorted per-pair lines
/// "image sha256 mask sha256", so that moving or renaming the files changes nothing.
pub fn manifest(
    source: &str,
    paths: &[(PathBuf, PathBuf)],
) -> Result<DataManifest, SegmentationError> {
    let file_hash = |path: &Path| {
        std::fs::read(path)
            .map(|bytes| hex::encode(Sha256::digest(bytes)))
            .map_err(|source| SegmentationError::Io {
                path: path.to_path_buf(),
                source,
            })
    };
    let mut lines = paths
        .iter()
        .map(|(image, mask)| Ok(format!("{} {}\n", file_hash(image)?, file_hash(mask)?)))
        .collect::<Result<Vec<String>, SegmentationError>>()?;
    lines.sort();
    Ok(DataManifest {
        source: source.to_string(),
        images: paths.len(),
        class_counts: Vec::new(),
        sha256: hex::encode(Sha256::digest(lines.concat().as_bytes())),
    })
}

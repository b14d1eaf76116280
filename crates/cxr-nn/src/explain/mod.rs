//! Explanations of a classifier's score: Grad-CAM / Grad-CAM++ heat maps from the backbone's
//! last stage through the head (an ensemble's: the mean of its members' maps), at the X-ray's
//! own size, optionally kept to the lungs, by zone.

mod cam;

use std::path::Path;

use burn::module::Module;
use cxr_core::DecodedImage;
use cxr_core::image::GrayImage;
use cxr_core::lungs::{BoundingBox, LungMask, LungZones, Zone};
use cxr_core::preprocess::{InputSize, PreprocessSpec, ResizeMode, fit};
use serde::Serialize;

pub use cam::{CamMethod, ClassActivationMap, class_activation_map};

use crate::batch::batch_tensor;
use crate::classifier::mean_log_odds;
use crate::device::training_device;
use crate::predict::{PredictError, Screener};

/// Why an image could not be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Predict(#[from] PredictError),
    #[error("{}: the lung mask is {mask_width}x{mask_height} but the X-ray is {width}x{height}", path.display())]
    MaskSize {
        path: std::path::PathBuf,
        mask_width: usize,
        mask_height: usize,
        width: usize,
        height: usize,
    },
    #[error("Grad-CAM: {0}")]
    Tensor(String),
}

/// The mean and peak heat inside one lung zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneScore {
    /// E.g. "right upper" (the patient's right, on the left of the picture).
    pub zone: String,
    pub mean: f64,
    pub max: f64,
}

/// A heat map over one X-ray and the probability it explains.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Same size as the X-ray, values in [0, 1]; 0 outside the lungs when a mask was given.
    pub heat: GrayImage,
    pub probability: f64,
    /// Per lung zone (upper, middle, lower x right, left); empty without a lung mask.
    pub zones: Vec<ZoneScore>,
}

/// Explains `screener`'s score for `image` (`path` names it in errors). With `lungs` (a mask
/// at the X-ray's size), heat outside the lungs is cleared and zone scores are computed.
pub fn explain(
    screener: &Screener,
    path: &Path,
    image: &DecodedImage,
    method: CamMethod,
    lungs: Option<&LungMask>,
) -> Result<Explanation, ExplainError> {
    let views = screener.views(path, image, 0, 0)?;
    let (width, height) = (image.image.width, image.image.height);
    let whole = BoundingBox {
        x: 0,
        y: 0,
        width,
        height,
    };
    // A network that saw only the lung crop explains only that region: no heat of its own
    // outside it.
    let crop_region = views
        .lung_crop
        .and_then(|crop| crop.region)
        .unwrap_or(whole);
    // Each member's map at its own feature resolution, stretched over its region, then the
    // mean: every member's evidence counts equally, as its log-odds do in the score.
    let mut heat = GrayImage::filled(width, height, 0.0);
    let mut probabilities = Vec::new();
    let networks = screener.networks();
    for (network, inputs) in networks.iter().zip(views.inputs) {
        let region = match network.preprocess.lung_crop {
            Some(_) => crop_region,
            None => whole,
        };
        let classifier = &network.classifier;
        let features = classifier.feature_map(batch_tensor(inputs, screener.device()));
        let head = classifier.head.valid().to_device(&training_device());
        let cam = class_activation_map(features, |f| head.forward(f), method)?;
        let member_heat = upsample(&cam.map, region.width, region.height)
            .map_err(|e| ExplainError::Tensor(e.to_string()))?;
        for (row, values) in member_heat.pixels.chunks_exact(region.width).enumerate() {
            let start = (region.y + row) * width + region.x;
            for (sum, value) in heat.pixels[start..start + region.width]
                .iter_mut()
                .zip(values)
            {
                *sum += value / networks.len() as f32;
            }
        }
        probabilities.push(1.0 / (1.0 + (-cam.logit).exp()));
    }
    let zones = match lungs {
        None => Vec::new(),
        Some(mask) => {
            if (mask.width, mask.height) != (width, height) {
                return Err(ExplainError::MaskSize {
                    path: path.to_path_buf(),
                    mask_width: mask.width,
                    mask_height: mask.height,
                    width,
                    height,
                });
            }
            for (h, &lung) in heat.pixels.iter_mut().zip(&mask.pixels) {
                if !lung {
                    *h = 0.0;
                }
            }
            zone_scores(&heat, mask)
        }
    };
    Ok(Explanation {
        heat,
        probability: mean_log_odds(&probabilities),
        zones,
    })
}

/// The feature-resolution map stretched over the X-ray by the one resize of `preprocess`.
///
/// Exact for specs that stretch the X-ray to the input (every preset); with a letterbox spec
/// the map's padded border is stretched over the X-ray too.
fn upsample(
    map: &GrayImage,
    width: usize,
    height: usize,
) -> Result<GrayImage, cxr_core::preprocess::PreprocessError> {
    let spec = PreprocessSpec {
        input_size: InputSize { width, height },
        resize: ResizeMode::Stretch,
        clahe: None,
        ..PreprocessSpec::default()
    };
    let mut heat = fit(map, &spec)?;
    heat.pixels.iter_mut().for_each(|h| *h = h.clamp(0.0, 1.0));
    Ok(heat)
}

/// Mean and peak heat per lung zone of `mask`.
fn zone_scores(heat: &GrayImage, mask: &LungMask) -> Vec<ZoneScore> {
    let zones = LungZones::of(mask);
    Zone::ALL
        .iter()
        .filter_map(|&zone| {
            let values: Vec<f32> = (0..heat.height)
                .flat_map(|y| (0..heat.width).map(move |x| (x, y)))
                .filter(|&(x, y)| zones.zone_at(x, y) == Some(zone))
                .map(|(x, y)| heat.get(x, y))
                .collect();
            (!values.is_empty()).then(|| ZoneScore {
                zone: zone.name(),
                mean: values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64,
                max: f64::from(values.iter().copied().fold(0.0_f32, f32::max)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_scores_average_heat_inside_each_zone() {
        // Two 2-pixel-wide lungs on a 6x6 picture, heat only in the right lung's top row.
        let mut pixels = vec![false; 36];
        for y in 0..6 {
            for x in [0, 1, 4, 5] {
                pixels[y * 6 + x] = true;
            }
        }
        let mask = LungMask {
            width: 6,
            height: 6,
            pixels,
        };
        let mut heat = GrayImage::filled(6, 6, 0.0);
        heat.pixels[0] = 1.0;
        let scores = zone_scores(&heat, &mask);
        assert_eq!(scores.len(), 6);
        let upper_right = scores.iter().find(|s| s.zone == "right upper").unwrap();
        assert_eq!((upper_right.mean, upper_right.max), (0.25, 1.0));
        assert!(
            scores
                .iter()
                .filter(|s| s.zone != "right upper")
                .all(|s| s.max == 0.0)
        );
    }
}

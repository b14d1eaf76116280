//! Lung masks after segmentation: cleanup of a probability map, sanity checks, the lung
//! bounding box and crop, per-zone geometry, and overlap scores against a reference mask.

mod checks;
mod cleanup;
mod components;
mod crop;
mod morphology;
mod overlap;
pub(crate) mod render;
mod zones;

pub use checks::{CheckFailure, CheckLimits, LungCheck, check};
pub use cleanup::{CleanupParams, clean};
pub use crop::{BoundingBox, CropOutcome, LungCropSpec, LungCropper, crop_to_lungs};
pub use morphology::{close, dilate, erode};
pub use overlap::Overlap;
pub use render::{RenderError, mask_png, outline_layer_png, outline_png, scale_nearest};
pub use zones::{Level, LungZones, Side, Zone};

use crate::image::GrayImage;

/// A binary lung mask, row-major: `true` where there is lung.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LungMask {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<bool>,
}

impl LungMask {
    /// Pixels at or above `threshold` are lung (a probability map, or a 0/1 reference mask).
    pub fn from_threshold(image: &GrayImage, threshold: f32) -> Self {
        Self {
            width: image.width,
            height: image.height,
            pixels: image.pixels.iter().map(|&p| p >= threshold).collect(),
        }
    }

    /// The mask as an image: 1 for lung, 0 elsewhere.
    pub fn to_image(&self) -> GrayImage {
        GrayImage {
            width: self.width,
            height: self.height,
            pixels: self
                .pixels
                .iter()
                .map(|&p| f32::from(u8::from(p)))
                .collect(),
        }
    }

    /// Number of lung pixels.
    pub fn area(&self) -> usize {
        self.pixels.iter().filter(|&&p| p).count()
    }

    #[inline]
    pub fn get(&self, x: usize, y: usize) -> bool {
        self.pixels[y * self.width + x]
    }
}

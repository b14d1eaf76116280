//! The lung crop: the bounding box of the cleaned mask plus a margin, applied to the X-ray.
//! A mask that failed its checks is not cropped to; the full image is kept and the reason told.

use serde::{Deserialize, Serialize};

use super::LungMask;
use super::checks::LungCheck;
use crate::image::GrayImage;

/// A rectangle of pixels: columns `x..x + width`, rows `y..y + height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl BoundingBox {
    /// The smallest box holding every lung pixel; `None` for an empty mask.
    pub fn of(mask: &LungMask) -> Option<Self> {
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for (index, _) in mask.pixels.iter().enumerate().filter(|(_, lung)| **lung) {
            let (x, y) = (index % mask.width, index / mask.width);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        (x0 != usize::MAX).then(|| Self {
            x: x0,
            y: y0,
            width: x1 - x0 + 1,
            height: y1 - y0 + 1,
        })
    }

    /// The box grown by `margin` times its own width (each side) and height (top and
    /// bottom), kept inside an image of `image_width` x `image_height`.
    pub fn with_margin(&self, margin: f32, image_width: usize, image_height: usize) -> Self {
        let grow = |size: usize| (margin.max(0.0) * size as f32).round() as usize;
        let (dx, dy) = (grow(self.width), grow(self.height));
        let x = self.x.saturating_sub(dx);
        let y = self.y.saturating_sub(dy);
        let right = (self.x + self.width + dx).min(image_width);
        let bottom = (self.y + self.height + dy).min(image_height);
        Self {
            x,
            y,
            width: right - x,
            height: bottom - y,
        }
    }

    /// The same box in an image scaled from `from` to `to` (width, height) pixels.
    pub fn scaled(&self, from: (usize, usize), to: (usize, usize)) -> Self {
        let sx = to.0 as f64 / from.0.max(1) as f64;
        let sy = to.1 as f64 / from.1.max(1) as f64;
        let x = (self.x as f64 * sx).floor() as usize;
        let y = (self.y as f64 * sy).floor() as usize;
        let right = (((self.x + self.width) as f64 * sx).ceil() as usize).min(to.0);
        let bottom = (((self.y + self.height) as f64 * sy).ceil() as usize).min(to.1);
        Self {
            x,
            y,
            width: right.saturating_sub(x).max(1),
            height: bottom.saturating_sub(y).max(1),
        }
    }

    /// The pixels of `image` inside the box (clipped to the image).
    pub fn crop(&self, image: &GrayImage) -> GrayImage {
        let x = self.x.min(image.width.saturating_sub(1));
        let y = self.y.min(image.height.saturating_sub(1));
        let width = self.width.min(image.width - x).max(1);
        let height = self.height.min(image.height - y).max(1);
        let mut pixels = Vec::with_capacity(width * height);
        for row in y..y + height {
            let start = row * image.width + x;
            pixels.extend_from_slice(&image.pixels[start..start + width]);
        }
        GrayImage {
            width,
            height,
            pixels,
        }
    }
}

/// The crop step a model card can name: crop the X-ray to its lungs plus `margin` (a fraction
/// of the lung box's width and height on each side) before resizing it to the network input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LungCropSpec {
    pub margin: f32,
    /// SHA-256 of the lung model file that finds the lungs. Training fills it in, so that a
    /// classifier is only ever fed the crops of the lung model it was trained with.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lung_model_sha256: String,
}

impl Default for LungCropSpec {
    fn default() -> Self {
        // Keeps the costophrenic angles and the apices, which the mask edge can cut.
        Self {
            margin: 0.05,
            lung_model_sha256: String::new(),
        }
    }
}

/// Finds the lungs for the `lung_crop` step. cxr-core runs no networks: cxr-nn's lung model
/// implements this, and the preprocessing cache and the screener call it.
pub trait LungCropper: Send + Sync {
    /// SHA-256 of the lung model file, as [`LungCropSpec::lung_model_sha256`] records it.
    fn lung_model_sha256(&self) -> &str;

    /// `image` cut to its lungs, or kept whole with the reason (see [`crop_to_lungs`]).
    fn crop(&self, image: &GrayImage, spec: &LungCropSpec) -> Result<CropOutcome, String>;
}

/// What cropping did to one image.
#[derive(Debug, Clone, PartialEq)]
pub struct CropOutcome {
    pub image: GrayImage,
    /// The box cut out, in the X-ray's pixels; `None` when the full image was kept.
    pub region: Option<BoundingBox>,
    /// Why the full image was kept, when it was.
    pub fallback: Option<String>,
}

/// Crops `image` to the lungs of `mask` (same size or proportionally scaled) when `check`
/// passed; otherwise keeps the full image and records why.
pub fn crop_to_lungs(
    image: &GrayImage,
    mask: &LungMask,
    check: &LungCheck,
    spec: &LungCropSpec,
) -> CropOutcome {
    let keep_full = |reason: String| CropOutcome {
        image: image.clone(),
        region: None,
        fallback: Some(reason),
    };
    if !check.passed() {
        return keep_full(format!("lung checks failed: {}", check.summary()));
    }
    let Some(lungs) = BoundingBox::of(mask) else {
        return keep_full("no lung found".to_string());
    };
    let region = lungs
        .with_margin(spec.margin, mask.width, mask.height)
        .scaled((mask.width, mask.height), (image.width, image.height));
    CropOutcome {
        image: region.crop(image),
        region: Some(region),
        fallback: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lungs::checks::{CheckLimits, check};
    use crate::lungs::components::tests::mask_from;

    #[test]
    fn the_box_holds_every_lung_pixel_and_the_margin_stays_inside() {
        let mask = mask_from(&[
            "..........", //
            "..##..#...", //
            "..##..##..", //
            "..........",
        ]);
        let lungs = BoundingBox::of(&mask).unwrap();
        assert_eq!(
            lungs,
            BoundingBox {
                x: 2,
                y: 1,
                width: 6,
                height: 2
            }
        );
        let grown = lungs.with_margin(0.5, 10, 4);
        assert_eq!(
            grown,
            BoundingBox {
                x: 0,
                y: 0,
                width: 10,
                height: 4
            }
        );
        assert!(BoundingBox::of(&mask_from(&["...."])).is_none());
    }

    #[test]
    fn a_mask_at_another_resolution_crops_the_same_region() {
        let lungs = BoundingBox {
            x: 10,
            y: 20,
            width: 30,
            height: 40,
        };
        let scaled = lungs.scaled((100, 100), (200, 300));
        assert_eq!(
            scaled,
            BoundingBox {
                x: 20,
                y: 60,
                width: 60,
                height: 120
            }
        );
    }

    #[test]
    fn crops_when_the_checks_pass_and_keeps_the_full_image_when_not() {
        let mask = mask_from(&[
            "........", //
            ".##..##.", //
            ".##..##.", //
            "........",
        ]);
        let pixels = (0..32).map(|i| i as f32 / 31.0).collect();
        let image = GrayImage::new(8, 4, pixels).unwrap();
        let limits = CheckLimits {
            min_area: 0.1,
            ..CheckLimits::default()
        };
        let passed = check(&mask, &limits);
        let spec = LungCropSpec {
            margin: 0.0,
            ..LungCropSpec::default()
        };
        let cropped = crop_to_lungs(&image, &mask, &passed, &spec);
        assert_eq!((cropped.image.width, cropped.image.height), (6, 2));
        assert_eq!(cropped.image.get(0, 0), image.get(1, 1));
        assert!(cropped.fallback.is_none());

        let failed = check(
            &mask,
            &CheckLimits {
                min_area: 0.9,
                ..limits
            },
        );
        let kept = crop_to_lungs(&image, &mask, &failed, &spec);
        assert_eq!(kept.image, image);
        assert!(kept.region.is_none());
        assert!(kept.fallback.unwrap().contains("less than 90.0 %"));
    }
}

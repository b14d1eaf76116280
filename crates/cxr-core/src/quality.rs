//! The quality gate: flags decoded images that are unlikely to be scored meaningfully (blank,
//! too small, extreme aspect, likely inverted, likely not a frontal chest X-ray); never fails.
//!
//! The image-statistics checks look at a 64 x 64 thumbnail of the picture. A frontal chest
//! X-ray (MONOCHROME2) has a bright vertical band in the middle (spine, mediastinum, heart)
//! between two darker lung fields, and is roughly mirror-symmetric. If the band is clearly
//! darker than the lungs, the picture is most likely inverted (a MONOCHROME1 image whose
//! inversion was lost on the way); if the picture is far from mirror-symmetric, it is most
//! likely not a frontal chest view (a lateral view, another body part). The thresholds were
//! set on the Shenzhen set (`tests/quality_shenzhen.rs` prints the figures): disease makes
//! lungs asymmetric (the least symmetric Shenzhen X-ray correlates 0.09 with its mirror), so
//! only grossly asymmetric pictures are flagged as not frontal; the inversion threshold
//! trades a few flagged upright X-rays (under 1 %) for catching 95 % or more of inverted ones.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::image::{DecodedImage, GrayImage};
use crate::preprocess::{InputSize, PreprocessSpec, ResizeMode, fit};

/// Something about an image that makes its score doubtful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QualityFlag {
    /// (Nearly) one grey level: a blank or failed exposure.
    Blank,
    /// Shorter side below [`QualityConfig::min_side`].
    TooSmall,
    /// Longer side more than [`QualityConfig::max_aspect_ratio`] times the shorter.
    ExtremeAspectRatio,
    /// Middle band darker than the lung fields: probably inverted (MONOCHROME1 not applied).
    LikelyInverted,
    /// DICOM says lateral view.
    LateralView,
    /// Far from mirror-symmetric: probably not a frontal chest X-ray.
    LikelyNotFrontal,
}

impl QualityFlag {
    /// The kebab-case name used in CSV and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blank => "blank",
            Self::TooSmall => "too-small",
            Self::ExtremeAspectRatio => "extreme-aspect-ratio",
            Self::LikelyInverted => "likely-inverted",
            Self::LateralView => "lateral-view",
            Self::LikelyNotFrontal => "likely-not-frontal",
        }
    }

    /// A sentence for people.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::Blank => "the image is (nearly) uniform: blank or failed exposure",
            Self::TooSmall => "the image is too small to screen reliably",
            Self::ExtremeAspectRatio => "the aspect ratio is far from a chest X-ray's",
            Self::LikelyInverted => {
                "the image looks inverted (bones dark, lungs bright): check the photometric interpretation"
            }
            Self::LateralView => {
                "the DICOM view position is lateral; the model reads frontal views"
            }
            Self::LikelyNotFrontal => "the image does not look like a frontal chest X-ray",
        }
    }
}

impl fmt::Display for QualityFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The gate's thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QualityConfig {
    /// Shortest acceptable side in source pixels.
    pub min_side: usize,
    pub max_aspect_ratio: f64,
    /// Below this standard deviation of gray values (0..1) the image counts as blank.
    pub min_std_dev: f64,
    /// Flag inversion when middle band minus lung fields is below this (gray levels 0..1).
    pub max_inverted_contrast: f64,
    /// Flag "not frontal" when the mirror correlation is below this.
    pub min_mirror_correlation: f64,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            min_side: 256,
            max_aspect_ratio: 2.0,
            min_std_dev: 0.02,
            max_inverted_contrast: -0.03,
            min_mirror_correlation: 0.05,
        }
    }
}

/// The gate's verdict and the statistics behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub flags: Vec<QualityFlag>,
    /// Standard deviation of gray values in [0, 1].
    pub std_dev: f64,
    /// Mean of the middle band minus mean of the lung fields (positive on a normal frontal CXR).
    pub band_contrast: f64,
    /// Pearson correlation between the thumbnail and its mirror image.
    pub mirror_correlation: f64,
}

impl QualityReport {
    pub fn is_clean(&self) -> bool {
        self.flags.is_empty()
    }
}

const THUMBNAIL: usize = 64;
/// DICOM View Position values of lateral views (PS3.3 C.8.11.5.1.1 plus common variants).
const LATERAL_VIEWS: &[&str] = &["LL", "RL", "LAT", "LATERAL", "LLD", "RLD"];

/// Runs every check on `image`.
pub fn check_quality(image: &DecodedImage, config: &QualityConfig) -> QualityReport {
    let info = &image.info;
    let (short, long) = {
        let (w, h) = (info.original_width, info.original_height);
        (w.min(h), w.max(h))
    };
    let std_dev = std_dev(&image.image.pixels);
    let thumbnail = thumbnail(&image.image);
    let band_contrast = thumbnail.as_ref().map_or(0.0, band_contrast);
    let mirror_correlation = thumbnail.as_ref().map_or(0.0, mirror_correlation);
    let blank = std_dev < config.min_std_dev;
    let lateral = info
        .view_position
        .as_deref()
        .is_some_and(|view| LATERAL_VIEWS.contains(&view.trim().to_ascii_uppercase().as_str()));
    let checks = [
        (QualityFlag::Blank, blank),
        (QualityFlag::TooSmall, short < config.min_side),
        (
            QualityFlag::ExtremeAspectRatio,
            long as f64 > config.max_aspect_ratio * short.max(1) as f64,
        ),
        // Statistics of a blank picture mean nothing: one flag is enough there.
        (
            QualityFlag::LikelyInverted,
            !blank && band_contrast < config.max_inverted_contrast,
        ),
        (QualityFlag::LateralView, lateral),
        (
            QualityFlag::LikelyNotFrontal,
            !blank && !lateral && mirror_correlation < config.min_mirror_correlation,
        ),
    ];
    QualityReport {
        flags: checks
            .into_iter()
            .filter_map(|(flag, raised)| raised.then_some(flag))
            .collect(),
        std_dev,
        band_contrast,
        mirror_correlation,
    }
}

fn std_dev(values: &[f32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let squares: f64 = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
    (squares / n).sqrt()
}

/// The image squashed to 64 x 64 by the one resize of `preprocess`; `None` if it has no pixels.
fn thumbnail(image: &GrayImage) -> Option<GrayImage> {
    let spec = PreprocessSpec {
        input_size: InputSize {
            width: THUMBNAIL,
            height: THUMBNAIL,
        },
        resize: ResizeMode::Stretch,
        clahe: None,
        ..PreprocessSpec::default()
    };
    fit(image, &spec).ok()
}

/// Mean gray of the region with corners at fractions (x0, y0) and (x1, y1) of the image.
fn region_mean(image: &GrayImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64)) -> f64 {
    let to_px = |f: f64, size: usize| ((f * size as f64) as usize).min(size);
    let (xs, ys) = (
        to_px(x0, image.width)..to_px(x1, image.width),
        to_px(y0, image.height)..to_px(y1, image.height),
    );
    let count = xs.len() * ys.len();
    let sum: f64 = ys
        .flat_map(|y| xs.clone().map(move |x| (x, y)))
        .map(|(x, y)| f64::from(image.get(x, y)))
        .sum();
    sum / count.max(1) as f64
}

/// Chest rows: below the clavicles, above the diaphragm on most frontal films.
const CHEST_ROWS: (f64, f64) = (0.2, 0.55);

/// Middle band (spine, mediastinum) minus both lung fields, over the chest rows.
fn band_contrast(image: &GrayImage) -> f64 {
    let (top, bottom) = CHEST_ROWS;
    let band = region_mean(image, (0.42, top), (0.58, bottom));
    let right_lung = region_mean(image, (0.15, top), (0.35, bottom));
    let left_lung = region_mean(image, (0.65, top), (0.85, bottom));
    band - (right_lung + left_lung) / 2.0
}

/// How mirror-symmetric the chest's column profile is: the best Pearson correlation between
/// the profile and its mirror about any centre within 15 % of the middle, since patients are
/// rarely centred exactly. 1 for a symmetric picture.
fn mirror_correlation(image: &GrayImage) -> f64 {
    let (top, bottom) = CHEST_ROWS;
    let rows = (top * image.height as f64) as usize..(bottom * image.height as f64) as usize;
    let profile: Vec<f32> = (0..image.width)
        .map(|x| rows.clone().map(|y| image.get(x, y)).sum::<f32>() / rows.len().max(1) as f32)
        .collect();
    let max_shift = (image.width as f64 * 0.15) as isize;
    (-max_shift..=max_shift)
        .filter_map(|shift| {
            // Columns x and 2c - x mirror each other about centre c = width / 2 + shift / 2.
            let mirror = |x: usize| {
                (image.width as isize - 1 + shift - x as isize)
                    .try_into()
                    .ok()
            };
            let (left, right): (Vec<f32>, Vec<f32>) = (0..image.width)
                .filter_map(|x| {
                    let m: usize = mirror(x)?;
                    (m < image.width).then(|| (profile[x], profile[m]))
                })
                .unzip();
            (left.len() >= image.width / 2).then(|| pearson(&left, &right))
        })
        .fold(0.0, f64::max)
}

fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let (mean_a, mean_b) = (mean(a), mean(b));
    let (mut covariance, mut var_a, mut var_b) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - mean_a, f64::from(y) - mean_b);
        covariance += dx * dy;
        var_a += dx * dx;
        var_b += dy * dy;
    }
    if var_a == 0.0 || var_b == 0.0 {
        return 0.0;
    }
    covariance / (var_a * var_b).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{Photometric, SourceFormat};

    /// A cartoon frontal CXR: gray body, two dark lung fields, a bright middle band.
    fn cartoon_chest(width: usize, height: usize) -> GrayImage {
        let mut pixels = vec![0.0; width * height];
        for y in 0..height {
            for x in 0..width {
                let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
                let lung = (0.15..0.40).contains(&fx) || (0.60..0.85).contains(&fx);
                let chest = (0.2..0.8).contains(&fy);
                pixels[y * width + x] = match (chest, lung) {
                    (true, true) => 0.2,
                    (true, false) if (0.42..0.58).contains(&fx) => 0.9,
                    _ => 0.6,
                } + 0.05 * (fy * 7.0).sin();
            }
        }
        GrayImage::new(width, height, pixels).unwrap()
    }

    fn decoded(image: GrayImage) -> DecodedImage {
        DecodedImage::new(image, SourceFormat::Png, 8, Photometric::Monochrome2)
    }

    #[test]
    fn a_frontal_chest_passes() {
        let report = check_quality(&decoded(cartoon_chest(300, 320)), &QualityConfig::default());
        assert!(report.is_clean(), "{report:?}");
        assert!(report.band_contrast > 0.3 && report.mirror_correlation > 0.9);
    }

    #[test]
    fn blank_small_and_stretched_images_are_flagged() {
        let config = QualityConfig::default();
        let blank = check_quality(&decoded(GrayImage::filled(300, 300, 0.4)), &config);
        assert_eq!(blank.flags, vec![QualityFlag::Blank]);
        let small = check_quality(&decoded(cartoon_chest(50, 50)), &config);
        assert_eq!(small.flags, vec![QualityFlag::TooSmall]);
        let wide = check_quality(&decoded(cartoon_chest(900, 300)), &config);
        assert_eq!(wide.flags, vec![QualityFlag::ExtremeAspectRatio]);
    }

    #[test]
    fn an_inverted_chest_is_flagged() {
        let mut image = cartoon_chest(300, 300);
        image.pixels.iter_mut().for_each(|p| *p = 1.0 - *p);
        let report = check_quality(&decoded(image), &QualityConfig::default());
        assert_eq!(report.flags, vec![QualityFlag::LikelyInverted]);
    }

    #[test]
    fn lateral_view_position_and_asymmetric_pictures_are_flagged() {
        let mut lateral = decoded(cartoon_chest(300, 300));
        lateral.info.view_position = Some("ll ".into());
        let report = check_quality(&lateral, &QualityConfig::default());
        assert_eq!(report.flags, vec![QualityFlag::LateralView]);

        // A bright wedge on one side only, like a lateral view's spine and sternum.
        let mut pixels = vec![0.2; 300 * 300];
        for y in 0..300 {
            for x in 0..(300 - y).min(150) {
                pixels[y * 300 + x] = 0.9;
            }
        }
        let lopsided = decoded(GrayImage::new(300, 300, pixels).unwrap());
        let report = check_quality(&lopsided, &QualityConfig::default());
        assert!(
            report.flags.contains(&QualityFlag::LikelyNotFrontal),
            "{report:?}"
        );
    }

    #[test]
    fn flags_serialise_as_their_names() {
        let json = serde_json::to_string(&QualityFlag::LikelyInverted).unwrap();
        assert_eq!(json, "\"likely-inverted\"");
        assert_eq!(QualityFlag::TooSmall.to_string(), "too-small");
    }
}

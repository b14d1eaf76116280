//! From a lung probability map to a clean binary mask: threshold, morphological closing,
//! hole filling, and only the two largest regions (the lungs) kept.

use serde::{Deserialize, Serialize};

use super::LungMask;
use super::components::components;
use super::morphology::close;
use crate::image::GrayImage;

/// Cleanup settings. Sizes are fractions of the image's shorter side or area, so the same
/// settings suit a 256 px map and a 3000 px one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanupParams {
    /// Probability at and above which a pixel is lung.
    pub threshold: f32,
    /// Closing radius as a fraction of the shorter side.
    pub closing_radius: f32,
    /// Regions smaller than this fraction of the image are noise, never a lung.
    pub min_region: f32,
}

impl Default for CleanupParams {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            // 1 % of 512 px is 5 px: closes ragged edges, too small to join the two lungs.
            closing_radius: 0.01,
            min_region: 0.005,
        }
    }
}

/// The cleaned mask of `probabilities` (values in [0, 1]).
pub fn clean(probabilities: &GrayImage, params: &CleanupParams) -> LungMask {
    let mask = LungMask::from_threshold(probabilities, params.threshold);
    let shorter = mask.width.min(mask.height) as f32;
    let radius = (params.closing_radius * shorter).round() as usize;
    let mut mask = close(&mask, radius);
    fill_holes(&mut mask);
    keep_two_largest(&mut mask, params.min_region);
    mask
}

/// Sets every background region that does not reach the image border to lung.
fn fill_holes(mask: &mut LungMask) {
    for hole in components(mask, false) {
        if !hole.touches_border {
            for index in hole.pixels {
                mask.pixels[index] = true;
            }
        }
    }
}

/// Clears every region but the two largest, and those below `min_region` of the image.
fn keep_two_largest(mask: &mut LungMask, min_region: f32) {
    let min_area = (min_region * mask.pixels.len() as f32).ceil() as usize;
    for (rank, region) in components(mask, true).into_iter().enumerate() {
        if rank >= 2 || region.area() < min_area {
            for index in region.pixels {
                mask.pixels[index] = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lungs::components::tests::mask_from;

    fn probabilities(rows: &[&str]) -> GrayImage {
        mask_from(rows).to_image()
    }

    #[test]
    fn keeps_the_two_largest_regions_filled() {
        let map = probabilities(&[
            "..........", //
            ".###..###.", //
            ".#.#..###.", //
            ".###..###.", //
            "..........", //
            "#.........",
        ]);
        let params = CleanupParams {
            closing_radius: 0.0,
            min_region: 0.0,
            ..CleanupParams::default()
        };
        let cleaned = clean(&map, &params);
        let expected = mask_from(&[
            "..........", //
            ".###..###.", //
            ".###..###.", //
            ".###..###.", //
            "..........", //
            "..........",
        ]);
        assert_eq!(cleaned, expected);
    }

    #[test]
    fn regions_below_the_minimum_are_dropped_even_when_among_the_two_largest() {
        let map = probabilities(&[
            "#####.....", //
            "#####.....", //
            "..........", //
            ".........#",
        ]);
        let params = CleanupParams {
            closing_radius: 0.0,
            min_region: 0.05,
            ..CleanupParams::default()
        };
        assert_eq!(clean(&map, &params).area(), 10);
    }

    #[test]
    fn the_threshold_decides_what_counts() {
        let map = GrayImage::new(4, 1, vec![0.2, 0.49, 0.5, 0.9]).unwrap();
        let params = CleanupParams {
            closing_radius: 0.0,
            min_region: 0.0,
            ..CleanupParams::default()
        };
        assert_eq!(clean(&map, &params).pixels, vec![false, false, true, true]);
    }
}

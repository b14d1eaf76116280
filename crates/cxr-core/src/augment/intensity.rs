//! The photometric half of augmentation: contrast, brightness and gamma jitter, which mimic
//! the exposure and processing differences between X-ray sites.

use crate::image::GrayImage;

use super::AugmentParams;

/// Applies contrast (about the image mean), then brightness, clamps to [0, 1], then gamma.
pub(super) fn jitter(image: &mut GrayImage, params: &AugmentParams) {
    let mean = image.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / image.pixels.len() as f64;
    let mean = mean as f32;
    for p in &mut image.pixels {
        let adjusted = ((*p - mean) * params.contrast + mean + params.brightness).clamp(0.0, 1.0);
        *p = if params.gamma == 1.0 {
            adjusted
        } else {
            adjusted.powf(params.gamma)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A five-step gradient from black to white, jittered by `params`.
    fn jittered(params: AugmentParams) -> Vec<f32> {
        let mut image = GrayImage::new(5, 1, vec![0.0, 0.25, 0.5, 0.75, 1.0]).unwrap();
        jitter(&mut image, &params);
        image.pixels
    }

    #[test]
    fn neutral_params_change_nothing() {
        assert_eq!(
            jittered(AugmentParams::identity()),
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
    }

    #[test]
    fn brightness_adds_and_clamps() {
        let params = AugmentParams {
            brightness: 0.25,
            ..AugmentParams::identity()
        };
        assert_eq!(jittered(params), vec![0.25, 0.5, 0.75, 1.0, 1.0]);
    }

    #[test]
    fn contrast_scales_about_the_mean() {
        let params = AugmentParams {
            contrast: 0.5,
            ..AugmentParams::identity()
        };
        assert_eq!(jittered(params), vec![0.25, 0.375, 0.5, 0.625, 0.75]);
    }

    #[test]
    fn gamma_above_one_darkens_mid_tones_and_keeps_the_ends() {
        let params = AugmentParams {
            gamma: 2.0,
            ..AugmentParams::identity()
        };
        assert_eq!(jittered(params), vec![0.0, 0.0625, 0.25, 0.5625, 1.0]);
    }
}

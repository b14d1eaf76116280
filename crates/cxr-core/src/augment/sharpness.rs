//! The detector half of augmentation: Gaussian blur and additive Gaussian noise, which mimic
//! the sharpness and noise differences between X-ray machines and sites.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::image::GrayImage;

/// Gaussian blur of standard deviation `sigma` pixels, separable, border pixels repeated.
pub(super) fn blur(image: &GrayImage, sigma: f32) -> GrayImage {
    if sigma <= 0.0 || image.pixels.is_empty() {
        return image.clone();
    }
    let radius = (3.0 * sigma).ceil() as isize;
    let weights: Vec<f32> = (-radius..=radius)
        .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    let (width, height) = (image.width as isize, image.height as isize);
    let pass = |pixels: &[f32], along_rows: bool| -> Vec<f32> {
        let mut out = vec![0.0; pixels.len()];
        for y in 0..height {
            for x in 0..width {
                let mut sum = 0.0;
                for (k, w) in weights.iter().enumerate() {
                    let d = k as isize - radius;
                    let (sx, sy) = match along_rows {
                        true => ((x + d).clamp(0, width - 1), y),
                        false => (x, (y + d).clamp(0, height - 1)),
                    };
                    sum += w * pixels[(sy * width + sx) as usize];
                }
                out[(y * width + x) as usize] = sum / total;
            }
        }
        out
    };
    GrayImage {
        width: image.width,
        height: image.height,
        pixels: pass(&pass(&image.pixels, true), false),
    }
}

/// Adds Gaussian noise of standard deviation `sigma` (Box-Muller, one draw pair per pixel from
/// a stream seeded by `seed`), clamped to [0, 1].
pub(super) fn add_noise(image: &mut GrayImage, sigma: f32, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for p in &mut image.pixels {
        let (u, v): (f32, f32) = (rng.random::<f32>().max(f32::MIN_POSITIVE), rng.random());
        let normal = (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos();
        *p = (*p + sigma * normal).clamp(0.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(width: usize) -> GrayImage {
        let pixels = (0..width * 3)
            .map(|i| if i % width < width / 2 { 0.0 } else { 1.0 })
            .collect();
        GrayImage::new(width, 3, pixels).unwrap()
    }

    #[test]
    fn blur_softens_an_edge_and_keeps_flat_regions_and_the_mean() {
        let image = step(40);
        let blurred = blur(&image, 2.0);
        let row = &blurred.pixels[40..80];
        // Far from the edge nothing changes; at the edge the step becomes a ramp.
        assert!(row[0].abs() < 1e-6 && (row[39] - 1.0).abs() < 1e-6);
        assert!(row[19] > 0.2 && row[19] < 0.5 && row[20] > 0.5 && row[20] < 0.8);
        assert!(row.windows(2).all(|w| w[1] >= w[0]));
        let mean = |p: &[f32]| p.iter().sum::<f32>() / p.len() as f32;
        assert!((mean(&blurred.pixels) - mean(&image.pixels)).abs() < 1e-4);
    }

    #[test]
    fn zero_blur_is_the_identity() {
        let image = step(10);
        assert_eq!(blur(&image, 0.0), image);
    }

    #[test]
    fn noise_has_the_asked_spread_is_seeded_and_stays_in_range() {
        let mut image = GrayImage::new(100, 100, vec![0.5; 10_000]).unwrap();
        let mut again = image.clone();
        add_noise(&mut image, 0.05, 3);
        add_noise(&mut again, 0.05, 3);
        assert_eq!(image, again);
        let n = image.pixels.len() as f32;
        let mean = image.pixels.iter().sum::<f32>() / n;
        let sd = (image.pixels.iter().map(|p| (p - mean).powi(2)).sum::<f32>() / n).sqrt();
        assert!((mean - 0.5).abs() < 0.003, "mean {mean}");
        assert!((sd - 0.05).abs() < 0.003, "sd {sd}");
        let mut black = GrayImage::new(10, 10, vec![0.0; 100]).unwrap();
        add_noise(&mut black, 0.3, 4);
        assert!(black.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
    }
}

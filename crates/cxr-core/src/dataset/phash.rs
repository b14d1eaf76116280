//! Perceptual hash (DCT pHash) of a grayscale image, to find near-duplicate X-rays: copies
//! that were resized, re-encoded or slightly re-windowed have hashes a few bits apart.

use serde::Serialize;

use crate::image::GrayImage;

/// Side of the reduced image the DCT runs on.
const REDUCED: usize = 32;
/// Side of the block of lowest frequencies kept: 16 x 16 = 256 bits.
const KEPT: usize = 16;
const WORDS: usize = KEPT * KEPT / 64;

/// 256 bits: each says whether one low-frequency DCT coefficient is above their median.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PerceptualHash([u64; WORDS]);

impl PerceptualHash {
    /// Number of differing bits (0 = same picture at this resolution, 256 at most).
    pub fn distance(&self, other: &PerceptualHash) -> u32 {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }
}

/// Hashes the picture content, independent of its size and of small changes.
pub fn perceptual_hash(image: &GrayImage) -> PerceptualHash {
    let reduced = area_reduce(image);
    let coefficients = low_frequency_dct(&reduced);
    let mut sorted = coefficients;
    sorted.sort_by(f32::total_cmp);
    let median = (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0;
    let mut words = [0u64; WORDS];
    for (i, c) in coefficients.iter().enumerate() {
        if *c > median {
            words[i / 64] |= 1 << (i % 64);
        }
    }
    PerceptualHash(words)
}

/// Shrinks to `REDUCED` x `REDUCED` by averaging each output pixel's box of source pixels.
fn area_reduce(image: &GrayImage) -> [[f32; REDUCED]; REDUCED] {
    let span = |out: usize, len: usize| {
        let start = out * len / REDUCED;
        start..((out + 1) * len / REDUCED).max(start + 1).min(len)
    };
    let mut reduced = [[0.0; REDUCED]; REDUCED];
    for (oy, row) in reduced.iter_mut().enumerate() {
        let ys = span(oy, image.height);
        for (ox, value) in row.iter_mut().enumerate() {
            let xs = span(ox, image.width);
            let mut sum = 0.0;
            for y in ys.clone() {
                sum += image.pixels[y * image.width + xs.start..y * image.width + xs.end]
                    .iter()
                    .sum::<f32>();
            }
            *value = sum / (ys.len() * xs.len()).max(1) as f32;
        }
    }
    reduced
}

/// The `KEPT` x `KEPT` lowest-frequency DCT-II coefficients, row-major.
fn low_frequency_dct(reduced: &[[f32; REDUCED]; REDUCED]) -> [f32; KEPT * KEPT] {
    let mut basis = [[0.0f32; REDUCED]; KEPT];
    for (u, row) in basis.iter_mut().enumerate() {
        for (x, value) in row.iter_mut().enumerate() {
            let angle = std::f32::consts::PI * (2 * x + 1) as f32 * u as f32 / (2 * REDUCED) as f32;
            *value = angle.cos();
        }
    }
    // Separable: transform rows, then columns.
    let mut rows = [[0.0f32; KEPT]; REDUCED];
    for (y, out) in rows.iter_mut().enumerate() {
        for (u, value) in out.iter_mut().enumerate() {
            *value = (0..REDUCED).map(|x| reduced[y][x] * basis[u][x]).sum();
        }
    }
    let mut coefficients = [0.0f32; KEPT * KEPT];
    for v in 0..KEPT {
        for u in 0..KEPT {
            coefficients[v * KEPT + u] = (0..REDUCED).map(|y| rows[y][u] * basis[v][y]).sum();
        }
    }
    coefficients
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth random picture (a sum of waves up to 6 cycles across), varied by `seed`.
    fn picture(width: usize, height: usize, seed: u64) -> GrayImage {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let waves: Vec<[f32; 5]> = (0..12)
            .map(|_| std::array::from_fn(|_| rng.random_range(0.0..6.0)))
            .collect();
        let pixels = (0..width * height)
            .map(|i| {
                let u = (i % width) as f32 / width as f32;
                let v = (i / width) as f32 / height as f32;
                let sum: f32 = waves
                    .iter()
                    .map(|[a, fx, fy, px, py]| {
                        a * (fx * u * 6.3 + px).cos() * (fy * v * 6.3 + py).cos()
                    })
                    .sum();
                0.5 + sum / 60.0
            })
            .collect();
        GrayImage::new(width, height, pixels).unwrap()
    }

    /// Nearest-neighbour resampling, to make a resized copy.
    fn resample(image: &GrayImage, width: usize, height: usize) -> GrayImage {
        let pixels = (0..width * height)
            .map(|i| {
                image.get(
                    i % width * image.width / width,
                    i / width * image.height / height,
                )
            })
            .collect();
        GrayImage::new(width, height, pixels).unwrap()
    }

    #[test]
    fn resized_and_brightened_copies_stay_close() {
        let picture = picture(512, 512, 1);
        let original = perceptual_hash(&picture);
        let smaller = perceptual_hash(&resample(&picture, 300, 280));
        let mut brighter = picture.clone();
        brighter
            .pixels
            .iter_mut()
            .for_each(|p| *p = *p * 0.9 + 0.05);
        let distance = original.distance(&smaller);
        assert!(distance <= 12, "{distance}");
        assert_eq!(original.distance(&perceptual_hash(&brighter)), 0);
    }

    #[test]
    fn different_pictures_are_far_apart() {
        let a = perceptual_hash(&picture(512, 512, 1));
        let b = perceptual_hash(&picture(512, 512, 2));
        assert!(a.distance(&b) > 64, "{}", a.distance(&b));
        assert_eq!(a.distance(&a), 0);
    }

    #[test]
    fn tiny_and_non_square_images_hash_without_panicking() {
        let tall = perceptual_hash(&picture(16, 40, 1));
        let flat = perceptual_hash(&GrayImage::filled(20, 20, 0.5));
        assert!(tall.distance(&flat) <= 256);
    }
}

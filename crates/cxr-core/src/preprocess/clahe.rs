//! Contrast-limited adaptive histogram equalisation (CLAHE), as OpenCV does it: a clipped
//! histogram per tile, and each pixel mapped through its four nearest tiles' curves, blended.

use crate::image::GrayImage;

use super::spec::ClaheParams;

/// Histogram resolution: 8-bit levels, as OpenCV uses for 8-bit images.
const BINS: usize = 256;

/// Equalises `image` (values in [0, 1]); returns an image of the same size, values in [0, 1].
pub(crate) fn clahe(image: &GrayImage, params: &ClaheParams) -> GrayImage {
    let (width, height) = (image.width, image.height);
    let tiles_x = params.tiles_x.clamp(1, width);
    let tiles_y = params.tiles_y.clamp(1, height);
    let bins: Vec<u8> = image.pixels.iter().map(|&v| bin_of(v)).collect();

    let mut curves = Vec::with_capacity(tiles_x * tiles_y);
    for ty in 0..tiles_y {
        let rows = tile_span(ty, tiles_y, height);
        for tx in 0..tiles_x {
            let cols = tile_span(tx, tiles_x, width);
            let mut histogram = [0u32; BINS];
            for y in rows.clone() {
                for &b in &bins[y * width + cols.start..y * width + cols.end] {
                    histogram[usize::from(b)] += 1;
                }
            }
            let pixels = (rows.len() * cols.len()) as u32;
            curves.push(equalisation_curve(histogram, pixels, params.clip_limit));
        }
    }

    let columns: Vec<Blend> = (0..width).map(|x| Blend::new(x, width, tiles_x)).collect();
    let mut pixels = Vec::with_capacity(width * height);
    for y in 0..height {
        let row = Blend::new(y, height, tiles_y);
        let (top, bottom) = (row.low * tiles_x, row.high * tiles_x);
        for (x, column) in columns.iter().enumerate() {
            let b = usize::from(bins[y * width + x]);
            let level = |tile: usize| curves[tile][b];
            let upper =
                level(top + column.low) * (1.0 - column.t) + level(top + column.high) * column.t;
            let lower = level(bottom + column.low) * (1.0 - column.t)
                + level(bottom + column.high) * column.t;
            pixels.push(upper * (1.0 - row.t) + lower * row.t);
        }
    }
    GrayImage {
        width,
        height,
        pixels,
    }
}

/// The 8-bit level of a value in [0, 1] (out-of-range values clamp).
fn bin_of(value: f32) -> u8 {
    (value.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

/// Pixel range of tile `index` of `tiles` along an axis of `len` pixels (tiles differ by at
/// most one pixel when `len` is not a multiple of `tiles`).
fn tile_span(index: usize, tiles: usize, len: usize) -> std::ops::Range<usize> {
    index * len / tiles..(index + 1) * len / tiles
}

/// The clipped, redistributed cumulative histogram of one tile, as output levels in [0, 1].
fn equalisation_curve(mut histogram: [u32; BINS], pixels: u32, clip_limit: f32) -> [f32; BINS] {
    if clip_limit > 0.0 {
        // OpenCV: the limit is `clip_limit` times the mean bin count, at least 1.
        let limit = ((clip_limit * pixels as f32 / BINS as f32) as u32).max(1);
        let mut excess = 0u32;
        for count in &mut histogram {
            excess += count.saturating_sub(limit);
            *count = (*count).min(limit);
        }
        // Spread the clipped counts evenly, then the remainder over evenly spaced bins.
        let per_bin = excess / BINS as u32;
        let remainder = (excess % BINS as u32) as usize;
        for count in &mut histogram {
            *count += per_bin;
        }
        if let Some(step) = BINS.checked_div(remainder) {
            for count in histogram.iter_mut().step_by(step.max(1)).take(remainder) {
                *count += 1;
            }
        }
    }
    let mut curve = [0.0f32; BINS];
    let mut running = 0u32;
    for (level, count) in curve.iter_mut().zip(histogram) {
        running += count;
        *level = running as f32 / pixels as f32;
    }
    curve
}

/// Which two tile centres a pixel lies between along one axis, and how far towards the second.
struct Blend {
    low: usize,
    high: usize,
    t: f32,
}

impl Blend {
    fn new(position: usize, len: usize, tiles: usize) -> Self {
        // Position in tile units, where tile i's centre sits at i.
        let tile_position = (position as f32 + 0.5) * tiles as f32 / len as f32 - 0.5;
        let low = tile_position.floor();
        let t = tile_position - low;
        let clamp = |i: f32| (i.max(0.0) as usize).min(tiles - 1);
        Self {
            low: clamp(low),
            high: clamp(low + 1.0),
            t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(tiles: usize, clip_limit: f32) -> ClaheParams {
        ClaheParams {
            tiles_x: tiles,
            tiles_y: tiles,
            clip_limit,
        }
    }

    fn std_dev(pixels: &[f32]) -> f32 {
        let mean = pixels.iter().sum::<f32>() / pixels.len() as f32;
        (pixels.iter().map(|p| (p - mean).powi(2)).sum::<f32>() / pixels.len() as f32).sqrt()
    }

    /// A dim, low-contrast image whose left half is darker than its right.
    fn low_contrast(width: usize, height: usize) -> GrayImage {
        let pixels = (0..width * height)
            .map(|i| {
                let (x, y) = (i % width, i / width);
                0.3 + 0.1 * x as f32 / width as f32 + 0.02 * ((x * 7 + y * 13) % 5) as f32
            })
            .collect();
        GrayImage::new(width, height, pixels).unwrap()
    }

    #[test]
    fn output_keeps_size_and_range_and_raises_contrast() {
        let image = low_contrast(120, 90);
        let out = clahe(&image, &params(8, 2.0));
        assert_eq!((out.width, out.height), (120, 90));
        assert!(out.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
        assert!(std_dev(&out.pixels) > 2.0 * std_dev(&image.pixels));
    }

    #[test]
    fn one_tile_without_clipping_is_plain_histogram_equalisation() {
        // Each of 256 levels appears once: the equalised curve maps level i to (i + 1) / 256.
        let pixels: Vec<f32> = (0..256).map(|i| i as f32 / 255.0).collect();
        let image = GrayImage::new(16, 16, pixels).unwrap();
        let out = clahe(&image, &params(1, 0.0));
        for (i, p) in out.pixels.iter().enumerate() {
            assert!((p - (i + 1) as f32 / 256.0).abs() < 1e-6, "{i}: {p}");
        }
    }

    #[test]
    fn clipping_limits_how_far_a_flat_image_is_pushed() {
        // All pixels in one bin: unclipped, the curve jumps to 1 at that level; clipped at 2x
        // the mean count, almost all of it is spread evenly, so the level stays near its rank.
        let image = GrayImage::filled(64, 64, 0.5);
        let unclipped = clahe(&image, &params(1, 0.0));
        let clipped = clahe(&image, &params(1, 2.0));
        assert!(unclipped.pixels.iter().all(|&p| p == 1.0));
        assert!(
            clipped.pixels.iter().all(|&p| (p - 0.5).abs() < 0.02),
            "{}",
            clipped.pixels[0]
        );
    }

    #[test]
    fn mapping_is_monotonic_within_a_tile() {
        let pixels: Vec<f32> = (0..64 * 64)
            .map(|i| ((i * 37) % 101) as f32 / 100.0)
            .collect();
        let image = GrayImage::new(64, 64, pixels).unwrap();
        let out = clahe(&image, &params(1, 2.0));
        let mut pairs: Vec<(f32, f32)> = image.pixels.iter().copied().zip(out.pixels).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(pairs.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn tiles_blend_without_seams() {
        // A smooth ramp equalised per tile must stay smooth: no jump at tile borders much
        // larger than the jumps inside tiles.
        let pixels: Vec<f32> = (0..256 * 64)
            .map(|i| (i % 256) as f32 / 255.0 * 0.5)
            .collect();
        let image = GrayImage::new(256, 64, pixels).unwrap();
        let out = clahe(&image, &params(4, 2.0));
        let steps: Vec<f32> = out.pixels[..256]
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .collect();
        let largest = steps.iter().copied().fold(0.0, f32::max);
        assert!(largest < 0.05, "largest step {largest}");
    }

    #[test]
    fn more_tiles_than_pixels_are_reduced_to_fit() {
        let image = low_contrast(5, 3);
        let out = clahe(&image, &params(8, 2.0));
        assert_eq!(out.pixels.len(), 15);
        assert!(out.pixels.iter().all(|p| p.is_finite()));
    }
}

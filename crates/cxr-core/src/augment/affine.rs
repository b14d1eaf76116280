//! The geometric half of augmentation: one affine map (rotation, shift, zoom about the image
//! centre) sampled bilinearly, as Keras' `apply_affine_transform` does with order=1.

use crate::image::GrayImage;

use super::{AugmentParams, FillMode};

/// Maps output pixel (row, col) to the input position it samples.
///
/// Keras composes rotation · shift · zoom in (row, col) coordinates about the centre c:
/// `input = c + R (Z (p - c) + t)`. Keras' shift `t` is where the output samples from, so the
/// content moves by `-t`; our params say where the content moves, hence `t = -shift`.
/// (Keras before 2.2.5 centred on `size / 2 + 0.5`, a pixel off; this uses the true centre,
/// as later versions do.)
struct InverseMap {
    /// input_row = a[0] * row + a[1] * col + a[2]; input_col likewise with b.
    a: [f64; 3],
    b: [f64; 3],
}

impl InverseMap {
    fn new(params: &AugmentParams, width: usize, height: usize) -> Self {
        let (sin, cos) = f64::from(params.rotation_degrees).to_radians().sin_cos();
        let (zoom_row, zoom_col) = (f64::from(params.zoom_y), f64::from(params.zoom_x));
        let shift_row = -f64::from(params.shift_y) * height as f64;
        let shift_col = -f64::from(params.shift_x) * width as f64;
        let (centre_row, centre_col) = ((height as f64 - 1.0) / 2.0, (width as f64 - 1.0) / 2.0);
        // Linear part L = R · Z, translation R · t, then conjugate by the centre shift.
        let linear = [
            [cos * zoom_row, -sin * zoom_col],
            [sin * zoom_row, cos * zoom_col],
        ];
        let moved = [
            cos * shift_row - sin * shift_col,
            sin * shift_row + cos * shift_col,
        ];
        let offset = |i: usize, centre: f64| {
            centre + moved[i] - linear[i][0] * centre_row - linear[i][1] * centre_col
        };
        Self {
            a: [linear[0][0], linear[0][1], offset(0, centre_row)],
            b: [linear[1][0], linear[1][1], offset(1, centre_col)],
        }
    }
}

/// Warps `image` by the geometric part of `params` (flip excluded).
pub(super) fn warp(image: &GrayImage, params: &AugmentParams) -> GrayImage {
    let (width, height) = (image.width, image.height);
    let map = InverseMap::new(params, width, height);
    let mut pixels = Vec::with_capacity(width * height);
    for row in 0..height {
        let r = row as f64;
        let mut input_row = map.a[0] * r + map.a[2];
        let mut input_col = map.b[0] * r + map.b[2];
        for _ in 0..width {
            pixels.push(sample(image, input_row, input_col, params.fill));
            input_row += map.a[1];
            input_col += map.b[1];
        }
    }
    GrayImage {
        width,
        height,
        pixels,
    }
}

/// Bilinear sample at (row, col). Neighbours outside the image are the nearest edge pixel
/// (scipy's 'nearest': past the edge the image repeats its border) or the constant (scipy's
/// 'grid-constant': blended with the image near the edge).
fn sample(image: &GrayImage, row: f64, col: f64, fill: FillMode) -> f32 {
    let (row0, col0) = (floor(row), floor(col));
    let (dr, dc) = ((row - row0) as f32, (col - col0) as f32);
    let (max_row, max_col) = ((image.height - 1) as f64, (image.width - 1) as f64);
    let [top_left, top_right, bottom_left, bottom_right] =
        if row0 >= 0.0 && col0 >= 0.0 && row0 < max_row && col0 < max_col {
            // All four neighbours inside: the common case, read directly.
            let at = row0 as usize * image.width + col0 as usize;
            let p = &image.pixels;
            [
                p[at],
                p[at + 1],
                p[at + image.width],
                p[at + image.width + 1],
            ]
        } else {
            let pixel = |r: f64, c: f64| -> f32 {
                let inside = (0.0..=max_row).contains(&r) && (0.0..=max_col).contains(&c);
                match fill {
                    _ if inside => image.get(c as usize, r as usize),
                    FillMode::Constant { value } => value,
                    FillMode::Nearest => image.get(
                        c.clamp(0.0, max_col) as usize,
                        r.clamp(0.0, max_row) as usize,
                    ),
                }
            };
            [
                pixel(row0, col0),
                pixel(row0, col0 + 1.0),
                pixel(row0 + 1.0, col0),
                pixel(row0 + 1.0, col0 + 1.0),
            ]
        };
    let top = top_left + (top_right - top_left) * dc;
    let bottom = bottom_left + (bottom_right - bottom_left) * dc;
    top + (bottom - top) * dr
}

/// `x.floor()` without a libm call (baseline x86-64 has no rounding instruction); exact for
/// |x| < 2^63, and positions far outside the image only need to stay outside.
#[inline]
fn floor(x: f64) -> f64 {
    let truncated = x as i64 as f64;
    if truncated > x {
        truncated - 1.0
    } else {
        truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(width: usize, height: usize, x: usize, y: usize) -> GrayImage {
        let mut image = GrayImage::filled(width, height, 0.0);
        image.pixels[y * width + x] = 1.0;
        image
    }

    fn brightest(image: &GrayImage) -> (usize, usize) {
        let index = (0..image.pixels.len())
            .max_by(|&a, &b| image.pixels[a].total_cmp(&image.pixels[b]))
            .unwrap_or(0);
        (index % image.width, index / image.width)
    }

    #[test]
    fn fast_floor_matches_floor() {
        for x in [-2.5, -1.0, -0.25, 0.0, 0.75, 1.0, 298.999, 1e12] {
            assert_eq!(floor(x), x.floor(), "{x}");
        }
    }

    #[test]
    fn identity_params_leave_the_image_unchanged() {
        let pixels = (0..30 * 20).map(|i| (i % 17) as f32 / 16.0).collect();
        let image = GrayImage::new(30, 20, pixels).unwrap();
        assert_eq!(warp(&image, &AugmentParams::identity()), image);
    }

    #[test]
    fn a_shift_moves_content_by_that_fraction_of_the_size() {
        let image = marker(100, 50, 40, 20);
        let params = AugmentParams {
            shift_x: 0.1,
            shift_y: -0.2,
            ..AugmentParams::identity()
        };
        let out = warp(&image, &params);
        assert_eq!(brightest(&out), (50, 10));
        assert!((out.get(50, 10) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_quarter_turn_moves_the_top_to_the_right() {
        // 11 x 11, centre (5, 5): a marker 3 above the centre ends 3 right of it.
        let image = marker(11, 11, 5, 2);
        let params = AugmentParams {
            rotation_degrees: 90.0,
            ..AugmentParams::identity()
        };
        assert_eq!(brightest(&warp(&image, &params)), (8, 5));
    }

    #[test]
    fn zoom_above_one_shrinks_content_towards_the_centre() {
        // Keras' sense: zoom 2 samples twice as far from the centre, so content halves.
        let image = marker(21, 21, 18, 10);
        let params = AugmentParams {
            zoom_x: 2.0,
            zoom_y: 2.0,
            ..AugmentParams::identity()
        };
        let out = warp(&image, &params);
        // Output column 14 samples input column 10 + 2 * 4 = 18.
        assert_eq!(brightest(&out), (14, 10));
    }

    #[test]
    fn nearest_fill_repeats_the_border() {
        let pixels = (0..8 * 8).map(|i| (i % 8) as f32 / 7.0).collect();
        let image = GrayImage::new(8, 8, pixels).unwrap();
        let params = AugmentParams {
            shift_x: 0.5,
            ..AugmentParams::identity()
        };
        let out = warp(&image, &params);
        for y in 0..8 {
            // The left half samples left of column 0: all the leftmost column's value.
            for x in 0..=4 {
                assert_eq!(out.get(x, y), 0.0);
            }
            assert!((out.get(7, y) - 3.0 / 7.0).abs() < 1e-6);
        }
    }

    #[test]
    fn constant_fill_uses_the_value_outside() {
        let image = GrayImage::filled(8, 8, 1.0);
        let params = AugmentParams {
            shift_x: 0.5,
            fill: FillMode::Constant { value: 0.25 },
            ..AugmentParams::identity()
        };
        let out = warp(&image, &params);
        assert_eq!(out.get(0, 3), 0.25);
        assert_eq!(out.get(7, 3), 1.0);
    }
}

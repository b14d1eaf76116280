//! Dense KxK convolutions as image-to-column tiles and one matrix product each, written
//! straight into the NCHW output (bias and ReLU applied while the tile is in cache).
//!
//! Why not flex's own kernel: it converts the whole input to NHWC on one thread, allocates a
//! result per 512-pixel tile and scatters it into the output column by column. On Inception V3's
//! stem (3x3 convolutions over 147x147 and 71x71 maps) that overhead exceeds the arithmetic.
//! Here the columns are gathered from NCHW rows (runs of `memcpy` at stride 1), tiles are whole
//! output rows, and `gemm` writes the output rows in place.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{Activation, ConvGeometry as Geometry, SharedOutput};

/// Output pixels per tile, aimed at: the column buffer (`patch_len x tile` floats) then stays
/// within a few hundred KiB, and a tile is still wide enough for the matrix kernel to run at speed.
/// (Sizing tiles so that their output stays in cache too was measured slower: narrower
/// products lose more than the bias and activation passes gain.)
const TILE_FLOATS: usize = 96 * 1024;
const MIN_TILE_PIXELS: usize = 256;

/// `y[b] = activation(weight @ columns(x[b]) + bias)` for every image of `x` (`[batch,
/// in_channels, height, width]`, row-major). `weight` is `[out_channels, in_channels, kh, kw]`,
/// row-major, groups = 1, dilation 1. Returns `[batch, out_channels, out_h, out_w]`, row-major.
/// A 1x1, stride-1, unpadded convolution reads its columns straight from the input.
pub fn conv2d(
    x: &[f32],
    batch: usize,
    geometry: &Geometry,
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
) -> Vec<f32> {
    let g = *geometry;
    let [in_h, in_w] = g.in_size;
    let [out_h, out_w] = g.out_size;
    let image_len = g.in_channels * in_h * in_w;
    let out_len = g.out_channels * g.out_pixels();
    g.assert_dense_operands(batch, x, weight, bias);

    let rows_per_tile = (TILE_FLOATS / g.patch_len())
        .max(MIN_TILE_PIXELS)
        .div_ceil(out_w)
        .clamp(1, out_h.max(1));
    let tiles_per_image = out_h.div_ceil(rows_per_tile);
    // Left unwritten here: the tasks write every value (see the end).
    let mut output = Vec::<f32>::with_capacity(batch * out_len);
    let out = SharedOutput(output.spare_capacity_mut().as_mut_ptr().cast());

    (0..batch * tiles_per_image)
        .into_par_iter()
        .for_each_init(Vec::new, |columns, task| {
            let (image, tile) = (task / tiles_per_image, task % tiles_per_image);
            let rows = tile * rows_per_tile..((tile + 1) * rows_per_tile).min(out_h);
            let pixels = rows.len() * out_w;
            let input = &x[image * image_len..][..image_len];
            // The product's right-hand side: `patch_len` rows of `pixels` values, `row_step` apart.
            let (rhs, row_step) = if g.reads_input_as_columns() {
                (&input[rows.start * out_w..], g.in_size[0] * g.in_size[1])
            } else {
                columns.resize(g.patch_len() * pixels, 0.0);
                gather_columns(columns, input, &g, rows.clone());
                (&columns[..], pixels)
            };

            let first = image * out_len + rows.start * out_w;
            let row_stride = g.out_pixels();
            // SAFETY: this task alone writes output columns `first..first + pixels` of each of
            // the image's `out_channels` rows (tiles of one image are disjoint row ranges, and
            // images are disjoint blocks), all inside `output`, which outlives the loop.
            unsafe {
                let dst = out.at(first);
                if let Some(bias) = bias {
                    for (channel, &b) in bias.iter().enumerate() {
                        std::slice::from_raw_parts_mut(
                            dst.add(channel * row_stride).cast::<MaybeUninit<f32>>(),
                            pixels,
                        )
                        .fill(MaybeUninit::new(b));
                    }
                }
                gemm::gemm(
                    g.out_channels,
                    pixels,
                    g.patch_len(),
                    dst,
                    1,
                    row_stride as isize,
                    bias.is_some(),
                    weight.as_ptr(),
                    1,
                    g.patch_len() as isize,
                    rhs.as_ptr(),
                    1,
                    row_step as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
                if activation != Activation::Identity {
                    for channel in 0..g.out_channels {
                        activation.apply(std::slice::from_raw_parts_mut(
                            dst.add(channel * row_stride),
                            pixels,
                        ));
                    }
                }
            }
        });
    // SAFETY: every value is written: the tiles of an image cover all its output rows, and in
    // each tile `gemm` writes every column of every channel (over the bias filled first, or
    // without reading, `read_dst` being off).
    unsafe { output.set_len(batch * out_len) };
    output
}

/// Fills `columns` (`[patch_len, pixels]`, row-major) with the input values under each kernel
/// tap for output rows `rows` of one image: row `(c, ky, kx)` holds input channel `c` shifted by
/// the tap, zero where the tap falls in the padding.
// Out of line so that profiles show the gathering apart from the matrix product.
#[inline(never)]
fn gather_columns(columns: &mut [f32], input: &[f32], g: &Geometry, rows: std::ops::Range<usize>) {
    let [in_h, in_w] = g.in_size;
    let [_, out_w] = g.out_size;
    let [kh, kw] = g.kernel;
    let [stride_y, stride_x] = g.stride;
    let [pad_y, pad_x] = g.pad_begin;
    let pixels = rows.len() * out_w;
    for (tap, column_row) in columns.chunks_exact_mut(pixels).enumerate() {
        let (channel, ky, kx) = (tap / (kh * kw), tap / kw % kh, tap % kw);
        let plane = &input[channel * in_h * in_w..][..in_h * in_w];
        let inside = super::outputs_reading_input(in_w, pad_x, kx, stride_x, out_w);
        let (first_x, end_x) = (inside.start, inside.end);
        for (oy, segment) in rows.clone().zip(column_row.chunks_exact_mut(out_w)) {
            let iy = (oy * stride_y + ky).wrapping_sub(pad_y);
            if iy >= in_h {
                segment.fill(0.0);
                continue;
            }
            let line = &plane[iy * in_w..][..in_w];
            segment[..first_x].fill(0.0);
            segment[end_x..].fill(0.0);
            if first_x == end_x {
                continue;
            }
            let start = first_x * stride_x + kx - pad_x;
            if stride_x == 1 {
                segment[first_x..end_x].copy_from_slice(&line[start..start + end_x - first_x]);
            } else {
                for (value, source) in segment[first_x..end_x]
                    .iter_mut()
                    .zip(line[start..].iter().step_by(stride_x))
                {
                    *value = *source;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::kernels::reference::{
        leave_nans_for_the_next_allocation, naive_conv2d, test_values, worst_difference,
    };

    #[test]
    fn matches_the_definition_for_strides_padding_and_odd_kernels() {
        // (kernel, stride, pad_begin, input size, output size): padded and valid, stride 1
        // and 2, square and 1x7 / 7x1 kernels, TensorFlow's asymmetric "same" (more padding
        // after than before), and a map with more output rows than one tile.
        let cases = [
            ([3, 3], [1, 1], [1, 1], [9, 11], [9, 11]),
            ([3, 3], [1, 1], [0, 0], [9, 11], [7, 9]),
            ([3, 3], [2, 2], [0, 0], [9, 11], [4, 5]),
            ([3, 3], [2, 2], [0, 0], [10, 10], [5, 5]),
            ([1, 7], [1, 1], [0, 3], [6, 8], [6, 8]),
            ([7, 1], [1, 1], [3, 0], [8, 6], [8, 6]),
            ([5, 5], [2, 2], [1, 2], [7, 9], [4, 5]),
            ([3, 3], [1, 1], [1, 1], [150, 3], [150, 3]),
            // 1x1: read in place, unless strided.
            ([1, 1], [1, 1], [0, 0], [9, 11], [9, 11]),
            ([1, 1], [1, 1], [0, 0], [150, 3], [150, 3]),
            ([1, 1], [2, 2], [0, 0], [9, 11], [5, 6]),
        ];
        for (kernel, stride, pad_begin, in_size, out_size) in cases {
            let g = Geometry {
                in_channels: 3,
                in_size,
                out_channels: 5,
                kernel,
                stride,
                pad_begin,
                out_size,
            };
            let batch = 2;
            let x = test_values(batch * 3 * in_size[0] * in_size[1], 1);
            let weight = test_values(5 * g.patch_len(), 2);
            let bias = test_values(5, 3);
            let expected = naive_conv2d(&x, batch, &g, &weight, &bias);
            leave_nans_for_the_next_allocation(expected.len());
            let got = conv2d(&x, batch, &g, &weight, Some(&bias), Activation::Identity);
            let worst = worst_difference(&expected, &got);
            assert!(worst < 1e-5, "{g:?}: {worst}");

            leave_nans_for_the_next_allocation(expected.len());
            let rectified = conv2d(&x, batch, &g, &weight, Some(&bias), Activation::Relu);
            assert!(rectified.iter().zip(&got).all(|(r, v)| *r == v.max(0.0)));
            leave_nans_for_the_next_allocation(expected.len());
            let unbiased = conv2d(&x, batch, &g, &weight, None, Activation::Identity);
            assert!(
                unbiased.iter().all(|v| v.is_finite()),
                "{g:?}: a value left unwritten"
            );
            let shift = unbiased
                .chunks(out_size[0] * out_size[1])
                .zip(got.chunks(out_size[0] * out_size[1]))
                .enumerate()
                .map(|(plane, (u, v))| (v[0] - u[0] - bias[plane % 5]).abs())
                .fold(0.0f32, f32::max);
            assert!(shift < 1e-5, "{g:?}: bias {shift}");
        }
    }
}

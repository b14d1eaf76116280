//! Winograd's F(2, 7) for stride-1 1x7 and 7x1 convolutions (Inception V3's 17 px blocks):
//! each pair of outputs along the filter's axis costs 8 multiplications per channel pair
//! instead of 14.
//!
//! Each run of 8 inputs along the axis and each 7-tap filter is transformed to 8 values; each
//! tile's 8 products transform back to its 2 outputs. The interpolation points are 0, +-1, +-2,
//! +-1/2 and infinity, whose transforms have the smallest coefficients for 8 points (at most
//! 21/4), so results stay within about 1e-6 of the direct convolution's on unit-sized values.

use super::{Activation, Algorithm, Geometry, Range, SharedOutput, Workspace, slices_of};
use super::{padded_line, write_output_line};

/// Inputs per tile: 2 outputs + 7 taps - 1.
const POSITIONS: usize = 8;

/// `B^T`: tile inputs to transformed values (a row per position), which `combine` applies.
#[cfg(test)]
const INPUT: [[f32; 8]; 8] = [
    [-1.0, 0.0, 5.25, 0.0, -5.25, 0.0, 1.0, 0.0],
    [0.0, 1.0, 1.0, -4.25, -4.25, 1.0, 1.0, 0.0],
    [0.0, -1.0, 1.0, 4.25, -4.25, -1.0, 1.0, 0.0],
    [0.0, 0.5, 0.25, -2.5, -1.25, 2.0, 1.0, 0.0],
    [0.0, -0.5, 0.25, 2.5, -1.25, -2.0, 1.0, 0.0],
    [0.0, 2.0, 4.0, -2.5, -5.0, 0.5, 1.0, 0.0],
    [0.0, -2.0, 4.0, 2.5, -5.0, -0.5, 1.0, 0.0],
    [0.0, -1.0, 0.0, 5.25, 0.0, -5.25, 0.0, 1.0],
];

/// `G`: filter taps to transformed values (a row per position); row `k` of a finite point
/// `p` is `p^j / prod_(l != k) (p - p_l)`.
const FILTER: [[f32; 7]; 8] = [
    [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [-2.0 / 9.0; 7],
    [
        -2.0 / 9.0,
        2.0 / 9.0,
        -2.0 / 9.0,
        2.0 / 9.0,
        -2.0 / 9.0,
        2.0 / 9.0,
        -2.0 / 9.0,
    ],
    [
        1.0 / 90.0,
        1.0 / 45.0,
        2.0 / 45.0,
        4.0 / 45.0,
        8.0 / 45.0,
        16.0 / 45.0,
        32.0 / 45.0,
    ],
    [
        1.0 / 90.0,
        -1.0 / 45.0,
        2.0 / 45.0,
        -4.0 / 45.0,
        8.0 / 45.0,
        -16.0 / 45.0,
        32.0 / 45.0,
    ],
    [
        32.0 / 45.0,
        16.0 / 45.0,
        8.0 / 45.0,
        4.0 / 45.0,
        2.0 / 45.0,
        1.0 / 45.0,
        1.0 / 90.0,
    ],
    [
        32.0 / 45.0,
        -16.0 / 45.0,
        8.0 / 45.0,
        -4.0 / 45.0,
        2.0 / 45.0,
        -1.0 / 45.0,
        1.0 / 90.0,
    ],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
];

/// `A^T`'s second row (products to the second output); its first sums positions 0 to 6.
/// Positions 2, 4 and 6 take the negated coefficient of the one before.
const SECOND_OUTPUT: [f32; 8] = [0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 1.0];

/// F(2, 7) along one axis of the map.
pub struct F2_7 {
    /// Along rows (a 1x7 filter): a tile row is an output row, its tiles pairs of columns.
    /// Along columns (7x1): a tile row is a pair of output rows, its tiles single columns.
    along_rows: bool,
}

impl F2_7 {
    pub const ALONG_ROWS: Self = Self { along_rows: true };
    pub const ALONG_COLUMNS: Self = Self { along_rows: false };
}

impl Algorithm for F2_7 {
    fn positions(&self) -> usize {
        POSITIONS
    }

    fn tiling(&self, g: &Geometry) -> (usize, usize) {
        let [out_h, out_w] = g.out_size;
        match self.along_rows {
            true => (out_h, out_w.div_ceil(2)),
            false => (out_h.div_ceil(2), out_w),
        }
    }

    /// The gathered tile inputs, then one padded input row (with the six extra inputs the
    /// last tiles read) or one output row.
    fn scratch_len(&self, g: &Geometry, tiles: usize) -> usize {
        POSITIONS * tiles + 2 * g.out_size[1] + 6
    }

    fn transform_filter(&self, taps: &[f32], transformed: &mut [f32]) {
        for (value, weights) in transformed.iter_mut().zip(&FILTER) {
            *value = weights.iter().zip(taps).map(|(w, t)| w * t).sum();
        }
    }

    fn transform_input(&self, x: &[f32], g: &Geometry, rows: Range, work: &mut Workspace) {
        let channels = g.in_channels;
        let [in_h, in_w] = g.in_size;
        let [pad_y, pad_x] = g.pad_begin;
        let (rows_per_image, row_tiles) = self.tiling(g);
        let tiles = rows.len() * row_tiles;
        let mut blocks = slices_of::<POSITIONS>(&mut work.tiles, channels * tiles);
        // Each tile's 8 inputs gathered, input `i` of every tile of the task in `inputs[i]`,
        // so that the transform runs over whole tasks rather than over rows of a few tiles.
        let (inputs, line) = work.rows.split_at_mut(POSITIONS * tiles);
        let mut inputs = slices_of::<POSITIONS>(inputs, tiles);
        for channel in 0..channels {
            for (row_index, tile_row) in rows.clone().enumerate() {
                let (image, r) = (tile_row / rows_per_image, tile_row % rows_per_image);
                let plane = &x[(image * channels + channel) * in_h * in_w..][..in_h * in_w];
                let at = row_index * row_tiles;
                if self.along_rows {
                    // Tile `t` reads padded columns `2 t .. 2 t + 8`.
                    let line = &mut line[..2 * row_tiles + 6];
                    padded_line(in_h, in_w, r.wrapping_sub(pad_y), pad_x, plane, line);
                    for (t, window) in line.windows(POSITIONS).step_by(2).enumerate() {
                        for (input, &value) in inputs.iter_mut().zip(window) {
                            input[at + t] = value;
                        }
                    }
                } else {
                    // Tile row `r` reads padded rows `2 r .. 2 r + 8`.
                    for (i, input) in inputs.iter_mut().enumerate() {
                        let iy = (2 * r + i).wrapping_sub(pad_y);
                        padded_line(in_h, in_w, iy, pad_x, plane, &mut input[at..][..row_tiles]);
                    }
                }
            }
            let mut outputs = blocks
                .each_mut()
                .map(|block| &mut block[channel * tiles..][..tiles]);
            combine(&inputs.each_ref().map(|input| &**input), &mut outputs);
        }
    }

    fn transform_output(
        &self,
        work: &mut Workspace,
        g: &Geometry,
        rows: Range,
        bias: Option<&[f32]>,
        activation: Activation,
        out: SharedOutput,
    ) {
        let filters = g.out_channels;
        let [out_h, out_w] = g.out_size;
        let (rows_per_image, row_tiles) = self.tiling(g);
        let tiles = rows.len() * row_tiles;
        // Whole positions at a time, in place: the second output into position 7, then the
        // first into position 0.
        let n = filters * tiles;
        let mut m = slices_of::<POSITIONS>(&mut work.products, n);
        {
            let [first, m1, m2, m3, m4, m5, m6, second] = m.each_mut().map(|p| &mut p[..n]);
            let c = SECOND_OUTPUT;
            for i in 0..n {
                let (plus, minus) = (
                    [m1[i] + m2[i], m3[i] + m4[i], m5[i] + m6[i]],
                    [m1[i] - m2[i], m3[i] - m4[i], m5[i] - m6[i]],
                );
                second[i] += c[1] * minus[0] + c[3] * minus[1] + c[5] * minus[2];
                first[i] += plus[0] + plus[1] + plus[2];
            }
        }
        let (first, second) = (&*m[0], &*m[7]);

        let line = &mut work.rows[..2 * row_tiles];
        for (row_index, tile_row) in rows.enumerate() {
            let (image, r) = (tile_row / rows_per_image, tile_row % rows_per_image);
            for filter in 0..filters {
                let at = filter * tiles + row_index * row_tiles;
                let (first, second) = (&first[at..][..row_tiles], &second[at..][..row_tiles]);
                let shift = bias.map_or(0.0, |bias| bias[filter]);
                let plane = (image * filters + filter) * out_h;
                if self.along_rows {
                    for ((pair, a), b) in line.chunks_exact_mut(2).zip(first).zip(second) {
                        (pair[0], pair[1]) = (*a, *b);
                    }
                    // SAFETY: this task alone writes the output rows of its tile rows (tasks
                    // hold disjoint tile rows), all inside the output buffer.
                    let start = (plane + r) * out_w;
                    unsafe { write_output_line(&mut line[..out_w], shift, activation, out, start) };
                } else {
                    for (dy, values) in [first, second].into_iter().enumerate() {
                        let oy = 2 * r + dy;
                        if oy >= out_h {
                            break;
                        }
                        let line = &mut line[..out_w];
                        line.copy_from_slice(values);
                        // SAFETY: as above.
                        let start = (plane + oy) * out_w;
                        unsafe { write_output_line(line, shift, activation, out, start) };
                    }
                }
            }
        }
    }
}

/// `outputs[k] = sum_i INPUT[k][i] inputs[i]`, element by element, in one pass: rows 1 and 2
/// of `INPUT` (and 3 and 4, 5 and 6) are the sum and difference of the same two terms.
fn combine(inputs: &[&[f32]; POSITIONS], outputs: &mut [&mut [f32]; POSITIONS]) {
    let n = outputs[0].len();
    let d = inputs.map(|input| &input[..n]);
    let [o0, o1, o2, o3, o4, o5, o6, o7] = outputs.each_mut().map(|output| &mut output[..n]);
    for i in 0..n {
        let [d0, d1, d2, d3, d4, d5, d6, d7] = d.map(|input| input[i]);
        o0[i] = (d6 - d0) + 5.25 * (d2 - d4);
        o7[i] = (d7 - d1) + 5.25 * (d3 - d5);
        let (even, odd) = (d2 + d6 - 4.25 * d4, d1 + d5 - 4.25 * d3);
        (o1[i], o2[i]) = (even + odd, even - odd);
        let (even, odd) = (d6 + 0.25 * d2 - 1.25 * d4, 0.5 * d1 - 2.5 * d3 + 2.0 * d5);
        (o3[i], o4[i]) = (even + odd, even - odd);
        let (even, odd) = (d6 + 4.0 * d2 - 5.0 * d4, 2.0 * d1 - 2.5 * d3 + 0.5 * d5);
        (o5[i], o6[i]) = (even + odd, even - odd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::kernels::winograd::tests::assert_matches_the_definition;

    #[test]
    fn matches_the_definition_along_both_axes() {
        // (channels, filters, pad_begin along the filter, input size, output size) of a 1x7
        // filter; each case runs transposed as a 7x1 one too: "same" (Inception V3's 17 px
        // maps), valid, one-sided padding, an odd number of outputs (a half-empty last tile),
        // maps narrower than a tile and wider than a task.
        let cases = [
            (16, 16, 3, [17, 17], [17, 17]),
            (24, 16, 0, [5, 12], [5, 6]),
            (16, 20, 3, [4, 9], [4, 9]),
            (17, 16, 1, [3, 5], [3, 1]),
            (16, 16, 0, [2, 7], [2, 1]),
            (16, 16, 3, [3, 2], [3, 2]),
            (16, 16, 3, [2, 301], [2, 301]),
        ];
        for (channels, filters, pad, [rows, columns], [out_rows, out_columns]) in cases {
            let along_rows = Geometry {
                in_channels: channels,
                in_size: [rows, columns],
                out_channels: filters,
                kernel: [1, 7],
                stride: [1, 1],
                pad_begin: [0, pad],
                out_size: [out_rows, out_columns],
            };
            let along_columns = Geometry {
                in_size: [columns, rows],
                kernel: [7, 1],
                pad_begin: [pad, 0],
                out_size: [out_columns, out_rows],
                ..along_rows
            };
            assert_matches_the_definition(&F2_7::ALONG_ROWS, &along_rows, 1e-5);
            assert_matches_the_definition(&F2_7::ALONG_COLUMNS, &along_columns, 1e-5);
        }
    }

    #[test]
    fn the_input_transform_is_the_matrix() {
        for column in 0..POSITIONS {
            let unit: [[f32; 1]; POSITIONS] = std::array::from_fn(|i| [f32::from(i == column)]);
            let mut transformed = [[f32::NAN]; POSITIONS];
            let mut targets = transformed.each_mut().map(|v| &mut v[..]);
            combine(&unit.each_ref().map(|v| &v[..]), &mut targets);
            for (row, value) in INPUT.iter().zip(transformed) {
                assert_eq!(row[column], value[0], "column {column}");
            }
        }
    }

    #[test]
    fn transforms_reproduce_a_correlation_exactly() {
        // Small integers: every step is exact in f32 but the 1/9 and 1/45 of `FILTER`.
        let inputs = [3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0, -6.0];
        let taps = [2.0, 7.0, -1.0, 8.0, 2.0, -8.0, 1.0];
        let mut filter = [0.0; POSITIONS];
        F2_7::ALONG_ROWS.transform_filter(&taps, &mut filter);
        let (mut transformed, mut outputs) = ([[0.0]; POSITIONS], [0.0f32; 2]);
        {
            let sources = std::array::from_fn(|i| &inputs[i..i + 1]);
            let mut targets = transformed.each_mut().map(|v| &mut v[..]);
            combine(&sources, &mut targets);
        }
        for k in 0..POSITIONS {
            let product = filter[k] * transformed[k][0];
            outputs[0] += if k < 7 { product } else { 0.0 };
            outputs[1] += SECOND_OUTPUT[k] * product;
        }
        for (out, offset) in outputs.iter().zip(0..) {
            let direct: f32 = (0..7).map(|j| taps[j] * inputs[offset + j]).sum();
            assert!((out - direct).abs() < 1e-4, "{out} against {direct}");
        }
    }
}

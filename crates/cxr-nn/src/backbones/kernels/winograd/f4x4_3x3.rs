//! Winograd's F(4x4, 3x3) for stride-1 3x3 convolutions on large maps (Inception V3's stem):
//! each 4x4 block of output costs 36 multiplications per channel pair instead of 144.
//!
//! Each 6x6 input tile and each 3x3 filter is transformed to 36 values; each tile's 36 products
//! transform back to its 4x4 outputs. The points are 0, +-1, +-2 and infinity (Lavin and Gray's
//! matrices), whose coefficients (up to 5 and 8) round more than F(2x2, 3x3)'s: about 2e-5 from
//! the definition on this module's tests, against below 1e-5.

use super::{Activation, Algorithm, Geometry, Range, SharedOutput, Workspace, slices_of};
use super::{padded_line, write_output_line};

/// Inputs along one axis of a tile: 4 outputs + 3 taps - 1.
const SIDE: usize = 6;

/// Input tile positions, row-major: position `6 i + j` is row `i`, column `j`.
const POSITIONS: usize = SIDE * SIDE;

/// `G`: one axis of a filter's 3 taps to its 6 transformed values (a row per value).
const FILTER: [[f32; 3]; SIDE] = [
    [0.25, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// `B^T`: one axis of an input tile to its transformed values (a row per value), which
/// [`input_axis`] applies.
#[cfg(test)]
const INPUT: [[f32; SIDE]; SIDE] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];

/// `A^T`: one axis of a tile's products to its 4 outputs (a row per output), which
/// [`output_axis`] applies.
#[cfg(test)]
const OUTPUT: [[f32; SIDE]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

pub struct F4x4_3x3;

impl Algorithm for F4x4_3x3 {
    fn positions(&self) -> usize {
        POSITIONS
    }

    /// A task's working set grows with its positions: this keeps it near F(2x2, 3x3)'s.
    fn task_tiles(&self) -> usize {
        32
    }

    fn tiling(&self, g: &Geometry) -> (usize, usize) {
        (g.out_size[0].div_ceil(4), g.out_size[1].div_ceil(4))
    }

    /// The tiles' rows transformed (`[row][value][tile]`), then one padded input row and its
    /// four column phases, or one output row.
    fn scratch_len(&self, g: &Geometry, tiles: usize) -> usize {
        let phase = g.out_size[1].div_ceil(4) + 1;
        POSITIONS * tiles + 8 * phase
    }

    fn transform_filter(&self, taps: &[f32], transformed: &mut [f32]) {
        // `G g`, a 6x3 matrix, then `(G g) G^T`.
        let mut half = [[0.0f32; 3]; SIDE];
        for (row, weights) in half.iter_mut().zip(&FILTER) {
            for (j, value) in row.iter_mut().enumerate() {
                *value = (0..3).map(|k| weights[k] * taps[3 * k + j]).sum();
            }
        }
        for (i, row) in transformed.chunks_exact_mut(SIDE).enumerate() {
            for (value, weights) in row.iter_mut().zip(&FILTER) {
                *value = (0..3).map(|k| half[i][k] * weights[k]).sum();
            }
        }
    }

    /// Fills `work.tiles` with `B^T d B` for the 6x6 input tile `d` under every 4x4 output block
    /// of tile rows `rows` (counted across the batch). Padding reads as zero.
    fn transform_input(&self, x: &[f32], g: &Geometry, rows: Range, work: &mut Workspace) {
        let channels = g.in_channels;
        let [in_h, in_w] = g.in_size;
        let [pad_y, pad_x] = g.pad_begin;
        let (tiles_y, tiles_x) = self.tiling(g);
        let tiles = rows.len() * tiles_x;
        let mut blocks = slices_of::<POSITIONS>(&mut work.tiles, channels * tiles);
        // Tile `tx` reads padded columns `4 tx .. 4 tx + 6`: phase `k` holds columns `4 t + k`,
        // so its columns are phases 0, 1, 2, 3 at `tx` and phases 0, 1 at `tx + 1`.
        let phase = tiles_x + 1;
        let (transformed_rows, rest) = work.rows.split_at_mut(POSITIONS * tiles);
        let mut transformed_rows = slices_of::<POSITIONS>(transformed_rows, tiles);
        let (line, phases) = rest.split_at_mut(4 * phase);
        let mut phases = slices_of::<4>(phases, phase);
        for channel in 0..channels {
            for (row_index, tile_row) in rows.clone().enumerate() {
                let (image, ty) = (tile_row / tiles_y, tile_row % tiles_y);
                let plane = &x[(image * channels + channel) * in_h * in_w..][..in_h * in_w];
                let at = row_index * tiles_x;
                for r in 0..SIDE {
                    let iy = (4 * ty + r).wrapping_sub(pad_y);
                    padded_line(in_h, in_w, iy, pad_x, plane, line);
                    for (t, columns) in line.chunks_exact(4).enumerate() {
                        for (phase, &value) in phases.iter_mut().zip(columns) {
                            phase[t] = value;
                        }
                    }
                    let [p0, p1, p2, p3] = phases.each_ref().map(|p| &**p);
                    let sources = [
                        &p0[..tiles_x],
                        &p1[..tiles_x],
                        &p2[..tiles_x],
                        &p3[..tiles_x],
                        &p0[1..],
                        &p1[1..],
                    ];
                    let targets = transformed_rows
                        .get_disjoint_mut(std::array::from_fn(|j| SIDE * r + j))
                        .expect("distinct rows")
                        .map(|values| &mut values[at..][..tiles_x]);
                    input_axis(sources, targets);
                }
            }
            // Then down the columns: value `j` of the six transformed rows to positions `j`,
            // `6 + j`, ... of every tile of the task.
            for j in 0..SIDE {
                let sources = std::array::from_fn(|i| &*transformed_rows[SIDE * i + j]);
                let targets = blocks
                    .get_disjoint_mut(std::array::from_fn(|i| SIDE * i + j))
                    .expect("distinct positions")
                    .map(|block| &mut block[channel * tiles..][..tiles]);
                input_axis(sources, targets);
            }
        }
    }

    /// Writes `activation(A^T m A + bias)` for every tile's 6x6 products `m` into the output rows
    /// of tile rows `rows`; rows and columns past the map's edge are dropped.
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
        let (tiles_y, tiles_x) = self.tiling(g);
        let tiles = rows.len() * tiles_x;
        // Whole positions at a time, in place: the columns of `A^T m` into rows 0-3, then the
        // rows of that into columns 0-3. Position `6 i + j` then holds output `(i, j)`.
        let mut p = slices_of::<POSITIONS>(&mut work.products, filters * tiles);
        for j in 0..SIDE {
            output_axis(&mut p, std::array::from_fn(|i| SIDE * i + j));
        }
        for i in 0..4 {
            output_axis(&mut p, std::array::from_fn(|j| SIDE * i + j));
        }

        let line = &mut work.rows[..4 * tiles_x];
        for (row_index, tile_row) in rows.enumerate() {
            let (image, ty) = (tile_row / tiles_y, tile_row % tiles_y);
            for filter in 0..filters {
                let at = filter * tiles + row_index * tiles_x;
                let shift = bias.map_or(0.0, |bias| bias[filter]);
                for dy in 0..4 {
                    let oy = 4 * ty + dy;
                    if oy >= out_h {
                        break;
                    }
                    let [a, b, c, d] =
                        std::array::from_fn(|dx| &p[SIDE * dy + dx][at..][..tiles_x]);
                    let columns = a.iter().zip(b).zip(c).zip(d);
                    for (four, (((a, b), c), d)) in line.chunks_exact_mut(4).zip(columns) {
                        four.copy_from_slice(&[*a, *b, *c, *d]);
                    }
                    let first = ((image * filters + filter) * out_h + oy) * out_w;
                    // SAFETY: this task alone writes the output rows of its tile rows (tasks
                    // hold disjoint tile rows), all inside the output buffer.
                    unsafe { write_output_line(&mut line[..out_w], shift, activation, out, first) };
                }
            }
        }
    }
}

/// `B^T` along one axis, element by element: `targets[k][t] = sum_i INPUT[k][i] sources[i][t]`
/// (the pairs of rows 1-2 and 3-4 as sums and differences of shared terms).
fn input_axis(sources: [&[f32]; SIDE], targets: [&mut [f32]; SIDE]) {
    let n = targets[0].len();
    let [d0, d1, d2, d3, d4, d5] = sources.map(|source| &source[..n]);
    let [o0, o1, o2, o3, o4, o5] = targets.map(|target| &mut target[..n]);
    for t in 0..n {
        o0[t] = 4.0 * d0[t] - 5.0 * d2[t] + d4[t];
        let (even, odd) = (d4[t] - 4.0 * d2[t], d3[t] - 4.0 * d1[t]);
        (o1[t], o2[t]) = (even + odd, even - odd);
        let (even, odd) = (d4[t] - d2[t], 2.0 * (d3[t] - d1[t]));
        (o3[t], o4[t]) = (even + odd, even - odd);
        o5[t] = 4.0 * d1[t] - 5.0 * d3[t] + d5[t];
    }
}

/// `A^T` along one axis, element by element and in place on positions `which`: their first
/// four get the outputs (the last two are left as they were).
fn output_axis(positions: &mut [&mut [f32]; POSITIONS], which: [usize; SIDE]) {
    let [m0, m1, m2, m3, m4, m5] = positions
        .get_disjoint_mut(which)
        .expect("distinct positions");
    let n = m0.len();
    let [m1, m2, m3] = [m1, m2, m3].map(|m| &mut m[..n]);
    let [m4, m5] = [&*m4, &*m5].map(|m| &m[..n]);
    for t in 0..n {
        let (sum12, difference12) = (m1[t] + m2[t], m1[t] - m2[t]);
        let (sum34, difference34) = (m3[t] + m4[t], m3[t] - m4[t]);
        m0[t] += sum12 + sum34;
        m1[t] = difference12 + 2.0 * difference34;
        m2[t] = sum12 + 4.0 * sum34;
        m3[t] = difference12 + 8.0 * difference34 + m5[t];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::kernels::winograd::tests::assert_3x3_cases_match_the_definition;

    #[test]
    fn matches_the_definition_for_padding_odd_sizes_and_batches() {
        // (channels, filters, pad_begin, input size, output size): "same" and valid, outputs
        // that leave 1, 2 and 3 rows or columns of the last tile empty, maps narrower than a
        // tile and wider than a task, TensorFlow's asymmetric padding (none before, one after).
        let cases = [
            (16, 16, [1, 1], [16, 16], [16, 16]),
            (16, 24, [0, 0], [11, 13], [9, 11]),
            (24, 16, [1, 1], [7, 6], [7, 6]),
            (16, 16, [0, 0], [5, 4], [3, 2]),
            (16, 16, [0, 1], [10, 9], [9, 9]),
            (17, 19, [1, 1], [3, 61], [3, 61]),
            (16, 16, [1, 1], [30, 300], [30, 300]),
        ];
        assert_3x3_cases_match_the_definition(&F4x4_3x3, &cases, 4e-5);
    }

    #[test]
    fn the_transforms_are_the_matrices() {
        for column in 0..SIDE {
            let unit: [[f32; 1]; SIDE] = std::array::from_fn(|i| [f32::from(i == column)]);
            let mut transformed = [[f32::NAN]; SIDE];
            input_axis(
                unit.each_ref().map(|v| &v[..]),
                transformed.each_mut().map(|v| &mut v[..]),
            );
            for (row, value) in INPUT.iter().zip(transformed) {
                assert_eq!(row[column], value[0], "B^T, column {column}");
            }

            let mut values: [[f32; 1]; POSITIONS] = [[f32::NAN]; POSITIONS];
            for (i, value) in values.iter_mut().take(SIDE).enumerate() {
                *value = [f32::from(i == column)];
            }
            let mut positions = values.each_mut().map(|v| &mut v[..]);
            output_axis(&mut positions, std::array::from_fn(|i| i));
            for (row, value) in OUTPUT.iter().zip(values) {
                assert_eq!(row[column], value[0], "A^T, column {column}");
            }
        }
    }

    #[test]
    fn transforms_reproduce_a_correlation() {
        // Small integers: every step is exact in f32 but the sixths, twelfths and 24ths of `G`.
        let d: [f32; POSITIONS] = std::array::from_fn(|k| ((k * 7 + 3) % 11) as f32 - 5.0);
        let taps: [f32; 9] = [2.0, -1.0, 3.0, 0.0, 4.0, -2.0, 1.0, 5.0, -3.0];
        let mut filter = [0.0; POSITIONS];
        F4x4_3x3.transform_filter(&taps, &mut filter);
        // `B^T d B` and `A^T m A` written out with the matrices.
        let input = |i: usize, j: usize| -> f32 {
            (0..SIDE)
                .flat_map(|a| (0..SIDE).map(move |b| (a, b)))
                .map(|(a, b)| INPUT[i][a] * d[SIDE * a + b] * INPUT[j][b])
                .sum()
        };
        let m: [f32; POSITIONS] = std::array::from_fn(|k| filter[k] * input(k / SIDE, k % SIDE));
        for (oy, ox) in (0..4).flat_map(|oy| (0..4).map(move |ox| (oy, ox))) {
            let out: f32 = (0..POSITIONS)
                .map(|k| OUTPUT[oy][k / SIDE] * m[k] * OUTPUT[ox][k % SIDE])
                .sum();
            let direct: f32 = (0..9)
                .map(|k| taps[k] * d[SIDE * (oy + k / 3) + ox + k % 3])
                .sum();
            assert!(
                (out - direct).abs() < 1e-4,
                "output ({oy}, {ox}): {out} against {direct}"
            );
        }
    }
}

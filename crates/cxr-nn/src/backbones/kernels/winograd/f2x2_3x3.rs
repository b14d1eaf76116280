//! Winograd's F(2x2, 3x3) for stride-1 3x3 convolutions: each 2x2 block of output costs 16
//! multiplications per channel pair instead of 36.
//!
//! Each 4x4 input tile and each 3x3 filter is transformed to 16 values; each tile's 16 products
//! transform back to its 2x2 outputs. The transforms only add and halve, so results stay within
//! a few float roundings of the direct convolution's. A tile row is a row of 2x2 blocks.

use super::{Activation, Algorithm, Geometry, Range, SharedOutput, Workspace, slices_of};
use super::{padded_line, write_output_line};

/// Input tile positions: a 4x4 tile of input makes a 2x2 block of output.
const POSITIONS: usize = 16;

pub struct F2x2_3x3;

impl Algorithm for F2x2_3x3 {
    fn positions(&self) -> usize {
        POSITIONS
    }

    fn tiling(&self, g: &Geometry) -> (usize, usize) {
        (g.out_size[0].div_ceil(2), g.out_size[1].div_ceil(2))
    }

    /// For the input, one padded row, then four rows split into even and odd columns (half a
    /// padded row each); for the output, one output row.
    fn scratch_len(&self, g: &Geometry, _tiles: usize) -> usize {
        5 * (2 * g.out_size[1].div_ceil(2) + 2)
    }

    fn transform_filter(&self, taps: &[f32], transformed: &mut [f32]) {
        transformed.copy_from_slice(&transform_filter(taps));
    }

    /// Fills `work.tiles` with `B^T d B` for the 4x4 input tile `d` under every output block
    /// of tile rows `rows` (counted across the batch),
    /// `B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`. Padding reads as zero.
    fn transform_input(&self, x: &[f32], g: &Geometry, rows: Range, work: &mut Workspace) {
        let channels = g.in_channels;
        let [in_h, in_w] = g.in_size;
        let [out_h, out_w] = g.out_size;
        let [pad_y, pad_x] = g.pad_begin;
        let tiles_y = out_h.div_ceil(2);
        let tiles_x = out_w.div_ceil(2);
        let tiles = rows.len() * tiles_x;
        // Tile `tx` reads padded columns `2 tx .. 2 tx + 4`: even and odd columns `tx, tx + 1`.
        let half = tiles_x + 1;
        let (line, parts) = work.rows.split_at_mut(2 * half);
        let mut blocks = slices_of::<POSITIONS>(&mut work.tiles, channels * tiles);

        for (row_index, tile_row) in rows.enumerate() {
            let (image, ty) = (tile_row / tiles_y, tile_row % tiles_y);
            let first = row_index * tiles_x;
            for channel in 0..channels {
                let plane = &x[(image * channels + channel) * in_h * in_w..][..in_h * in_w];
                // The tile row's four input rows, split into even and odd columns; then the rows
                // combined by `B^T` (the same combination for both halves).
                let mut split = slices_of::<8>(&mut parts[..8 * half], half);
                for r in 0..4 {
                    let iy = (2 * ty + r).wrapping_sub(pad_y);
                    padded_line(in_h, in_w, iy, pad_x, plane, line);
                    let [even, odd] = split.get_disjoint_mut([r, 4 + r]).expect("distinct");
                    for ((pair, e), o) in line
                        .chunks_exact(2)
                        .zip(even.iter_mut())
                        .zip(odd.iter_mut())
                    {
                        (*e, *o) = (pair[0], pair[1]);
                    }
                }
                for half_rows in split.chunks_exact_mut(4) {
                    let [d0, d1, d2, d3] = half_rows else {
                        unreachable!("chunks of four")
                    };
                    for (((v0, v1), v2), v3) in d0
                        .iter_mut()
                        .zip(d1.iter_mut())
                        .zip(d2.iter_mut())
                        .zip(d3.iter_mut())
                    {
                        (*v0, *v1, *v2, *v3) = (*v0 - *v2, *v1 + *v2, *v2 - *v1, *v1 - *v3);
                    }
                }
                // Then the columns: tile `tx` of combined row `i` gives positions `4 i .. 4 i + 4`.
                for i in 0..4 {
                    let (even, odd) = (&*split[i], &*split[4 + i]);
                    let [a, b, c, d] = blocks
                        .get_disjoint_mut([4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3])
                        .expect("distinct");
                    let at = channel * tiles + first;
                    let (a, b) = (&mut a[at..][..tiles_x], &mut b[at..][..tiles_x]);
                    let (c, d) = (&mut c[at..][..tiles_x], &mut d[at..][..tiles_x]);
                    let (e0, e1) = (&even[..tiles_x], &even[1..half]);
                    let (o0, o1) = (&odd[..tiles_x], &odd[1..half]);
                    for t in 0..tiles_x {
                        a[t] = e0[t] - e1[t];
                        b[t] = o0[t] + e1[t];
                        c[t] = e1[t] - o0[t];
                        d[t] = o0[t] - o1[t];
                    }
                }
            }
        }
    }

    /// Writes `activation(A^T m A + bias)` for every tile's 4x4 products `m` into the output rows
    /// of tile rows `rows`, `A^T = [1 1 1 0; 0 1 -1 -1]`; the last row and column of an odd-sized
    /// map are dropped.
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
        let tiles_y = out_h.div_ceil(2);
        let tiles_x = out_w.div_ceil(2);
        let tiles = rows.len() * tiles_x;
        // Whole positions at a time (every filter and tile): first the rows of `A^T m`, then their
        // columns, in place. Afterwards positions 0 and 1 hold each block's top-left and top-right
        // outputs, 4 and 5 its bottom-left and bottom-right.
        let mut p = slices_of::<POSITIONS>(&mut work.products, filters * tiles);
        for column in 0..4 {
            apply_output_transform(&mut p, [column, 4 + column, 8 + column, 12 + column]);
        }
        for row in [0, 4] {
            apply_output_transform(&mut p, [row, row + 1, row + 2, row + 3]);
        }
        let [p0, p1, _, _, p4, p5, ..] = p;
        let outputs = [[&*p0, &*p1], [&*p4, &*p5]];

        let line = &mut work.rows[..2 * tiles_x];
        for (row_index, tile_row) in rows.enumerate() {
            let (image, ty) = (tile_row / tiles_y, tile_row % tiles_y);
            for filter in 0..filters {
                let at = filter * tiles + row_index * tiles_x;
                let shift = bias.map_or(0.0, |bias| bias[filter]);
                for (dy, [left, right]) in outputs.iter().enumerate() {
                    let oy = 2 * ty + dy;
                    if oy >= out_h {
                        break;
                    }
                    let (left, right) = (&left[at..][..tiles_x], &right[at..][..tiles_x]);
                    for ((pair, l), r) in line.chunks_exact_mut(2).zip(left).zip(right) {
                        (pair[0], pair[1]) = (*l, *r);
                    }
                    let first = ((image * filters + filter) * out_h + oy) * out_w;
                    // SAFETY: this task alone writes the output rows of its tile rows (tasks hold
                    // disjoint tile rows), all inside the output buffer.
                    unsafe { write_output_line(&mut line[..out_w], shift, activation, out, first) };
                }
            }
        }
    }
}

/// `G g G^T` for one 3x3 filter `g` (row-major), `G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]`:
/// the 4x4 result, row-major.
fn transform_filter(g: &[f32]) -> [f32; 16] {
    let spread = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    // Column `j` of `G g`, then row `i` of `(G g) G^T`.
    let columns = [0, 1, 2].map(|j| spread(g[j], g[3 + j], g[6 + j]));
    let mut u = [0.0; 16];
    for (i, row) in u.chunks_exact_mut(4).enumerate() {
        row.copy_from_slice(&spread(columns[0][i], columns[1][i], columns[2][i]));
    }
    u
}

/// `A^T` on four of the positions, element by element and in place: `m0 + m1 + m2` into the
/// first, `m1 - m2 - m3` into the second (the other two are left as they were).
fn apply_output_transform(positions: &mut [&mut [f32]; POSITIONS], which: [usize; 4]) {
    let [m0, m1, m2, m3] = positions
        .get_disjoint_mut(which)
        .expect("distinct positions");
    for (((m0, m1), m2), m3) in m0
        .iter_mut()
        .zip(m1.iter_mut())
        .zip(m2.iter())
        .zip(m3.iter())
    {
        (*m0, *m1) = (*m0 + (*m1 + *m2), *m1 - (*m2 + *m3));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::kernels::winograd::tests::assert_3x3_cases_match_the_definition;

    #[test]
    fn matches_the_definition_for_padding_odd_sizes_and_batches() {
        // (channels, filters, pad_begin, input size, output size): "same" and valid, even and
        // odd outputs (a half-empty last tile), maps narrower than a task and wider than one,
        // TensorFlow's asymmetric padding (none before, one after).
        let cases = [
            (16, 16, [1, 1], [9, 11], [9, 11]),
            (16, 24, [0, 0], [9, 11], [7, 9]),
            (24, 16, [1, 1], [8, 8], [8, 8]),
            (16, 16, [0, 0], [8, 8], [7, 7]),
            (16, 16, [0, 1], [6, 7], [5, 7]),
            (17, 19, [1, 1], [3, 40], [3, 40]),
            (16, 16, [1, 1], [30, 300], [30, 300]),
        ];
        assert_3x3_cases_match_the_definition(&F2x2_3x3, &cases, 1e-5);
    }
}

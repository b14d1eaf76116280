//! Stride-1 3x3 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray,
//! 2016): each 2x2 block of output costs 16 multiplications per channel pair instead of 36.
//!
//! Each 4x4 input tile and each 3x3 filter is transformed to 16 values; the 16 positions are
//! then 16 independent matrix products (filters x channels times channels x tiles), and each
//! tile's 16 products transform back to its 2x2 outputs. The transforms only add and halve, so
//! results stay within a few float roundings of the direct convolution's. Tiles are counted
//! across the batch, so small late-stage maps still give the products wide right-hand sides.

use rayon::prelude::*;

use super::{Activation, ConvGeometry as Geometry, SharedOutput};

/// Input tile positions: a 4x4 tile of input makes a 2x2 block of output.
const POSITIONS: usize = 16;

/// Tiles per task, at most: wide enough for the matrix kernel to run at speed, while a task's
/// transformed input and products (`16 x (in + out channels) x tiles` floats) stay small enough
/// to be read back from cache. Measured (`kernel_speed`, Inception V3's 3x3 layers): 48-96
/// tiles alike, 160 about 15 % slower in total, 320 and 640 slower still.
const TASK_TILES: usize = 96;

/// Whether this kernel runs a convolution of `geometry`: 3x3, stride 1, and enough channels
/// on both sides for the transforms to cost less than the multiplications they save.
pub fn applies(geometry: &Geometry) -> bool {
    geometry.kernel == [3, 3]
        && geometry.stride == [1, 1]
        && geometry.in_channels >= 16
        && geometry.out_channels >= 16
}

/// `y[b] = activation(conv3x3(x[b], weight) + bias)` for every image of `x` (`[batch,
/// in_channels, height, width]`, row-major; `weight` `[out_channels, in_channels, 3, 3]`).
/// Returns `[batch, out_channels, out_h, out_w]`, row-major, as `im2col::conv2d` does.
pub fn conv2d(
    x: &[f32],
    batch: usize,
    geometry: &Geometry,
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
) -> Vec<f32> {
    let g = *geometry;
    assert!(applies(&g), "not a Winograd convolution: {g:?}");
    let (channels, filters) = (g.in_channels, g.out_channels);
    let [in_h, in_w] = g.in_size;
    let [out_h, out_w] = g.out_size;
    let image_len = channels * in_h * in_w;
    let out_len = filters * out_h * out_w;
    assert_eq!(x.len(), batch * image_len, "input length");
    assert_eq!(weight.len(), filters * channels * 9, "weight length");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), filters, "bias length");
    }

    let transformed_weight = transform_filters(weight, filters, channels);
    let tiles_x = out_w.div_ceil(2);
    let tile_rows = batch * out_h.div_ceil(2);
    // Enough tasks for every thread to get two, on small maps too.
    let fair_share = tile_rows.div_ceil(2 * rayon::current_num_threads()).max(1);
    let rows_per_task = TASK_TILES.div_ceil(tiles_x).clamp(1, fair_share);
    let tasks = tile_rows.div_ceil(rows_per_task);
    // Left unwritten here: the tasks write every value (see the end).
    let mut output = Vec::<f32>::with_capacity(batch * out_len);
    let out = SharedOutput(output.spare_capacity_mut().as_mut_ptr().cast());

    (0..tasks)
        .into_par_iter()
        .for_each_init(Workspace::default, |work, task| {
            let rows = task * rows_per_task..((task + 1) * rows_per_task).min(tile_rows);
            let tiles = rows.len() * tiles_x;
            work.resize(channels, filters, tiles, 2 * tiles_x + 2);
            transform_input(x, &g, rows.clone(), work);
            for position in 0..POSITIONS {
                // SAFETY: the slices below are `filters x channels`, `channels x tiles` and
                // `filters x tiles`, row-major, inside their buffers.
                unsafe {
                    gemm::gemm(
                        filters,
                        tiles,
                        channels,
                        work.products[position * filters * tiles..].as_mut_ptr(),
                        1,
                        tiles as isize,
                        false,
                        transformed_weight[position * filters * channels..].as_ptr(),
                        1,
                        channels as isize,
                        work.tiles[position * channels * tiles..].as_ptr(),
                        1,
                        tiles as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
            transform_output(work, &g, rows, bias, activation, out);
        });
    // SAFETY: the tasks' tile rows cover every image's output rows, and `transform_output`
    // writes every column of every channel of each of its rows.
    unsafe { output.set_len(batch * out_len) };
    output
}

/// A task's buffers, reused by the tasks that one worker runs in a row. Each may be longer
/// than the task needs; only its start is used.
#[derive(Default)]
struct Workspace {
    /// `[16][channels][tiles]`: the transformed input tiles.
    tiles: Vec<f32>,
    /// `[16][filters][tiles]`: their products with the transformed filters.
    products: Vec<f32>,
    /// For the input, one padded row (`row_len`), then four rows split into even and odd
    /// columns (`row_len / 2` each); for the output, one output row.
    rows: Vec<f32>,
}

impl Workspace {
    fn resize(&mut self, channels: usize, filters: usize, tiles: usize, row_len: usize) {
        // Every value is written before it is read, so buffers only grow, and only what they
        // add is filled.
        let grow = |buffer: &mut Vec<f32>, len: usize| {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
        };
        grow(&mut self.tiles, POSITIONS * channels * tiles);
        grow(&mut self.products, POSITIONS * filters * tiles);
        grow(&mut self.rows, 5 * row_len);
    }
}

/// `G g G^T` for every filter `g` (3x3) of every filter-channel pair: `[16][filters][channels]`,
/// so that each position's transformed filters are one row-major matrix.
fn transform_filters(weight: &[f32], filters: usize, channels: usize) -> Vec<f32> {
    let pairs = filters * channels;
    let mut transformed = Vec::<f32>::with_capacity(POSITIONS * pairs);
    let out = SharedOutput(transformed.spare_capacity_mut().as_mut_ptr().cast());
    weight
        .par_chunks_exact(9 * channels)
        .enumerate()
        .for_each(|(filter, taps)| {
            for (channel, g) in taps.chunks_exact(9).enumerate() {
                let pair = filter * channels + channel;
                for (position, value) in transform_filter(g).into_iter().enumerate() {
                    // SAFETY: each pair's 16 values, one per position, are this task's alone
                    // and lie inside the buffer.
                    unsafe { out.at(position * pairs + pair).write(value) };
                }
            }
        });
    // SAFETY: every pair wrote all 16 positions.
    unsafe { transformed.set_len(POSITIONS * pairs) };
    transformed
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

/// Fills `work.tiles` with `B^T d B` for the 4x4 input tile `d` under every output block of
/// tile rows `rows` (counted across the batch), `B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`.
/// Padding reads as zero.
fn transform_input(x: &[f32], g: &Geometry, rows: std::ops::Range<usize>, work: &mut Workspace) {
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
    // Input column `j - pad_x` lands at padded column `j`.
    let inside = pad_x.min(2 * half)..(pad_x + in_w).min(2 * half);
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
                if iy < in_h {
                    line[..inside.start].fill(0.0);
                    line[inside.end..].fill(0.0);
                    line[inside.clone()]
                        .copy_from_slice(&plane[iy * in_w..][..inside.end - inside.start]);
                } else {
                    line.fill(0.0);
                }
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
    work: &mut Workspace,
    g: &Geometry,
    rows: std::ops::Range<usize>,
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
                    (pair[0], pair[1]) = (l + shift, r + shift);
                }
                let line = &mut line[..out_w];
                activation.apply(line);
                let first = ((image * filters + filter) * out_h + oy) * out_w;
                // SAFETY: this task alone writes the output rows of its tile rows (tasks hold
                // disjoint tile rows), all inside the output buffer.
                unsafe {
                    std::ptr::copy_nonoverlapping(line.as_ptr(), out.at(first), out_w);
                }
            }
        }
    }
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

/// The first `N` consecutive slices of `len` values of `values`.
fn slices_of<const N: usize>(values: &mut [f32], len: usize) -> [&mut [f32]; N] {
    let mut chunks = values.chunks_exact_mut(len);
    std::array::from_fn(|_| chunks.next().expect("N slices"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::kernels::reference::{
        leave_nans_for_the_next_allocation, naive_conv2d, test_values, worst_difference,
    };

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
        for (channels, filters, pad_begin, in_size, out_size) in cases {
            let g = Geometry {
                in_channels: channels,
                in_size,
                out_channels: filters,
                kernel: [3, 3],
                stride: [1, 1],
                pad_begin,
                out_size,
            };
            assert!(applies(&g));
            let batch = 3;
            let x = test_values(batch * channels * in_size[0] * in_size[1], 1);
            let weight = test_values(filters * channels * 9, 2);
            let bias = test_values(filters, 3);
            let expected = naive_conv2d(&x, batch, &g, &weight, &bias);
            leave_nans_for_the_next_allocation(expected.len());
            let got = conv2d(&x, batch, &g, &weight, Some(&bias), Activation::Identity);
            let worst = worst_difference(&expected, &got);
            assert!(worst < 1e-5, "{g:?}: {worst}");

            leave_nans_for_the_next_allocation(expected.len());
            let rectified = conv2d(&x, batch, &g, &weight, Some(&bias), Activation::Relu6);
            assert!(
                rectified
                    .iter()
                    .zip(&got)
                    .all(|(r, v)| *r == v.clamp(0.0, 6.0))
            );
            leave_nans_for_the_next_allocation(expected.len());
            let unbiased = conv2d(&x, batch, &g, &weight, None, Activation::Identity);
            let worst = worst_difference(
                &naive_conv2d(&x, batch, &g, &weight, &vec![0.0; filters]),
                &unbiased,
            );
            assert!(worst < 1e-5, "{g:?} without bias: {worst}");
        }
    }

    #[test]
    fn leaves_other_convolutions_alone() {
        let g = Geometry {
            in_channels: 32,
            in_size: [9, 9],
            out_channels: 32,
            kernel: [3, 3],
            stride: [1, 1],
            pad_begin: [1, 1],
            out_size: [9, 9],
        };
        assert!(applies(&g));
        assert!(!applies(&Geometry {
            stride: [2, 2],
            ..g
        }));
        assert!(!applies(&Geometry {
            kernel: [1, 7],
            ..g
        }));
        assert!(!applies(&Geometry {
            in_channels: 3,
            ..g
        }));
    }
}

//! Stride-1 convolutions by Winograd's minimal filtering (Lavin and Gray, 2016): F(4x4, 3x3)
//! ([`f4x4_3x3`]) and F(2x2, 3x3) ([`f2x2_3x3`]) for 3x3 filters on large and small maps, F(2, 7)
//! for the 1x7 and 7x1 ones ([`f2_7`]).
//!
//! Each input tile and each filter is transformed to the same number of values (positions);
//! the positions are then independent matrix products (filters x channels times channels x
//! tiles), and each tile's products transform back to its block of outputs. Tiles are counted
//! across the batch, so small late-stage maps still give the products wide right-hand sides.
//! This module runs that plan; the algorithms say how tiles lie and how values transform.

mod f2_7;
mod f2x2_3x3;
mod f4x4_3x3;

use rayon::prelude::*;

use super::{Activation, ConvGeometry as Geometry, SharedOutput};

/// F(4x4, 3x3) from this output size on, F(2x2, 3x3) below. On 147 and 73 px maps (Inception
/// V3's stem) F(4x4, 3x3) ran 1.0-1.4x as fast as F(2x2, 3x3) (`kernel_speed`, each against
/// im2col in the same run); on 35 px maps no faster, on 8 px maps slower (tiles mostly padding).
const LARGE_MAP: usize = 64;

/// Tiles per task, at most: wide enough for the matrix kernel to run at speed, while a task's
/// transformed input and products (`positions x (in + out channels) x tiles` floats) stay
/// small enough to be read back from cache. Measured for F(2x2, 3x3) (`kernel_speed`,
/// Inception V3's 3x3 layers): 48-96 tiles alike, 160 about 15 % slower in total, 320 and 640
/// slower still.
const TASK_TILES: usize = 96;

/// The most positions of any algorithm here (F(4x4, 3x3)'s 6x6 tiles).
const MAX_POSITIONS: usize = 36;

/// Whether a Winograd algorithm runs a convolution of `geometry`: stride 1, a 3x3, 1x7 or 7x1
/// kernel, and enough channels on both sides for the transforms to cost less than the
/// multiplications they save.
pub fn applies(geometry: &Geometry) -> bool {
    algorithm(geometry).is_some()
}

/// The algorithm for `geometry`, if any.
fn algorithm(geometry: &Geometry) -> Option<&'static dyn Algorithm> {
    if geometry.stride != [1, 1] || geometry.in_channels < 16 || geometry.out_channels < 16 {
        return None;
    }
    match geometry.kernel {
        [3, 3] if geometry.out_size[0].min(geometry.out_size[1]) >= LARGE_MAP => {
            Some(&f4x4_3x3::F4x4_3x3)
        }
        [3, 3] => Some(&f2x2_3x3::F2x2_3x3),
        [1, 7] => Some(&f2_7::F2_7::ALONG_ROWS),
        [7, 1] => Some(&f2_7::F2_7::ALONG_COLUMNS),
        _ => None,
    }
}

/// One minimal-filtering algorithm: how its tiles cover the output and how filters, input
/// tiles and products transform. A tile row is a run of tiles that one task transforms
/// together; tile rows are counted across the batch.
trait Algorithm: Sync {
    /// Values per transformed tile and per transformed filter.
    fn positions(&self) -> usize;
    /// Tiles per task, at most.
    fn task_tiles(&self) -> usize {
        TASK_TILES
    }
    /// Tile rows per image and tiles per tile row.
    fn tiling(&self, g: &Geometry) -> (usize, usize);
    /// Floats of scratch rows ([`Workspace::rows`]) a task of `tiles` tiles needs.
    fn scratch_len(&self, g: &Geometry, tiles: usize) -> usize;
    /// One filter-channel pair's taps (row-major) to its `positions()` transformed values.
    fn transform_filter(&self, taps: &[f32], transformed: &mut [f32]);
    /// Fills `work.tiles` (`[positions][channels][tiles]`) for tile rows `rows`.
    fn transform_input(&self, x: &[f32], g: &Geometry, rows: Range, work: &mut Workspace);
    /// Turns `work.products` (`[positions][filters][tiles]`) of tile rows `rows` into
    /// `activation(outputs + bias)` and writes their output rows through `out`. Each task
    /// writes only its own tile rows' outputs, and the tile rows cover every output value.
    fn transform_output(
        &self,
        work: &mut Workspace,
        g: &Geometry,
        rows: Range,
        bias: Option<&[f32]>,
        activation: Activation,
        out: SharedOutput,
    );
}

type Range = std::ops::Range<usize>;

/// `y[b] = activation(conv(x[b], weight) + bias)` for every image of `x` (`[batch,
/// in_channels, height, width]`, row-major; `weight` `[out_channels, in_channels, kh, kw]`).
/// Returns `[batch, out_channels, out_h, out_w]`, row-major, as `im2col::conv2d` does.
pub fn conv2d(
    x: &[f32],
    batch: usize,
    geometry: &Geometry,
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
) -> Vec<f32> {
    let algorithm =
        algorithm(geometry).unwrap_or_else(|| panic!("not a Winograd convolution: {geometry:?}"));
    run(algorithm, x, batch, geometry, weight, bias, activation)
}

/// [`conv2d`] by `algorithm`.
fn run(
    algorithm: &dyn Algorithm,
    x: &[f32],
    batch: usize,
    geometry: &Geometry,
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
) -> Vec<f32> {
    let g = *geometry;
    let positions = algorithm.positions();
    let (channels, filters) = (g.in_channels, g.out_channels);
    let [out_h, out_w] = g.out_size;
    g.assert_dense_operands(batch, x, weight, bias);
    let taps = g.kernel[0] * g.kernel[1];

    let transformed_weight = transform_filters(algorithm, weight, filters, channels, taps);
    let (rows_per_image, row_tiles) = algorithm.tiling(&g);
    let tile_rows = batch * rows_per_image;
    // Enough tasks for every thread to get two, on small maps too.
    let fair_share = tile_rows.div_ceil(2 * rayon::current_num_threads()).max(1);
    let rows_per_task = algorithm
        .task_tiles()
        .div_ceil(row_tiles)
        .clamp(1, fair_share);
    let tasks = tile_rows.div_ceil(rows_per_task);
    let scratch_len = algorithm.scratch_len(&g, rows_per_task * row_tiles);
    // Left unwritten here: the tasks write every value (see the end).
    let out_len = batch * filters * out_h * out_w;
    let mut output = Vec::<f32>::with_capacity(out_len);
    let out = SharedOutput(output.spare_capacity_mut().as_mut_ptr().cast());

    (0..tasks)
        .into_par_iter()
        .for_each_init(Workspace::default, |work, task| {
            let rows = task * rows_per_task..((task + 1) * rows_per_task).min(tile_rows);
            let tiles = rows.len() * row_tiles;
            work.resize(positions, channels, filters, tiles, scratch_len);
            algorithm.transform_input(x, &g, rows.clone(), work);
            for position in 0..positions {
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
            algorithm.transform_output(work, &g, rows, bias, activation, out);
        });
    // SAFETY: the tasks' tile rows cover every image's output rows, and `transform_output`
    // writes every column of every channel of each of its rows.
    unsafe { output.set_len(out_len) };
    output
}

/// A task's buffers, reused by the tasks that one worker runs in a row. Each may be longer
/// than the task needs; only its start is used.
#[derive(Default)]
struct Workspace {
    /// `[positions][channels][tiles]`: the transformed input tiles.
    tiles: Vec<f32>,
    /// `[positions][filters][tiles]`: their products with the transformed filters.
    products: Vec<f32>,
    /// Scratch rows for the algorithm's input and output transforms.
    rows: Vec<f32>,
}

impl Workspace {
    fn resize(
        &mut self,
        positions: usize,
        channels: usize,
        filters: usize,
        tiles: usize,
        scratch_len: usize,
    ) {
        // Every value is written before it is read, so buffers only grow, and only what they
        // add is filled.
        let grow = |buffer: &mut Vec<f32>, len: usize| {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
        };
        grow(&mut self.tiles, positions * channels * tiles);
        grow(&mut self.products, positions * filters * tiles);
        grow(&mut self.rows, scratch_len);
    }
}

/// Every filter-channel pair's taps transformed: `[positions][filters][channels]`, so that each
/// position's transformed filters are one row-major matrix.
fn transform_filters(
    algorithm: &dyn Algorithm,
    weight: &[f32],
    filters: usize,
    channels: usize,
    taps: usize,
) -> Vec<f32> {
    let positions = algorithm.positions();
    let pairs = filters * channels;
    let mut transformed = Vec::<f32>::with_capacity(positions * pairs);
    let out = SharedOutput(transformed.spare_capacity_mut().as_mut_ptr().cast());
    weight
        .par_chunks_exact(taps * channels)
        .enumerate()
        .for_each(|(filter, filter_taps)| {
            let mut values = [0.0; MAX_POSITIONS];
            for (channel, g) in filter_taps.chunks_exact(taps).enumerate() {
                let pair = filter * channels + channel;
                algorithm.transform_filter(g, &mut values[..positions]);
                for (position, &value) in values[..positions].iter().enumerate() {
                    // SAFETY: each pair's values, one per position, are this task's alone
                    // and lie inside the buffer.
                    unsafe { out.at(position * pairs + pair).write(value) };
                }
            }
        });
    // SAFETY: every pair wrote all its positions.
    unsafe { transformed.set_len(positions * pairs) };
    transformed
}

/// The first `N` consecutive slices of `len` values of `values`.
fn slices_of<const N: usize>(values: &mut [f32], len: usize) -> [&mut [f32]; N] {
    let mut chunks = values.chunks_exact_mut(len);
    std::array::from_fn(|_| chunks.next().expect("N slices"))
}

/// Input row `iy` of `plane` (`in_h x in_w`) into `line`, shifted right by `pad_x`, with zeros
/// where it has no value (all zeros when `iy` lies outside the map).
fn padded_line(in_h: usize, in_w: usize, iy: usize, pad_x: usize, plane: &[f32], line: &mut [f32]) {
    if iy >= in_h {
        line.fill(0.0);
        return;
    }
    let inside = pad_x.min(line.len())..(pad_x + in_w).min(line.len());
    line[..inside.start].fill(0.0);
    line[inside.end..].fill(0.0);
    let len = inside.len();
    line[inside].copy_from_slice(&plane[iy * in_w..][..len]);
}

/// Adds `bias`, applies `activation` and copies `line` to output offset `first`.
///
/// # Safety
/// `first .. first + line.len()` must lie inside the output and be this task's alone.
unsafe fn write_output_line(
    line: &mut [f32],
    shift: f32,
    activation: Activation,
    out: SharedOutput,
    first: usize,
) {
    line.iter_mut().for_each(|v| *v += shift);
    activation.apply(line);
    unsafe { std::ptr::copy_nonoverlapping(line.as_ptr(), out.at(first), line.len()) };
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::backbones::kernels::reference::{
        leave_nans_for_the_next_allocation, naive_conv2d, test_values, worst_difference,
    };

    /// `algorithm` on `g` and a batch of 3 matches the definition, within `tolerance`, with and
    /// without bias, and ReLU6 clamps exactly its identity result. Its result memory starts as
    /// NaNs, so a value left unwritten shows.
    pub(super) fn assert_matches_the_definition(
        algorithm: &dyn Algorithm,
        g: &Geometry,
        tolerance: f32,
    ) {
        assert!(applies(g), "{g:?}");
        let conv2d = |x: &[f32], batch, g: &Geometry, weight: &[f32], bias, activation| {
            run(algorithm, x, batch, g, weight, bias, activation)
        };
        let (channels, filters) = (g.in_channels, g.out_channels);
        let batch = 3;
        let x = test_values(batch * channels * g.in_size[0] * g.in_size[1], 1);
        let weight = test_values(filters * channels * g.kernel[0] * g.kernel[1], 2);
        let bias = test_values(filters, 3);
        let expected = naive_conv2d(&x, batch, g, &weight, &bias);
        leave_nans_for_the_next_allocation(expected.len());
        let got = conv2d(&x, batch, g, &weight, Some(&bias), Activation::Identity);
        let worst = worst_difference(&expected, &got);
        assert!(worst < tolerance, "{g:?}: {worst}");

        leave_nans_for_the_next_allocation(expected.len());
        let rectified = conv2d(&x, batch, g, &weight, Some(&bias), Activation::Relu6);
        assert!(
            rectified
                .iter()
                .zip(&got)
                .all(|(r, v)| *r == v.clamp(0.0, 6.0))
        );
        leave_nans_for_the_next_allocation(expected.len());
        let unbiased = conv2d(&x, batch, g, &weight, None, Activation::Identity);
        let worst = worst_difference(
            &naive_conv2d(&x, batch, g, &weight, &vec![0.0; filters]),
            &unbiased,
        );
        assert!(worst < tolerance, "{g:?} without bias: {worst}");
    }

    /// A 3x3 test case: channels, filters, pad_begin, input size, output size.
    pub(super) type Case3x3 = (usize, usize, [usize; 2], [usize; 2], [usize; 2]);

    /// [`assert_matches_the_definition`] for each of `cases`.
    pub(super) fn assert_3x3_cases_match_the_definition(
        algorithm: &dyn Algorithm,
        cases: &[Case3x3],
        tolerance: f32,
    ) {
        for &(channels, filters, pad_begin, in_size, out_size) in cases {
            let g = Geometry {
                in_channels: channels,
                in_size,
                out_channels: filters,
                kernel: [3, 3],
                stride: [1, 1],
                pad_begin,
                out_size,
            };
            assert_matches_the_definition(algorithm, &g, tolerance);
        }
    }

    #[test]
    fn takes_wide_stride_1_3x3_1x7_and_7x1_convolutions_only_and_large_tiles_on_large_maps() {
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
        let positions = |g: &Geometry| algorithm(g).map(|a| a.positions());
        assert_eq!(positions(&g), Some(16), "F(2x2, 3x3) on a small map");
        let large = Geometry {
            in_size: [80, 70],
            out_size: [80, 70],
            ..g
        };
        assert_eq!(positions(&large), Some(36), "F(4x4, 3x3) on a large one");
        assert!(!applies(&Geometry {
            stride: [2, 2],
            ..g
        }));
        for kernel in [[1, 7], [7, 1]] {
            assert!(applies(&Geometry { kernel, ..g }));
        }
        assert!(!applies(&Geometry {
            kernel: [5, 5],
            ..g
        }));
        assert!(!applies(&Geometry {
            in_channels: 3,
            ..g
        }));
    }
}

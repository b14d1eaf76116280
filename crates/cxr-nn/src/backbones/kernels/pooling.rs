//! Max and average pooling over NCHW planes, as two one-dimensional passes (down the columns,
//! then along the row), one plane per task. burn flex's pooling walks every window element by
//! element and took 10-80 ms per Inception V3 pool at batch 8, a third of the network's time.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Which reduction, and for averages which divisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    Max,
    /// Divide by the input pixels under the window (Keras' "same" average pooling).
    MeanOfInput,
    /// Divide by the window's area within the padded input (PyTorch's `count_include_pad`).
    MeanWithPadding,
}

/// A pooling window's placement: everything but the channel data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub in_size: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Padding before (top, left) and after (bottom, right) the input.
    pub pad_begin: [usize; 2],
    pub pad_end: [usize; 2],
    pub out_size: [usize; 2],
}

/// One output position's window along one axis: the input range it covers and, for
/// `MeanWithPadding`, how many of its taps fall inside the padded input.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    padded_len: usize,
}

fn spans(axis: usize, g: &Geometry) -> Vec<Span> {
    let (size, kernel, stride) = (g.in_size[axis], g.kernel[axis], g.stride[axis]);
    let (before, after) = (g.pad_begin[axis], g.pad_end[axis]);
    (0..g.out_size[axis])
        .map(|o| {
            // Window taps o*stride - before .. + kernel, in input coordinates.
            let first = o * stride;
            let last = first + kernel;
            let start = first.saturating_sub(before).min(size);
            let end = last.saturating_sub(before).clamp(start, size);
            let padded_len = last.min(size + before + after) - first;
            Span {
                start,
                end,
                padded_len,
            }
        })
        .collect()
}

/// Pools every `[height, width]` plane of `x` (`planes` of them, row-major).
pub fn pool2d(x: &[f32], planes: usize, g: &Geometry, reduce: Reduce) -> Vec<f32> {
    // Written so that the compiler vectorises them (`f32::max` would not: NaN rules).
    let max = |a: f32, b: f32| if b > a { b } else { a };
    let add = |a: f32, b: f32| a + b;
    match reduce {
        Reduce::Max => pool_planes(x, planes, g, Reduction::new(f32::NEG_INFINITY, max, reduce)),
        Reduce::MeanOfInput | Reduce::MeanWithPadding => {
            pool_planes(x, planes, g, Reduction::new(0.0, add, reduce))
        }
    }
}

/// What [`pool_planes`] combines the window with, and where it starts.
#[derive(Clone, Copy)]
struct Reduction<F> {
    empty: f32,
    combine: F,
    reduce: Reduce,
}

impl<F: Fn(f32, f32) -> f32 + Copy> Reduction<F> {
    fn new(empty: f32, combine: F, reduce: Reduce) -> Self {
        Self {
            empty,
            combine,
            reduce,
        }
    }
}

/// The window arithmetic shared by every plane: row and column spans, the column taps and,
/// for averages, each output position's divisor.
struct Plan {
    g: Geometry,
    rows: Vec<Span>,
    taps: Vec<ColumnTap>,
    /// `out_h x out_w` divisors; empty for the maximum.
    divisors: Vec<f32>,
}

impl Plan {
    fn new(g: &Geometry, reduce: Reduce) -> Self {
        let (rows, columns) = (spans(0, g), spans(1, g));
        let area = |row: &Span, column: &Span| match reduce {
            Reduce::Max => 1,
            Reduce::MeanOfInput => (row.end - row.start) * (column.end - column.start),
            Reduce::MeanWithPadding => row.padded_len * column.padded_len,
        };
        let divisors = match reduce {
            Reduce::Max => Vec::new(),
            _ => rows
                .iter()
                .flat_map(|row| {
                    columns
                        .iter()
                        .map(move |column| area(row, column).max(1) as f32)
                })
                .collect(),
        };
        Self {
            g: *g,
            rows,
            taps: column_taps(g),
            divisors,
        }
    }
}

fn pool_planes<F: Fn(f32, f32) -> f32 + Copy + Sync>(
    x: &[f32],
    planes: usize,
    g: &Geometry,
    reduction: Reduction<F>,
) -> Vec<f32> {
    let [in_h, in_w] = g.in_size;
    let [out_h, out_w] = g.out_size;
    assert_eq!(x.len(), planes * in_h * in_w, "input length");
    let len = planes * out_h * out_w;
    let mut output = Vec::with_capacity(len);
    if len == 0 {
        return output;
    }
    let plan = Plan::new(g, reduction.reduce);
    #[cfg(target_arch = "x86_64")]
    let avx2 = is_x86_feature_detected!("avx2");
    output.spare_capacity_mut()[..len]
        .par_chunks_mut(out_h * out_w)
        .zip(x.par_chunks(in_h * in_w))
        .for_each_init(Vec::new, |scratch, (out, plane)| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2, checked above.
                unsafe { pool_plane_avx2(&plan, reduction, plane, scratch, out) };
                return;
            }
            pool_plane(&plan, reduction, plane, scratch, out);
        });
    // SAFETY: `pool_plane` writes every output of every plane.
    unsafe { output.set_len(len) };
    output
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn pool_plane_avx2<F: Fn(f32, f32) -> f32 + Copy>(
    plan: &Plan,
    reduction: Reduction<F>,
    plane: &[f32],
    scratch: &mut Vec<f32>,
    out: &mut [MaybeUninit<f32>],
) {
    pool_plane(plan, reduction, plane, scratch, out);
}

/// One plane, an output row at a time: the input rows under its window combined down the
/// columns (whole rows, contiguous), then that row along its width. Reducing down first
/// leaves the strided pass (stride 2) only the output rows' worth of values.
#[inline(always)]
fn pool_plane<F: Fn(f32, f32) -> f32 + Copy>(
    plan: &Plan,
    Reduction {
        empty,
        combine,
        reduce,
    }: Reduction<F>,
    plane: &[f32],
    scratch: &mut Vec<f32>,
    out: &mut [MaybeUninit<f32>],
) {
    let [_, in_w] = plan.g.in_size;
    let [_, out_w] = plan.g.out_size;
    let stride = plan.g.stride[1];
    scratch.resize(in_w + out_w, empty);
    let (down, across) = scratch.split_at_mut(in_w);
    for (oy, (out_row, span)) in out.chunks_exact_mut(out_w).zip(&plan.rows).enumerate() {
        down.fill(empty);
        for line in plane[span.start * in_w..span.end * in_w].chunks_exact(in_w) {
            for (d, &v) in down.iter_mut().zip(line) {
                *d = combine(*d, v);
            }
        }
        across.fill(empty);
        for tap in &plan.taps {
            let targets = &mut across[tap.outputs.clone()];
            let sources = &down[tap.first_input..];
            // `step_by(1)` would compile to a scalar loop. The strided reads stay scalar: splitting
            // the row into its stride phases first measured no faster (memory-bound).
            if stride == 1 {
                for (value, &source) in targets.iter_mut().zip(sources) {
                    *value = combine(*value, source);
                }
            } else {
                for (value, &source) in targets.iter_mut().zip(sources.iter().step_by(stride)) {
                    *value = combine(*value, source);
                }
            }
        }
        if reduce == Reduce::Max {
            for (o, &v) in out_row.iter_mut().zip(across.iter()) {
                o.write(v);
            }
        } else {
            let divisors = &plan.divisors[oy * out_w..][..out_w];
            for ((o, &v), &d) in out_row.iter_mut().zip(across.iter()).zip(divisors) {
                o.write(v / d);
            }
        }
    }
}

/// One kernel column's contribution along a row: the output columns whose window puts that
/// tap inside the input, and the input column the first of them reads (the next ones read
/// every `stride`-th after it).
struct ColumnTap {
    outputs: std::ops::Range<usize>,
    first_input: usize,
}

fn column_taps(g: &Geometry) -> Vec<ColumnTap> {
    let (size, stride, before, out) = (g.in_size[1], g.stride[1], g.pad_begin[1], g.out_size[1]);
    (0..g.kernel[1])
        .filter_map(|k| {
            let outputs = super::outputs_reading_input(size, before, k, stride, out);
            (!outputs.is_empty()).then(|| ColumnTap {
                first_input: outputs.start * stride + k - before,
                outputs,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::kernels::reference::{
        leave_nans_for_the_next_allocation, worst_difference,
    };

    /// The definition: every window, element by element.
    fn naive(x: &[f32], planes: usize, g: &Geometry, reduce: Reduce) -> Vec<f32> {
        let [in_h, in_w] = g.in_size;
        let [out_h, out_w] = g.out_size;
        let mut y = Vec::new();
        for p in 0..planes {
            for oy in 0..out_h {
                for ox in 0..out_w {
                    let (mut max, mut sum, mut inside, mut padded) = (f32::NEG_INFINITY, 0.0, 0, 0);
                    for ky in 0..g.kernel[0] {
                        for kx in 0..g.kernel[1] {
                            let iy = (oy * g.stride[0] + ky) as isize - g.pad_begin[0] as isize;
                            let ix = (ox * g.stride[1] + kx) as isize - g.pad_begin[1] as isize;
                            let within_padding = iy < (in_h + g.pad_end[0]) as isize
                                && ix < (in_w + g.pad_end[1]) as isize;
                            padded += within_padding as usize;
                            if iy < 0 || ix < 0 || iy >= in_h as isize || ix >= in_w as isize {
                                continue;
                            }
                            let v = x[(p * in_h + iy as usize) * in_w + ix as usize];
                            max = max.max(v);
                            sum += v;
                            inside += 1;
                        }
                    }
                    y.push(match reduce {
                        Reduce::Max => max,
                        Reduce::MeanOfInput => sum / inside as f32,
                        Reduce::MeanWithPadding => sum / padded as f32,
                    });
                }
            }
        }
        y
    }

    #[test]
    fn matches_the_definition() {
        // (kernel, stride, pad_begin, pad_end, input, output): Inception's 3x3/2 valid max
        // pool, 3x3/1 "same" average pools, torchvision's ceil-mode pools (a last window
        // hanging over the edge), a 2x2/2 pool, padded max pools and a stride of 3.
        let cases = [
            ([3, 3], [2, 2], [0, 0], [0, 0], [9, 11], [4, 5]),
            ([3, 3], [1, 1], [1, 1], [1, 1], [7, 6], [7, 6]),
            ([3, 3], [2, 2], [0, 0], [0, 0], [10, 8], [5, 4]),
            ([3, 3], [2, 2], [0, 0], [0, 0], [8, 8], [4, 4]),
            ([2, 2], [2, 2], [0, 0], [0, 0], [6, 7], [3, 3]),
            ([3, 3], [2, 2], [1, 1], [1, 1], [7, 7], [4, 4]),
            ([3, 3], [2, 2], [0, 0], [1, 1], [8, 8], [4, 4]),
            ([3, 3], [3, 3], [1, 1], [0, 0], [9, 10], [3, 3]),
        ];
        for (kernel, stride, pad_begin, pad_end, in_size, out_size) in cases {
            let g = Geometry {
                in_size,
                kernel,
                stride,
                pad_begin,
                pad_end,
                out_size,
            };
            let planes = 3;
            let x: Vec<f32> = (0..planes * in_size[0] * in_size[1])
                .map(|i| ((i * 7919) % 101) as f32 / 10.0 - 5.0)
                .collect();
            for reduce in [Reduce::Max, Reduce::MeanOfInput, Reduce::MeanWithPadding] {
                let expected = naive(&x, planes, &g, reduce);
                leave_nans_for_the_next_allocation(expected.len());
                let got = pool2d(&x, planes, &g, reduce);
                let worst = worst_difference(&expected, &got);
                assert!(worst < 1e-5, "{g:?} {reduce:?}: {worst}");
            }
        }
    }
}

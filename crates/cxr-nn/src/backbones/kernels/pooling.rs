//! Max and average pooling over NCHW planes, as two one-dimensional passes (along rows, then
//! down columns), one plane per task. burn flex's pooling walks every window element by element
//! and took 10-80 ms per Inception V3 pool at batch 8, a third of the network's time.

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
        Reduce::Max => pool_planes(x, planes, g, f32::NEG_INFINITY, max, reduce),
        Reduce::MeanOfInput | Reduce::MeanWithPadding => {
            pool_planes(x, planes, g, 0.0, add, reduce)
        }
    }
}

fn pool_planes(
    x: &[f32],
    planes: usize,
    g: &Geometry,
    empty: f32,
    combine: impl Fn(f32, f32) -> f32 + Copy + Sync,
    reduce: Reduce,
) -> Vec<f32> {
    let [in_h, in_w] = g.in_size;
    let [out_h, out_w] = g.out_size;
    assert_eq!(x.len(), planes * in_h * in_w, "input length");
    let (rows, columns) = (spans(0, g), spans(1, g));
    let taps = column_taps(g);
    let mut output = vec![0.0f32; planes * out_h * out_w];
    if out_h * out_w == 0 {
        return output;
    }
    output
        .par_chunks_mut(out_h * out_w)
        .zip(x.par_chunks(in_h * in_w))
        .for_each_init(Vec::new, |across, (out, plane)| {
            // Pass 1: along each input row, one kernel column at a time, for every output column.
            across.resize(in_h * out_w, 0.0);
            for (line, reduced) in plane.chunks_exact(in_w).zip(across.chunks_exact_mut(out_w)) {
                reduced.fill(empty);
                for tap in &taps {
                    let targets = &mut reduced[tap.outputs.clone()];
                    let sources = line[tap.first_input..].iter().step_by(g.stride[1]);
                    for (value, &source) in targets.iter_mut().zip(sources) {
                        *value = combine(*value, source);
                    }
                }
            }
            // Pass 2: down the rows under each output row.
            for (out_row, span) in out.chunks_exact_mut(out_w).zip(&rows) {
                out_row.fill(empty);
                for reduced in across[span.start * out_w..span.end * out_w].chunks_exact(out_w) {
                    for (o, &r) in out_row.iter_mut().zip(reduced) {
                        *o = combine(*o, r);
                    }
                }
                let area = |column: &Span| match reduce {
                    Reduce::Max => 1,
                    Reduce::MeanOfInput => (span.end - span.start) * (column.end - column.start),
                    Reduce::MeanWithPadding => span.padded_len * column.padded_len,
                };
                if reduce != Reduce::Max {
                    for (o, column) in out_row.iter_mut().zip(&columns) {
                        *o /= area(column).max(1) as f32;
                    }
                }
            }
        });
    output
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
    use crate::backbones::kernels::reference::worst_difference;

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
        // hanging over the edge), a 2x2/2 pool and a padded max pool.
        let cases = [
            ([3, 3], [2, 2], [0, 0], [0, 0], [9, 11], [4, 5]),
            ([3, 3], [1, 1], [1, 1], [1, 1], [7, 6], [7, 6]),
            ([3, 3], [2, 2], [0, 0], [0, 0], [10, 8], [5, 4]),
            ([3, 3], [2, 2], [0, 0], [0, 0], [8, 8], [4, 4]),
            ([2, 2], [2, 2], [0, 0], [0, 0], [6, 7], [3, 3]),
            ([3, 3], [2, 2], [1, 1], [1, 1], [7, 7], [4, 4]),
            ([3, 3], [2, 2], [0, 0], [1, 1], [8, 8], [4, 4]),
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
                let got = pool2d(&x, planes, &g, reduce);
                let worst = worst_difference(&expected, &got);
                assert!(worst < 1e-5, "{g:?} {reduce:?}: {worst}");
            }
        }
    }
}

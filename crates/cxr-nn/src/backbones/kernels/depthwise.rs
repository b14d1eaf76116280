//! Depthwise KxK convolutions (one filter per channel: MobileNetV2's and EfficientNet-Lite's
//! middle layer, Xception's separable half), one plane per task, bias and activation fused.
//!
//! Why not flex's own kernel: it pads a copy of the input for TensorFlow's asymmetric "same"
//! padding and runs the activation as separate passes over the whole map. Here each plane is
//! copied once into a zero-bordered scratch plane, its rows split into their `stride` phases,
//! so that every tap of a run of outputs reads consecutive values; each run of outputs is then
//! summed over all taps in registers (vectorised, with AVX2 where the CPU has it) and written
//! once, activation applied.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{Activation, ConvGeometry};

/// Outputs summed together in registers: four 8-wide AVX2 accumulators, so that the additions
/// of one tap do not wait on each other.
const RUN: usize = 32;
/// The shorter run for the rest of a row.
const TAIL_RUN: usize = 8;

/// `y[b, c] = activation(sum over taps of weight[c, tap] * shifted x[b, c] + bias[c])` for
/// `x` `[batch, channels, height, width]` (row-major, `channels = in_channels = out_channels`)
/// and `weight` `[channels, 1, kh, kw]`. Returns `[batch, channels, out_h, out_w]`.
pub fn depthwise2d(
    x: &[f32],
    batch: usize,
    geometry: &ConvGeometry,
    weight: &[f32],
    bias: Option<&[f32]>,
    activation: Activation,
) -> Vec<f32> {
    let g = *geometry;
    let channels = g.in_channels;
    let (in_plane, out_plane) = (g.in_size[0] * g.in_size[1], g.out_pixels());
    let taps = g.kernel[0] * g.kernel[1];
    assert_eq!(
        g.out_channels, channels,
        "depthwise: as many outputs as inputs"
    );
    assert_eq!(x.len(), batch * channels * in_plane, "input length");
    assert_eq!(weight.len(), channels * taps, "weight length");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), channels, "bias length");
    }
    let len = batch * channels * out_plane;
    // Left unwritten here, as im2col's result is (zeroing the two took 2.9 % of Xception's
    // time): every plane's task writes all of its values.
    let mut output = Vec::<f32>::with_capacity(len);
    if out_plane == 0 {
        return output;
    }
    let layout = ScratchLayout::new(&g);
    #[cfg(target_arch = "x86_64")]
    let avx2 = is_x86_feature_detected!("avx2");
    output.spare_capacity_mut()[..len]
        .par_chunks_mut(out_plane)
        .enumerate()
        .for_each_init(Vec::new, |scratch, (plane, out)| {
            let channel = plane % channels;
            layout.fill(&x[plane * in_plane..][..in_plane], scratch);
            let filter = &weight[channel * taps..][..taps];
            let bias = bias.map_or(0.0, |bias| bias[channel]);
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2, checked above.
                unsafe { convolve_plane_avx2(&layout, scratch, filter, bias, activation, out) };
                return;
            }
            convolve_plane(&layout, scratch, filter, bias, activation, out);
        });
    // SAFETY: `convolve_plane` writes every value of every plane.
    unsafe { output.set_len(len) };
    output
}

/// The scratch copy of one input plane: zero-bordered by the padding (and more, so that every
/// run of outputs reads whole), each row split into its `stride` phases (`phase[i] =
/// row[i * stride + p]`). Padded row `r`, phase `p` starts at `(r * stride + p) * phase_len`:
/// output `ox`'s tap `kx` reads phase `kx % stride` at `ox + kx / stride`.
struct ScratchLayout {
    g: ConvGeometry,
    rows: usize,
    phase_len: usize,
}

impl ScratchLayout {
    fn new(g: &ConvGeometry) -> Self {
        let [in_h, _] = g.in_size;
        let [out_h, out_w] = g.out_size;
        let [kh, kw] = g.kernel;
        let [stride_y, stride_x] = g.stride;
        // Every row an output reads, and past the input's own (at stride 2 the last window may
        // end before the last input row).
        let rows = ((out_h - 1) * stride_y + kh).max(g.pad_begin[0] + in_h);
        // The last run starts before `out_w` and reads `RUN` values from `(kw - 1) / stride`.
        let phase_len = out_w.next_multiple_of(TAIL_RUN) + RUN + (kw - 1) / stride_x;
        let phase_len = phase_len.max((g.pad_begin[1] + g.in_size[1]).div_ceil(stride_x));
        Self {
            g: *g,
            rows,
            phase_len,
        }
    }

    /// Copies `input` (one `in_h x in_w` plane) into `scratch`, laid out as described above.
    /// `scratch` is empty or was filled by this layout before.
    fn fill(&self, input: &[f32], scratch: &mut Vec<f32>) {
        let [in_h, in_w] = self.g.in_size;
        let [pad_y, pad_x] = self.g.pad_begin;
        let stride = self.g.stride[1];
        // Zeroed once per task: every plane then writes the same interior positions, so the
        // border (the padding) stays zero.
        let len = self.rows * stride * self.phase_len;
        if scratch.len() != len {
            scratch.clear();
            scratch.resize(len, 0.0);
        }
        for (iy, line) in input.chunks_exact(in_w).enumerate().take(in_h) {
            let split = &mut scratch[(pad_y + iy) * stride * self.phase_len..];
            for phase in 0..stride {
                // The first input column in this phase, and where it goes.
                let first = (phase + stride - pad_x % stride) % stride;
                if first >= in_w {
                    continue;
                }
                let start = phase * self.phase_len + (pad_x + first) / stride;
                let source = &line[first..];
                let target = &mut split[start..][..source.len().div_ceil(stride)];
                // A run of stride 1 is a plain copy: `step_by(1)` compiled to a scalar loop
                // that took 8 % of Xception's time.
                if stride == 1 {
                    target.copy_from_slice(source);
                } else {
                    for (value, &source) in target.iter_mut().zip(source.iter().step_by(stride)) {
                        *value = source;
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn convolve_plane_avx2(
    layout: &ScratchLayout,
    scratch: &[f32],
    filter: &[f32],
    bias: f32,
    activation: Activation,
    out: &mut [MaybeUninit<f32>],
) {
    convolve_plane(layout, scratch, filter, bias, activation, out);
}

/// One output plane, from its input's scratch copy: every value of `out` is written.
#[inline(always)]
fn convolve_plane(
    layout: &ScratchLayout,
    scratch: &[f32],
    filter: &[f32],
    bias: f32,
    activation: Activation,
    out: &mut [MaybeUninit<f32>],
) {
    let [_, out_w] = layout.g.out_size;
    for (oy, row) in out.chunks_exact_mut(out_w).enumerate() {
        let mut ox = 0;
        while ox + RUN <= out_w {
            let run = sum_run::<RUN>(layout, scratch, filter, bias, activation, oy, ox);
            row[ox..ox + RUN].write_copy_of_slice(&run);
            ox += RUN;
        }
        while ox < out_w {
            let run = sum_run::<TAIL_RUN>(layout, scratch, filter, bias, activation, oy, ox);
            let len = TAIL_RUN.min(out_w - ox);
            row[ox..ox + len].write_copy_of_slice(&run[..len]);
            ox += len;
        }
    }
}

/// Outputs `ox..ox + N` of row `oy`, summed over every tap in `N` accumulators.
#[inline(always)]
fn sum_run<const N: usize>(
    layout: &ScratchLayout,
    scratch: &[f32],
    filter: &[f32],
    bias: f32,
    activation: Activation,
    oy: usize,
    ox: usize,
) -> [f32; N] {
    let [kh, kw] = layout.g.kernel;
    let [stride_y, stride_x] = layout.g.stride;
    let mut sum = [bias; N];
    for ky in 0..kh {
        let row = (oy * stride_y + ky) * stride_x;
        for kx in 0..kw {
            let start = (row + kx % stride_x) * layout.phase_len + kx / stride_x + ox;
            let values: &[f32; N] = scratch[start..start + N].try_into().expect("N values");
            let w = filter[ky * kw + kx];
            for (s, v) in sum.iter_mut().zip(values) {
                *s += w * v;
            }
        }
    }
    activation.apply(&mut sum);
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::kernels::reference::{
        leave_nans_for_the_next_allocation, naive_conv2d, test_values, worst_difference,
    };

    /// The definition: each plane convolved alone with its channel's filter, as a dense
    /// convolution of one input and one output channel.
    fn naive(x: &[f32], batch: usize, g: &ConvGeometry, weight: &[f32], bias: &[f32]) -> Vec<f32> {
        let channels = g.in_channels;
        let one_channel = ConvGeometry {
            in_channels: 1,
            out_channels: 1,
            ..*g
        };
        let (in_plane, taps) = (g.in_size[0] * g.in_size[1], g.kernel[0] * g.kernel[1]);
        (0..batch * channels)
            .flat_map(|plane| {
                let c = plane % channels;
                naive_conv2d(
                    &x[plane * in_plane..][..in_plane],
                    1,
                    &one_channel,
                    &weight[c * taps..][..taps],
                    &bias[c..=c],
                )
            })
            .collect()
    }

    #[test]
    fn matches_the_definition_for_strides_and_padding() {
        // (kernel, stride, pad_begin, input size, output size): symmetric padding, TensorFlow's
        // "same" at stride 2 (the extra padding after), none, and 5x5 kernels.
        let cases = [
            ([3, 3], [1, 1], [1, 1], [9, 11], [9, 11]),
            ([3, 3], [2, 2], [0, 0], [10, 10], [5, 5]),
            ([3, 3], [2, 2], [1, 1], [9, 11], [5, 6]),
            ([5, 5], [1, 1], [2, 2], [7, 6], [7, 6]),
            ([5, 5], [2, 2], [1, 1], [8, 8], [4, 4]),
            ([3, 3], [1, 1], [0, 0], [5, 5], [3, 3]),
            ([3, 3], [1, 1], [1, 1], [1, 1], [1, 1]),
        ];
        let mut clipped_above = false;
        for (kernel, stride, pad_begin, in_size, out_size) in cases {
            let g = ConvGeometry {
                in_channels: 3,
                in_size,
                out_channels: 3,
                kernel,
                stride,
                pad_begin,
                out_size,
            };
            let batch = 2;
            let x = test_values(batch * 3 * in_size[0] * in_size[1], 1);
            // Large enough weights that some outputs pass ReLU6's upper bound.
            let weight: Vec<f32> = test_values(3 * kernel[0] * kernel[1], 2)
                .iter()
                .map(|w| w * 40.0)
                .collect();
            let bias = test_values(3, 3);
            let expected = naive(&x, batch, &g, &weight, &bias);
            leave_nans_for_the_next_allocation(expected.len());
            let got = depthwise2d(&x, batch, &g, &weight, Some(&bias), Activation::Identity);
            let worst = worst_difference(&expected, &got);
            assert!(worst < 1e-4, "{g:?}: {worst}");
            leave_nans_for_the_next_allocation(expected.len());
            let clipped = depthwise2d(&x, batch, &g, &weight, Some(&bias), Activation::Relu6);
            assert!(
                clipped
                    .iter()
                    .zip(&got)
                    .all(|(c, v)| *c == v.clamp(0.0, 6.0))
            );
            clipped_above |= got.iter().any(|v| *v > 6.0);
        }
        assert!(clipped_above, "no case reached ReLU6's upper bound");
    }
}

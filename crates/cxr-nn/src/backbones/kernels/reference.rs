//! What the kernels are tested against: the convolution's definition, one multiply-accumulate
//! at a time, deterministic test values and the worst difference of two results.

use super::ConvGeometry;

/// Deterministic values in [-0.5, 0.5).
pub fn test_values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) as f32 / 65536.0 - 0.5
        })
        .collect()
}

/// The largest absolute difference between two results of the same length; infinite where a
/// value is NaN (`f32::max` would skip it).
pub fn worst_difference(expected: &[f32], got: &[f32]) -> f32 {
    assert_eq!(expected.len(), got.len(), "result lengths");
    expected
        .iter()
        .zip(got)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, |worst, difference| {
            if difference.is_nan() {
                f32::INFINITY
            } else {
                worst.max(difference)
            }
        })
}

/// Frees a block of `len` NaNs, so that the next allocation of that size (a kernel's result,
/// which kernels leave unwritten until they write it) most likely gets that block back: a value
/// a kernel forgot to write then reads NaN instead of the zero of fresh memory.
pub fn leave_nans_for_the_next_allocation(len: usize) {
    std::hint::black_box(vec![f32::NAN; len]);
}

/// A dense convolution by its definition: `x` `[batch, in_channels, h, w]`, `weight`
/// `[out_channels, in_channels, kh, kw]`, row-major.
pub fn naive_conv2d(
    x: &[f32],
    batch: usize,
    g: &ConvGeometry,
    weight: &[f32],
    bias: &[f32],
) -> Vec<f32> {
    let [in_h, in_w] = g.in_size;
    let [out_h, out_w] = g.out_size;
    let [kh, kw] = g.kernel;
    let mut y = vec![0.0; batch * g.out_channels * out_h * out_w];
    for b in 0..batch {
        for o in 0..g.out_channels {
            for oy in 0..out_h {
                for ox in 0..out_w {
                    let mut sum = bias[o];
                    for c in 0..g.in_channels {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * g.stride[0] + ky) as isize - g.pad_begin[0] as isize;
                                let ix = (ox * g.stride[1] + kx) as isize - g.pad_begin[1] as isize;
                                if iy < 0 || ix < 0 || iy >= in_h as isize || ix >= in_w as isize {
                                    continue;
                                }
                                let xi = ((b * g.in_channels + c) * in_h + iy as usize) * in_w
                                    + ix as usize;
                                let wi = ((o * g.in_channels + c) * kh + ky) * kw + kx;
                                sum += x[xi] * weight[wi];
                            }
                        }
                    }
                    y[((b * g.out_channels + o) * out_h + oy) * out_w + ox] = sum;
                }
            }
        }
    }
    y
}

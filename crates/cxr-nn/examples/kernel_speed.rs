//! Per-layer speed of cxr's CPU kernels (`backbones::kernels`) against burn flex's own, on
//! Inception V3's convolution and pooling shapes at batch 8: each layer timed alternately with
//! the kernels off, on without the Winograd kernel (convolutions only) and on, median of the
//! rounds. Prints one line per layer.
//!
//! Usage: kernel_speed [ROUNDS=5]

use std::time::Instant;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::tensor::{Distribution, Tensor};
use cxr_core::allocator::{Allocator, keep_freed_memory};
use cxr_nn::backbones::{kernels, macs};
use cxr_nn::device::inference_device;

// The allocator the `cxr` binary uses (see cxr_core::allocator).
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

const BATCH: usize = 8;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Which kernels run: burn's alone, cxr's without Winograd, or all of cxr's.
#[derive(Clone, Copy)]
enum Kernels {
    Burn,
    Im2col,
    All,
}

/// Milliseconds of `layer` under each of `settings`, timed alternately.
fn time_each<const N: usize>(
    rounds: usize,
    settings: [Kernels; N],
    layer: impl Fn() -> Tensor<4>,
) -> [f64; N] {
    let mut times: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    for round in 0..=rounds {
        for (setting, times) in settings.iter().zip(&mut times) {
            kernels::set_enabled(!matches!(setting, Kernels::Burn));
            kernels::set_winograd_enabled(matches!(setting, Kernels::All));
            let start = Instant::now();
            std::hint::black_box(layer().into_data());
            // The first round warms allocations and the thread pool up.
            if round > 0 {
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    kernels::set_enabled(true);
    kernels::set_winograd_enabled(true);
    times.map(median)
}

fn conv(input: usize, output: usize, kernel: [usize; 2], stride: usize, same: bool) -> Conv2d {
    let padding = if same {
        PaddingConfig2d::Same
    } else {
        PaddingConfig2d::Valid
    };
    Conv2dConfig::new([input, output], kernel)
        .with_stride([stride, stride])
        .with_padding(padding)
        .init(&inference_device())
}

fn main() {
    keep_freed_memory();
    let rounds = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let device = inference_device();
    let input = |channels: usize, side: usize| {
        Tensor::<4>::random(
            [BATCH, channels, side, side],
            Distribution::Default,
            &device,
        )
    };
    // (in, out, kernel, stride, input side, "same" padding): Inception V3's stem and a few of
    // its block convolutions.
    let convolutions = [
        (3, 32, [3, 3], 2, 299, false),
        (32, 32, [3, 3], 1, 149, false),
        (32, 64, [3, 3], 1, 147, true),
        (80, 192, [3, 3], 1, 73, false),
        (64, 96, [3, 3], 1, 35, true),
        (96, 96, [3, 3], 1, 35, true),
        (288, 384, [3, 3], 2, 35, false),
        (128, 128, [1, 7], 1, 17, true),
        (160, 160, [7, 1], 1, 17, true),
        (192, 192, [1, 7], 1, 17, true),
        (448, 384, [3, 3], 1, 8, true),
    ];
    for (cin, cout, kernel, stride, side, same) in convolutions {
        let layer = conv(cin, cout, kernel, stride, same);
        let x = input(cin, side);
        let (_, macs) =
            macs::count(|| macs::conv2d(&layer, x.clone(), kernels::Activation::Identity));
        let settings = [Kernels::Burn, Kernels::Im2col, Kernels::All];
        let [burn, im2col, cxr] = time_each(rounds, settings, || {
            macs::conv2d(&layer, x.clone(), kernels::Activation::Identity)
        });
        // Direct-convolution GFLOP/s, also for Winograd (which does fewer).
        let gflops = |ms: f64| 2.0 * macs as f64 / ms / 1e6;
        println!(
            "conv {cin}->{cout} {kernel:?}/{stride} at {side} px: burn {burn:.1} ms ({:.0} GFLOP/s), cxr without Winograd {im2col:.1} ms ({:.0}), cxr {cxr:.1} ms ({:.0}), x{:.2} burn, x{:.2} without Winograd",
            gflops(burn),
            gflops(im2col),
            gflops(cxr),
            burn / cxr,
            im2col / cxr
        );
    }
    let keras_average = AvgPool2dConfig::new([3, 3])
        .with_strides([1, 1])
        .with_padding(PaddingConfig2d::Same)
        .with_count_include_pad(false)
        .init();
    let reduction = MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init();
    for (channels, side) in [(192, 35), (288, 35), (768, 17), (2048, 8)] {
        let x = input(channels, side);
        let [burn, cxr] = time_each(rounds, [Kernels::Burn, Kernels::All], || {
            kernels::pool2d(&keras_average, x.clone())
        });
        println!(
            "average pool 3x3/1 of {channels} x {side} px: burn {burn:.1} ms, cxr {cxr:.1} ms, x{:.2}",
            burn / cxr
        );
    }
    for (channels, side) in [(64, 147), (192, 71), (288, 35), (768, 17)] {
        let x = input(channels, side);
        let [burn, cxr] = time_each(rounds, [Kernels::Burn, Kernels::All], || {
            kernels::pool2d(&reduction, x.clone())
        });
        println!(
            "max pool 3x3/2 of {channels} x {side} px: burn {burn:.1} ms, cxr {cxr:.1} ms, x{:.2}",
            burn / cxr
        );
    }
}

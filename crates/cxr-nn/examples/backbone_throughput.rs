//! Inference throughput of the backbones on the default device: images/s at each one's native
//! size, BatchNorm folded, no autodiff. bench/backbones.sh runs it beside PyTorch.
//!
//! Usage: backbone_throughput [--batch N] [--rounds N] [--unfolded] [--burn-kernels]
//!                            [--no-winograd] [BACKBONE...]
//! `--burn-kernels` runs every layer on burn's own kernels, without cxr's CPU ones
//! (`backbones::kernels`), to measure what those add; `--no-winograd` runs 3x3, 1x7 and 7x1
//! convolutions as image-to-column products, to measure what the Winograd kernels add.
//! Prints one JSON line per backbone with the median images/s over the timed rounds. The
//! weights are freshly initialised: the work per image does not depend on their values.

use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use cxr_core::allocator::{Allocator, keep_freed_memory};
use cxr_nn::backbones::BackboneKind;
use cxr_nn::device::inference_device;

// The allocator the `cxr` binary uses (see cxr_core::allocator).
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

struct Options {
    batch: usize,
    rounds: usize,
    fold: bool,
    own_kernels: bool,
    winograd: bool,
    names: Vec<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        batch: 8,
        rounds: 10,
        fold: true,
        own_kernels: true,
        winograd: true,
        names: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<usize, String> {
            args.next()
                .and_then(|value| value.parse().ok())
                .filter(|&n| n > 0)
                .ok_or(format!("{flag} needs a positive number"))
        };
        match arg.as_str() {
            "--batch" => options.batch = number("--batch")?,
            "--rounds" => options.rounds = number("--rounds")?,
            "--unfolded" => options.fold = false,
            "--burn-kernels" => options.own_kernels = false,
            "--no-winograd" => options.winograd = false,
            name => options.names.push(name.to_string()),
        }
    }
    if options.names.is_empty() {
        options.names = BackboneKind::names()
            .into_iter()
            .map(String::from)
            .collect();
    }
    Ok(options)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    keep_freed_memory();
    let options = parse_args()?;
    let device = inference_device();
    cxr_nn::backbones::kernels::set_enabled(options.own_kernels);
    cxr_nn::backbones::kernels::set_winograd_enabled(options.winograd);
    for name in &options.names {
        let kind = BackboneKind::from_name(name)?;
        let net = kind.init(&device);
        let net = if options.fold {
            net.fold_batchnorm()
        } else {
            net
        };
        let side = kind.spec().input_size;
        let shape = [options.batch, 3, side, side];
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let run = || {
            let start = Instant::now();
            // Reading the output back makes sure the whole batch has been computed.
            let output = match net.imagenet_logits(x.clone()) {
                Some(logits) => logits.into_data(),
                None => net.features(x.clone()).into_data(),
            };
            std::hint::black_box(output);
            options.batch as f64 / start.elapsed().as_secs_f64()
        };
        run(); // warm-up: first-touch allocations and thread pool start
        let rates: Vec<f64> = (0..options.rounds).map(|_| run()).collect();
        let line = serde_json::json!({
            "framework": "burn-flex",
            "backbone": name,
            "input": side,
            "batch": options.batch,
            "batchnorm_folded": options.fold,
            "cxr_kernels": options.own_kernels,
            "winograd": options.own_kernels && options.winograd,
            "images_per_s": median(rates),
        });
        println!("{line}");
    }
    Ok(())
}

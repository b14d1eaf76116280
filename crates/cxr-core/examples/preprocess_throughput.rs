//! Throughput of the whole file -> tensor path (decode, fit, normalise) over a list of images,
//! with rayon over images; bench/preprocess.sh runs it beside Pillow on the same files.
//!
//! Usage: preprocess_throughput [--preset NAME] [--repeat N] [--dump FILE] IMAGE...
//! Prints one JSON line: images, seconds, images_per_s, threads. `--dump` writes the first
//! image's tensor as raw little-endian f32 (CHW), for comparing with another implementation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use cxr_core::DecodeLimits;
use cxr_core::allocator::{Allocator, keep_freed_memory};
use cxr_core::preprocess::{PreprocessSpec, preprocess_file};
use rayon::prelude::*;

// The allocator the `cxr` binary uses: with glibc's, every image's buffers go back to the OS
// and fault in again, which cost about 40% of this path (measured: 394 -> 659 images/s on one
// thread).
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

struct Args {
    preset: String,
    repeat: usize,
    dump: Option<PathBuf>,
    images: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        preset: "paper".into(),
        repeat: 1,
        dump: None,
        images: Vec::new(),
    };
    let mut raw = std::env::args().skip(1);
    while let Some(arg) = raw.next() {
        let mut value = |flag: &str| raw.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--preset" => args.preset = value("--preset")?,
            "--repeat" => {
                args.repeat = value("--repeat")?
                    .parse()
                    .map_err(|e| format!("--repeat: {e}"))?
            }
            "--dump" => args.dump = Some(value("--dump")?.into()),
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
            _ => args.images.push(arg.into()),
        }
    }
    if args.images.is_empty() || args.repeat == 0 {
        return Err(
            "usage: preprocess_throughput [--preset NAME] [--repeat N] [--dump FILE] IMAGE..."
                .into(),
        );
    }
    Ok(args)
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let spec = PreprocessSpec::preset(&args.preset).map_err(|e| e.to_string())?;
    let limits = DecodeLimits::default();
    let work: Vec<&PathBuf> = (0..args.repeat).flat_map(|_| &args.images).collect();

    // Tensors are dropped as they are made, as a data loader hands them on: keeping them all
    // would measure the allocator's growth rather than preprocessing.
    let started = Instant::now();
    work.par_iter()
        .try_for_each(|path| preprocess_file(path, &spec, &limits).map(drop))
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();

    if let Some(dump) = &args.dump {
        let first = preprocess_file(&args.images[0], &spec, &limits).map_err(|e| e.to_string())?;
        let bytes: Vec<u8> = first.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dump, bytes).map_err(|e| format!("{}: {e}", dump.display()))?;
    }
    println!(
        "{{\"images\": {}, \"seconds\": {seconds:.4}, \"images_per_s\": {:.2}, \"threads\": {}}}",
        work.len(),
        work.len() as f64 / seconds,
        rayon::current_num_threads()
    );
    Ok(())
}

fn main() -> ExitCode {
    keep_freed_memory();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("preprocess_throughput: {message}");
            ExitCode::FAILURE
        }
    }
}

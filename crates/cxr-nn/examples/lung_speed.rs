//! Lung segmentation speed: milliseconds per X-ray for the network alone at its input size,
//! and for the whole `cxr segment` path (decode, network, resize back, cleanup, checks).
//!
//! `cargo run --release -p cxr-nn --example lung_speed -- [MODEL] [IMAGES_DIR] [COUNT]`

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use cxr_core::decode::{DecodeLimits, decode_file};
use cxr_core::preprocess::preprocess;
use cxr_nn::segmentation::{LungSegmenter, load_model};

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/lungs-mobilenet-v2.safetensors"
);
const IMAGES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/shenzhen/images"
);

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = PathBuf::from(args.first().map_or(MODEL, String::as_str));
    let dir = PathBuf::from(args.get(1).map_or(IMAGES, String::as_str));
    let count: usize = args.get(2).map_or(Ok(20), |n| n.parse())?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    files.truncate(count);
    if files.is_empty() {
        return Err(format!("no PNG files in {}", dir.display()).into());
    }
    let device = cxr_nn::device::inference_device();
    let (net, card) = load_model(&model, &device)?;
    let folded = net.clone().fold_batchnorm();
    let segmenter = LungSegmenter::new(net, card.clone());
    let images = files
        .iter()
        .map(|file| decode_file(file, &DecodeLimits::default()).map(|d| d.image))
        .collect::<Result<Vec<_>, _>>()?;

    let (mut network, mut whole) = (Vec::new(), Vec::new());
    for (round, image) in images.iter().enumerate() {
        let tensor = preprocess(image, &card.preprocess, None)?;
        let shape = [1, tensor.channels, tensor.height, tensor.width];
        let input = Tensor::<4>::from_data(TensorData::new(tensor.data, shape), &device);
        let started = Instant::now();
        let logits = folded.forward(input);
        logits.into_data();
        let network_ms = started.elapsed().as_secs_f64() * 1000.0;
        let started = Instant::now();
        segment(&segmenter, image, &files[round])?;
        let whole_ms = started.elapsed().as_secs_f64() * 1000.0;
        // The first round pays for allocation and thread start-up.
        if round > 0 || images.len() == 1 {
            network.push(network_ms);
            whole.push(whole_ms);
        }
    }
    let side = card.preprocess.input_size.width;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (network, whole) = (median(network), median(whole));
    println!(
        "{} images, {side} px input, {threads} threads (median of the rounds after the first)",
        images.len()
    );
    println!(
        "network alone: {network:.1} ms per image ({:.1} images/s)",
        1000.0 / network
    );
    println!(
        "whole segment path at {}x{}: {whole:.1} ms per image ({:.1} images/s)",
        images[0].width,
        images[0].height,
        1000.0 / whole
    );
    Ok(())
}

fn segment(
    segmenter: &LungSegmenter,
    image: &cxr_core::image::GrayImage,
    file: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let lungs = segmenter.segment(image)?;
    if !lungs.check.passed() {
        eprintln!("{}: {}", file.display(), lungs.check.summary());
    }
    Ok(())
}

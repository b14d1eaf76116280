//! Shared by the `cxr predict / eval / calibrate / explain` tests: a tiny random-weight
//! classifier saved as a model file, and labelled synthetic chest pictures as PNG and DICOM.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::Output;

use cxr_core::decode::dicom_writer::DicomImage;
use cxr_core::image::GrayImage;
use cxr_core::preprocess::{InputSize, PreprocessSpec};
use cxr_nn::backbones::BackboneKind;
use cxr_nn::classifier::{Classifier, HeadConfig, HeadOutputs, architecture};
use cxr_nn::device::inference_device;
use cxr_nn::model_file::{self, ModelCard, ModelKind};

/// Input side of the tiny model: small, so that a forward pass takes milliseconds.
const INPUT: usize = 64;

/// Saves a randomly initialised EfficientNet-Lite0 classifier (8-unit head, 64 px input).
pub fn tiny_model(path: &Path) -> PathBuf {
    save_tiny_model(path, None, HeadOutputs::Binary)
}

/// [`tiny_model`] with a softmax head over normal, tb and age-related, referring tb.
pub fn tiny_three_class_model(path: &Path) -> PathBuf {
    let outputs = HeadOutputs::Softmax {
        classes: 3,
        refer: vec![1],
    };
    save_tiny_model(path, None, outputs)
}

/// [`tiny_model`] whose card crops X-rays to the lungs found by the shipped lung model.
pub fn tiny_model_with_lung_crop(path: &Path) -> PathBuf {
    let lungs = cxr_nn::segmentation::default_model_path().expect("shipped lung model");
    let crop = cxr_core::lungs::LungCropSpec {
        lung_model_sha256: model_file::file_sha256(&lungs).unwrap(),
        ..Default::default()
    };
    save_tiny_model(path, Some(crop), HeadOutputs::Binary)
}

/// An ensemble of two tiny random networks, an EfficientNet-Lite0 at 64 px and a MobileNetV2
/// at 96 px (each with its own preprocessing), stored at half precision.
pub fn tiny_ensemble(path: &Path) -> PathBuf {
    let device = inference_device();
    let mut members = Vec::new();
    let mut networks = Vec::new();
    for (kind, side) in [
        (BackboneKind::EfficientNetLite0, INPUT),
        (BackboneKind::MobileNetV2, 96),
    ] {
        let head = HeadConfig {
            hidden: 8,
            ..HeadConfig::paper(kind.spec().feature_channels)
        };
        networks.push(Classifier::new(kind.init(&device), &head, &device));
        let mut preprocess = PreprocessSpec::preset(kind.spec().preprocess_preset).unwrap();
        preprocess.input_size = InputSize {
            width: side,
            height: side,
        };
        members.push(model_file::Member {
            architecture: architecture(kind, &head, side),
            preprocess,
            trunk_of: None,
        });
    }
    let mut card = ModelCard::new(
        ModelKind::Classifier,
        model_file::Architecture {
            network: model_file::ENSEMBLE_NETWORK.into(),
            input_size: 96,
            params: Default::default(),
        },
        members[0].preprocess.clone(),
        vec!["normal".into(), "tb".into()],
    );
    card.members = members;
    card.weights = model_file::WeightPrecision::F16;
    cxr_nn::classifier::save(path, &networks, &card).unwrap();
    path.to_path_buf()
}

fn save_tiny_model(
    path: &Path,
    lung_crop: Option<cxr_core::lungs::LungCropSpec>,
    outputs: HeadOutputs,
) -> PathBuf {
    let device = inference_device();
    let kind = BackboneKind::EfficientNetLite0;
    let head = HeadConfig {
        hidden: 8,
        outputs,
        ..HeadConfig::paper(kind.spec().feature_channels)
    };
    let model = Classifier::new(kind.init(&device), &head, &device);
    let mut spec = PreprocessSpec::preset(kind.spec().preprocess_preset).unwrap();
    spec.input_size = InputSize {
        width: INPUT,
        height: INPUT,
    };
    spec.lung_crop = lung_crop;
    let mut card = ModelCard::new(
        ModelKind::Classifier,
        architecture(kind, &head, INPUT),
        spec,
        vec!["normal".into(), "tb".into()],
    );
    if let HeadOutputs::Softmax { .. } = head.outputs {
        card.classes.push("age-related".into());
        card.refer = vec!["tb".into()];
    }
    model_file::save(path, &model, &card).unwrap();
    path.to_path_buf()
}

/// A cartoon frontal chest (two dark lungs, bright middle band); `seed` varies the lungs'
/// darkness and a blob, so a random network scores the pictures differently.
pub fn chest(seed: u64, side: usize) -> GrayImage {
    let darkness = 0.1 + 0.05 * (seed % 5) as f32;
    let blob = (
        0.25 + 0.1 * (seed % 4) as f32,
        0.3 + 0.1 * (seed % 3) as f32,
    );
    let mut pixels = vec![0.0; side * side];
    for y in 0..side {
        for x in 0..side {
            let (fx, fy) = (x as f32 / side as f32, y as f32 / side as f32);
            let lung = (0.15..0.40).contains(&fx) || (0.60..0.85).contains(&fx);
            let chest = (0.2..0.8).contains(&fy);
            let base = match (chest, lung) {
                (true, true) => darkness,
                (true, false) if (0.42..0.58).contains(&fx) => 0.9,
                _ => 0.6,
            };
            let spot = if (fx - blob.0).hypot(fy - blob.1) < 0.06 {
                0.4
            } else {
                0.0
            };
            pixels[y * side + x] = (base + spot + 0.03 * (fy * 9.0).sin()).min(1.0);
        }
    }
    GrayImage::new(side, side, pixels).unwrap()
}

/// Writes `chest(seed)` as an 8-bit PNG.
pub fn write_png(path: &Path, seed: u64) {
    let picture = chest(seed, 256);
    let bytes: Vec<u8> = picture
        .pixels
        .iter()
        .map(|&p| (p * 255.0).round() as u8)
        .collect();
    image::GrayImage::from_raw(256, 256, bytes)
        .unwrap()
        .save(path)
        .unwrap();
}

/// Writes `chest(seed)` as a 12-bit MONOCHROME2 DICOM.
pub fn write_dicom(path: &Path, seed: u64) {
    DicomImage::from_gray(&chest(seed, 256), 12)
        .unwrap()
        .write_file(path)
        .unwrap();
}

/// `count` labelled PNGs with NLM names (`CHNCXR_0001_0.png`: last digit is the label),
/// alternating classes, in `dir`.
pub fn labelled_set(dir: &Path, count: u64) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for k in 0..count {
        write_png(&dir.join(format!("CHNCXR_{:04}_{}.png", k + 1, k % 2)), k);
    }
    dir.to_path_buf()
}

pub fn cxr(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cxr"))
        .args(args)
        .output()
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

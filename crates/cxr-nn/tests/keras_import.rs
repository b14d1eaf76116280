//! Keras weight files written by real Keras (tools/reference/keras): a `.keras` zip, a Keras 2
//! full-model `.h5` and a weights-only `.h5` of one tiny model must read to the same tensors,
//! land in burn's layout, and refuse to fill a network they do not fit.

use std::path::{Path, PathBuf};

use burn::module::Module;
use cxr_nn::backbones::blocks::{ConvBn, ConvBnConfig, ConvStyle, Padding};
use cxr_nn::device::inference_device;
use cxr_nn::import::keras::{
    KerasError, KerasUnit, KerasWeights, apply_keras_weights, read_keras_weights,
};
use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(name)
}

#[test]
fn all_three_keras_formats_read_to_the_reference_tensors() {
    let expected_bytes = std::fs::read(fixture("tiny_expected.safetensors")).unwrap();
    let expected = SafeTensors::deserialize(&expected_bytes).unwrap();
    for file in ["tiny.keras", "tiny_keras2.h5", "tiny_keras2_weights.h5"] {
        let weights = read_keras_weights(&fixture(file)).unwrap();
        let mut names: Vec<&String> = weights.keys().collect();
        names.sort();
        let mut expected_names = expected.names();
        expected_names.sort();
        assert_eq!(names, expected_names, "{file}");
        for (name, tensor) in &weights {
            let view = expected.tensor(name).unwrap();
            assert_eq!(tensor.shape, view.shape(), "{file}: {name}");
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            assert_eq!(tensor.values, values, "{file}: {name}");
        }
    }
}

#[test]
fn a_file_that_is_not_keras_is_refused_by_name() {
    let err = read_keras_weights(&fixture("tiny_expected.safetensors")).unwrap_err();
    assert!(matches!(err, KerasError::UnknownFormat { .. }));
    assert!(
        err.to_string().contains("tiny_expected.safetensors"),
        "{err}"
    );
}

/// Room for the tiny model's first Conv2D (3 -> 4 channels, 3x3, with a bias) and its BatchNorm.
#[derive(Module, Debug)]
struct Probe {
    stem: ConvBn,
}

fn probe(out_channels: usize) -> Probe {
    let style = ConvStyle {
        padding: Padding::TfSame,
        bn_epsilon: 1e-3,
    };
    let config = ConvBnConfig {
        in_channels: 3,
        out_channels,
        kernel: 3,
        stride: 2,
        groups: 1,
        relu6: false,
    };
    Probe {
        stem: config.init(style, &inference_device()),
    }
}

/// Fills a probe from the tiny model's `stem_conv`/`stem_bn`, accepting unused tensors `extra`.
fn fill(
    probe: &mut Probe,
    weights: &KerasWeights,
    conv: &str,
    extra: &[&str],
) -> Result<(), KerasError> {
    let units = [KerasUnit::conv_bn("stem", conv, "stem_bn")];
    let ignorable = |name: &str| !name.starts_with("stem_") || extra.contains(&name);
    apply_keras_weights(probe, weights, &units, ignorable, "tiny.keras", "probe")
}

#[test]
fn conv_kernels_are_transposed_to_burn_layout() {
    let weights = read_keras_weights(&fixture("tiny.keras")).unwrap();
    let mut net = probe(4);
    fill(&mut net, &weights, "stem_conv", &["stem_conv/bias"]).unwrap();
    let ours: Vec<f32> = net.stem.conv.weight.val().into_data().try_to_vec().unwrap();
    let kernel = &weights["stem_conv/kernel"];
    assert_eq!(kernel.shape, [3, 3, 3, 4]);
    for (o, i, y, x) in [(0, 0, 0, 0), (3, 1, 2, 0), (1, 2, 1, 2)] {
        let keras = kernel.values[((y * 3 + x) * 3 + i) * 4 + o];
        assert_eq!(
            ours[((o * 3 + i) * 3 + y) * 3 + x],
            keras,
            "o{o} i{i} y{y} x{x}"
        );
    }
    let gamma: Vec<f32> = net
        .stem
        .bn
        .as_ref()
        .unwrap()
        .gamma
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_eq!(gamma, weights["stem_bn/gamma"].values);
}

#[test]
fn unfit_weights_are_refused_with_every_problem_listed() {
    let weights = read_keras_weights(&fixture("tiny.keras")).unwrap();
    // The bias our bias-free convolution has no place for.
    let err = fill(&mut probe(4), &weights, "stem_conv", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not used by the network: stem_conv/bias"),
        "{err}"
    );
    // A layer the file lacks.
    let err = fill(
        &mut probe(4),
        &weights,
        "nope",
        &["stem_conv/bias", "stem_conv/kernel"],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("missing from the file: nope/kernel"), "{err}");
    // Right names, wrong shapes.
    let err = fill(&mut probe(5), &weights, "stem_conv", &["stem_conv/bias"]).unwrap_err();
    assert!(matches!(err, KerasError::Mismatch { .. }), "{err}");
}

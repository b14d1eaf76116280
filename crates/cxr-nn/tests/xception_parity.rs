//! Xception + the pneumonia package's 2-class head, imported from its Keras 3 `.keras` file, against
//! Keras itself on the package's 16 paediatric X-rays (fixture by tools/reference/keras).

mod keras_support;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use cxr_nn::backbones::xception::{self, Xception};
use cxr_nn::device::inference_device;
use keras_support::{
    assert_matches, fixture, load_head, pooled, reference_download, symmetric_unit_input,
};

const MODEL: &str = "keras/.work/pneumonia/pneumonia_model_package/trained_models/pneumonia_xception_model_val-acc_0.861.keras";

/// The package's head: Dense(128, relu) -> Dropout -> Dense(2), logits.
#[derive(Module, Debug)]
struct PneumoniaHead {
    dense: Linear,
    dense_1: Linear,
}

#[test]
fn xception_and_head_match_keras_on_the_pneumonia_xrays() {
    let Some(model) = reference_download(MODEL) else {
        return;
    };
    let device = inference_device();
    let (trunk, left_out) = xception::load_keras(&model, &device).unwrap();
    assert_eq!(left_out, ["dense", "dense_1"]);
    let mut head = PneumoniaHead {
        dense: LinearConfig::new(xception::FEATURE_CHANNELS, 128).init(&device),
        dense_1: LinearConfig::new(128, 2).init(&device),
    };
    load_head(&mut head, &model, &["dense", "dense_1"]);

    let bytes = std::fs::read(fixture("keras/pneumonia_xception.safetensors")).unwrap();
    let reference = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let x = symmetric_unit_input(&reference, &device);
    let check = |trunk: &Xception, label: &str| {
        let pooled = pooled(trunk.forward(x.clone()));
        let logits = head
            .dense_1
            .forward(relu(head.dense.forward(pooled.clone())));
        let probabilities = softmax(logits.clone(), 1);
        let outputs = vec![
            ("pooled", pooled),
            ("logits", logits),
            ("probabilities", probabilities),
        ];
        assert_matches(label, &reference, outputs);
    };
    check(&trunk, "unfolded");
    check(&trunk.fold_batchnorm(), "BatchNorm folded");
}

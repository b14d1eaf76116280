//! nsfwjs' TF.js Inception V3 (uint8-quantised, in its JavaScript-module wrapper) imported and run
//! against TF.js itself on two X-rays: mixed10 pooled features and the 5-class head.

mod keras_support;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use cxr_nn::backbones::inception_v3::{self, InceptionV3};
use cxr_nn::device::inference_device;
use keras_support::{
    assert_matches, fixture, load_head, pooled, reference_download, symmetric_unit_input,
};

const MODEL: &str = "tfjs/node_modules/nsfwjs/dist/models/inception_v3/model.min.js";

/// nsfwjs' head on the pooled features: Dense(256, relu), Dense(128, relu), Dense(5, softmax).
#[derive(Module, Debug)]
struct NsfwHead {
    dense_1: Linear,
    dense_2: Linear,
    dense_3: Linear,
}

#[test]
fn inception_v3_matches_tfjs() {
    let Some(model) = reference_download(MODEL) else {
        return;
    };
    let device = inference_device();
    let (trunk, left_out) = inception_v3::load_keras(&model, &device).unwrap();
    assert_eq!(left_out, ["dense_1", "dense_2", "dense_3"]);
    let mut head = NsfwHead {
        dense_1: LinearConfig::new(inception_v3::FEATURE_CHANNELS, 256).init(&device),
        dense_2: LinearConfig::new(256, 128).init(&device),
        dense_3: LinearConfig::new(128, 5).init(&device),
    };
    load_head(&mut head, &model, &["dense_1", "dense_2", "dense_3"]);

    let bytes = std::fs::read(fixture("tfjs/nsfwjs_inception_v3.safetensors")).unwrap();
    let reference = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let x = symmetric_unit_input(&reference, &device);
    let check = |trunk: &InceptionV3, label: &str| {
        let features = trunk.forward(x.clone());
        assert_eq!(features.dims()[1..], [2048, 8, 8]);
        let pooled = pooled(features);
        let hidden = relu(
            head.dense_2
                .forward(relu(head.dense_1.forward(pooled.clone()))),
        );
        let probabilities = softmax(head.dense_3.forward(hidden), 1);
        let outputs = vec![("pooled", pooled), ("probabilities", probabilities)];
        assert_matches(label, &reference, outputs);
    };
    check(&trunk, "unfolded");
    check(&trunk.fold_batchnorm(), "BatchNorm folded");
}

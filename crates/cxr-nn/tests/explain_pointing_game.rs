//! The pointing game: a small network trained (here, in seconds) to call images with a bright
//! blob "diseased" must put the Grad-CAM and Grad-CAM++ peaks inside the blob on held-out images.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use cxr_nn::device::{inference_device, training_device};
use cxr_nn::explain::{CamMethod, class_activation_map};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SIDE: usize = 48;
const BLOB_RADIUS: f32 = 6.0;
/// Each stride-2 convolution halves the side: 48 -> 24 -> 12.
const FEATURE_STRIDE: usize = 4;

#[derive(Module, Debug)]
struct BlobNet {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    head: Linear,
}

impl BlobNet {
    fn new(device: &Device) -> Self {
        let conv = |inputs, outputs, stride| {
            Conv2dConfig::new([inputs, outputs], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            conv1: conv(1, 8, 1),
            conv2: conv(8, 16, 2),
            conv3: conv(16, 16, 2),
            head: LinearConfig::new(16, 1).init(device),
        }
    }

    /// The last stage's feature map, what Grad-CAM explains.
    fn feature_map(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.conv1.forward(x));
        let x = relu(self.conv2.forward(x));
        relu(self.conv3.forward(x))
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        head_logits(&self.head, self.feature_map(x))
    }
}

/// Global average pooling then one dense layer, like the classifier's head.
fn head_logits(head: &Linear, features: Tensor<4>) -> Tensor<2> {
    head.forward(features.mean_dims(&[2, 3]).flatten(1, 3))
}

/// Pixels of a picture and the centre of its blob, if it has one.
type Picture = (Vec<f32>, Option<(f32, f32)>);

/// A smooth random background; with `blob`, a bright disc at a random place (its centre).
fn picture(rng: &mut ChaCha8Rng, blob: bool) -> Picture {
    let (fx, fy, phase): (f32, f32, f32) = (rng.random(), rng.random(), rng.random());
    let mut pixels: Vec<f32> = (0..SIDE * SIDE)
        .map(|i| {
            let (x, y) = ((i % SIDE) as f32, (i / SIDE) as f32);
            let wave = (x * (0.1 + 0.2 * fx) + y * (0.1 + 0.2 * fy) + 6.0 * phase).sin();
            0.4 + 0.1 * wave + 0.05 * rng.random::<f32>()
        })
        .collect();
    let centre = blob.then(|| {
        let margin = BLOB_RADIUS + 2.0;
        let span = SIDE as f32 - 2.0 * margin;
        (
            margin + span * rng.random::<f32>(),
            margin + span * rng.random::<f32>(),
        )
    });
    if let Some((cx, cy)) = centre {
        for (i, p) in pixels.iter_mut().enumerate() {
            let (x, y) = ((i % SIDE) as f32, (i / SIDE) as f32);
            if (x - cx).hypot(y - cy) <= BLOB_RADIUS {
                *p += 0.4;
            }
        }
    }
    (pixels, centre)
}

fn batch(pictures: &[Vec<f32>], device: &Device) -> Tensor<4> {
    let data: Vec<f32> = pictures.iter().flatten().copied().collect();
    Tensor::from_data(
        TensorData::new(data, [pictures.len(), 1, SIDE, SIDE]),
        device,
    )
}

fn train(rng: &mut ChaCha8Rng) -> BlobNet {
    let device = training_device();
    // Seeded, so the test does not depend on a lucky initialisation.
    device.seed(7);
    let mut model = BlobNet::new(&device);
    let mut optimizer = AdamConfig::new().init();
    for _ in 0..150 {
        let (pictures, labels): (Vec<Vec<f32>>, Vec<f32>) = (0..16)
            .map(|k| {
                (
                    picture(rng, k % 2 == 0).0,
                    if k % 2 == 0 { 1.0 } else { 0.0 },
                )
            })
            .unzip();
        let z = model.forward(batch(&pictures, &device));
        let y = Tensor::<2>::from_data(TensorData::new(labels, [16, 1]), &device);
        // Binary cross-entropy on logits: relu(z) - z y + log(1 + exp(-|z|)).
        let loss =
            (relu(z.clone()) - z.clone() * y + (-z.abs()).exp().add_scalar(1.0).log()).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(1e-2, model, grads);
    }
    model.valid()
}

#[test]
fn heat_map_peaks_fall_inside_the_blob() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let model = train(&mut rng);
    let device = inference_device();

    let held_out: Vec<Picture> = (0..60).map(|k| picture(&mut rng, k % 2 == 0)).collect();
    let pictures: Vec<Vec<f32>> = held_out.iter().map(|(p, _)| p.clone()).collect();
    let logits = model
        .forward(batch(&pictures, &device))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let correct = logits
        .iter()
        .zip(&held_out)
        .filter(|(z, (_, blob))| (**z >= 0.0) == blob.is_some())
        .count();
    assert!(
        correct >= 54,
        "the network did not learn the blobs: {correct} of 60"
    );

    let head = model.head.clone().to_device(&training_device());
    for method in [CamMethod::GradCam, CamMethod::GradCamPlusPlus] {
        let mut hits = 0;
        let positives: Vec<_> = held_out
            .iter()
            .filter_map(|(p, c)| Some((p, (*c)?)))
            .collect();
        for (picture, (cx, cy)) in &positives {
            let features = model.feature_map(batch(std::slice::from_ref(picture), &device));
            let cam = class_activation_map(features, |f| head_logits(&head, f), method).unwrap();
            let peak = (0..cam.map.pixels.len())
                .max_by(|&a, &b| cam.map.pixels[a].total_cmp(&cam.map.pixels[b]))
                .unwrap();
            // The centre of the peak's feature cell, in image pixels.
            let centre = |index: usize| ((index as f32) + 0.5) * FEATURE_STRIDE as f32 - 0.5;
            let (px, py) = (centre(peak % cam.map.width), centre(peak / cam.map.width));
            hits += usize::from((px - cx).hypot(py - cy) <= BLOB_RADIUS);
        }
        let share = hits as f64 / positives.len() as f64;
        println!(
            "{method:?}: peak inside the blob on {hits} of {}",
            positives.len()
        );
        assert!(share >= 0.9, "{method:?}: pointing game {share}");
    }
}

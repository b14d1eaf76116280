//! Lung network training end to end on tiny synthetic pairs: the loss falls, checkpoints are
//! written and resumed, a used run directory is refused, and the model predicts at any size.

use cxr_core::image::GrayImage;
use cxr_core::lungs::{LungMask, Overlap};
use cxr_nn::model_file;
use cxr_nn::segmentation::data::Pair;
use cxr_nn::segmentation::{LungSegmenter, Provenance, TrainConfig, train};

const SIDE: usize = 32;

/// A dark background with two bright "lungs" whose size varies with `seed`; the mask marks them.
fn synthetic_pair(seed: usize) -> Pair {
    let half_width = 4 + seed % 3;
    let mut image = GrayImage::filled(SIDE, SIDE, 0.2);
    let mut mask = GrayImage::filled(SIDE, SIDE, 0.0);
    for centre in [9, 23] {
        for y in 6..26 {
            for x in centre - half_width..centre + half_width {
                image.pixels[y * SIDE + x] = 0.8;
                mask.pixels[y * SIDE + x] = 1.0;
            }
        }
    }
    Pair { image, mask }
}

/// `image` at twice its size (nearest neighbour): an X-ray larger than the network input.
fn doubled(image: &GrayImage) -> GrayImage {
    let side = image.width * 2;
    let pixels = (0..side * side)
        .map(|i| image.get((i % side) / 2, (i / side) / 2))
        .collect();
    GrayImage::new(side, side, pixels).unwrap()
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        input_size: SIDE,
        epochs,
        batch_size: 4,
        learning_rate: 1e-2,
        pretrained: false,
        ..TrainConfig::default()
    }
}

fn provenance() -> Provenance {
    Provenance {
        data: model_file::DataManifest {
            source: "synthetic".into(),
            images: 8,
            class_counts: Vec::new(),
            sha256: "0".repeat(64),
        },
        protocol: "synthetic pairs, scored on 4 others".into(),
    }
}

#[test]
fn trains_checkpoints_resumes_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let train_pairs: Vec<Pair> = (0..8).map(synthetic_pair).collect();
    let val_pairs: Vec<Pair> = (8..12).map(synthetic_pair).collect();

    let run_training = |resume: bool| {
        train(
            &run,
            &config(2),
            &train_pairs,
            &val_pairs,
            &provenance(),
            resume,
            |_| {},
        )
    };
    let first = run_training(false).unwrap();
    assert_eq!(first.history.len(), 2);
    assert!(run.join("state.json").is_file());
    assert!(first.checkpoint.is_file());

    // A used run directory is never silently overwritten.
    let refused = run_training(false);
    assert!(refused.unwrap_err().to_string().contains("--resume"));

    // Resuming keeps the run's own settings, so raise the epochs in its state to continue.
    let state_path = run.join("state.json");
    let state = std::fs::read_to_string(&state_path).unwrap();
    std::fs::write(
        &state_path,
        state.replace("\"epochs\": 2", "\"epochs\": 20"),
    )
    .unwrap();
    let resumed = run_training(true).unwrap();
    assert_eq!(resumed.history.len(), 20);
    let epochs: Vec<usize> = resumed.history.iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, (1..=20).collect::<Vec<_>>());
    assert_eq!(resumed.history[1].validation, first.history[1].validation);
    let losses: Vec<f64> = resumed.history.iter().map(|r| r.train_loss).collect();
    assert!(losses[7] < losses[0] * 0.7, "loss did not fall: {losses:?}");
    assert!(
        !run.join("checkpoint-epoch002.safetensors").exists(),
        "old checkpoints are removed"
    );

    // The checkpoint is a complete lung model: it predicts at the X-ray's own size.
    let segmenter = LungSegmenter::load(&resumed.checkpoint).unwrap();
    let pair = synthetic_pair(1);
    let probabilities = segmenter.probabilities(&doubled(&pair.image)).unwrap();
    assert_eq!(
        (probabilities.width, probabilities.height),
        (SIDE * 2, SIDE * 2)
    );
    let predicted = LungMask::from_threshold(&probabilities, segmenter.threshold());
    let reference = LungMask::from_threshold(&doubled(&pair.mask), 0.5);
    let overlap = Overlap::between(&predicted, &reference).unwrap();
    eprintln!("held-out synthetic pair: {overlap:?}");
    assert!(overlap.dice > 0.8, "{overlap:?}");
}

#[test]
fn resuming_needs_a_run_and_bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pairs: Vec<Pair> = (0..2).map(synthetic_pair).collect();
    let missing = train(
        dir.path(),
        &config(1),
        &pairs,
        &[],
        &provenance(),
        true,
        |_| {},
    );
    assert!(missing.unwrap_err().to_string().contains("no state.json"));
    let odd_size = TrainConfig {
        input_size: 30,
        ..config(1)
    };
    let refused = train(
        &dir.path().join("a"),
        &odd_size,
        &pairs,
        &[],
        &provenance(),
        false,
        |_| {},
    );
    assert!(refused.unwrap_err().to_string().contains("multiple of 16"));
}

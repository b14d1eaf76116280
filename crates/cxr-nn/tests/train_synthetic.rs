//! `cxr_nn::train` end to end on a tiny synthetic set: a fixed split and cross-validation,
//! with the run folder's outputs, the model file's card, and resuming a finished run.

mod train_support;

use std::sync::atomic::AtomicBool;

use cxr_nn::classifier;
use cxr_nn::model_file::{self, ModelKind};
use cxr_nn::train::{MODEL_FILE, TrainRequest, train};

#[test]
fn a_fixed_split_run_writes_model_metrics_and_curves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 12);
    let caches = train_support::private_caches(dir.path());
    let request = TrainRequest {
        data: data.clone(),
        out: dir.path().join("run"),
        recipe: train_support::tiny_recipe(2, 1),
        folds: None,
    };
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");

    let run = &request.out;
    assert_eq!(report.model, run.join(MODEL_FILE));
    for file in [
        "metrics.csv",
        "metrics.json",
        "accuracy.png",
        "loss.png",
        "checkpoint.bin",
        "run.json",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let csv = std::fs::read_to_string(run.join("metrics.csv")).expect("csv");
    let phases: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| &l[..l.find(',').unwrap_or(0)])
        .collect();
    assert_eq!(phases, ["frozen", "frozen", "fine_tune"]);

    let card = model_file::read_card(&report.model).expect("card");
    assert_eq!(card.kind, ModelKind::Classifier);
    assert_eq!(card.preprocess.input_size.width, 64);
    assert_eq!(card.default_point().map(|p| p.threshold), Some(0.5));
    let training = card.training.as_ref().expect("training record");
    assert_eq!(training.data.images, 24);
    assert_eq!(training.data.class_counts, vec![12, 12]);
    assert_eq!(card.validation[0].images, 6);
    let (_, loaded) =
        classifier::load(&report.model, &cxr_nn::device::inference_device()).expect("load");
    assert_eq!(loaded, card);

    // Resuming a finished run trains nothing more and gives the same model.
    let again = train(
        &TrainRequest::resume(run).expect("resume"),
        &caches,
        &AtomicBool::new(false),
    )
    .expect("resume");
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.csv")).expect("csv"),
        csv
    );
    assert_eq!(again.card.validation, card.validation);
}

#[test]
fn cross_validation_reports_every_fold_and_trains_a_final_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 9);
    let caches = train_support::private_caches(dir.path());
    let request = TrainRequest {
        data,
        out: dir.path().join("cv"),
        recipe: train_support::tiny_recipe(1, 1),
        folds: Some(3),
    };
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");
    let cv = report.cross_validation.expect("cross-validation");
    assert_eq!(cv.folds.len(), 3);
    assert_eq!(cv.folds.iter().map(|f| f.images).sum::<usize>(), 18);
    assert_eq!(cv.pooled.images, 18);
    assert!(cv.auc.min <= cv.auc.mean && cv.auc.mean <= cv.auc.max);
    for fold in 1..=3 {
        assert!(
            request
                .out
                .join(format!("fold-{fold}/metrics.csv"))
                .is_file()
        );
    }
    assert!(request.out.join("cross-validation.json").is_file());
    assert!(request.out.join("final").join("best.safetensors").is_file());
    let card = model_file::read_card(&report.model).expect("card");
    assert!(
        card.validation
            .iter()
            .any(|v| v.name.contains("cross-validation"))
    );
}

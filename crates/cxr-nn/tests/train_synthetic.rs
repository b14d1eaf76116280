//! `cxr_nn::train` end to end on a tiny synthetic set: a fixed split and cross-validation,
//! with the run folder's outputs, the model file's card, and resuming a finished run.

mod train_support;

use std::sync::atomic::AtomicBool;

use cxr_core::lungs::LungCropSpec;
use cxr_nn::classifier;
use cxr_nn::model_file::{self, ModelKind};
use cxr_nn::predict::{ScreenOptions, Screener};
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

#[test]
fn a_lung_crop_recipe_pins_its_lung_model_in_the_card_and_prediction_crops_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 12);
    let caches = train_support::private_caches(dir.path());
    let mut recipe = train_support::tiny_recipe(1, 0);
    recipe.preprocess.lung_crop = Some(LungCropSpec::default());
    let request = TrainRequest {
        data: data.clone(),
        out: dir.path().join("run"),
        recipe: recipe.clone(),
        folds: None,
    };
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");

    let lungs = cxr_nn::segmentation::default_model_path().expect("shipped lung model");
    let crop = report
        .card
        .preprocess
        .lung_crop
        .clone()
        .expect("crop on the card");
    assert_eq!(
        crop.lung_model_sha256,
        model_file::file_sha256(&lungs).unwrap()
    );
    assert_eq!(crop.margin, LungCropSpec::default().margin);

    // The model crops at prediction time without being told; here the cartoons are no
    // chest X-rays, so the lung checks fail and the screening says it kept the whole image.
    let screener = Screener::load(Some(&report.model)).expect("load");
    let image = data.join("tb").join("tb_000.png");
    let screening = screener
        .screen_files(&[image], &ScreenOptions::default(), |_| {})
        .expect("screen")
        .remove(0)
        .expect("screening");
    let lung_crop = screening.lung_crop.expect("lung crop reported");
    assert!(lung_crop.region.is_some() || lung_crop.fallback.is_some());

    // A recipe pinned to another lung model is refused, naming both.
    recipe.preprocess.lung_crop = Some(LungCropSpec {
        lung_model_sha256: "0".repeat(64),
        ..LungCropSpec::default()
    });
    let pinned = TrainRequest {
        recipe,
        out: dir.path().join("pinned"),
        ..request
    };
    let error = train(&pinned, &caches, &AtomicBool::new(false)).unwrap_err();
    assert!(error.to_string().contains(&"0".repeat(64)), "{error}");
}

#[test]
fn a_validation_set_too_small_for_a_delong_interval_still_gives_a_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // 12 images, 2 held out: one per class, too few for a DeLong interval.
    train_support::write_blob_dataset(&data, 6);
    let caches = train_support::private_caches(dir.path());
    let request = TrainRequest {
        data,
        out: dir.path().join("run"),
        recipe: train_support::tiny_recipe(1, 0),
        folds: None,
    };
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");
    assert!(report.model.is_file());
    assert_eq!(report.card.validation[0].images, 2);
    assert_eq!(report.card.validation[0].auc, None);
}

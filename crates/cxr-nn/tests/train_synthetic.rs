//! `cxr_nn::train` end to end on a tiny synthetic set: a fixed split and cross-validation,
//! with the run folder's outputs, the model file's card, resuming a finished run, pseudo-labels
//! and a three-class softmax head.

mod train_support;

use std::sync::atomic::AtomicBool;

use cxr_core::lungs::LungCropSpec;
use cxr_core::metrics::{
    ConfidenceLevel, ConfusionMatrix, ThresholdRule, roc_curve, select_threshold,
};
use cxr_nn::backbones::BackboneKind;
use cxr_nn::classifier;
use cxr_nn::classifier::HeadOutputs;
use cxr_nn::explain::{CamMethod, explain};
use cxr_nn::model_file::WeightPrecision;
use cxr_nn::model_file::{self, ModelKind};
use cxr_nn::predict::{ScreenOptions, Screener};
use cxr_nn::train::crossval::{self, CrossValidation};
use cxr_nn::train::pseudo_labels::{self, PseudoLabelReport};
use cxr_nn::train::recipe::{
    ClassesRecipe, FineTuneBatchNorm, Monitor, PseudoLabelRecipe, Recipe, ScheduleKind,
};
use cxr_nn::train::{MODEL_FILE, TrainRequest, ensemble, train};

/// Column `name` of the `metrics.csv` in run folder `dir`, one value per epoch in order.
fn metrics_column(dir: &std::path::Path, name: &str) -> Vec<String> {
    let path = dir.join("metrics.csv");
    let csv = std::fs::read_to_string(&path).expect("metrics.csv");
    let mut lines = csv.lines();
    let header = lines.next().expect("header");
    let column = header
        .split(',')
        .position(|field| field == name)
        .unwrap_or_else(|| panic!("{}: no column {name} in {header}", path.display()));
    lines
        .map(|line| line.split(',').nth(column).expect("field").to_string())
        .collect()
}

/// When the file at `path` was last written.
fn modified(path: &std::path::Path) -> std::time::SystemTime {
    let metadata =
        std::fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    metadata.modified().expect("modification time")
}

/// [`metrics_column`] read as numbers.
fn metrics_numbers(dir: &std::path::Path, name: &str) -> Vec<f64> {
    metrics_column(dir, name)
        .iter()
        .map(|value| value.parse().expect("number"))
        .collect()
}

#[test]
fn a_fixed_split_run_writes_model_metrics_and_curves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (request, caches) =
        train_support::blob_run(dir.path(), 12, train_support::tiny_recipe(2, 1));
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
fn a_linear_head_is_standardised_on_the_training_images_and_keeps_its_last_epoch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut recipe = train_support::tiny_recipe(3, 0);
    recipe.head.hidden = 0;
    recipe.head.dropout = 0.0;
    recipe.head.weight_decay = 0.01;
    recipe.schedule.monitor = Monitor::None;
    recipe.schedule.patience = 1;
    let (request, caches) = train_support::blob_run(dir.path(), 8, recipe);
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");
    let device = cxr_nn::device::inference_device();
    let (model, card) = classifier::load(&report.model, &device).expect("load");
    assert_eq!(card.architecture.params["head_hidden"], 0.0);
    assert!(model.head.hidden.is_none());
    let standardize = model.head.standardize.as_ref().expect("standardised");
    let scale: Vec<f32> = standardize
        .scale
        .val()
        .into_data()
        .try_to_vec()
        .expect("f32");
    let mean: Vec<f32> = standardize
        .mean
        .val()
        .into_data()
        .try_to_vec()
        .expect("f32");
    assert!(scale.iter().any(|&s| s != 1.0) && mean.iter().any(|&m| m != 0.0));

    // No figure watched: the rate never drops, and the model's validation figures are the
    // last epoch's (the first epoch's would do if the monitor still picked).
    let history = std::fs::read_to_string(request.out.join("metrics.csv")).expect("csv");
    let rows: Vec<Vec<&str>> = history
        .lines()
        .skip(1)
        .map(|line| line.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|row| row[2] == rows[0][2]), "{history}");
    let val_losses: Vec<f64> = rows
        .iter()
        .map(|row| row[5].parse().expect("val loss"))
        .collect();
    let kept = &report.validation_scores;
    let kept_loss = kept
        .val_scores
        .iter()
        .zip(&kept.val_labels)
        .map(|(&p, &tb)| -(if tb { p } else { 1.0 - p }).ln())
        .sum::<f64>()
        / kept.val_scores.len() as f64;
    assert!(
        (kept_loss - val_losses[2]).abs() < 1e-4,
        "{kept_loss} vs {history}"
    );
    assert!((val_losses[0] - val_losses[2]).abs() > 1e-3, "{history}");
}

#[test]
fn fine_tuning_with_frozen_batchnorm_leaves_its_statistics_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 8);
    let caches = train_support::private_caches(dir.path());
    let pretrained = cxr_nn::import::internal::load(
        BackboneKind::EfficientNetLite0,
        &caches.weights.join("efficientnet-lite0.safetensors"),
        &cxr_nn::device::inference_device(),
    )
    .expect("weights");
    let trained_trunk = |batchnorm: FineTuneBatchNorm, run: &str| {
        // No phase 1: the kept weights are then phase 2's (its first epoch is always kept).
        let mut recipe = train_support::tiny_recipe(0, 1);
        recipe.fine_tune.batchnorm = batchnorm;
        let request = TrainRequest {
            data: data.clone(),
            out: dir.path().join(run),
            recipe,
            folds: None,
            unlabelled: None,
        };
        let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");
        let device = cxr_nn::device::inference_device();
        let (model, _) = classifier::load(&report.model, &device).expect("load");
        model.backbone
    };
    let before = pretrained.batchnorm_values();
    assert!(!before.is_empty());
    let frozen = trained_trunk(FineTuneBatchNorm::Frozen, "frozen");
    let batch_statistics = trained_trunk(FineTuneBatchNorm::Train, "train");
    assert_eq!(frozen.batchnorm_values(), before);
    assert_ne!(batch_statistics.batchnorm_values(), before);
}

#[test]
fn whole_trunk_fine_tuning_on_a_cosine_refreshes_the_head_statistics_every_epoch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 8);
    let caches = train_support::private_caches(dir.path());
    let run = |refresh: bool, name: &str| {
        let mut recipe = train_support::tiny_recipe(1, 3);
        recipe.fine_tune.unfreeze_from = "stem".into();
        recipe.fine_tune.batchnorm = FineTuneBatchNorm::Frozen;
        recipe.fine_tune.refresh_head_statistics = refresh;
        recipe.fine_tune.learning_rate = Some(1e-3);
        recipe.schedule.kind = ScheduleKind::Cosine;
        recipe.schedule.min_learning_rate = 1e-5;
        // Every epoch's weights kept, so the file holds the last epoch's statistics.
        recipe.schedule.monitor = Monitor::None;
        let request = TrainRequest {
            data: data.clone(),
            out: dir.path().join(name),
            recipe,
            folds: None,
            unlabelled: None,
        };
        let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");
        let rates = metrics_numbers(&request.out, "learning_rate");
        let (model, _) =
            classifier::load(&report.model, &cxr_nn::device::inference_device()).expect("load");
        let norm = model.head.norm.expect("the paper's head");
        let statistics: Vec<f32> = norm
            .running_mean
            .value()
            .into_data()
            .iter::<f32>()
            .chain(norm.running_var.value().into_data().iter::<f32>())
            .collect();
        (rates, statistics)
    };
    let (rates, refreshed) = run(true, "refreshed");
    // Phase 1's one epoch at its start rate (the optimiser's), then 1e-3 falling along half a
    // cosine.
    let expected = [
        1e-4,
        1e-3,
        1e-5 + (1e-3 - 1e-5) * 0.75,
        1e-5 + (1e-3 - 1e-5) * 0.25,
    ];
    assert_eq!(rates.len(), 4, "{rates:?}");
    for (rate, want) in rates.iter().zip(expected) {
        assert!((rate - want).abs() < 2e-3 * want, "{rates:?}");
    }
    let (_, averaged) = run(false, "averaged");
    assert!(refreshed.iter().all(|v| v.is_finite()));
    // Three epochs of running averages at momentum 0.99 stay near the initial mean 0 and
    // variance 1; statistics taken from the images do not.
    assert_ne!(refreshed, averaged);
    let units = refreshed.len() / 2;
    let moved = |stats: &[f32]| {
        stats[..units].iter().map(|m| m.abs()).sum::<f32>()
            + stats[units..].iter().map(|v| (v - 1.0).abs()).sum::<f32>()
    };
    assert!(
        moved(&refreshed) > 5.0 * moved(&averaged),
        "{} {}",
        moved(&refreshed),
        moved(&averaged)
    );
}

#[test]
fn training_on_the_plain_view_cycles_it_through_both_phases() {
    let dir = tempfile::tempdir().expect("temp dir");
    // One cached view and the plain one in turn: phase 2's second epoch reads the training
    // images' plain view halfway through the trunk, which phase 1 must have kept.
    let mut recipe = train_support::tiny_recipe(2, 2);
    recipe.augmented_views = 1;
    recipe.train_on_plain_view = true;
    let (request, caches) = train_support::blob_run(dir.path(), 8, recipe);
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");
    let losses = metrics_numbers(&request.out, "train_loss");
    assert_eq!(losses.len(), 4, "{losses:?}");
    assert!(losses.iter().all(|loss| loss.is_finite()), "{losses:?}");
    assert!(report.model.is_file());
}

#[test]
fn fresh_fine_tune_views_change_phase_two_only_and_survive_cross_validation() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Trains into `dir/name/run` and gives that folder.
    let run = |fresh: bool, folds: Option<usize>, name: &str| {
        let mut recipe = train_support::tiny_recipe(2, 2);
        recipe.augmented_views = 1;
        recipe.fine_tune.fresh_views = fresh;
        let (request, caches) = train_support::blob_run(&dir.path().join(name), 9, recipe);
        let request = TrainRequest { folds, ..request };
        let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");
        assert!(report.model.is_file());
        request.out
    };
    // The training losses of each phase in run folder `dir`.
    let losses = |dir: &std::path::Path| {
        let phases = metrics_column(dir, "phase");
        let losses = metrics_numbers(dir, "train_loss");
        let (frozen, fine_tune): (Vec<_>, Vec<_>) = phases
            .iter()
            .zip(losses)
            .partition(|(phase, _)| *phase == "frozen");
        let values = |rows: Vec<(&String, f64)>| rows.into_iter().map(|(_, loss)| loss).collect();
        let phases: (Vec<f64>, Vec<f64>) = (values(frozen), values(fine_tune));
        assert_eq!((phases.0.len(), phases.1.len()), (2, 2), "{phases:?}");
        phases
    };
    let (cycled_frozen, cycled_fine_tune) = losses(&run(false, None, "cycled"));
    let (fresh_frozen, fresh_fine_tune) = losses(&run(true, None, "fresh"));
    for (fresh, cycled) in fresh_frozen.iter().zip(&cycled_frozen) {
        assert!((fresh - cycled).abs() < 1e-5, "{fresh} against {cycled}");
    }
    // Phase 2's first epoch trains on another picture of each image than phase 1's one view.
    let (fresh, cycled) = (fresh_fine_tune[0], cycled_fine_tune[0]);
    assert!((fresh - cycled).abs() > 1e-4, "{fresh} against {cycled}");
    // Folds share the cache; each fold's fresh views are dropped after their epoch and
    // computed again for the next fold.
    let folds = run(true, Some(3), "folds");
    for metrics in ["fold-1", "fold-3", "final"] {
        let (_, fine_tune) = losses(&folds.join(metrics));
        assert!(
            fine_tune.iter().all(|loss| loss.is_finite()),
            "{fine_tune:?}"
        );
    }
}

#[test]
fn cross_validation_reports_every_fold_and_trains_a_final_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (request, caches) =
        train_support::blob_run(dir.path(), 9, train_support::tiny_recipe(1, 1));
    let request = TrainRequest {
        folds: Some(3),
        ..request
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

    // The card's thresholds are chosen on the final model's validation scores and every
    // fold's held-out scores, not on the validation split alone.
    let own = &report.validation_scores;
    let (scores, labels) =
        crossval::calibration_scores(&own.val_scores, &own.val_labels, &cv.scores, None);
    assert_eq!(scores.len(), own.val_scores.len() + 18);
    let roc = roc_curve(&scores, &labels).expect("roc");
    let who = card.operating_points.iter().find(|p| p.name == "who-min");
    let who = who.expect("who-min point");
    assert!(
        who.rule.contains("3 folds' held-out scores"),
        "{}",
        who.rule
    );
    let chosen = select_threshold(&roc, ThresholdRule::Sensitivity(0.90)).expect("threshold");
    assert!((who.threshold - chosen.threshold).abs() < 1e-12);
    let at_who = ConfusionMatrix::at_threshold(&scores, &labels, who.threshold).expect("counts");
    let sensitivity = at_who.metrics(ConfidenceLevel::default()).sensitivity;
    assert!(sensitivity.expect("sensitivity").value >= 0.90);
}

#[test]
fn a_lung_crop_recipe_pins_its_lung_model_in_the_card_and_prediction_crops_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut recipe = train_support::tiny_recipe(1, 0);
    recipe.preprocess.lung_crop = Some(LungCropSpec::default());
    let (request, caches) = train_support::blob_run(dir.path(), 12, recipe.clone());
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
    let image = request.data.join("tb").join("tb_000.png");
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
fn an_ensemble_member_can_see_the_lung_crop_while_another_sees_the_whole_x_ray() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut recipe = train_support::tiny_recipe(1, 0);
    recipe.ensemble = vec![
        "efficientnet-lite0".into(),
        "efficientnet-lite0+lung-crop".into(),
    ];
    let (request, caches) = train_support::blob_run(dir.path(), 6, recipe);
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");
    let members = request.out.join(ensemble::MEMBERS_DIR);
    assert!(
        members
            .join("efficientnet-lite0+lung-crop")
            .join(MODEL_FILE)
            .is_file()
    );

    let card = model_file::read_card(&report.model).expect("card");
    assert_eq!(
        card.network_name(),
        "efficientnet-lite0 + efficientnet-lite0 (lung crop)"
    );
    assert_eq!(card.members[0].preprocess.lung_crop, None);
    let lungs = cxr_nn::segmentation::default_model_path().expect("shipped lung model");
    let crop = card.members[1].preprocess.lung_crop.clone().expect("crop");
    assert_eq!(
        crop.lung_model_sha256,
        model_file::file_sha256(&lungs).unwrap()
    );

    // On a real chest X-ray the lungs are found: the cropping member sees them, the other
    // member the whole X-ray, and the heat map puts each member's map on what it saw.
    let screener = Screener::load(Some(&report.model)).expect("load");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/shenzhen/images/CHNCXR_0001_0.png");
    let image = cxr_core::decode_file(&path, &Default::default()).expect("decode");
    let views = screener.views(&path, &image, 0, 0).expect("views");
    let region = views
        .lung_crop
        .and_then(|crop| crop.region)
        .expect("lungs found");
    assert!(region.width < image.image.width || region.height < image.image.height);
    assert_ne!(views.inputs[0][0].data, views.inputs[1][0].data);
    let screening = screener
        .screen_files(
            std::slice::from_ref(&path),
            &ScreenOptions::default(),
            |_| {},
        )
        .expect("screen")
        .remove(0)
        .expect("screening");
    assert_eq!(
        screening.lung_crop.and_then(|crop| crop.region),
        Some(region)
    );
    let explanation = explain(&screener, &path, &image, CamMethod::GradCam, None).expect("explain");
    assert!((explanation.probability - screening.probability).abs() < 1e-5);
    let (width, height) = (image.image.width, image.image.height);
    assert_eq!(
        (explanation.heat.width, explanation.heat.height),
        (width, height)
    );
}

#[test]
fn a_validation_set_too_small_for_a_delong_interval_still_gives_a_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 12 images, 2 held out: one per class, too few for a DeLong interval.
    let (request, caches) =
        train_support::blob_run(dir.path(), 6, train_support::tiny_recipe(1, 0));
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");
    assert!(report.model.is_file());
    assert_eq!(report.card.validation[0].images, 2);
    assert_eq!(report.card.validation[0].auc, None);
}

#[test]
fn pseudo_labelling_trains_a_teacher_then_a_student_on_its_confident_calls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 12);
    // Four more X-rays without labels, in one flat folder.
    let unlabelled = dir.path().join("unlabelled");
    train_support::write_blob_dataset(&dir.path().join("more"), 2);
    std::fs::create_dir_all(&unlabelled).expect("folder");
    for class in ["normal", "tb"] {
        for i in 0..2 {
            let name = format!("{class}_{i:03}.png");
            std::fs::copy(
                dir.path().join("more").join(class).join(&name),
                unlabelled.join(&name),
            )
            .expect("copy");
        }
    }
    let caches = train_support::private_caches(dir.path());
    let mut recipe = train_support::tiny_recipe(2, 0);
    recipe.labelled_fraction = 0.5;
    // Confidence 0.5 takes every call, so the counts below do not hang on the teacher's skill.
    recipe.pseudo_labels = Some(PseudoLabelRecipe { confidence: 0.5 });
    let request = TrainRequest {
        data: data.clone(),
        out: dir.path().join("run"),
        recipe: recipe.clone(),
        folds: None,
        unlabelled: Some(unlabelled.clone()),
    };
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");

    // 24 images: 18 train and 6 validate; half of each class's labels are kept (5 + 5 and
    // 2 + 2), so 10 hidden labels join the 4 unlabelled images.
    let run = &request.out;
    assert!(run.join("teacher").join("metrics.csv").is_file());
    assert!(run.join("metrics.csv").is_file());
    let pseudo: PseudoLabelReport = serde_json::from_slice(
        &std::fs::read(run.join(pseudo_labels::REPORT_FILE)).expect("report"),
    )
    .expect("json");
    assert_eq!(pseudo.unlabelled, 14);
    assert_eq!(pseudo.abnormal + pseudo.normal, 14);
    assert_eq!(pseudo.hidden_checked, 10);
    assert!(pseudo.hidden_correct <= 10);
    let card = model_file::read_card(&report.model).expect("card");
    assert_eq!(card.validation[0].images, 4);
    let protocol = &card.training.as_ref().expect("training").protocol;
    assert!(protocol.contains("10 labelled images"), "{protocol}");
    assert!(protocol.contains("14 unlabelled images"), "{protocol}");

    // Unlabelled images with no pseudo-labelling to use them, or only already labelled
    // images, are refused before anything trains.
    let no_pseudo = TrainRequest {
        out: dir.path().join("no-pseudo"),
        recipe: Recipe {
            pseudo_labels: None,
            ..recipe.clone()
        },
        ..request.clone()
    };
    let error = train(&no_pseudo, &caches, &AtomicBool::new(false)).unwrap_err();
    assert!(error.to_string().contains("[pseudo_labels]"), "{error}");
    let labelled_only = TrainRequest {
        out: dir.path().join("labelled-only"),
        unlabelled: Some(data.join("tb")),
        ..request
    };
    let error = train(&labelled_only, &caches, &AtomicBool::new(false)).unwrap_err();
    assert!(error.to_string().contains("already labelled"), "{error}");
    assert!(
        !dir.path()
            .join("labelled-only")
            .join("metrics.csv")
            .exists()
    );
}

#[test]
fn a_class_list_trains_a_softmax_head_with_per_class_figures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_three_class_dataset(&data, 9);
    let caches = train_support::private_caches(dir.path());
    let names: Vec<String> = ["normal", "tb", "age-related"].map(String::from).to_vec();
    let mut recipe = train_support::tiny_recipe(1, 1);
    recipe.classes = Some(ClassesRecipe {
        names: names.clone(),
        refer: vec!["tb".into()],
    });
    let request = TrainRequest {
        data: data.clone(),
        out: dir.path().join("cv"),
        recipe: recipe.clone(),
        folds: Some(3),
        unlabelled: None,
    };
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");

    // Per class, over the 27 out-of-fold images: a 3x3 confusion matrix and three AUCs.
    let cv = report.cross_validation.expect("cross-validation");
    let classes = cv.classes.expect("per-class figures");
    assert_eq!(classes.confusion.len(), 3);
    let counted: usize = classes.confusion.iter().flatten().sum();
    assert_eq!(counted, 27);
    let per_class: Vec<usize> = classes.one_vs_rest.iter().map(|c| c.images).collect();
    assert_eq!(per_class, [9, 9, 9]);
    // The screening figures count only "tb" as positive.
    assert_eq!(cv.pooled.images, 27);

    let card = model_file::read_card(&report.model).expect("card");
    assert_eq!(card.classes, names);
    assert_eq!(card.refer, ["tb"]);
    assert_eq!(
        card.class_validation.len(),
        2,
        "validation split and pooled folds"
    );
    let (model, _) =
        classifier::load(&report.model, &cxr_nn::device::inference_device()).expect("load");
    assert_eq!(
        model.head.outputs,
        HeadOutputs::Softmax {
            classes: 3,
            refer: vec![1]
        }
    );
    let screener = Screener::load(Some(&report.model)).expect("screener");
    assert_eq!(screener.class_name(true), "tb");
    assert_eq!(screener.class_name(false), "normal or age-related");
    let screened = screener
        .screen_files(
            &[data.join("tb").join("tb_000.png")],
            &ScreenOptions::default(),
            |_| {},
        )
        .expect("screen");
    let probability = screened[0].as_ref().expect("screened").probability;
    assert!((0.0..=1.0).contains(&probability));

    // The binary recipe does not know the third folder, and says which.
    let binary = TrainRequest {
        out: dir.path().join("binary"),
        recipe: Recipe {
            classes: None,
            ..recipe
        },
        folds: None,
        ..request
    };
    let error = train(&binary, &caches, &AtomicBool::new(false)).unwrap_err();
    assert!(error.to_string().contains("age-related"), "{error}");
}

#[test]
fn an_ensemble_member_trains_by_its_own_recipe_file_and_is_not_retrained_when_finished() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 8);
    let caches = train_support::private_caches(dir.path());
    train_support::add_random_weights(&caches, BackboneKind::MobileNetV2);
    // tiny_recipe's settings, as files.
    let common = "batch_size = 8\nval_fraction = 0.25\n";
    let tables = "[preprocess]\ninput_size = 64\n[head]\nhidden = 16\n[frozen]\nepochs = 1\n";
    std::fs::write(
        dir.path().join("tuned.toml"),
        format!(
            "backbone = \"mobilenet-v2\"\n{common}{tables}[fine_tune]\nepochs = 1\nunfreeze_from = \"stem\"\nrefresh_head_statistics = true\n"
        ),
    )
    .expect("write");
    let ensemble_file = dir.path().join("ensemble.toml");
    std::fs::write(
        &ensemble_file,
        format!(
            "backbone = \"efficientnet-lite0\"\n{common}ensemble = [\"efficientnet-lite0\", \"tuned.toml\"]\n{tables}[fine_tune]\nepochs = 0\n"
        ),
    )
    .expect("write");
    let request = TrainRequest {
        data,
        out: dir.path().join("ensemble"),
        recipe: Recipe::from_file(&ensemble_file).expect("recipe"),
        folds: None,
        unlabelled: None,
    };
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");
    let card = model_file::read_card(&report.model).expect("card");
    assert_eq!(card.network_name(), "efficientnet-lite0 + mobilenet-v2");
    let members = request.out.join(ensemble::MEMBERS_DIR);
    let phases = |member: &str| metrics_column(&members.join(member), "phase");
    assert_eq!(phases("efficientnet-lite0"), ["frozen"]);
    assert_eq!(phases("tuned.toml"), ["frozen", "fine_tune"]);
    // Run again (as after a kill): both members are finished and taken as they are.
    let member_file = members.join("tuned.toml").join(MODEL_FILE);
    let written = modified(&member_file);
    let again = train(&request, &caches, &AtomicBool::new(false)).expect("again");
    assert_eq!(modified(&member_file), written);
    assert!(again.model.is_file());
}

#[test]
fn an_ensemble_recipe_trains_each_member_and_stores_one_half_precision_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 9);
    let caches = train_support::private_caches(dir.path());
    train_support::add_random_weights(&caches, BackboneKind::MobileNetV2);
    let mut recipe = train_support::tiny_recipe(2, 0);
    recipe.ensemble = vec!["efficientnet-lite0".into(), "mobilenet-v2".into()];
    recipe.weights = WeightPrecision::F16;
    let request = TrainRequest {
        data: data.clone(),
        out: dir.path().join("ensemble"),
        recipe,
        folds: Some(3),
        unlabelled: None,
    };
    let report = train(&request, &caches, &AtomicBool::new(false)).expect("train");

    let card = model_file::read_card(&report.model).expect("card");
    assert_eq!(card.architecture.network, "ensemble");
    assert_eq!(card.network_name(), "efficientnet-lite0 + mobilenet-v2");
    assert_eq!(card.weights, WeightPrecision::F16);
    let members = request.out.join(ensemble::MEMBERS_DIR);
    let member_model = |name: &str| members.join(name).join(MODEL_FILE);
    let size = |path: &std::path::Path| std::fs::metadata(path).expect("size").len() as f64;
    let members_size =
        size(&member_model("efficientnet-lite0")) + size(&member_model("mobilenet-v2"));
    let ratio = size(&report.model) / members_size;
    assert!(
        (0.45..0.55).contains(&ratio),
        "f16 file is {ratio} of the members'"
    );

    // The held-out figures are the members' combined; the card's thresholds were chosen on
    // what the stored file scores, which is what screening it gives again.
    let member_cv = |name: &str| {
        let path = members.join(name).join("cross-validation.json");
        serde_json::from_slice::<CrossValidation>(&std::fs::read(path).expect("cv")).expect("json")
    };
    let (lite0, mobilenet) = (member_cv("efficientnet-lite0"), member_cv("mobilenet-v2"));
    let combined = crossval::mean_logit_ensemble(&[&lite0, &mobilenet])
        .expect("same folds")
        .expect("figures");
    let cv = report.cross_validation.as_ref().expect("cross-validation");
    assert_eq!(cv.pooled, combined.pooled);
    assert!(request.out.join("cross-validation.json").is_file());
    let screener = Screener::load(Some(&report.model)).expect("load");
    assert_eq!(screener.networks().len(), 2);
    let dataset = cxr_core::dataset::Dataset::open(&data, &Default::default()).expect("data");
    let val: Vec<_> = report
        .validation_scores
        .val
        .iter()
        .map(|&i| dataset.items[i].path.clone())
        .collect();
    let screened: Vec<f64> = screener
        .screen_files(&val, &ScreenOptions::default(), |_| {})
        .expect("screen")
        .into_iter()
        .map(|s| s.expect("screening").probability)
        .collect();
    assert_eq!(screened, report.validation_scores.val_scores);
    // f16 storage moves the members' combined scores only a little.
    let member_val = |name: &str| {
        let path = members.join(name).join(cxr_nn::train::REPORT_FILE);
        let report: cxr_nn::train::TrainReport =
            serde_json::from_slice(&std::fs::read(path).expect("report")).expect("json");
        report.validation_scores.val_scores
    };
    let (lite0_val, mobilenet_val) = (member_val("efficientnet-lite0"), member_val("mobilenet-v2"));
    for (i, stored) in screened.iter().enumerate() {
        let full = classifier::mean_log_odds(&[lite0_val[i], mobilenet_val[i]]);
        assert!((stored - full).abs() < 0.02, "{stored} vs {full}");
    }

    // The heat map of an ensemble explains the ensemble's probability.
    let image_path = data.join("tb").join("tb_001.png");
    let image = cxr_core::decode_file(&image_path, &Default::default()).expect("decode");
    let explanation =
        explain(&screener, &image_path, &image, CamMethod::GradCam, None).expect("explain");
    let screening = screener
        .screen_files(&[image_path], &ScreenOptions::default(), |_| {})
        .expect("screen")
        .remove(0)
        .expect("screening");
    assert!((explanation.probability - screening.probability).abs() < 1e-5);
    assert_eq!((explanation.heat.width, explanation.heat.height), (96, 96));

    // Running it again takes the finished members as they are.
    let metrics = members
        .join("mobilenet-v2")
        .join("final")
        .join("metrics.csv");
    let written = modified(&metrics);
    let again = train(&request, &caches, &AtomicBool::new(false)).expect("again");
    assert_eq!(modified(&metrics), written);
    assert_eq!(again.card.operating_points, card.operating_points);
}

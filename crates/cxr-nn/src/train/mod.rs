//! Training a classifier with the paper's two-phase transfer-learning recipe: data, caches of
//! frozen-trunk outputs, the runs (one, or one per cross-validation fold) and the model file.
//!
//! A run folder holds `run.json` (what was asked, so `--resume` needs nothing else), per-run
//! `checkpoint.bin`, `best.safetensors`, `metrics.csv/json`, `accuracy.png`, `loss.png`, and
//! at the end `model.safetensors` with its card (and `cross-validation.json` with `--folds`),
//! then `report.json`. An ensemble recipe's folder holds one such folder per member in
//! `members/`, and the ensemble's own files beside them (see [`ensemble`]).

pub mod checkpoint;
pub mod crossval;
pub mod curves;
pub mod data;
pub mod ensemble;
pub mod features;
pub mod loader;
pub mod log;
pub mod optimizer;
pub mod pseudo_labels;
pub mod recipe;
pub mod run;
pub mod schedule;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use cxr_core::dataset::Dataset;
use cxr_core::lungs::LungCropper;
use cxr_core::metrics::{
    ConfidenceLevel, ConfusionMatrix, MetricsError, ThresholdRule, class_figures, delong_auc,
    roc_curve, select_threshold,
};
use cxr_core::preprocess::{InputSize, PreprocessCache, PreprocessSpec};
use serde::{Deserialize, Serialize};

use crate::backbones::BackboneKind;
use crate::classifier::{self, Classifier, HeadConfig, HeadOutputs};
use crate::device::inference_device;
use crate::model_file::{self, ModelCard, ModelKind, OperatingPoint, TrainingRecord, Validation};
use crate::segmentation::LungSegmenter;
use crate::weights;
use crossval::CrossValidation;
use data::{Labels, Partition};
use features::{FeatureCache, View};
use log::Phase;
use recipe::Recipe;
use run::{RunSetup, TrunkCaches};

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Recipe(#[from] recipe::RecipeError),
    #[error(transparent)]
    Dataset(#[from] cxr_core::dataset::DatasetError),
    #[error("cannot split the data: {0}")]
    Split(#[from] cxr_core::dataset::SplitError),
    #[error(transparent)]
    Preprocess(#[from] cxr_core::preprocess::PreprocessError),
    #[error(transparent)]
    Weights(#[from] weights::WeightsError),
    #[error(transparent)]
    ModelFile(#[from] model_file::ModelFileError),
    #[error("{}: checkpoint: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Json { path: PathBuf, message: String },
    #[error("learning curves: {0}")]
    Plot(String),
    #[error("data: {0}")]
    Data(String),
    #[error("metrics: {0}")]
    Metrics(#[from] cxr_core::metrics::MetricsError),
    #[error("the recipe crops to the lungs, but no lung model can be loaded: {0}")]
    LungModel(#[source] Box<crate::segmentation::SegmentationError>),
    #[error("interrupted; every finished epoch is saved")]
    Interrupted,
}

/// What `cxr train` was asked to do; stored as `run.json` in the output folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainRequest {
    pub data: PathBuf,
    pub out: PathBuf,
    pub recipe: Recipe,
    /// Cross-validation folds; `None` trains once on a fixed split.
    pub folds: Option<usize>,
    /// A folder of images without labels, for the recipe's pseudo-labelling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlabelled: Option<PathBuf>,
}

/// What training produced; stored as `report.json` in the run folder, last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub model: PathBuf,
    pub card: ModelCard,
    pub cross_validation: Option<CrossValidation>,
    /// The final model's validation images (indices into the data set), their labels and its
    /// scores on them: what its thresholds were chosen on (`test` is empty).
    pub validation_scores: crossval::FoldScores,
}

/// Where downloaded weights and fitted images are kept between runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheDirs {
    pub weights: PathBuf,
    pub images: PathBuf,
}

impl CacheDirs {
    /// The user's cache: `cxr weights`' folder, with fitted images in `fitted-images` inside it.
    pub fn for_user() -> Result<Self, TrainError> {
        let weights = weights::cache_dir()?;
        Ok(Self {
            images: weights.join("fitted-images"),
            weights,
        })
    }
}

pub const REQUEST_FILE: &str = "run.json";
pub const MODEL_FILE: &str = "model.safetensors";
pub const REPORT_FILE: &str = "report.json";
pub const CROSS_VALIDATION_FILE: &str = "cross-validation.json";

impl TrainRequest {
    /// Reads the request of the run in `dir`, for `--resume`.
    pub fn resume(dir: &Path) -> Result<Self, TrainError> {
        let mut request: TrainRequest = read_json(&dir.join(REQUEST_FILE))?;
        request.out = dir.to_path_buf();
        request.recipe.validate()?;
        Ok(request)
    }
}

/// Trains as `request` says (continuing whatever is already in its output folder), writes the
/// final model file and returns where it is. `stop` (Ctrl-C) ends it after saving.
pub fn train(
    request: &TrainRequest,
    cache_dirs: &CacheDirs,
    stop: &AtomicBool,
) -> Result<TrainReport, TrainError> {
    start_run(request)?;
    // Opened once, here: a missing or unreadable data set is reported before anything trains,
    // and an ensemble's members train on the same listing.
    let dataset = Dataset::open(&request.data, &request.recipe.class_names()?)?;
    // Kept apart from the single-model body, whose stack frame is large: an ensemble's
    // member runs then do not nest one such frame inside another.
    match request.recipe.ensemble.is_empty() {
        true => train_one(request, &dataset, cache_dirs, stop),
        false => ensemble::train_ensemble(request, &dataset, cache_dirs, stop),
    }
}

/// Creates the run folder and records what was asked in it, for `--resume`.
fn start_run(request: &TrainRequest) -> Result<(), TrainError> {
    request.recipe.validate()?;
    let out = &request.out;
    std::fs::create_dir_all(out).map_err(|source| TrainError::Io {
        path: out.clone(),
        source,
    })?;
    write_json(&out.join(REQUEST_FILE), request)
}

/// [`train`] for a recipe of one backbone, on `dataset` (opened from `request.data`), in a run
/// folder already started.
fn train_one(
    request: &TrainRequest,
    dataset: &Dataset,
    cache_dirs: &CacheDirs,
    stop: &AtomicBool,
) -> Result<TrainReport, TrainError> {
    let recipe = &request.recipe;
    let out = &request.out;
    let names = recipe.class_names()?;
    let mut labels = Labels::of(dataset, &names);
    let extra_unlabelled = match &request.unlabelled {
        Some(dir) => unlabelled_images(dir, dataset, recipe)?,
        None => Vec::new(),
    };
    let kind = recipe.backbone_kind()?;
    let device = inference_device();
    let backbone = match weights::pretrained(kind, &cache_dirs.weights, &device) {
        Err(weights::WeightsError::NoPretrained { .. }) => {
            eprintln!(
                "{}: no pretrained weights; training from scratch",
                kind.name()
            );
            crate::device::with_seed(recipe.seed, |device| kind.init(device))
        }
        other => other?,
    };
    let outputs = match &recipe.classes {
        None => HeadOutputs::Binary,
        Some(_) => HeadOutputs::softmax(&names),
    };
    let head = HeadConfig {
        hidden: recipe.head.hidden,
        dropout: recipe.head.dropout,
        outputs,
        ..HeadConfig::paper(kind.spec().feature_channels)
    };
    let initial = Classifier::seeded(backbone.clone(), &head, recipe.seed, &device);
    let mut spec = preprocess_spec(kind, recipe)?;
    let lungs = crop_lung_model(&mut spec)?;
    let mut card = ModelCard::new(
        ModelKind::Classifier,
        classifier::architecture(kind, &head, spec.input_size.width),
        spec.clone(),
        dataset.class_names.clone(),
    );
    // Per-class figures only mean something beside a softmax head.
    let multi_class = recipe
        .classes
        .as_ref()
        .map(|_| dataset.class_names.as_slice());
    if let HeadOutputs::Softmax { refer, .. } = &head.outputs {
        card.refer = refer
            .iter()
            .map(|&c| dataset.class_names[c].clone())
            .collect();
    }
    // Unlabelled images follow the data set's in the image list; their label is never read
    // before a teacher gives them one.
    let mut paths: Vec<PathBuf> = dataset.items.iter().map(|item| item.path.clone()).collect();
    let extra_indices: Vec<usize> = (paths.len()..paths.len() + extra_unlabelled.len()).collect();
    paths.extend(extra_unlabelled);
    labels.classes.resize(paths.len(), 0);
    let scarce = |partition: Partition| {
        let mut partition = partition.hide_labels(&labels, recipe.labelled_fraction, recipe.seed);
        partition.unlabelled.extend_from_slice(&extra_indices);
        partition
    };
    // Phase 2 shows the plain view and its epochs' views: keep those halfway through the
    // trunk when phase 1 computes them.
    let kept = std::iter::once(View::Plain)
        .chain(
            (0..recipe.fine_tune.epochs)
                .map(|epoch| run::epoch_view(recipe, Phase::FineTune, epoch)),
        )
        .collect();
    let mut images = PreprocessCache::new(&cache_dirs.images)?;
    if let Some(lungs) = lungs {
        images = images.with_lungs(lungs);
    }
    let mut caches = TrunkCaches {
        features: FeatureCache::new(
            backbone.clone(),
            recipe.unfreeze_stage()?,
            kept,
            paths.clone(),
            spec.clone(),
            recipe.augment,
            recipe.seed,
        ),
        images,
    };
    let run_in = |dir: &Path, partition: &Partition, caches: &mut TrunkCaches| {
        let setup = RunSetup {
            dir,
            recipe,
            labels: &labels,
            partition,
            initial: initial.clone(),
            card: &card,
            stop,
        };
        match &recipe.pseudo_labels {
            Some(config) if !partition.unlabelled.is_empty() => {
                pseudo_labels::self_train(setup, config, dataset.items.len(), caches)
            }
            _ => run::run(setup, caches),
        }
    };
    let (cross_validation, final_partition) = match request.folds {
        Some(folds) => {
            let labelled = data::cross_validation(dataset, &labels, folds, recipe.seed)?;
            let partitions: Vec<Partition> = labelled.iter().cloned().map(scarce).collect();
            let mut outcomes = Vec::new();
            for (k, partition) in partitions.iter().enumerate() {
                eprintln!("cross-validation: fold {}/{folds}", k + 1);
                let dir = out.join(format!("fold-{}", k + 1));
                outcomes.push(run_in(&dir, partition, &mut caches)?);
            }
            let summary = crossval::summarise(&partitions, &outcomes, &labels, multi_class)?;
            write_json(&out.join(CROSS_VALIDATION_FILE), &summary)?;
            // The final model trains on every fold but one, which validates it.
            let last = &labelled[folds - 1];
            let final_partition = scarce(Partition {
                train: [last.train.clone(), last.test.clone()].concat(),
                val: last.val.clone(),
                test: Vec::new(),
                unlabelled: Vec::new(),
            });
            (Some(summary), final_partition)
        }
        None => (
            None,
            scarce(data::fixed_split(
                dataset,
                &labels,
                recipe.val_fraction,
                recipe.seed,
            )?),
        ),
    };
    let final_dir = match request.folds {
        Some(_) => out.join("final"),
        None => out.clone(),
    };
    let outcome = run_in(&final_dir, &final_partition, &mut caches)?;
    let val_labels = labels.screening(&final_partition.val);
    card.training = Some(TrainingRecord {
        data: data::manifest(dataset, &request.data)?,
        recipe: serde_json::to_value(recipe).map_err(|err| TrainError::Json {
            path: out.join(REQUEST_FILE),
            message: err.to_string(),
        })?,
        protocol: protocol(request, &final_partition),
        epochs: vec![recipe.frozen.epochs, recipe.fine_tune.epochs],
    });
    card.operating_points =
        operating_points(&outcome.val_scores, &val_labels, cross_validation.as_ref())?;
    card.default_operating_point = "default".to_string();
    card.validation.push(validation(
        &format!("validation split ({} images)", val_labels.len()),
        &outcome.val_scores,
        &val_labels,
    )?);
    if let Some(class_names) = multi_class {
        card.class_validation.push(class_figures(
            &format!("validation split ({} images)", val_labels.len()),
            class_names,
            &outcome.val_classes,
            &labels.classes_of(&final_partition.val),
        )?);
    }
    if let Some(cv) = &cross_validation {
        card.validation.push(cv.pooled.clone());
        card.class_validation.extend(cv.classes.clone());
    }
    let model_path = out.join(MODEL_FILE);
    model_file::save(&model_path, &outcome.model, &card)?;
    let report = TrainReport {
        model: model_path,
        card,
        cross_validation,
        validation_scores: crossval::FoldScores {
            val: final_partition.val.clone(),
            val_labels,
            val_scores: outcome.val_scores.clone(),
            test: Vec::new(),
            test_labels: Vec::new(),
            test_scores: Vec::new(),
        },
    };
    write_json(&out.join(REPORT_FILE), &report)?;
    Ok(report)
}

/// How the card's model was trained, in words.
fn protocol(request: &TrainRequest, partition: &Partition) -> String {
    let (train, val) = (partition.train.len(), partition.val.len());
    let mut protocol = match request.folds {
        Some(folds) => format!(
            "{folds}-fold cross-validation for the figures; the final model trained on {train} labelled images, its checkpoint and thresholds chosen on {val} others"
        ),
        None => format!(
            "trained on {train} labelled images; checkpoint and thresholds chosen on {val} validation images"
        ),
    };
    if request.recipe.pseudo_labels.is_some() && !partition.unlabelled.is_empty() {
        protocol += &format!(
            "; self-trained with the teacher's confident pseudo-labels on {} unlabelled images ({} in the run folder)",
            partition.unlabelled.len(),
            pseudo_labels::REPORT_FILE
        );
    }
    protocol
}

/// Images of `dir` for pseudo-labelling, less any that are also in the labelled data set
/// (which would otherwise train twice, once with a guessed label).
fn unlabelled_images(
    dir: &Path,
    dataset: &Dataset,
    recipe: &Recipe,
) -> Result<Vec<PathBuf>, TrainError> {
    if recipe.pseudo_labels.is_none() {
        return Err(TrainError::Data(format!(
            "--unlabelled {}: the recipe has no [pseudo_labels] section, so unlabelled images would not be used; add one (e.g. `[pseudo_labels]` with `confidence = 0.9`)",
            dir.display()
        )));
    }
    let canonical = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.into());
    let labelled: std::collections::HashSet<PathBuf> = dataset
        .items
        .iter()
        .map(|item| canonical(&item.path))
        .collect();
    let images: Vec<PathBuf> = cxr_core::dataset::list_images(dir)?
        .into_iter()
        .filter(|path| !labelled.contains(&canonical(path)))
        .collect();
    if images.is_empty() {
        return Err(TrainError::Data(format!(
            "--unlabelled {}: no PNG, JPEG or DICOM images there that are not already labelled",
            dir.display()
        )));
    }
    Ok(images)
}

/// The lung model for a spec that crops to the lungs; records its sha256 in the spec, so the
/// model card names the lung model whose crops the classifier learnt from.
fn crop_lung_model(spec: &mut PreprocessSpec) -> Result<Option<Arc<dyn LungCropper>>, TrainError> {
    let Some(crop) = &mut spec.lung_crop else {
        return Ok(None);
    };
    let lungs =
        LungSegmenter::load_shipped().map_err(|source| TrainError::LungModel(Box::new(source)))?;
    if crop.lung_model_sha256.is_empty() {
        crop.lung_model_sha256 = lungs.sha256.clone();
    }
    Ok(Some(Arc::new(lungs)))
}

/// The backbone's preprocessing preset, with the recipe's input size, CLAHE and lung crop.
pub fn preprocess_spec(kind: BackboneKind, recipe: &Recipe) -> Result<PreprocessSpec, TrainError> {
    let mut spec = PreprocessSpec::preset(kind.spec().preprocess_preset)?;
    if let Some(side) = recipe.preprocess.input_size {
        spec.input_size = InputSize {
            width: side,
            height: side,
        };
    }
    spec.clahe = recipe.preprocess.clahe;
    spec.lung_crop = recipe.preprocess.lung_crop.clone();
    spec.validate()?;
    Ok(spec)
}

/// The named thresholds of a card: "default" (0.5), "youden", "who-min" (sensitivity >=
/// 0.90) and "who-optimal" (sensitivity >= 0.95), chosen on the kept model's validation
/// scores and, after cross-validation, every fold's held-out scores as well
/// ([`crossval::calibration_scores`]); each rated on those scores.
pub(crate) fn operating_points(
    val_scores: &[f64],
    val_labels: &[bool],
    cross_validation: Option<&CrossValidation>,
) -> Result<Vec<OperatingPoint>, TrainError> {
    let folds = cross_validation.map_or(&[][..], |cv| cv.scores.as_slice());
    let (scores, labels) = crossval::calibration_scores(val_scores, val_labels, folds, None);
    let source = match folds.len() {
        0 => "the validation scores".to_string(),
        k => format!(
            "the validation scores and the {k} folds' held-out scores ({} images)",
            scores.len()
        ),
    };
    let (scores, labels) = (&scores[..], &labels[..]);
    let roc = roc_curve(scores, labels)?;
    let fixed = format!("fixed at 0.5; rated on {source}");
    let mut points = vec![rated("default", 0.5, fixed, scores, labels)?];
    for (name, rule) in [
        ("youden", ThresholdRule::Youden),
        ("who-min", ThresholdRule::Sensitivity(0.90)),
        ("who-optimal", ThresholdRule::Sensitivity(0.95)),
    ] {
        let chosen = select_threshold(&roc, rule)?;
        if chosen.threshold.is_finite() {
            let rule = format!("{rule} on {source}");
            points.push(rated(name, chosen.threshold, rule, scores, labels)?);
        }
    }
    Ok(points)
}

fn rated(
    name: &str,
    threshold: f64,
    rule: String,
    scores: &[f64],
    labels: &[bool],
) -> Result<OperatingPoint, TrainError> {
    let metrics = ConfusionMatrix::at_threshold(scores, labels, threshold)?
        .metrics(ConfidenceLevel::default());
    Ok(OperatingPoint {
        name: name.to_string(),
        threshold,
        rule,
        sensitivity: metrics.sensitivity,
        specificity: metrics.specificity,
    })
}

/// AUC (DeLong CI) and the rates at 0.5 (Wilson CIs) of `scores`. The AUC is left out, not
/// an error, when a class has fewer than the two images DeLong needs: a trained model is not
/// thrown away over a tiny validation set.
pub fn validation(name: &str, scores: &[f64], labels: &[bool]) -> Result<Validation, TrainError> {
    let threshold = 0.5;
    let metrics = ConfusionMatrix::at_threshold(scores, labels, threshold)?
        .metrics(ConfidenceLevel::default());
    let auc = match delong_auc(scores, labels, ConfidenceLevel::default()) {
        Ok(result) => Some(result.auc),
        Err(MetricsError::NotEnoughCases { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    Ok(Validation {
        name: name.to_string(),
        images: scores.len(),
        auc,
        accuracy: metrics.accuracy,
        sensitivity: metrics.sensitivity,
        specificity: metrics.specificity,
        threshold,
    })
}

/// A JSON file of the run folder (a run's request, its cross-validation, ...), read with
/// errors naming the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|err| TrainError::Json {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|err| TrainError::Json {
        path: path.to_path_buf(),
        message: err.to_string(),
    })?;
    checkpoint::write_atomic(path, &bytes)
}

//! One training run in one folder: phase 1 (trunk frozen) then phase 2 (last stages unfrozen),
//! each epoch on cached trunk outputs, with checkpoints, best-weights keeping, the learning-rate
//! schedule, the log and the curves; resumes from the folder's checkpoint when there is one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use cxr_core::metrics::roc_curve;
use cxr_core::preprocess::PreprocessCache;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{self, RunState};
use super::data::{Partition, class_weights};
use super::features::{FeatureCache, View};
use super::log::{EpochRecord, Phase};
use super::optimizer::rmsprop;
use super::recipe::{Monitor, Recipe};
use super::schedule::Plateau;
use super::{TrainError, curves, log};
use crate::classifier::Classifier;
use crate::device::{inference_device, training_device};
use crate::model_file::{self, ModelCard, ModelKind};

/// File names inside a run folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
pub const BEST_FILE: &str = "best.safetensors";

/// Batch size for scoring (no gradients, so larger than training's).
const SCORE_BATCH: usize = 64;

/// The frozen-trunk caches of both phases over one data set, shared by runs (folds).
pub struct TrunkCaches {
    pub frozen: FeatureCache,
    pub fine_tune: FeatureCache,
    pub images: PreprocessCache,
}

impl TrunkCaches {
    /// The cache of `phase`, and the fitted images it is computed from.
    fn phase(&mut self, phase: Phase) -> (&mut FeatureCache, &PreprocessCache) {
        match phase {
            Phase::Frozen => (&mut self.frozen, &self.images),
            Phase::FineTune => (&mut self.fine_tune, &self.images),
        }
    }
}

/// What a run needs besides its caches.
pub struct RunSetup<'a> {
    pub dir: &'a Path,
    pub recipe: &'a Recipe,
    /// Positive or not, by image index of the whole data set.
    pub labels: &'a [bool],
    pub partition: &'a Partition,
    /// The untrained classifier (pretrained trunk, fresh head) on the inference device.
    pub initial: Classifier,
    /// Card written into `best.safetensors` (architecture, preprocessing, classes).
    pub card: &'a ModelCard,
    /// Set by Ctrl-C: stop before the next batch, keeping the last checkpoint.
    pub stop: &'a AtomicBool,
}

/// A finished run: the best weights and their scores on the validation and test images.
pub struct RunOutcome {
    pub model: Classifier,
    pub val_scores: Vec<f64>,
    pub test_scores: Vec<f64>,
    pub history: Vec<EpochRecord>,
}

/// Trains (or resumes) the run in `setup.dir` to the end of phase 2.
pub fn run(setup: RunSetup<'_>, caches: &mut TrunkCaches) -> Result<RunOutcome, TrainError> {
    let recipe = setup.recipe;
    std::fs::create_dir_all(setup.dir).map_err(|source| TrainError::Io {
        path: setup.dir.to_path_buf(),
        source,
    })?;
    let train_device = training_device();
    train_device.seed(recipe.seed);
    let checkpoint_path = setup.dir.join(CHECKPOINT_FILE);
    let fresh = trainable(setup.initial.clone(), &train_device);
    let monitor = recipe.schedule.monitor;
    let (mut state, mut model, mut optimizer) = if checkpoint_path.is_file() {
        checkpoint::load(&checkpoint_path, fresh, rmsprop(&recipe.optimizer))?
    } else {
        let state = RunState {
            phase: Phase::Frozen,
            epochs_done: 0,
            plateau: Plateau::new(recipe.learning_rate(Phase::Frozen)),
            monitor,
            best_score: None,
            history: Vec::new(),
        };
        (state, fresh, rmsprop(&recipe.optimizer))
    };
    if state.monitor != monitor {
        return Err(TrainError::Checkpoint {
            path: checkpoint_path,
            message: format!(
                "kept its best weights by {}, but the recipe watches {}",
                state.monitor.as_str(),
                monitor.as_str()
            ),
        });
    }
    let best_path = setup.dir.join(BEST_FILE);
    let weights = class_weights(setup.labels, &setup.partition.train, recipe.class_weights);
    loop {
        let epochs = phase_epochs(recipe, state.phase);
        while state.epochs_done < epochs {
            let record = epoch(
                &setup,
                caches,
                state.phase,
                &state,
                &mut model,
                &mut optimizer,
                weights,
            )?;
            let value = monitor.value(&record);
            if keeps(monitor, value, state.best_score) {
                // Until the figure is defined, the latest weights are the best known.
                state.best_score = value.or(state.best_score);
                model_file::save(&best_path, &model.valid(), setup.card)?;
            }
            state.plateau.observe(value, &recipe.schedule);
            state.epochs_done += 1;
            state.history.push(record);
            checkpoint::save(&checkpoint_path, &state, &model, &optimizer)?;
            log::write(setup.dir, &state.history)?;
            curves::write(setup.dir, &state.history)?;
        }
        if state.phase == Phase::FineTune {
            break;
        }
        // Phase 2 starts from the best phase-1 weights with a fresh optimiser and schedule,
        // as the paper's recompile did.
        model = trainable(
            best_weights(&best_path, setup.initial.clone())?,
            &train_device,
        );
        optimizer = rmsprop(&recipe.optimizer);
        state.phase = Phase::FineTune;
        state.epochs_done = 0;
        state.plateau = Plateau::new(recipe.learning_rate(Phase::FineTune));
        checkpoint::save(&checkpoint_path, &state, &model, &optimizer)?;
    }
    let best = best_weights(&best_path, setup.initial)?;
    let val_scores = score_plain(&best, caches, &setup.partition.val, setup.stop)?;
    let test_scores = score_plain(&best, caches, &setup.partition.test, setup.stop)?;
    Ok(RunOutcome {
        model: best,
        val_scores,
        test_scores,
        history: state.history,
    })
}

/// Probabilities of abnormality that `model` gives images `indices` (of the caches' image
/// list) on their plain, unaugmented view.
pub fn score_plain(
    model: &Classifier,
    caches: &mut TrunkCaches,
    indices: &[usize],
    stop: &AtomicBool,
) -> Result<Vec<f64>, TrainError> {
    let inputs = caches
        .fine_tune
        .view(View::Plain, &caches.images, &inference_device(), stop)?;
    score(model, &inputs, indices, caches.fine_tune.boundary())
}

/// Whether an epoch whose monitored figure is `value` replaces the kept weights: the first
/// epoch always does, later ones when they beat `best` (strictly, like the paper's choice by
/// accuracy), or while no epoch has had a defined figure.
fn keeps(monitor: Monitor, value: Option<f64>, best: Option<f64>) -> bool {
    match (value, best) {
        (_, None) => true,
        (Some(value), Some(best)) => monitor.improves(value, best, 0.0),
        (None, Some(_)) => false,
    }
}

fn phase_epochs(recipe: &Recipe, phase: Phase) -> usize {
    match phase {
        Phase::Frozen => recipe.frozen.epochs,
        Phase::FineTune => recipe.fine_tune.epochs,
    }
}

/// `model` on the training device, recording gradients.
fn trainable(model: Classifier, device: &Device) -> Classifier {
    model.fork(device).train()
}

/// The best weights kept so far; the initial ones if no epoch ran (zero-epoch recipes).
fn best_weights(path: &Path, initial: Classifier) -> Result<Classifier, TrainError> {
    if !path.is_file() {
        return Ok(initial);
    }
    Ok(model_file::load_into(initial, path, ModelKind::Classifier)?.0)
}

/// One epoch: a pass over the shuffled training images, then validation.
fn epoch(
    setup: &RunSetup<'_>,
    caches: &mut TrunkCaches,
    phase: Phase,
    state: &RunState,
    model: &mut Classifier,
    optimizer: &mut ModuleOptimizer,
    weights: [f32; 2],
) -> Result<EpochRecord, TrainError> {
    let recipe = setup.recipe;
    let started = Instant::now();
    let epoch = state.epochs_done;
    let view = match recipe.augmented_views {
        0 => View::Augmented(epoch),
        views => View::Augmented(epoch % views),
    };
    let device = inference_device();
    let (cache, images) = caches.phase(phase);
    let boundary = cache.boundary();
    let inputs = cache.view(view, images, &device, setup.stop)?;
    let mut order = setup.partition.train.clone();
    let phase_salt = match phase {
        Phase::Frozen => 1,
        Phase::FineTune => 2,
    };
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(
        recipe.seed ^ (phase_salt << 56) ^ epoch as u64,
    ));
    let progress = epoch_progress(phase, epoch, phase_epochs(recipe, phase), order.len());
    let learning_rate = state.plateau.learning_rate;
    let (mut loss_sum, mut correct) = (0.0, 0usize);
    for batch in order.chunks(recipe.batch_size) {
        if setup.stop.load(Ordering::Relaxed) {
            progress.abandon();
            return Err(TrainError::Interrupted);
        }
        let train_device = training_device();
        let x = select(&inputs, batch).to_device(&train_device);
        let labels: Vec<bool> = batch.iter().map(|&i| setup.labels[i]).collect();
        let (targets, sample_weights) = targets(&labels, weights, &train_device);
        let logits = forward_from(model, x, boundary);
        let loss = bce_with_logits(logits.clone(), targets, sample_weights);
        loss_sum += loss.clone().into_scalar::<f32>() as f64 * batch.len() as f64;
        correct += count_correct(
            &logits.into_data().try_to_vec::<f32>().unwrap_or_default(),
            &labels,
        );
        let grads = GradientsParams::from_grads(loss.backward(), &*model);
        *model = optimizer.step(learning_rate, model.clone(), grads);
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    let valid = model.valid();
    let val_inputs = cache.view(View::Plain, images, &device, setup.stop)?;
    let scores = score(&valid, &val_inputs, &setup.partition.val, boundary)?;
    let val_labels: Vec<bool> = setup
        .partition
        .val
        .iter()
        .map(|&i| setup.labels[i])
        .collect();
    let train_count = order.len().max(1) as f64;
    let record = EpochRecord {
        phase,
        epoch: epoch + 1,
        learning_rate,
        train_loss: loss_sum / train_count,
        train_accuracy: correct as f64 / train_count,
        val_loss: mean_bce(&scores, &val_labels),
        val_accuracy: accuracy(&scores, &val_labels),
        val_auc: roc_curve(&scores, &val_labels).ok().map(|roc| roc.auc()),
        seconds: started.elapsed().as_secs_f64(),
    };
    eprintln!(
        "{} epoch {}/{}: loss {:.4}, acc {:.4}, val loss {:.4}, val acc {:.4}, val AUC {}, lr {:.2e}, {:.1} s",
        phase.as_str(),
        record.epoch,
        phase_epochs(recipe, phase),
        record.train_loss,
        record.train_accuracy,
        record.val_loss,
        record.val_accuracy,
        record
            .val_auc
            .map_or("-".to_string(), |auc| format!("{auc:.4}")),
        record.learning_rate,
        record.seconds
    );
    Ok(record)
}

fn epoch_progress(phase: Phase, epoch: usize, epochs: usize, images: usize) -> ProgressBar {
    let bar = ProgressBar::new(images as u64).with_style(
        ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} images, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("{} epoch {}/{}", phase.as_str(), epoch + 1, epochs));
    bar
}

/// The classifier from the cached trunk output at stage `boundary` to logits.
fn forward_from(model: &Classifier, cached: Tensor<4>, boundary: usize) -> Tensor<2> {
    let stages = boundary..model.backbone.num_stages().max(boundary);
    model.head_logits(model.backbone.forward_stages(cached, stages))
}

/// Rows `indices` of `inputs`.
fn select(inputs: &Tensor<4>, indices: &[usize]) -> Tensor<4> {
    let device = inputs.device();
    let indices: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    let n = indices.len();
    inputs.clone().select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(indices, [n]), &device),
    )
}

/// Probabilities of abnormality for images `indices`, from their cached trunk outputs.
fn score(
    model: &Classifier,
    inputs: &Tensor<4>,
    indices: &[usize],
    boundary: usize,
) -> Result<Vec<f64>, TrainError> {
    let mut scores = Vec::with_capacity(indices.len());
    for batch in indices.chunks(SCORE_BATCH) {
        let logits = forward_from(model, select(inputs, batch), boundary);
        let probabilities = burn::tensor::activation::sigmoid(logits)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|err| TrainError::Data(format!("scores: {err:?}")))?;
        scores.extend(probabilities.into_iter().map(f64::from));
    }
    Ok(scores)
}

/// Targets `[n, 1]` (1 for abnormal) and per-image loss weights `[n, 1]`.
fn targets(labels: &[bool], weights: [f32; 2], device: &Device) -> (Tensor<2>, Tensor<2>) {
    let n = labels.len();
    let y: Vec<f32> = labels.iter().map(|&l| if l { 1.0 } else { 0.0 }).collect();
    let w: Vec<f32> = labels.iter().map(|&l| weights[usize::from(l)]).collect();
    (
        Tensor::from_data(TensorData::new(y, [n, 1]), device),
        Tensor::from_data(TensorData::new(w, [n, 1]), device),
    )
}

/// Weighted binary cross-entropy on logits, in the numerically stable form
/// `max(z, 0) - z y + log(1 + exp(-|z|))` (Keras computes the same on clipped probabilities).
fn bce_with_logits(logits: Tensor<2>, targets: Tensor<2>, weights: Tensor<2>) -> Tensor<1> {
    let per_image =
        logits.clone().clamp_min(0.0) - logits.clone() * targets + logits.abs().neg().exp().log1p();
    (per_image * weights).mean()
}

fn count_correct(logits: &[f32], labels: &[bool]) -> usize {
    logits
        .iter()
        .zip(labels)
        .filter(|&(&z, &label)| (z >= 0.0) == label)
        .count()
}

/// Accuracy of calling `score >= 0.5` positive.
pub fn accuracy(scores: &[f64], labels: &[bool]) -> f64 {
    let correct = scores
        .iter()
        .zip(labels)
        .filter(|&(&s, &label)| (s >= 0.5) == label)
        .count();
    correct as f64 / scores.len().max(1) as f64
}

/// Mean binary cross-entropy of probabilities, clipped like Keras (1e-7).
fn mean_bce(scores: &[f64], labels: &[bool]) -> f64 {
    let total: f64 = scores
        .iter()
        .zip(labels)
        .map(|(&p, &label)| {
            let p = p.clamp(1e-7, 1.0 - 1e-7);
            if label { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / scores.len().max(1) as f64
}

/// The run folder's best-model path, for callers that report it.
pub fn best_model_path(dir: &Path) -> PathBuf {
    dir.join(BEST_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loss_on_logits_matches_the_loss_on_probabilities() {
        let device = inference_device();
        let logits = [-3.0f32, -0.5, 0.0, 2.0];
        let labels = [false, true, true, false];
        let (targets, weights) = targets(&labels, [1.0, 1.0], &device);
        let z = Tensor::<2>::from_data(TensorData::new(logits.to_vec(), [4, 1]), &device);
        let loss = bce_with_logits(z, targets, weights).into_scalar::<f32>() as f64;
        let probabilities: Vec<f64> = logits
            .iter()
            .map(|&z| 1.0 / (1.0 + (-z as f64).exp()))
            .collect();
        assert!((loss - mean_bce(&probabilities, &labels)).abs() < 1e-5);
        assert_eq!(count_correct(&logits, &labels), 2);
        assert_eq!(accuracy(&probabilities, &labels), 0.5);
    }

    #[test]
    fn the_kept_weights_follow_the_monitor() {
        assert!(keeps(Monitor::ValLoss, Some(0.7), None));
        assert!(keeps(Monitor::ValLoss, Some(0.4), Some(0.5)));
        assert!(!keeps(Monitor::ValLoss, Some(0.6), Some(0.5)));
        assert!(keeps(Monitor::ValAuc, Some(0.9), Some(0.8)));
        assert!(!keeps(Monitor::ValAuc, Some(0.8), Some(0.8)));
        assert!(!keeps(Monitor::ValAccuracy, Some(0.7), Some(0.8)));
        // An undefined AUC keeps the latest weights only until one is defined.
        assert!(keeps(Monitor::ValAuc, None, None));
        assert!(!keeps(Monitor::ValAuc, None, Some(0.6)));
    }
}

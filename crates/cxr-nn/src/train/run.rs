//! One training run in one folder: phase 1 (trunk frozen) then phase 2 (last stages unfrozen),
//! each epoch on cached trunk outputs, with checkpoints, best-weights keeping, the learning-rate
//! schedule, the log and the curves; resumes from the folder's checkpoint when there is one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use cxr_core::metrics::{predicted_class, roc_curve};
use cxr_core::preprocess::PreprocessCache;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{self, RunState};
use super::data::{Labels, Partition, class_weights};
use super::features::{Depth, FeatureCache, View};
use super::log::{EpochRecord, Phase};
use super::optimizer::rmsprop;
use super::recipe::{FineTuneBatchNorm, Monitor, Recipe};
use super::schedule::{self, Plateau};
use super::{TrainError, curves, log};
use crate::classifier::head::{log_sum_exp, rows};
use crate::classifier::{Classifier, Scores};
use crate::device::{inference_device, training_device};
use crate::model_file::{self, ModelCard, ModelKind};

/// File names inside a run folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
pub const BEST_FILE: &str = "best.safetensors";

/// Batch size for scoring (no gradients, so larger than training's).
const SCORE_BATCH: usize = 64;

/// The frozen-trunk features of one data set, shared by runs (folds), and the fitted images
/// they are computed from.
pub struct TrunkCaches {
    pub features: FeatureCache,
    pub images: PreprocessCache,
}

/// The cached depth that `phase` trains from.
fn depth(phase: Phase) -> Depth {
    match phase {
        Phase::Frozen => Depth::Pooled,
        Phase::FineTune => Depth::Unfrozen,
    }
}

/// The view that epoch `epoch` of `phase` shows: a fresh one each epoch, or the recipe's
/// `augmented_views` in turn, followed by the plain view when it trains on it. Phase 2 with
/// `fresh_views` draws views numbered after every one phase 1 shows.
pub fn epoch_view(recipe: &Recipe, phase: Phase, epoch: usize) -> View {
    if drops_its_view(recipe, phase) {
        let phase_one_views = view_cycle(recipe).unwrap_or(recipe.frozen.epochs);
        return View::Augmented(phase_one_views + epoch);
    }
    match (recipe.augmented_views, recipe.train_on_plain_view) {
        (0, _) => View::Augmented(epoch),
        (views, false) => View::Augmented(epoch % views),
        (views, true) => match epoch % (views + 1) {
            turn if turn == views => View::Plain,
            turn => View::Augmented(turn),
        },
    }
}

/// Whether epochs of `phase` each show a view no other epoch shows, whose cached rows are
/// then dropped when the epoch ends (phase 2's `fresh_views`; phase 1's fresh views are pooled
/// rows, small, and shared by every fold).
fn drops_its_view(recipe: &Recipe, phase: Phase) -> bool {
    phase == Phase::FineTune && recipe.fine_tune.fresh_views
}

/// How many distinct views the epochs cycle through; `None` when each epoch draws a new one.
fn view_cycle(recipe: &Recipe) -> Option<usize> {
    match recipe.augmented_views {
        0 => None,
        views => Some(views + usize::from(recipe.train_on_plain_view)),
    }
}

/// What a run needs besides its caches.
pub struct RunSetup<'a> {
    pub dir: &'a Path,
    pub recipe: &'a Recipe,
    /// Classes by image index of the whole data set, and which a screening refers.
    pub labels: &'a Labels,
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
    /// Screening probabilities (of a refer class).
    pub val_scores: Vec<f64>,
    pub test_scores: Vec<f64>,
    /// Class probabilities, one row per validation and per test image.
    pub val_classes: Vec<Vec<f64>>,
    pub test_classes: Vec<Vec<f64>>,
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
    let checkpoint_path = setup.dir.join(CHECKPOINT_FILE);
    let mut fresh = trainable(setup.initial.clone(), &train_device);
    let monitor = recipe.schedule.monitor;
    let (mut state, mut model, mut optimizer) = if checkpoint_path.is_file() {
        let (state, model, optimizer) =
            checkpoint::load(&checkpoint_path, fresh, rmsprop(&recipe.optimizer))?;
        let model = for_phase(model, state.phase, recipe);
        (state, model, optimizer)
    } else {
        let state = RunState {
            phase: Phase::Frozen,
            epochs_done: 0,
            plateau: Plateau::new(recipe.learning_rate(Phase::Frozen)),
            monitor,
            best_score: None,
            history: Vec::new(),
        };
        fit_standardization(&mut fresh, &setup, caches)?;
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
                &weights,
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
        model = for_phase(
            trainable(best_weights(&best_path, &setup.initial)?, &train_device),
            Phase::FineTune,
            recipe,
        );
        optimizer = rmsprop(&recipe.optimizer);
        state.phase = Phase::FineTune;
        state.epochs_done = 0;
        state.plateau = Plateau::new(recipe.learning_rate(Phase::FineTune));
        checkpoint::save(&checkpoint_path, &state, &model, &optimizer)?;
    }
    let best = best_weights(&best_path, &setup.initial)?;
    let val = score_plain(&best, caches, &setup.partition.val, setup.stop)?;
    let test = score_plain(&best, caches, &setup.partition.test, setup.stop)?;
    Ok(RunOutcome {
        model: best,
        val_scores: val.screening,
        test_scores: test.screening,
        val_classes: val.classes,
        test_classes: test.classes,
        history: state.history,
    })
}

/// The probabilities `model` gives images `indices` (of the caches' image list) on their
/// plain, unaugmented view.
pub fn score_plain(
    model: &Classifier,
    caches: &mut TrunkCaches,
    indices: &[usize],
    stop: &AtomicBool,
) -> Result<Scores, TrainError> {
    PlainViews::of(caches, Depth::Unfrozen, stop).scores(model, indices)
}

/// Whether an epoch whose monitored figure is `value` replaces the kept weights: the first
/// epoch always does, later ones when they beat `best` (strictly, like the paper's choice by
/// accuracy), or while no epoch has had a defined figure. Watching nothing keeps the latest.
fn keeps(monitor: Monitor, value: Option<f64>, best: Option<f64>) -> bool {
    if monitor == Monitor::None {
        return true;
    }
    match (value, best) {
        (_, None) => true,
        (Some(value), Some(best)) => monitor.improves(value, best, 0.0),
        (None, Some(_)) => false,
    }
}

/// Sets a linear head's standardisation from the pooled features of the training images in
/// the views that phase 1 shows (the first epoch's, at least); other heads are left alone.
fn fit_standardization(
    model: &mut Classifier,
    setup: &RunSetup<'_>,
    caches: &mut TrunkCaches,
) -> Result<(), TrainError> {
    if model.head.standardize.is_none() {
        return Ok(());
    }
    let (cache, images) = (&mut caches.features, &caches.images);
    let train = &setup.partition.train;
    let epochs = setup.recipe.frozen.epochs.max(1);
    let views: std::collections::BTreeSet<View> = (0..epochs)
        .map(|epoch| epoch_view(setup.recipe, Phase::Frozen, epoch))
        .take(view_cycle(setup.recipe).unwrap_or(1))
        .collect();
    let mut pooled = Vec::new();
    for view in views {
        cache.fill(
            view,
            Depth::Pooled,
            train,
            images,
            &inference_device(),
            setup.stop,
        )?;
        pooled.push(cache.rows(view, Depth::Pooled, train)?.flatten::<2>(1, 3));
    }
    let pooled = Tensor::cat(pooled, 0).to_device(&training_device());
    model.head.fit_standardization(pooled);
    Ok(())
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

/// `model` as phase `phase` trains it: in phase 2 with the trunk's BatchNorm frozen when the
/// recipe says so (phase 1 trains the head only, on cached trunk outputs).
fn for_phase(model: Classifier, phase: Phase, recipe: &Recipe) -> Classifier {
    match (phase, recipe.fine_tune.batchnorm) {
        (Phase::FineTune, FineTuneBatchNorm::Frozen) => Classifier {
            backbone: model.backbone.freeze_batchnorm(),
            ..model
        },
        _ => model,
    }
}

/// The best weights kept so far; the initial ones if no epoch ran (zero-epoch recipes).
fn best_weights(path: &Path, initial: &Classifier) -> Result<Classifier, TrainError> {
    // A copy with BatchNorm statistics of its own (`valid`, where a clone would share them):
    // loading writes them in place, and every later run (the next fold) starts from `initial`.
    let own = initial.valid();
    if !path.is_file() {
        return Ok(own);
    }
    let ignorable = crate::classifier::is_imagenet_classifier;
    Ok(model_file::load_into(own, path, ModelKind::Classifier, ignorable)?.0)
}

/// One epoch: a pass over the shuffled training images, then validation.
fn epoch(
    setup: &RunSetup<'_>,
    caches: &mut TrunkCaches,
    phase: Phase,
    state: &RunState,
    model: &mut Classifier,
    optimizer: &mut ModuleOptimizer,
    weights: &[f32],
) -> Result<EpochRecord, TrainError> {
    let recipe = setup.recipe;
    let started = Instant::now();
    let epoch = state.epochs_done;
    let view = epoch_view(recipe, phase, epoch);
    let device = inference_device();
    let (cache, images) = (&mut caches.features, &caches.images);
    let depth = depth(phase);
    let mut order = setup.partition.train.clone();
    order.shuffle(&mut epoch_rng(recipe.seed, phase, epoch, Draw::Order));
    let mut dropout = epoch_rng(recipe.seed, phase, epoch, Draw::Dropout);
    cache.fill(view, depth, &order, images, &device, setup.stop)?;
    let progress = epoch_progress(phase, epoch, phase_epochs(recipe, phase), order.len());
    let learning_rate = schedule::learning_rate(
        &recipe.schedule,
        &state.plateau,
        recipe.learning_rate(phase),
        epoch,
        phase_epochs(recipe, phase),
    );
    let (mut loss_sum, mut correct) = (0.0, 0usize);
    for batch in order.chunks(recipe.batch_size) {
        if setup.stop.load(Ordering::Relaxed) {
            progress.abandon();
            return Err(TrainError::Interrupted);
        }
        let train_device = training_device();
        let x = cache.rows(view, depth, batch)?.to_device(&train_device);
        let classes = setup.labels.classes_of(batch);
        let (targets, sample_weights) = targets(&classes, weights, &train_device);
        let logits = training_logits(model, x, cache.next_stage(depth), &mut dropout);
        let loss = cross_entropy(logits.clone(), targets, sample_weights);
        loss_sum += loss.clone().into_scalar::<f32>() as f64 * batch.len() as f64;
        correct += count_correct(&rows(logits).map_err(score_error)?, &classes);
        // The log reports the cross-entropy alone, comparable with the validation loss.
        let loss = match recipe.head.weight_decay {
            0.0 => loss,
            decay => loss + model.head.kernel_squares() * decay,
        };
        let grads = GradientsParams::from_grads(loss.backward(), &*model);
        *model = optimizer.step(learning_rate, model.clone(), grads);
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    if drops_its_view(recipe, phase) {
        cache.forget(view, depth);
    }
    let mut plain = PlainViews {
        cache,
        images,
        depth,
        stop: setup.stop,
    };
    let mut valid = model.valid();
    if phase == Phase::FineTune && recipe.fine_tune.refresh_head_statistics {
        plain.refresh_head_statistics(model, &mut valid, &setup.partition.train)?;
    }
    let scores = plain.scores(&valid, &setup.partition.val)?;
    let val_labels = setup.labels.screening(&setup.partition.val);
    let val_classes = setup.labels.classes_of(&setup.partition.val);
    let train_count = order.len().max(1) as f64;
    let record = EpochRecord {
        phase,
        epoch: epoch + 1,
        learning_rate,
        train_loss: loss_sum / train_count,
        train_accuracy: correct as f64 / train_count,
        val_loss: mean_cross_entropy(&scores.classes, &val_classes),
        val_accuracy: accuracy(&scores.classes, &val_classes),
        val_auc: roc_curve(&scores.screening, &val_labels)
            .ok()
            .map(|roc| roc.auc()),
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

/// What an epoch's generator draws.
#[derive(Clone, Copy)]
enum Draw {
    /// The order of the training images.
    Order = 0,
    /// The head's dropout masks.
    Dropout = 1,
}

/// The generator of `draw` for epoch `epoch` (from 0) of `phase`: seeded by these alone, so
/// that an epoch draws the same whether the run got there in one go or resumed.
fn epoch_rng(seed: u64, phase: Phase, epoch: usize, draw: Draw) -> ChaCha8Rng {
    let phase_salt: u64 = match phase {
        Phase::Frozen => 1,
        Phase::FineTune => 2,
    };
    ChaCha8Rng::seed_from_u64(seed ^ (phase_salt << 56) ^ ((draw as u64) << 48) ^ epoch as u64)
}

/// The classifier from the cached trunk output at stage `boundary` to class logits, as
/// training computes them (dropout masks drawn from `dropout`).
fn training_logits(
    model: &Classifier,
    cached: Tensor<4>,
    boundary: usize,
    dropout: &mut ChaCha8Rng,
) -> Tensor<2> {
    let stages = boundary..model.backbone.num_stages().max(boundary);
    let features = model.backbone.forward_stages(cached, stages);
    model.head.class_logits_training(features, dropout)
}

/// The plain view of images, read from the feature cache at one depth (computed first where
/// the cache lacks it): what validation scores and the head's statistics are taken on.
struct PlainViews<'a> {
    cache: &'a mut FeatureCache,
    images: &'a PreprocessCache,
    depth: Depth,
    stop: &'a AtomicBool,
}

impl<'a> PlainViews<'a> {
    fn of(caches: &'a mut TrunkCaches, depth: Depth, stop: &'a AtomicBool) -> Self {
        Self {
            cache: &mut caches.features,
            images: &caches.images,
            depth,
            stop,
        }
    }

    /// Runs `model`'s trunk to its last stage on images `indices` and hands `each` the
    /// feature maps a batch at a time.
    fn each_batch(
        &mut self,
        model: &Classifier,
        indices: &[usize],
        mut each: impl FnMut(Tensor<4>) -> Result<(), TrainError>,
    ) -> Result<(), TrainError> {
        let device = inference_device();
        let (view, depth) = (View::Plain, self.depth);
        self.cache
            .fill(view, depth, indices, self.images, &device, self.stop)?;
        let boundary = self.cache.next_stage(depth);
        let stages = boundary..model.backbone.num_stages().max(boundary);
        for batch in indices.chunks(SCORE_BATCH) {
            let inputs = self.cache.rows(view, depth, batch)?;
            each(model.backbone.forward_stages(inputs, stages.clone()))?;
        }
        Ok(())
    }

    /// The probabilities `model` gives images `indices`.
    fn scores(&mut self, model: &Classifier, indices: &[usize]) -> Result<Scores, TrainError> {
        let mut scores = Scores::default();
        self.each_batch(model, indices, |features| {
            let logits = model.head.class_logits(features);
            scores.extend(model.head.scores(logits).map_err(score_error)?);
            Ok(())
        })?;
        Ok(scores)
    }

    /// Sets the head BatchNorm statistics of `model` and of `valid` (its inference copy) to
    /// those of images `indices` under the current weights (see
    /// `FineTuneRecipe::refresh_head_statistics`).
    fn refresh_head_statistics(
        &mut self,
        model: &mut Classifier,
        valid: &mut Classifier,
        indices: &[usize],
    ) -> Result<(), TrainError> {
        let mut batches = Vec::new();
        self.each_batch(valid, indices, |features| {
            batches.extend(valid.head.activations_before_norm(features));
            Ok(())
        })?;
        if batches.is_empty() {
            // A linear head: no BatchNorm.
            return Ok(());
        }
        let head = model.head.clone();
        model.head = head
            .with_norm_statistics(Tensor::cat(batches, 0))
            .map_err(score_error)?;
        valid.head = model.head.valid();
        Ok(())
    }
}

fn score_error(message: String) -> TrainError {
    TrainError::Data(format!("scores: {message}"))
}

/// One-hot targets `[n, classes]` and per-image loss weights `[n, 1]`.
fn targets(classes: &[usize], weights: &[f32], device: &Device) -> (Tensor<2>, Tensor<2>) {
    let (n, width) = (classes.len(), weights.len());
    let mut y = vec![0.0f32; n * width];
    for (row, &class) in classes.iter().enumerate() {
        y[row * width + class] = 1.0;
    }
    let w: Vec<f32> = classes.iter().map(|&class| weights[class]).collect();
    (
        Tensor::from_data(TensorData::new(y, [n, width]), device),
        Tensor::from_data(TensorData::new(w, [n, 1]), device),
    )
}

/// Weighted cross-entropy on class logits, `log-sum-exp(z) - z[y]` per image. On the binary
/// head's `[0, z]` this is the paper's binary cross-entropy of `sigmoid(z)`.
fn cross_entropy(logits: Tensor<2>, targets: Tensor<2>, weights: Tensor<2>) -> Tensor<1> {
    let per_image = log_sum_exp(logits.clone()) - (logits * targets).sum_dim(1);
    (per_image * weights).mean()
}

/// Images whose most probable class (or largest logit) is their class.
fn count_correct(rows: &[Vec<f64>], classes: &[usize]) -> usize {
    rows.iter()
        .zip(classes)
        .filter(|&(row, &class)| predicted_class(row) == class)
        .count()
}

/// Share of images whose most probable class is their class: for the binary head, accuracy
/// of calling a score of 0.5 or more positive.
pub fn accuracy(rows: &[Vec<f64>], classes: &[usize]) -> f64 {
    count_correct(rows, classes) as f64 / rows.len().max(1) as f64
}

/// Mean cross-entropy of class probabilities, clipped like Keras (1e-7).
fn mean_cross_entropy(rows: &[Vec<f64>], classes: &[usize]) -> f64 {
    let total: f64 = rows
        .iter()
        .zip(classes)
        .map(|(row, &class)| -row[class].clamp(1e-7, 1.0 - 1e-7).ln())
        .sum();
    total / rows.len().max(1) as f64
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
        // The binary head's logits [0, z]: the loss is the binary cross-entropy of sigmoid(z).
        let z = [-3.0f32, -0.5, 0.0, 2.0];
        let classes = [0, 1, 1, 0];
        let (targets, weights) = targets(&classes, &[1.0, 1.0], &device);
        let logits: Vec<f32> = z.iter().flat_map(|&z| [0.0, z]).collect();
        let logits = Tensor::<2>::from_data(TensorData::new(logits, [4, 2]), &device);
        let loss = cross_entropy(logits.clone(), targets, weights).into_scalar::<f32>() as f64;
        let binary_cross_entropy: f64 = z
            .iter()
            .zip(classes)
            .map(|(&z, class)| {
                let p = 1.0 / (1.0 + (-z as f64).exp());
                if class == 1 { -p.ln() } else { -(1.0 - p).ln() }
            })
            .sum::<f64>()
            / 4.0;
        assert!((loss - binary_cross_entropy).abs() < 1e-5);
        let probabilities =
            rows(burn::tensor::activation::softmax(logits.clone(), 1)).expect("rows");
        assert!((mean_cross_entropy(&probabilities, &classes) - binary_cross_entropy).abs() < 1e-5);
        // A logit of exactly 0 calls the image positive, as a score of 0.5 does.
        assert_eq!(count_correct(&rows(logits).expect("rows"), &classes), 2);
        assert_eq!(accuracy(&probabilities, &classes), 0.5);
    }

    #[test]
    fn class_weights_scale_each_image_of_a_class() {
        let device = inference_device();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![2.0f32, 0.0, -1.0, 0.5, 0.5, 0.5], [2, 3]),
            &device,
        );
        let (targets_even, even) = targets(&[0, 2], &[1.0, 1.0, 1.0], &device);
        let (targets_weighted, weighted) = targets(&[0, 2], &[1.0, 1.0, 3.0], &device);
        let loss = |t, w| cross_entropy(logits.clone(), t, w).into_scalar::<f32>();
        let first = (2.0f32.exp() + 1.0 + (-1.0f32).exp()).ln() - 2.0;
        let second = 3.0f32.ln();
        assert!((loss(targets_even, even) - (first + second) / 2.0).abs() < 1e-5);
        assert!((loss(targets_weighted, weighted) - (first + 3.0 * second) / 2.0).abs() < 1e-5);
    }

    #[test]
    fn loading_the_best_weights_leaves_the_initial_statistics_alone() {
        use crate::backbones::BackboneKind;
        use crate::classifier::HeadConfig;
        let device = inference_device();
        let initial = Classifier::new(
            BackboneKind::MobileNetV2.init(&device),
            &HeadConfig::paper(1280),
            &device,
        );
        let statistics = |model: &Classifier| {
            let norm = model.head.norm.as_ref().expect("the paper's head");
            norm.running_mean.value().into_data()
        };
        let untrained = statistics(&initial);
        // A trained head: its statistics moved by a batch in training mode.
        let trained = trainable(initial.clone(), &training_device());
        let batch = Tensor::<4>::ones([2, 1280, 1, 1], &training_device()) * 3.0;
        trained.head.class_logits(batch);
        let trained = trained.valid();
        assert_ne!(statistics(&trained), untrained);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(BEST_FILE);
        let card = ModelCard::new(
            ModelKind::Classifier,
            crate::classifier::architecture(
                BackboneKind::MobileNetV2,
                &HeadConfig::paper(1280),
                224,
            ),
            Default::default(),
            vec!["normal".into(), "tb".into()],
        );
        model_file::save(&path, &trained, &card).expect("save");

        let best = best_weights(&path, &initial).expect("load");
        assert_eq!(statistics(&best), statistics(&trained));
        assert_eq!(statistics(&initial), untrained);
        assert_eq!(statistics(&initial.clone()), untrained);
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
        // Watching nothing keeps every epoch's weights in turn: the last one stays.
        assert!(keeps(Monitor::None, None, None));
        assert!(keeps(Monitor::None, None, Some(0.6)));
    }

    #[test]
    fn epochs_cycle_through_the_cached_views_and_the_plain_view_comes_last() {
        let views = |recipe: &Recipe| {
            (0..7)
                .map(|e| epoch_view(recipe, Phase::Frozen, e))
                .collect::<Vec<_>>()
        };
        let mut recipe = Recipe::default();
        assert_eq!(
            views(&recipe),
            (0..7).map(View::Augmented).collect::<Vec<_>>()
        );
        assert_eq!(view_cycle(&recipe), None);
        recipe.augmented_views = 2;
        let (a, b) = (View::Augmented(0), View::Augmented(1));
        assert_eq!(views(&recipe), [a, b, a, b, a, b, a]);
        assert_eq!(view_cycle(&recipe), Some(2));
        recipe.train_on_plain_view = true;
        let plain = View::Plain;
        assert_eq!(views(&recipe), [a, b, plain, a, b, plain, a]);
        assert_eq!(view_cycle(&recipe), Some(3));
    }

    #[test]
    fn fresh_fine_tune_views_are_new_each_epoch_and_never_phase_ones() {
        let views = |recipe: &Recipe, phase: Phase, epochs: usize| {
            (0..epochs)
                .map(|e| epoch_view(recipe, phase, e))
                .collect::<std::collections::BTreeSet<_>>()
        };
        let mut recipe = Recipe::default();
        recipe.fine_tune.epochs = 12;
        for (augmented_views, plain) in [(0, false), (5, true), (2, false)] {
            recipe.augmented_views = augmented_views;
            recipe.train_on_plain_view = plain;
            recipe.fine_tune.fresh_views = false;
            let frozen = views(&recipe, Phase::Frozen, recipe.frozen.epochs);
            let cycled = views(&recipe, Phase::FineTune, 12);
            assert!(cycled.is_subset(&frozen), "{cycled:?}");
            assert!(!drops_its_view(&recipe, Phase::FineTune));

            recipe.fine_tune.fresh_views = true;
            assert_eq!(views(&recipe, Phase::Frozen, recipe.frozen.epochs), frozen);
            let fresh = views(&recipe, Phase::FineTune, 12);
            assert_eq!(fresh.len(), 12, "{fresh:?}");
            assert!(fresh.is_disjoint(&frozen), "{fresh:?} against {frozen:?}");
            assert!(drops_its_view(&recipe, Phase::FineTune));
            assert!(!drops_its_view(&recipe, Phase::Frozen));
        }
    }
}

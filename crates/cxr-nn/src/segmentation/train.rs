//! Training the lung network: AdamW with a cosine learning-rate decay, Dice + BCE loss,
//! augmentation shared by image and mask, a held-out score each epoch, checkpoints and resume.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use cxr_core::augment::AugmentConfig;
use cxr_core::lungs::{LungMask, Overlap};
use cxr_core::preprocess::{InputSize, PreprocessSpec};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::SegmentationError;
use super::data::{Pair, batch};
use super::loss::dice_bce_loss;
use super::model::{load_model, lung_card, save_model};
use super::net::LungNet;
use crate::backbones::BackboneKind;
use crate::device::{inference_device, training_device, with_seed};
use crate::model_file::{DataManifest, ModelCard, TrainingRecord};
use crate::weights;

/// The run's settings; stored in the run directory, so that a resumed run continues the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub backbone: String,
    /// Square input side; a multiple of 16 (the encoder's depth).
    pub input_size: usize,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate, decayed along a half cosine to 1 % of it at the end.
    pub learning_rate: f64,
    /// Encoder levels kept at their pretrained values (the stem always is, when any are).
    pub frozen_levels: usize,
    /// Start the encoder from its ImageNet weights (`cxr weights fetch`); off for tests.
    pub pretrained: bool,
    pub augment: AugmentConfig,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            backbone: BackboneKind::MobileNetV2.name().to_string(),
            input_size: 256,
            epochs: 12,
            batch_size: 8,
            learning_rate: 2e-3,
            frozen_levels: 1,
            pretrained: true,
            augment: AugmentConfig {
                // Lung fields differ in position and size between patients and machines
                // more than in angle; a little brightness/contrast jitter covers exposure.
                rotation_degrees: 10.0,
                width_shift: 0.1,
                height_shift: 0.1,
                zoom: 0.15,
                brightness: 0.1,
                contrast: 0.2,
                gamma: 0.2,
                ..AugmentConfig::paper()
            },
            seed: 42,
        }
    }
}

impl TrainConfig {
    pub fn backbone_kind(&self) -> Result<BackboneKind, SegmentationError> {
        Ok(BackboneKind::from_name(&self.backbone)?)
    }

    /// The preprocessing the network is trained with: the backbone's own normalisation at
    /// this run's input size.
    pub fn preprocess_spec(&self) -> Result<PreprocessSpec, SegmentationError> {
        let kind = self.backbone_kind()?;
        let spec = PreprocessSpec::preset(kind.spec().preprocess_preset)
            .map_err(|err| SegmentationError::Config(err.to_string()))?;
        Ok(PreprocessSpec {
            input_size: InputSize {
                width: self.input_size,
                height: self.input_size,
            },
            ..spec
        })
    }

    pub fn validate(&self) -> Result<(), SegmentationError> {
        self.backbone_kind()?;
        self.augment
            .validate()
            .map_err(|err| SegmentationError::Config(err.to_string()))?;
        let problem = if self.input_size == 0 || !self.input_size.is_multiple_of(16) {
            format!(
                "input size must be a positive multiple of 16, not {}",
                self.input_size
            )
        } else if self.epochs == 0 || self.batch_size == 0 {
            "epochs and batch size must be at least 1".to_string()
        } else if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            format!("learning rate must be positive, not {}", self.learning_rate)
        } else {
            return Ok(());
        };
        Err(SegmentationError::Config(problem))
    }
}

/// What one epoch achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    /// Mean overlap on the held-out pairs at the network's input size, threshold 0.5.
    pub validation: Option<Overlap>,
    pub seconds: f64,
}

/// Reported to the caller while training runs.
#[derive(Debug)]
pub enum Progress<'a> {
    Step {
        epoch: usize,
        step: usize,
        steps: usize,
        loss: f64,
    },
    Epoch(&'a EpochRecord),
}

/// The result of a finished run.
#[derive(Debug)]
pub struct TrainOutcome {
    /// The trained network, on the inference device.
    pub net: LungNet,
    pub card: ModelCard,
    pub history: Vec<EpochRecord>,
    /// The last checkpoint, a complete lung model file.
    pub checkpoint: PathBuf,
}

/// What the run directory records between epochs; written last, so it names only files
/// that are complete.
#[derive(Debug, Serialize, Deserialize)]
struct RunState {
    config: TrainConfig,
    history: Vec<EpochRecord>,
    checkpoint: String,
    optimizer: String,
}

const STATE_FILE: &str = "state.json";

/// Where the training pairs came from and how they were split, for the model card.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub data: DataManifest,
    /// E.g. "trained on 387 pairs; 97 held out (20 % split, seed 42)".
    pub protocol: String,
}

fn training_record(
    provenance: &Provenance,
    config: &TrainConfig,
    history: &[EpochRecord],
) -> TrainingRecord {
    TrainingRecord {
        data: provenance.data.clone(),
        recipe: serde_json::json!({ "config": config, "history": history }),
        protocol: provenance.protocol.clone(),
        epochs: vec![history.len()],
    }
}

/// Trains on `train_pairs`, scoring `val_pairs` after every epoch, checkpointing into
/// `run_dir`. With `resume`, continues the run recorded there (its own settings win);
/// without, refuses a directory that already holds a run, so that no work is overwritten.
pub fn train(
    run_dir: &Path,
    config: &TrainConfig,
    train_pairs: &[Pair],
    val_pairs: &[Pair],
    provenance: &Provenance,
    resume: bool,
    mut progress: impl FnMut(Progress),
) -> Result<TrainOutcome, SegmentationError> {
    let run_error = |message: String| SegmentationError::Run {
        run_dir: run_dir.to_path_buf(),
        message,
    };
    std::fs::create_dir_all(run_dir).map_err(|source| SegmentationError::Io {
        path: run_dir.to_path_buf(),
        source,
    })?;
    let state_path = run_dir.join(STATE_FILE);
    let device = training_device();
    let previous = match (state_path.is_file(), resume) {
        (true, true) => Some(read_state(&state_path)?),
        (true, false) => {
            return Err(run_error(
                "already holds a run; pass --resume to continue it or choose another directory"
                    .into(),
            ));
        }
        (false, true) => return Err(run_error(format!("no {STATE_FILE} to resume from"))),
        (false, false) => None,
    };
    let config = previous
        .as_ref()
        .map_or(config, |state| &state.config)
        .clone();
    config.validate()?;
    if train_pairs.is_empty() {
        return Err(SegmentationError::Config("no training pairs".into()));
    }
    let kind = config.backbone_kind()?;
    let spec = config.preprocess_spec()?;
    let (net, mut optimizer, mut history) = match &previous {
        Some(state) => {
            let (net, _) = load_model(&run_dir.join(&state.checkpoint), &device)?;
            let optimizer_path = run_dir.join(&state.optimizer);
            let optimizer = optimizer_config()
                .init()
                .load(&optimizer_path)
                .map_err(|err| run_error(format!("{}: {err}", optimizer_path.display())))?;
            (net, optimizer, state.history.clone())
        }
        None => {
            // Fresh layers (the decoder, or all of it from scratch) start from the seed: the
            // same command trains the same model.
            let net = if config.pretrained {
                let backbone = weights::pretrained(kind, &weights::cache_dir()?, &device)?;
                with_seed(config.seed, |_| {
                    LungNet::from_backbone(kind, backbone, &device)
                })?
            } else {
                with_seed(config.seed, |_| LungNet::init(kind, &device))?
            };
            (net, optimizer_config().init(), Vec::new())
        }
    };
    let mut net = freeze(net, config.frozen_levels);
    let mut card = lung_card(kind, spec.clone());
    let steps_per_epoch = train_pairs.len().div_ceil(config.batch_size);
    let total_steps = steps_per_epoch * config.epochs;
    let mut checkpoint = previous
        .as_ref()
        .map(|state| run_dir.join(&state.checkpoint));
    for epoch in history.len() + 1..=config.epochs {
        let started = Instant::now();
        // One generator per epoch, so that a resumed run draws what the whole run would have.
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(epoch as u64));
        let mut order: Vec<&Pair> = train_pairs.iter().collect();
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for (step, chunk) in order.chunks(config.batch_size).enumerate() {
            let (inputs, targets) =
                batch(chunk, &spec, Some((&config.augment, &mut rng)), &device)?;
            let loss = dice_bce_loss(net.forward(inputs), targets);
            let loss_value = f64::from(loss.clone().into_scalar::<f32>());
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let global_step = (epoch - 1) * steps_per_epoch + step;
            let lr = cosine_rate(config.learning_rate, global_step, total_steps);
            net = optimizer.step(lr, net, grads);
            loss_sum += loss_value * chunk.len() as f64;
            progress(Progress::Step {
                epoch,
                step: step + 1,
                steps: steps_per_epoch,
                loss: loss_value,
            });
        }
        let validation = score(&net.valid(), val_pairs, &spec, config.batch_size)?;
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / train_pairs.len() as f64,
            validation,
            seconds: started.elapsed().as_secs_f64(),
        };
        history.push(record.clone());
        card.training = Some(training_record(provenance, &config, &history));
        checkpoint = Some(write_checkpoint(
            run_dir, &net, &card, &optimizer, &config, &history,
        )?);
        progress(Progress::Epoch(&record));
    }
    let checkpoint = checkpoint.ok_or_else(|| run_error("the run trained no epoch".into()))?;
    let (net, _) = load_model(&checkpoint, &inference_device())?;
    Ok(TrainOutcome {
        net,
        card,
        history,
        checkpoint,
    })
}

fn optimizer_config() -> AdamWConfig {
    AdamWConfig::new().with_weight_decay(1e-4)
}

fn freeze(net: LungNet, levels: usize) -> LungNet {
    if levels == 0 {
        return net;
    }
    LungNet {
        encoder: net.encoder.freeze_early(levels),
        ..net
    }
}

/// Half-cosine decay from `peak` at step 0 to 1 % of it at the last step.
fn cosine_rate(peak: f64, step: usize, total: usize) -> f64 {
    let progress = step as f64 / total.max(1) as f64;
    let floor = 0.01 * peak;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Mean overlap of the thresholded network output with the masks, at input size.
pub fn score(
    net: &LungNet,
    pairs: &[Pair],
    spec: &PreprocessSpec,
    batch_size: usize,
) -> Result<Option<Overlap>, SegmentationError> {
    let device = inference_device();
    let mut overlaps = Vec::with_capacity(pairs.len());
    let all: Vec<&Pair> = pairs.iter().collect();
    for chunk in all.chunks(batch_size.max(1)) {
        let (inputs, _) = batch::<ChaCha8Rng>(chunk, spec, None, &device)?;
        let logits: Tensor<4> = net.forward(inputs);
        let values = logits
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|err| SegmentationError::Tensor(format!("{err:?}")))?;
        let plane = spec.input_size.width * spec.input_size.height;
        for (pair, logits) in chunk.iter().zip(values.chunks_exact(plane)) {
            let predicted = LungMask {
                width: spec.input_size.width,
                height: spec.input_size.height,
                pixels: logits.iter().map(|&l| l >= 0.0).collect(),
            };
            let reference = LungMask::from_threshold(&pair.mask, 0.5);
            overlaps.extend(Overlap::between(&predicted, &reference));
        }
    }
    Ok(Overlap::mean(&overlaps))
}

/// Writes the epoch's model and optimizer under new names, then the state that names them,
/// then removes the previous epoch's files: a crash at any point leaves a resumable run.
fn write_checkpoint(
    run_dir: &Path,
    net: &LungNet,
    card: &ModelCard,
    optimizer: &ModuleOptimizer,
    config: &TrainConfig,
    history: &[EpochRecord],
) -> Result<PathBuf, SegmentationError> {
    let epoch = history.len();
    let checkpoint = format!("checkpoint-epoch{epoch:03}.safetensors");
    let optimizer_file = format!("optimizer-epoch{epoch:03}.bpk");
    save_model(net, card, &run_dir.join(&checkpoint))?;
    optimizer
        .save(run_dir.join(&optimizer_file))
        .map_err(|err| SegmentationError::Run {
            run_dir: run_dir.to_path_buf(),
            message: format!("cannot save the optimizer state: {err}"),
        })?;
    let state = RunState {
        config: config.clone(),
        history: history.to_vec(),
        checkpoint: checkpoint.clone(),
        optimizer: optimizer_file.clone(),
    };
    let json = serde_json::to_string_pretty(&state)
        .map_err(|err| SegmentationError::Config(err.to_string()))?;
    write_atomic(&run_dir.join(STATE_FILE), json.as_bytes())?;
    if epoch > 1 {
        for stale in [
            format!("checkpoint-epoch{:03}.safetensors", epoch - 1),
            format!("optimizer-epoch{:03}.bpk", epoch - 1),
        ] {
            // Leftovers cost disk space only; the state no longer names them.
            let _ = std::fs::remove_file(run_dir.join(stale));
        }
    }
    Ok(run_dir.join(checkpoint))
}

fn read_state(path: &Path) -> Result<RunState, SegmentationError> {
    let text = std::fs::read_to_string(path).map_err(|source| SegmentationError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|err| SegmentationError::Run {
        run_dir: path.parent().unwrap_or(path).to_path_buf(),
        message: format!("unreadable {STATE_FILE}: {err}"),
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SegmentationError> {
    crate::atomic_write::write(path, bytes).map_err(|source| SegmentationError::Io {
        path: path.to_path_buf(),
        source,
    })
}

//! `cxr train`: train a TB classifier with the paper's two-phase recipe (or any recipe file),
//! on a fixed split or with cross-validation; resumable, stoppable with Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Args;
use cxr_nn::train::recipe::Recipe;
use cxr_nn::train::{CacheDirs, TrainError, TrainReport, TrainRequest, train};

/// Set by the Ctrl-C handler; training stops before its next batch.
static STOP: AtomicBool = AtomicBool::new(false);

/// Exit status after Ctrl-C, as shells report a SIGINT death.
const INTERRUPTED: u8 = 130;

#[derive(Args, Debug)]
#[command(after_long_help = RECIPE_HELP)]
pub struct TrainArgs {
    /// Data set: paper layout ROOT/{train,val}/{class}/, class folders, NLM names or a CSV.
    #[arg(required_unless_present = "resume")]
    data: Option<PathBuf>,
    /// Run folder for checkpoints, metrics, curves and the model file.
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Recipe file (TOML); without it, the paper's recipe.
    #[arg(long, conflicts_with = "resume")]
    recipe: Option<PathBuf>,
    /// Cross-validate over K folds (one tests, the next validates, the rest train), then
    /// train the final model.
    #[arg(long, value_name = "K", conflicts_with = "resume")]
    folds: Option<usize>,
    /// A folder of X-rays without labels to learn from too, by the recipe's pseudo-labelling
    /// (its `[pseudo_labels]` section).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    unlabelled: Option<PathBuf>,
    /// Continue the run in RUN_DIR after a kill or Ctrl-C, losing at most one epoch.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["data", "out"])]
    resume: Option<PathBuf>,
}

const RECIPE_HELP: &str = "\
Recipe files are TOML; every field is optional and defaults to the paper's recipe:

  backbone = \"inception-v3\"     # cxr weights list
  seed = 42
  batch_size = 32
  val_fraction = 0.2            # when the data set has no validation split
  class_weights = false         # true: weigh classes by inverse frequency
  augmented_views = 0           # 0: fresh augmentation every epoch; K: reuse K cached views
  train_on_plain_view = false   # true (needs K >= 1): the unaugmented view, the one scored,
                                # joins the cycle as its last view (K + 1 views in turn)
  labelled_fraction = 1.0       # < 1: hide the other labels (label-scarce experiments)
  # ensemble = [\"mobilenet-v2\", \"efficientnet-lite0\"]  # one model per backbone, this
                                # recipe each, same folds; stored as one file averaging
                                # their log-odds (members' runs in RUN_DIR/members/);
                                # \"mobilenet-v2+lung-crop\": that member sees the lungs only
                                # \"tuned.toml\": that member trains by its own recipe
                                # file (beside this one; same seed and val_fraction)
  weights = \"f32\"               # an ensemble's file: or \"f16\" (half the file), or
                                # \"f16_int8_heads\" (as f16, each head's hidden matrix in
                                # 8 bits); thresholds chosen on the stored weights

  [preprocess]
  # input_size = 224            # default: the backbone's own
  # clahe = { tiles_x = 8, tiles_y = 8, clip_limit = 2.0 }
  # lung_crop = { margin = 0.05 } # cut each X-ray to its lungs (shipped lung model) first;
                                # the card pins the lung model, predict crops the same way

  [augment]                     # Keras ImageDataGenerator ranges
  rotation_degrees = 10.0
  width_shift = 0.1
  height_shift = 0.1
  zoom = 0.1
  brightness = 0.0
  contrast = 0.0
  gamma = 0.0
  blur = 0.0                    # Gaussian blur, sigma up to this x the shorter side
  noise = 0.0                   # additive Gaussian noise, sd up to this (gray levels 0..1)

  [head]
  hidden = 512                  # 0: a linear head (GAP -> standardisation -> Dense)
  dropout = 0.5
  weight_decay = 0.0            # L2 penalty on the head's kernels, added to the loss

  [optimizer]                   # RMSprop, Keras 2.2.4 semantics
  learning_rate = 1e-4
  rho = 0.9
  epsilon = 1e-7
  epsilon_in_sqrt = false       # true: lr g / sqrt(a + eps), as tf.keras 2.x and Keras 3

  [schedule]                    # ReduceLROnPlateau; the monitor also picks the kept weights
  kind = \"plateau\"              # or \"cosine\": each phase's rate down to min_learning_rate
  monitor = \"val_accuracy\"      # or \"val_loss\" (lower is better), \"val_auc\",
                                # \"none\" (constant rate, last epoch kept)
  factor = 0.1
  patience = 3

  [frozen]
  epochs = 20
  # learning_rate = 1e-3        # default: optimizer.learning_rate

  [fine_tune]
  epochs = 5
  # learning_rate = 1e-4        # default: optimizer.learning_rate
  unfreeze_from = \"mixed9\"      # empty: mixed9 for Inception V3, else the last two stages
  batchnorm = \"train\"           # or \"frozen\": running statistics, scale and shift fixed
  refresh_head_statistics = false  # true: the head's BatchNorm statistics retaken on the
                                # training images after each epoch (whole-trunk fine-tuning)
  fresh_views = false           # true: a newly drawn augmented view every epoch, not the
                                # cached views of phase 1 in turn

  # [pseudo_labels]             # self-training on --unlabelled DIR and on hidden labels:
  # confidence = 0.9            # a teacher's calls this sure become the student's labels

  # [classes]                   # more than normal/abnormal: a softmax head over these
  # names = [\"normal\", \"tb\", \"age-related\"]   # folder names or labels, in label order
  # refer = [\"tb\"]              # what screening calls positive; default: all but the first

See recipes/ in the repository for commented examples.";

pub fn run(args: TrainArgs, json: bool) -> anyhow::Result<ExitCode> {
    let request = match (&args.resume, args.data, args.out) {
        (Some(dir), _, _) => TrainRequest::resume(dir)?,
        (None, Some(data), Some(out)) => {
            let recipe = match &args.recipe {
                Some(path) => Recipe::from_file(path)?,
                None => Recipe::default(),
            };
            TrainRequest {
                data,
                out,
                recipe,
                folds: args.folds,
                unlabelled: args.unlabelled,
            }
        }
        _ => anyhow::bail!("give DATA and --out RUN_DIR, or --resume RUN_DIR"),
    };
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: checkpoints are written atomically, so leaving now is safe.
            std::process::exit(i32::from(INTERRUPTED));
        }
        eprintln!("\nstopping after this batch (Ctrl-C again to quit at once)...");
    })
    .context("cannot install the Ctrl-C handler")?;
    match train(&request, &CacheDirs::for_user()?, &STOP) {
        Ok(report) => {
            print_report(&report, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err @ TrainError::Interrupted) => {
            eprintln!(
                "{err}: continue with `cxr train --resume {}`",
                request.out.display()
            );
            Ok(ExitCode::from(INTERRUPTED))
        }
        Err(err) => Err(err.into()),
    }
}

fn print_report(report: &TrainReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    println!("model: {}", report.model.display());
    let show = |e: Option<cxr_core::metrics::Estimate>| {
        e.map_or("-".to_string(), |e| {
            format!("{:.3} [{:.3}, {:.3}]", e.value, e.lower, e.upper)
        })
    };
    for validation in &report.card.validation {
        println!(
            "{}: AUC {}, accuracy {}, sensitivity {}, specificity {} (at {})",
            validation.name,
            show(validation.auc),
            show(validation.accuracy),
            show(validation.sensitivity),
            show(validation.specificity),
            validation.threshold
        );
    }
    if let Some(cv) = &report.cross_validation {
        let line = |name: &str, s: &cxr_nn::train::crossval::Spread| {
            println!(
                "  {name:<12} {:.3} +- {:.3} (min {:.3}, max {:.3})",
                s.mean, s.sd, s.min, s.max
            )
        };
        println!(
            "cross-validation over {} held-out folds (mean +- sd):",
            cv.folds.len()
        );
        line("AUC", &cv.auc);
        line("accuracy", &cv.accuracy);
        line("sensitivity", &cv.sensitivity);
        line("specificity", &cv.specificity);
        if let Some(who) = &cv.who {
            println!(
                "  at each fold's WHO threshold (sensitivity >= {} on its validation images and the other folds' held-out images), pooled: sensitivity {}, specificity {}, accuracy {}",
                cxr_nn::train::crossval::WHO_MIN_SENSITIVITY,
                show(who.sensitivity),
                show(who.specificity),
                show(who.accuracy)
            );
        }
    }
    for figures in &report.card.class_validation {
        print!("{figures}");
    }
    println!("{}", cxr_nn::model_file::NOTICE);
    Ok(())
}

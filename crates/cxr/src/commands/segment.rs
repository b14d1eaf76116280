//! `cxr segment`: find the lungs on chest X-rays (mask, outline overlay and JSON per image),
//! and `cxr segment train`: train a lung model on image/mask pairs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use cxr_core::GrayImage;
use cxr_core::dataset::{ClassNames, Dataset, SplitPlan, is_image, list_images};
use cxr_core::decode::{DecodeLimits, decode_file};
use cxr_core::lungs::{BoundingBox, LungMask, Overlap, mask_png, outline_png};
use cxr_nn::segmentation::{
    LungSegmenter, Progress, Provenance, Segmentation, TrainConfig, data, save_model, train,
};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SegmentArgs {
    #[command(subcommand)]
    train: Option<SegmentCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum SegmentCommand {
    /// Train a lung model on X-rays with lung masks (`<stem>_mask.png`, e.g. the Shenzhen set).
    Train(TrainArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// X-ray files or folders of them (PNG, JPEG, DICOM).
    inputs: Vec<PathBuf>,
    /// Folder for `<stem>_mask.png`, `<stem>_lungs.png` (outline) and `<stem>_lungs.json`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Lung model file [default: the shipped models/lungs-mobilenet-v2.safetensors].
    #[arg(long)]
    model: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Data set with lung masks (folder or CSV manifest; see `cxr data check`).
    data: PathBuf,
    /// Run folder: checkpoints, state.json, and the final lungs.safetensors.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out (its recorded settings are used).
    #[arg(long)]
    resume: bool,
    /// Share of the masked images held out to score the model.
    #[arg(long, default_value_t = 0.2, conflicts_with = "folds")]
    val: f64,
    /// Cross-validation: split the masked images into K folds and hold out --fold.
    #[arg(long, value_name = "K", requires = "fold")]
    folds: Option<usize>,
    /// The held-out fold (0-based) with --folds.
    #[arg(long, requires = "folds")]
    fold: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Square network input side (multiple of 16).
    #[arg(long, default_value_t = TrainConfig::default().input_size)]
    input_size: usize,
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    batch_size: usize,
    #[arg(long, default_value_t = TrainConfig::default().learning_rate)]
    learning_rate: f64,
    /// Encoder backbone (ImageNet weights via `cxr weights fetch`).
    #[arg(long, default_value_t = TrainConfig::default().backbone)]
    backbone: String,
    /// Start the encoder from random weights instead of ImageNet's (needs far more epochs).
    #[arg(long)]
    from_scratch: bool,
    /// Encoder levels kept frozen at their ImageNet weights.
    #[arg(long, default_value_t = TrainConfig::default().frozen_levels)]
    frozen_levels: usize,
}

pub fn run(args: SegmentArgs, json: bool) -> anyhow::Result<ExitCode> {
    match args.train {
        Some(SegmentCommand::Train(train_args)) => run_training(train_args, json),
        None => segment_files(args.run, json),
    }
}

/// Segments one file: the decoded X-ray and its lungs.
fn segment_file(
    segmenter: &LungSegmenter,
    path: &Path,
) -> anyhow::Result<(GrayImage, Segmentation)> {
    let image = decode_file(path, &DecodeLimits::default())?.image;
    let lungs = segmenter.segment(&image)?;
    Ok((image, lungs))
}

fn segment_files(args: RunArgs, json: bool) -> anyhow::Result<ExitCode> {
    if args.inputs.is_empty() {
        bail!("name X-ray files or folders to segment (or `cxr segment train` to train a model)");
    }
    let out = args.out.context("name the output folder with --out DIR")?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let model = match args.model {
        Some(model) => model,
        None => cxr_nn::segmentation::default_model_path().context(
            "the shipped lung model models/lungs-mobilenet-v2.safetensors was not found beside \
             the executable or in the current folder; name one with --model or set CXR_LUNG_MODEL",
        )?,
    };
    let segmenter = LungSegmenter::load(&model)
        .with_context(|| format!("cannot load the lung model {}", model.display()))?;
    let files = input_files(&args.inputs)?;
    let bar = progress_bar(files.len() as u64, "segmenting");
    let mut failed = 0;
    let mut stdout = std::io::stdout().lock();
    for file in &files {
        let started = Instant::now();
        let result = segment_file(&segmenter, file).and_then(|(image, segmented)| {
            write_outputs(file, &out, &segmented, &image)?;
            Ok(report(
                file,
                &segmented,
                started.elapsed().as_secs_f64() * 1000.0,
            ))
        });
        bar.inc(1);
        match result {
            Ok(line) => {
                if json {
                    writeln!(stdout, "{line}")?;
                } else {
                    bar.suspend(|| print_human(&line));
                }
            }
            Err(err) => {
                failed += 1;
                let message = super::error_text(&err);
                if json {
                    let line =
                        serde_json::json!({ "path": file.display().to_string(), "error": message });
                    writeln!(stdout, "{line}")?;
                } else {
                    bar.suspend(|| eprintln!("{}: {message}", file.display()));
                }
            }
        }
    }
    bar.finish_and_clear();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Files named directly, plus the images inside named folders (not recursive).
fn input_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            files.extend(list_images(input)?);
        } else if input.is_file() || !is_image(input) {
            files.push(input.clone());
        } else {
            bail!("{}: no such file", input.display());
        }
    }
    Ok(files)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "image".to_string(), |s| s.to_string_lossy().into_owned())
}

fn write_outputs(
    file: &Path,
    out: &Path,
    segmented: &Segmentation,
    image: &GrayImage,
) -> anyhow::Result<()> {
    let stem = stem(file);
    let write = |name: String, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
    };
    write(format!("{stem}_mask.png"), &mask_png(&segmented.mask)?)?;
    write(
        format!("{stem}_lungs.png"),
        &outline_png(image, &segmented.mask, segmented.check.passed())?,
    )?;
    let json = serde_json::to_string_pretty(&report(file, segmented, f64::NAN))?;
    write(format!("{stem}_lungs.json"), json.as_bytes())
}

/// The per-image JSON: lung area, bounding box and every check with its verdict.
fn report(file: &Path, segmented: &Segmentation, milliseconds: f64) -> serde_json::Value {
    let check = &segmented.check;
    let mut line = serde_json::json!({
        "path": file.display().to_string(),
        "width": segmented.mask.width,
        "height": segmented.mask.height,
        "area_fraction": check.area_fraction,
        "bounding_box": BoundingBox::of(&segmented.mask),
        "regions": check.regions,
        "balance": check.balance,
        "checks_passed": check.passed(),
        "failures": check.failures,
    });
    if milliseconds.is_finite() {
        line["milliseconds"] = serde_json::json!(milliseconds);
    }
    line
}

fn print_human(line: &serde_json::Value) {
    let path = line["path"].as_str().unwrap_or_default();
    let area = line["area_fraction"].as_f64().unwrap_or(f64::NAN) * 100.0;
    let verdict = if line["checks_passed"].as_bool() == Some(true) {
        "checks passed".to_string()
    } else {
        format!("CHECKS FAILED: {}", line["failures"])
    };
    println!("{path}: lungs {area:.1} % of the image, {verdict}");
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{msg} {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {prefix}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len)
        .with_style(style)
        .with_message(what.to_string())
}

/// Image/mask path pairs of the training and held-out parts, and how they were split.
struct Parts {
    train: Vec<(PathBuf, PathBuf)>,
    held_out: Vec<(PathBuf, PathBuf)>,
    protocol: String,
}

fn split_pairs(args: &TrainArgs) -> anyhow::Result<Parts> {
    let mut dataset = Dataset::open(&args.data, &ClassNames::default())
        .with_context(|| format!("cannot read the data set {}", args.data.display()))?;
    dataset.items.retain(|item| item.mask.is_some());
    if dataset.items.len() < 2 {
        bail!(
            "{}: fewer than 2 images with lung masks (<stem>_mask.png)",
            args.data.display()
        );
    }
    let plan = SplitPlan {
        val: if args.folds.is_some() { 0.0 } else { args.val },
        test: 0.0,
        folds: args.folds,
        seed: args.seed,
    };
    dataset.assign_splits(&plan)?;
    let held_out = |item: &cxr_core::dataset::Item| match (args.fold, item.fold) {
        (Some(fold), Some(item_fold)) => fold == item_fold,
        _ => item.split == cxr_core::dataset::Split::Val,
    };
    let mut parts = Parts {
        train: Vec::new(),
        held_out: Vec::new(),
        protocol: String::new(),
    };
    for item in &dataset.items {
        let Some(mask) = &item.mask else { continue };
        let pair = (item.path.clone(), mask.clone());
        if held_out(item) {
            parts.held_out.push(pair);
        } else {
            parts.train.push(pair);
        }
    }
    let how = match (args.folds, args.fold) {
        (Some(folds), Some(fold)) => format!("fold {fold} of {folds}, seed {}", args.seed),
        _ => format!(
            "{:.0} % validation split, seed {}",
            args.val * 100.0,
            args.seed
        ),
    };
    parts.protocol = format!(
        "trained on {} image/mask pairs; {} held out ({how}), scored at the original size",
        parts.train.len(),
        parts.held_out.len()
    );
    Ok(parts)
}

fn run_training(args: TrainArgs, json: bool) -> anyhow::Result<ExitCode> {
    let config = TrainConfig {
        backbone: args.backbone.clone(),
        input_size: args.input_size,
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        frozen_levels: args.frozen_levels,
        pretrained: !args.from_scratch,
        seed: args.seed,
        ..TrainConfig::default()
    };
    config.validate()?;
    let parts = split_pairs(&args)?;
    let spec = config.preprocess_spec()?;
    let bar = progress_bar(
        (parts.train.len() + parts.held_out.len()) as u64,
        "reading pairs",
    );
    let train_pairs = data::load_pairs(&parts.train, &spec, || bar.inc(1))?;
    let held_out_pairs = data::load_pairs(&parts.held_out, &spec, || bar.inc(1))?;
    bar.finish_and_clear();
    let provenance = Provenance {
        data: data::manifest(&args.data.display().to_string(), &parts.train)?,
        protocol: parts.protocol.clone(),
    };
    let steps = train_pairs.len().div_ceil(config.batch_size) as u64;
    let bar = progress_bar(steps, "epoch 1");
    let outcome = train(
        &args.out,
        &config,
        &train_pairs,
        &held_out_pairs,
        &provenance,
        args.resume,
        |event| match event {
            Progress::Step {
                epoch, step, loss, ..
            } => {
                if step == 1 {
                    bar.reset();
                    bar.set_message(format!("epoch {epoch}"));
                }
                bar.set_prefix(format!("loss {loss:.4}"));
                bar.inc(1);
            }
            Progress::Epoch(record) => {
                let line = serde_json::json!(record);
                bar.suspend(|| {
                    if json {
                        println!("{line}");
                    } else {
                        let held_out = record.validation.map_or_else(String::new, |o| {
                            format!(
                                ", held-out Dice {:.4} IoU {:.4} (at input size)",
                                o.dice, o.iou
                            )
                        });
                        eprintln!(
                            "epoch {}: loss {:.4}{held_out}, {:.0} s",
                            record.epoch, record.train_loss, record.seconds
                        );
                    }
                });
            }
        },
    )?;
    bar.finish_and_clear();
    let segmenter = LungSegmenter::new(outcome.net.clone(), outcome.card.clone());
    let scores = score_held_out(&segmenter, &parts.held_out)?;
    let mut card = outcome.card;
    if let Some(training) = card.training.as_mut() {
        training.recipe["held_out"] = scores.clone();
    }
    let model_path = args.out.join("lungs.safetensors");
    save_model(&outcome.net, &card, &model_path)?;
    let summary = serde_json::json!({
        "model": model_path.display().to_string(),
        "protocol": parts.protocol,
        "held_out": scores,
    });
    if json {
        println!("{summary}");
    } else {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Mean Dice and IoU of the held-out pairs at their original size, before and after
/// cleanup, how many passed the checks, and the time per image.
fn score_held_out(
    segmenter: &LungSegmenter,
    pairs: &[(PathBuf, PathBuf)],
) -> anyhow::Result<serde_json::Value> {
    let bar = progress_bar(pairs.len() as u64, "scoring held-out images");
    let (mut raw, mut cleaned, mut passed) = (Vec::new(), Vec::new(), 0);
    let mut seconds = 0.0;
    for (image_path, mask_path) in pairs {
        let reference = decode_file(mask_path, &DecodeLimits::default())?.image;
        let reference = LungMask::from_threshold(&reference, 0.5);
        let started = Instant::now();
        let (_, segmented) = segment_file(segmenter, image_path)?;
        seconds += started.elapsed().as_secs_f64();
        let raw_mask = LungMask::from_threshold(&segmented.probabilities, segmenter.threshold());
        let mismatch =
            || anyhow::anyhow!("{}: mask size differs from the X-ray", mask_path.display());
        raw.push(Overlap::between(&raw_mask, &reference).ok_or_else(mismatch)?);
        cleaned.push(Overlap::between(&segmented.mask, &reference).ok_or_else(mismatch)?);
        passed += usize::from(segmented.check.passed());
        bar.inc(1);
    }
    bar.finish_and_clear();
    let worst = cleaned.iter().map(|o| o.dice).fold(f64::INFINITY, f64::min);
    Ok(serde_json::json!({
        "images": pairs.len(),
        "raw": Overlap::mean(&raw),
        "cleaned": Overlap::mean(&cleaned),
        "worst_cleaned_dice": worst.is_finite().then_some(worst),
        "checks_passed": passed,
        "milliseconds_per_image": 1000.0 * seconds / pairs.len().max(1) as f64,
    }))
}

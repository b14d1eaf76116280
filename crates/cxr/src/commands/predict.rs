//! `cxr predict`: screen X-ray files and folders; per image the probability, the decision at
//! an operating point and the quality flags, as CSV (default) or JSON lines; bad files go on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use cxr_nn::predict::{PredictError, ScreenOptions, Screener, Screening};
use serde_json::json;

use super::eval::progress_bar;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// [MODEL] FILES|DIRS: images (PNG, JPEG, DICOM) or folders of them; a first argument
    /// ending in .safetensors is the model, otherwise the shipped default model is used.
    #[arg(required = true, value_name = "[MODEL] FILES")]
    inputs: Vec<PathBuf>,
    /// Model file (instead of a leading .safetensors argument).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Operating point from the model card (e.g. default, youden, who-min, spec-70,
    /// who-optimal, target) [default: the card's default].
    #[arg(long)]
    operating_point: Option<String>,
    /// Test-time augmentation: also score N augmented views and report the mean probability
    /// and its standard deviation (`spread`) as uncertainty.
    #[arg(long, value_name = "N", default_value_t = 0)]
    tta: usize,
    /// Seed of the test-time augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The model argument and the image files named by the inputs (folders listed, sorted).
pub fn model_and_images(
    inputs: &[PathBuf],
    model: Option<PathBuf>,
) -> anyhow::Result<(Option<PathBuf>, Vec<PathBuf>)> {
    let is_model = |path: &Path| path.extension().is_some_and(|e| e == "safetensors");
    let (model, inputs) = match (model, inputs.split_first()) {
        (None, Some((first, rest))) if is_model(first) => (Some(first.clone()), rest),
        (model, _) => (model, inputs),
    };
    let mut images = Vec::new();
    for input in inputs {
        if input.is_dir() {
            images.extend(
                cxr_core::dataset::list_images(input)
                    .with_context(|| format!("cannot list {}", input.display()))?,
            );
        } else {
            // Missing or unreadable files are reported per file, like undecodable ones.
            images.push(input.clone());
        }
    }
    anyhow::ensure!(!images.is_empty(), "no image files given");
    Ok((model, images))
}

pub fn run(args: PredictArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (model, images) = model_and_images(&args.inputs, args.model)?;
    let screener = Screener::load(model.as_deref())?;
    let options = ScreenOptions {
        operating_point: args.operating_point,
        tta_views: args.tta,
        seed: args.seed,
    };
    let bar = progress_bar(images.len(), "screening");
    let results = screener.screen_files(&images, &options, |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    let mut writer = csv::Writer::from_writer(std::io::stdout().lock());
    // A multi-class model adds one probability column per class.
    let class_columns: Vec<String> = match screener.card().refer.is_empty() {
        true => Vec::new(),
        false => screener
            .card()
            .classes
            .iter()
            .map(|c| format!("p_{c}"))
            .collect(),
    };
    if !json {
        let mut header: Vec<String> = [
            "path",
            "probability",
            "spread",
            "operating_point",
            "threshold",
            "decision",
            "flags",
            "error",
            "lung_crop",
        ]
        .map(String::from)
        .to_vec();
        header.extend(class_columns.iter().cloned());
        writer.write_record(&header)?;
    }
    let mut read = 0;
    for (path, result) in images.iter().zip(&results) {
        read += usize::from(result.is_ok());
        if json {
            println!("{}", json_line(path, result));
        } else {
            let mut record = csv_record(path, result);
            record.resize(record.len() + class_columns.len(), String::new());
            if let Ok(screening) = result {
                let cells = record.len() - class_columns.len();
                for (cell, class) in record[cells..].iter_mut().zip(&screening.classes) {
                    *cell = format!("{:.6}", class.probability);
                }
            }
            writer.write_record(record)?;
        }
    }
    writer.flush()?;
    let failed = images.len() - read;
    if failed > 0 {
        eprintln!("{failed} of {} files could not be screened", images.len());
    }
    Ok(if read == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn flags(screening: &Screening) -> Vec<&'static str> {
    screening.quality.flags.iter().map(|f| f.as_str()).collect()
}

/// "x y width height" of the lung crop, "full image: REASON" when the lung checks failed, and
/// empty for models that see the whole X-ray.
fn lung_crop_cell(screening: &Screening) -> String {
    match &screening.lung_crop {
        None => String::new(),
        Some(crop) => match (&crop.region, &crop.fallback) {
            (Some(r), _) => format!("{} {} {} {}", r.x, r.y, r.width, r.height),
            (None, reason) => format!("full image: {}", reason.as_deref().unwrap_or("no lungs")),
        },
    }
}

fn json_line(path: &Path, result: &Result<Screening, PredictError>) -> serde_json::Value {
    match result {
        Ok(s) => {
            let mut line = json!({
                "path": path,
                "probability": s.probability,
                "spread": s.spread,
                "operating_point": s.operating_point,
                "threshold": s.threshold,
                "decision": s.decision,
                "flags": flags(s),
                "lung_crop": s.lung_crop,
            });
            if !s.classes.is_empty() {
                line["classes"] = json!(s.classes);
            }
            line
        }
        Err(error) => json!({
            "path": path,
            "probability": null,
            "decision": null,
            "flags": [],
            "error": error.to_string(),
        }),
    }
}

fn csv_record(path: &Path, result: &Result<Screening, PredictError>) -> Vec<String> {
    let path = path.display().to_string();
    match result {
        Ok(s) => vec![
            path,
            format!("{:.6}", s.probability),
            s.spread
                .map_or(String::new(), |spread| format!("{spread:.6}")),
            s.operating_point.clone(),
            format!("{:.6}", s.threshold),
            s.decision.clone(),
            flags(s).join(";"),
            String::new(),
            lung_crop_cell(s),
        ],
        Err(error) => {
            let mut record = vec![path];
            record.extend(std::iter::repeat_n(String::new(), 6));
            record.push(error.to_string());
            record.push(String::new());
            record
        }
    }
}

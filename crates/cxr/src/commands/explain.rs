//! `cxr explain`: Grad-CAM (or Grad-CAM++) heat maps of the TB score as PNG overlays (X-ray,
//! heat map, colour bar, probability and decision), with per-zone scores inside the lungs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use cxr_core::decode_file;
use cxr_core::report::overlay_png;
use cxr_nn::explain::{CamMethod, Explanation, explain};
use cxr_nn::predict::Screener;
use cxr_nn::segmentation::LungSegmenter;
use serde_json::json;

use super::eval::progress_bar;
use super::predict::model_and_images;

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// [MODEL] FILES|DIRS, as for `cxr predict`.
    #[arg(required = true, value_name = "[MODEL] FILES")]
    inputs: Vec<PathBuf>,
    /// Model file (instead of a leading .safetensors argument).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Folder for the `<stem>_heatmap.png` overlays.
    #[arg(long, default_value = "explain")]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t = Method::GradCam)]
    method: Method,
    /// Lung model: restricts the heat map to the lungs and adds per-zone scores
    /// [default: the shipped lung model, when present].
    #[arg(long)]
    lungs: Option<PathBuf>,
    /// Do not use a lung model: the heat map covers the whole image.
    #[arg(long, conflicts_with = "lungs")]
    no_lungs: bool,
    /// Operating point for the decision in the caption [default: the card's default].
    #[arg(long)]
    operating_point: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    GradCam,
    GradCamPlusPlus,
}

pub fn run(args: ExplainArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (model, images) = model_and_images(&args.inputs, args.model)?;
    let screener = Screener::load(model.as_deref())?;
    let (point, threshold) = screener.operating_point(args.operating_point.as_deref())?;
    let lung_model = match (&args.lungs, args.no_lungs) {
        (Some(path), _) => Some(path.clone()),
        (None, false) => cxr_nn::segmentation::default_model_path(),
        (None, true) => None,
    };
    let segmenter = match &lung_model {
        Some(path) => Some(
            LungSegmenter::load(path)
                .with_context(|| format!("cannot load the lung model {}", path.display()))?,
        ),
        None => None,
    };
    let method = match args.method {
        Method::GradCam => CamMethod::GradCam,
        Method::GradCamPlusPlus => CamMethod::GradCamPlusPlus,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let bar = progress_bar(images.len(), "explaining");
    let mut written = 0;
    for path in &images {
        let outcome = explain_one(
            &screener,
            segmenter.as_ref(),
            path,
            method,
            &args.out,
            (&point, threshold),
        );
        bar.inc(1);
        match outcome {
            Ok((explanation, overlay)) => {
                written += 1;
                let line = json!({
                    "path": path,
                    "probability": explanation.probability,
                    "decision": screener.class_name(explanation.probability >= threshold),
                    "operating_point": point,
                    "heatmap": overlay,
                    "zones": explanation.zones,
                });
                if json {
                    println!("{line}");
                } else {
                    let zones: Vec<String> = explanation
                        .zones
                        .iter()
                        .map(|z| format!("{} {:.2}", z.zone, z.mean))
                        .collect();
                    println!(
                        "{}: probability {:.4} -> {}{}",
                        path.display(),
                        explanation.probability,
                        overlay.display(),
                        if zones.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", zones.join(", "))
                        }
                    );
                }
            }
            Err(error) => {
                if json {
                    println!("{}", json!({"path": path, "error": format!("{error:#}")}));
                } else {
                    eprintln!("{}: {error:#}", path.display());
                }
            }
        }
    }
    bar.finish_and_clear();
    Ok(if written == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Explains one file and writes its overlay; returns the explanation and the overlay's path.
fn explain_one(
    screener: &Screener,
    segmenter: Option<&LungSegmenter>,
    path: &Path,
    method: CamMethod,
    out: &Path,
    (point, threshold): (&str, f64),
) -> anyhow::Result<(Explanation, PathBuf)> {
    let image = decode_file(path, &screener.limits)?;
    // A mask that failed its checks (one lung missed, half the image) would hide real heat:
    // then the heat map covers the whole image.
    let lungs = match segmenter {
        Some(segmenter) => {
            let segmentation = segmenter.segment(&image.image)?;
            segmentation.check.passed().then_some(segmentation.mask)
        }
        None => None,
    };
    let explanation = explain(screener, path, &image, method, lungs.as_ref())?;
    let decision = screener.class_name(explanation.probability >= threshold);
    let caption = format!(
        "TB probability {:.3}: {decision} at {point} (threshold {threshold:.3})",
        explanation.probability
    );
    let png = overlay_png(&image.image, &explanation.heat, &caption)?;
    let stem = path
        .file_stem()
        .map_or("image".into(), |s| s.to_string_lossy());
    let overlay = out.join(format!("{stem}_heatmap.png"));
    std::fs::write(&overlay, png).with_context(|| format!("cannot write {}", overlay.display()))?;
    Ok((explanation, overlay))
}

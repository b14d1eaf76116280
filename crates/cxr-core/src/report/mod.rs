//! Evaluation reports of a binary screening model, made from scores and labels alone: metrics
//! with confidence intervals, WHO operating points, figures, JSON and a self-contained HTML page.
//!
//! ```no_run
//! use cxr_core::report::{EvaluationConfig, ModelScores, Report};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let labels = vec![false, true, true, false];
//! let model = ModelScores { model: "lite0".into(), probabilities: vec![0.1, 0.8, 0.6, 0.4], default_threshold: 0.5, card_points: vec![] };
//! let report = Report::build("Shenzhen test", "data/test.csv", &labels, &[model], &EvaluationConfig::default())?;
//! report.write(std::path::Path::new("eval"))?;   // eval/report.json, eval/report.html
//! # Ok(()) }
//! ```

mod canvas;
mod evaluation;
mod html;
mod learning_curves;
mod operating_points;
mod overlay;
mod plots;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use evaluation::{
    Calibration, Comparison, Evaluation, EvaluationConfig, FixedPoint, ModelScores, compare,
    evaluate,
};
pub use learning_curves::{
    CurveSeries, LEARNING_CURVE_SIZE, LearningCurve, SERIES_COLOURS, curves_png, learning_curve_png,
};
pub use operating_points::{
    OperatingPointName, RatedOperatingPoint, UnknownOperatingPoint, choose_operating_points,
    rate_threshold,
};
pub use overlay::{fit_within, gray_png, heat_layer_png, overlay_png};

use crate::metrics::MetricsError;

/// Printed on every report and model card.
pub const NOTICE: &str = "Research software, not a medical device.";

/// Why a report could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot evaluate {model}: {source}")]
    Metrics {
        model: String,
        #[source]
        source: MetricsError,
    },
    #[error("cannot draw the {what}: {error}")]
    Plot { what: &'static str, error: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The whole evaluation of one or more models on one labelled data set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub title: String,
    /// Where the cases came from (a path or manifest).
    pub data: String,
    pub notice: String,
    pub confidence_level: f64,
    pub bootstrap_resamples: usize,
    pub bootstrap_seed: u64,
    pub evaluations: Vec<Evaluation>,
    /// The first model against each other one (paired DeLong); empty for a single model.
    pub comparisons: Vec<Comparison>,
}

impl Report {
    /// Evaluates every model in `models` against `labels` (one probability per label each).
    pub fn build(
        title: &str,
        data: &str,
        labels: &[bool],
        models: &[ModelScores],
        config: &EvaluationConfig,
    ) -> Result<Self, ReportError> {
        let context = |model: &ModelScores| {
            let model = model.model.clone();
            move |source| ReportError::Metrics { model, source }
        };
        let evaluations = models
            .iter()
            .map(|model| evaluate(model, labels, config).map_err(context(model)))
            .collect::<Result<Vec<_>, _>>()?;
        let comparisons = match models.split_first() {
            Some((first, others)) => others
                .iter()
                .map(|other| compare(first, other, labels).map_err(context(other)))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        Ok(Self {
            title: title.to_string(),
            data: data.to_string(),
            notice: NOTICE.to_string(),
            confidence_level: config.confidence.level(),
            bootstrap_resamples: config.bootstrap.resamples,
            bootstrap_seed: config.bootstrap.seed,
            evaluations,
            comparisons,
        })
    }

    /// Pretty JSON; the curves' `+inf` first threshold is written as `null`.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The self-contained HTML page with embedded figures.
    pub fn to_html(&self) -> Result<String, ReportError> {
        html::render(self)
    }

    /// Writes `report.json` and `report.html` into `dir` (created if needed); returns their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), ReportError> {
        let write_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReportError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(write_error(dir))?;
        let json_path = dir.join("report.json");
        std::fs::write(&json_path, self.to_json()).map_err(write_error(&json_path))?;
        let html_path = dir.join("report.html");
        std::fs::write(&html_path, self.to_html()?).map_err(write_error(&html_path))?;
        Ok((json_path, html_path))
    }
}

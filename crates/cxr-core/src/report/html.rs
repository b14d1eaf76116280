//! The evaluation report as one self-contained HTML page: tables of every metric with its
//! interval, and the figures embedded as base64 PNG, so the file can be mailed or archived.

use std::fmt::Write;

use base64::Engine;

use super::evaluation::Evaluation;
use super::operating_points::RatedOperatingPoint;
use super::{Report, ReportError, plots};
use crate::metrics::{BinaryMetrics, ConfusionMatrix, Estimate};

const STYLE: &str = "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:48%;margin:0.5%}\
.notice{background:#fff4e0;border:1px solid #e0b060;padding:0.5em 1em}";

/// Renders `report` as HTML; only drawing the figures can fail.
pub fn render(report: &Report) -> Result<String, ReportError> {
    let mut page = String::new();
    let title = escape(&report.title);
    // `write!` into a String cannot fail.
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body><h1>{title}</h1>\
         <p class=\"notice\">{}</p><p>Data: <code>{}</code>. {}% confidence intervals: AUC by DeLong \
         (and a stratified bootstrap of {} resamples, seed {}); rates by Wilson's score interval.</p>",
        escape(&report.notice),
        escape(&report.data),
        report.confidence_level * 100.0,
        report.bootstrap_resamples,
        report.bootstrap_seed,
    );
    page.push_str(&summary_table(&report.evaluations));
    for evaluation in &report.evaluations {
        page.push_str(&operating_point_table(evaluation));
    }
    if !report.comparisons.is_empty() {
        page.push_str(
            "<h2>Paired comparison (DeLong)</h2><table><tr><th>model A</th><th>model B</th>\
             <th>AUC A</th><th>AUC B</th><th>difference</th><th>z</th><th>p</th></tr>",
        );
        for comparison in &report.comparisons {
            let test = &comparison.test;
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:+.4}</td>\
                 <td>{:.3}</td><td>{:.4}</td></tr>",
                escape(&comparison.model_a),
                escape(&comparison.model_b),
                test.auc_a,
                test.auc_b,
                test.difference,
                test.z,
                test.p_value
            );
        }
        page.push_str("</table>");
    }
    page.push_str("<h2>Figures</h2>");
    let evaluations = &report.evaluations;
    let mut figures = vec![
        ("ROC curve", plots::roc_png(evaluations)?),
        (
            "Precision-recall curve",
            plots::precision_recall_png(evaluations)?,
        ),
        ("Reliability diagram", plots::reliability_png(evaluations)?),
    ];
    if let Some(default_point) = evaluations.first().and_then(|e| e.operating_points.first()) {
        figures.push(("Confusion matrix", plots::confusion_png(default_point)?));
    }
    for (alt, png) in figures {
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        let _ = write!(
            page,
            "<img alt=\"{alt}\" src=\"data:image/png;base64,{data}\">"
        );
    }
    page.push_str("</body></html>\n");
    Ok(page)
}

fn summary_table(evaluations: &[Evaluation]) -> String {
    let mut table = String::from(
        "<h2>Discrimination and calibration</h2><table><tr><th>model</th><th>cases (TB / normal)</th>\
         <th>AUC (DeLong CI)</th><th>AUC (bootstrap CI)</th><th>average precision</th>\
         <th>Brier score</th><th>ECE</th></tr>",
    );
    for evaluation in evaluations {
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{} ({} / {})</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td>\
             <td>{:.4}</td></tr>",
            escape(&evaluation.model),
            evaluation.cases,
            evaluation.positives,
            evaluation.negatives,
            interval(Some(evaluation.auc.auc)),
            interval(Some(evaluation.auc_bootstrap.estimate)),
            evaluation.average_precision,
            evaluation.calibration.brier_score,
            evaluation.calibration.expected_calibration_error,
        );
    }
    table.push_str("</table>");
    table
}

fn operating_point_table(evaluation: &Evaluation) -> String {
    let header = "<table><tr><th>point</th><th>rule</th><th>threshold</th><th>sensitivity</th>\
                  <th>specificity</th><th>accuracy</th><th>PPV</th><th>NPV</th>\
                  <th>TP / FN / FP / TN</th></tr>";
    let mut table = String::new();
    if !evaluation.card_points.is_empty() {
        let _ = write!(
            table,
            "<h2>The model card's thresholds: {}</h2><p>Chosen before these cases were seen (on \
             the model's validation images, or by <code>cxr calibrate</code>) and applied as they \
             are: what a user of this model gets.</p>{header}",
            escape(&evaluation.model)
        );
        for point in &evaluation.card_points {
            row(
                &mut table,
                &point.name,
                "from the model card",
                point.threshold,
                &point.metrics,
                &point.confusion,
            );
        }
        table.push_str("</table>");
    }
    let _ = write!(
        table,
        "<h2>Thresholds chosen on these cases: {}</h2><p>Each rule picks its threshold on these \
         very labels, so these figures are optimistic; use them to choose a threshold, and \
         report the card's.</p>{header}",
        escape(&evaluation.model)
    );
    for point in &evaluation.operating_points {
        let RatedOperatingPoint {
            metrics, confusion, ..
        } = point;
        row(
            &mut table,
            point.name.as_str(),
            &point.description,
            point.threshold,
            metrics,
            confusion,
        );
    }
    table.push_str("</table>");
    table
}

fn row(
    table: &mut String,
    name: &str,
    rule: &str,
    threshold: f64,
    metrics: &BinaryMetrics,
    confusion: &ConfusionMatrix,
) {
    let _ = write!(
        table,
        "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{} / {} / {} / {}</td></tr>",
        escape(name),
        escape(rule),
        threshold,
        interval(metrics.sensitivity),
        interval(metrics.specificity),
        interval(metrics.accuracy),
        interval(metrics.ppv),
        interval(metrics.npv),
        confusion.true_positives,
        confusion.false_negatives,
        confusion.false_positives,
        confusion.true_negatives,
    );
}

/// `0.912 [0.871, 0.941]`, or a dash where the rate is undefined.
fn interval(estimate: Option<Estimate>) -> String {
    match estimate {
        Some(e) => format!("{:.3} [{:.3}, {:.3}]", e.value, e.lower, e.upper),
        None => "&ndash;".into(),
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_in_names() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }

    #[test]
    fn formats_intervals_and_missing_rates() {
        let estimate = Estimate {
            value: 0.9,
            lower: 0.85,
            upper: 0.95,
        };
        assert_eq!(interval(Some(estimate)), "0.900 [0.850, 0.950]");
        assert_eq!(interval(None), "&ndash;");
    }
}

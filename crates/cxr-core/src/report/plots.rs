//! The report's figures as PNG: ROC and precision-recall curves with the operating points
//! marked, the reliability diagram, and the confusion matrix at an operating point.

use plotters::prelude::*;

use super::ReportError;
use super::canvas::{Canvas, FONT_FAMILY};
use super::evaluation::Evaluation;
use super::operating_points::RatedOperatingPoint;

const WIDTH: u32 = 560;
const HEIGHT: u32 = 480;
/// One colour per compared model (matplotlib's first three).
const MODEL_COLOURS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
];

/// A line to draw in the unit square.
struct Curve {
    label: String,
    points: Vec<(f64, f64)>,
}

/// A labelled point to mark on the chart.
struct Mark {
    label: String,
    at: (f64, f64),
}

/// ROC curves of every model, with the first model's operating points marked.
pub fn roc_png(evaluations: &[Evaluation]) -> Result<Vec<u8>, ReportError> {
    let curves: Vec<Curve> = evaluations
        .iter()
        .map(|evaluation| Curve {
            label: format!("{} (AUC {:.3})", evaluation.model, evaluation.auc.auc.value),
            points: zip_points(
                &evaluation.roc.false_positive_rate,
                &evaluation.roc.true_positive_rate,
            ),
        })
        .collect();
    let marks = first_model_marks(evaluations, |point| {
        let specificity = point.metrics.specificity?.value;
        Some((1.0 - specificity, point.metrics.sensitivity?.value))
    });
    let axes = Axes {
        title: "ROC curve",
        x: "1 - specificity",
        y: "sensitivity",
        chance_diagonal: true,
    };
    unit_square_png(&axes, &curves, &marks, SeriesLabelPosition::LowerRight)
}

/// Precision-recall curves of every model, with the first model's operating points marked.
pub fn precision_recall_png(evaluations: &[Evaluation]) -> Result<Vec<u8>, ReportError> {
    let curves: Vec<Curve> = evaluations
        .iter()
        .map(|evaluation| Curve {
            label: format!(
                "{} (AP {:.3})",
                evaluation.model, evaluation.average_precision
            ),
            points: zip_points(
                &evaluation.precision_recall.recall,
                &evaluation.precision_recall.precision,
            ),
        })
        .collect();
    let marks = first_model_marks(evaluations, |point| {
        Some((point.metrics.sensitivity?.value, point.metrics.ppv?.value))
    });
    let axes = Axes {
        title: "Precision-recall curve",
        x: "recall (sensitivity)",
        y: "precision (PPV)",
        chance_diagonal: false,
    };
    unit_square_png(&axes, &curves, &marks, SeriesLabelPosition::LowerLeft)
}

/// Observed fraction of positives against mean predicted probability, per non-empty bin.
pub fn reliability_png(evaluations: &[Evaluation]) -> Result<Vec<u8>, ReportError> {
    let curves: Vec<Curve> = evaluations
        .iter()
        .map(|evaluation| Curve {
            label: format!(
                "{} (ECE {:.3})",
                evaluation.model, evaluation.calibration.expected_calibration_error
            ),
            points: evaluation
                .calibration
                .reliability
                .bins
                .iter()
                .filter_map(|bin| Some((bin.mean_predicted?, bin.observed_fraction?)))
                .collect(),
        })
        .collect();
    let axes = Axes {
        title: "Reliability diagram",
        x: "mean predicted probability",
        y: "observed fraction positive",
        chance_diagonal: true,
    };
    unit_square_png(&axes, &curves, &[], SeriesLabelPosition::UpperLeft)
}

/// The 2x2 confusion matrix at `point`, cells shaded by their share of their true class.
pub fn confusion_png(point: &RatedOperatingPoint) -> Result<Vec<u8>, ReportError> {
    let matrix = point.confusion;
    // Rows: true class (TB, normal); columns: predicted class (TB, normal).
    let cells = [
        [matrix.true_positives, matrix.false_negatives],
        [matrix.false_positives, matrix.true_negatives],
    ];
    let title = format!(
        "Confusion matrix at {} ({:.3})",
        point.name, point.threshold
    );
    let mut canvas = Canvas::white(WIDTH, HEIGHT);
    canvas.draw("confusion matrix", |root| {
        let font = |size: u32| (FONT_FAMILY, size).into_font();
        root.draw(&Text::new(title, (20, 12), font(20)))?;
        let (left, top, cell) = (170, 90, 170);
        for (row, counts) in cells.iter().enumerate() {
            let row_total = counts.iter().sum::<usize>().max(1);
            for (column, &count) in counts.iter().enumerate() {
                let share = count as f64 / row_total as f64;
                let shade = (255.0 - 200.0 * share) as u8;
                let (x, y) = (left + column as i32 * cell, top + row as i32 * cell);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    RGBColor(shade, shade, 255).filled(),
                ))?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], BLACK))?;
                let colour = if share > 0.6 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    format!("{count}"),
                    (x + cell / 2 - 20, y + cell / 2 - 14),
                    font(28).color(&colour),
                ))?;
            }
        }
        for (k, name) in ["TB", "normal"].iter().enumerate() {
            let offset = k as i32 * cell + cell / 2;
            root.draw(&Text::new(*name, (left + offset - 25, top - 30), font(18)))?;
            root.draw(&Text::new(*name, (left - 80, top + offset - 10), font(18)))?;
        }
        root.draw(&Text::new(
            "predicted",
            (left + cell - 40, top - 60),
            font(16),
        ))?;
        root.draw(&Text::new("true", (left - 150, top + cell - 10), font(16)))
    })?;
    canvas.to_png()
}

struct Axes {
    title: &'static str,
    x: &'static str,
    y: &'static str,
    chance_diagonal: bool,
}

/// The one chart layout of the report: [0, 1] x [0, 1], a line per model, labelled marks.
fn unit_square_png(
    axes: &Axes,
    curves: &[Curve],
    marks: &[Mark],
    legend: SeriesLabelPosition,
) -> Result<Vec<u8>, ReportError> {
    let mut canvas = Canvas::white(WIDTH, HEIGHT);
    canvas.draw(axes.title, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(axes.title, (FONT_FAMILY, 20))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..1.0_f64, 0.0..1.0_f64)?;
        chart
            .configure_mesh()
            .x_desc(axes.x)
            .y_desc(axes.y)
            .label_style((FONT_FAMILY, 13))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        if axes.chance_diagonal {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                RGBColor(150, 150, 150).into(),
            ))?;
        }
        for (curve, colour) in curves.iter().zip(MODEL_COLOURS.iter().cycle()) {
            let colour = *colour;
            chart
                .draw_series(LineSeries::new(
                    curve.points.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(curve.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart.draw_series(marks.iter().map(|mark| {
            EmptyElement::at(mark.at)
                + Circle::new((0, 0), 4, BLACK.filled())
                + Text::new(mark.label.clone(), (6, -14), (FONT_FAMILY, 12))
        }))?;
        chart
            .configure_series_labels()
            .position(legend)
            .label_font((FONT_FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
    })?;
    canvas.to_png()
}

fn zip_points(x: &[f64], y: &[f64]) -> Vec<(f64, f64)> {
    x.iter().copied().zip(y.iter().copied()).collect()
}

/// The first model's operating points placed by `position` (skipped where it is undefined).
fn first_model_marks(
    evaluations: &[Evaluation],
    position: impl Fn(&RatedOperatingPoint) -> Option<(f64, f64)>,
) -> Vec<Mark> {
    evaluations
        .first()
        .map(|evaluation| {
            evaluation
                .operating_points
                .iter()
                .filter_map(|point| {
                    Some(Mark {
                        label: point.name.to_string(),
                        at: position(point)?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

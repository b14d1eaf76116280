//! Learning curves as PNG, like the paper's figures: a value per epoch on training and
//! validation data, both training phases on one axis with the start of fine-tuning marked.

use plotters::prelude::*;

use super::ReportError;
use super::canvas::{Canvas, FONT_FAMILY};

/// Width and height of a learning-curve PNG.
pub const LEARNING_CURVE_SIZE: (u32, u32) = (640, 420);

/// One chart: `training[i]` and `validation[i]` are epoch `i + 1`'s values (non-finite values
/// are left out of the axis range).
pub struct LearningCurve<'a> {
    pub title: &'a str,
    pub training: &'a [f64],
    pub validation: &'a [f64],
    /// Index of the first fine-tuning epoch, where there is one.
    pub fine_tuning_from: Option<usize>,
}

/// One named line of a chart with several: `values[i]` is epoch `i + 1`'s value.
pub struct CurveSeries<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
}

/// Line colours of [`curves_png`], in order (matplotlib's "tab10"); they repeat after ten.
pub const SERIES_COLOURS: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// The chart as PNG bytes: training in blue, validation in red.
pub fn learning_curve_png(curve: &LearningCurve) -> Result<Vec<u8>, ReportError> {
    let series = [
        CurveSeries {
            name: "training",
            values: curve.training,
        },
        CurveSeries {
            name: "validation",
            values: curve.validation,
        },
    ];
    draw_curves(curve.title, &series, &[BLUE, RED], curve.fine_tuning_from)
}

/// Several per-epoch series on shared axes (say, one model each), coloured by
/// [`SERIES_COLOURS`]; `fine_tuning_from` marks where the second phase starts.
pub fn curves_png(
    title: &str,
    series: &[CurveSeries],
    fine_tuning_from: Option<usize>,
) -> Result<Vec<u8>, ReportError> {
    let colours: Vec<RGBColor> = SERIES_COLOURS
        .iter()
        .map(|&[r, g, b]| RGBColor(r, g, b))
        .collect();
    draw_curves(title, series, &colours, fine_tuning_from)
}

fn draw_curves(
    title: &str,
    series: &[CurveSeries],
    colours: &[RGBColor],
    fine_tuning_from: Option<usize>,
) -> Result<Vec<u8>, ReportError> {
    let points = |values: &[f64]| -> Vec<(f64, f64)> {
        (1..)
            .zip(values)
            .filter(|(_, y)| y.is_finite())
            .map(|(x, &y)| (f64::from(x), y))
            .collect()
    };
    let epochs = series.iter().map(|s| s.values.len()).max().unwrap_or(0) as f64;
    let top = series
        .iter()
        .flat_map(|s| s.values)
        .filter(|y| y.is_finite())
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1e-3)
        * 1.05;
    let (width, height) = LEARNING_CURVE_SIZE;
    let mut canvas = Canvas::white(width, height);
    canvas.draw("learning curve", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT_FAMILY, 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0.5..epochs.max(1.0) + 0.5, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("epoch (both phases)")
            .label_style((FONT_FAMILY, 13))
            .draw()?;
        if let Some(start) = fine_tuning_from {
            let x = start as f64 + 0.5;
            chart
                .draw_series(LineSeries::new([(x, 0.0), (x, top)], BLACK.mix(0.4)))?
                .label("fine-tuning starts")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.4)));
        }
        for (line, &colour) in series.iter().zip(colours.iter().cycle()) {
            chart
                .draw_series(LineSeries::new(points(line.values), colour.stroke_width(2)))?
                .label(line.name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .label_font((FONT_FAMILY, 13))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
    })?;
    canvas.to_png()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_lines_and_the_phase_marker_are_drawn() {
        let curve = LearningCurve {
            title: "Accuracy",
            training: &[0.6, 0.7, 0.8],
            validation: &[0.55, f64::NAN, 0.75],
            fine_tuning_from: Some(2),
        };
        let png = learning_curve_png(&curve).expect("png");
        let image = image::load_from_memory(&png).expect("decodes").to_rgb8();
        assert_eq!(image.dimensions(), LEARNING_CURVE_SIZE);
        let count = |rgb: [u8; 3]| image.pixels().filter(|p| p.0 == rgb).count();
        assert!(count([255, 0, 0]) > 50, "no validation line");
        assert!(count([0, 0, 255]) > 50, "no training line");
    }

    #[test]
    fn every_series_gets_its_own_colour() {
        let series = [
            CurveSeries {
                name: "a",
                values: &[0.5, 0.6, 0.7],
            },
            CurveSeries {
                name: "b",
                values: &[0.4, 0.5],
            },
            CurveSeries {
                name: "c",
                values: &[0.2, 0.3, 0.9, 0.95],
            },
        ];
        let png = curves_png("Validation accuracy", &series, Some(3)).expect("png");
        let image = image::load_from_memory(&png).expect("decodes").to_rgb8();
        for rgb in &SERIES_COLOURS[..3] {
            let drawn = image.pixels().filter(|p| p.0 == *rgb).count();
            assert!(drawn > 30, "{rgb:?}: no line");
        }
        let unused = image.pixels().filter(|p| p.0 == SERIES_COLOURS[3]).count();
        assert_eq!(unused, 0);
    }
}

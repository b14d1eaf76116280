//! Learning curves as PNG, like the paper's figures: accuracy and loss per epoch on training
//! and validation data, both phases on one axis with the start of fine-tuning marked.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use super::TrainError;
use super::checkpoint::write_atomic;
use super::log::{EpochRecord, Phase};

/// cxr-core's bundled DejaVu Sans, so text renders on machines without system fonts.
const FONT: &[u8] = include_bytes!("../../../cxr-core/assets/fonts/DejaVuSans.ttf");
const FONT_FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (640, 420);

/// Writes `accuracy.png` and `loss.png` in `dir` (nothing before the first epoch).
pub fn write(dir: &Path, records: &[EpochRecord]) -> Result<(), TrainError> {
    if records.is_empty() {
        return Ok(());
    }
    let accuracy = |r: &EpochRecord| (r.train_accuracy, r.val_accuracy);
    let loss = |r: &EpochRecord| (r.train_loss, r.val_loss);
    write_atomic(
        &dir.join("accuracy.png"),
        &chart("Accuracy", records, accuracy)?,
    )?;
    write_atomic(&dir.join("loss.png"), &chart("Loss", records, loss)?)
}

/// A chart of `value(record) = (training, validation)` against the epoch count.
fn chart(
    title: &str,
    records: &[EpochRecord],
    value: impl Fn(&EpochRecord) -> (f64, f64),
) -> Result<Vec<u8>, TrainError> {
    register_font()?;
    let plot_error = |err: String| TrainError::Plot(format!("{title}: {err}"));
    let train: Vec<(f64, f64)> = (1..)
        .zip(records)
        .map(|(x, r)| (x as f64, value(r).0))
        .collect();
    let val: Vec<(f64, f64)> = (1..)
        .zip(records)
        .map(|(x, r)| (x as f64, value(r).1))
        .collect();
    let finite = train
        .iter()
        .chain(&val)
        .map(|p| p.1)
        .filter(|y| y.is_finite());
    let top = finite.fold(0.0f64, f64::max).max(1e-3) * 1.05;
    let mut rgb = vec![255u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT_FAMILY, 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0.5..records.len() as f64 + 0.5, 0.0..top)
            .map_err(|err| plot_error(err.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("epoch (both phases)")
            .label_style((FONT_FAMILY, 13))
            .draw()
            .map_err(|err| plot_error(err.to_string()))?;
        if let Some(start) = records.iter().position(|r| r.phase == Phase::FineTune) {
            let x = start as f64 + 0.5;
            chart
                .draw_series(LineSeries::new([(x, 0.0), (x, top)], BLACK.mix(0.4)))
                .map_err(|err| plot_error(err.to_string()))?
                .label("fine-tuning starts")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.4)));
        }
        for (points, name, colour) in [(train, "training", BLUE), (val, "validation", RED)] {
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(|err| plot_error(err.to_string()))?
                .label(name)
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
            .map_err(|err| plot_error(err.to_string()))?;
        root.present().map_err(|err| plot_error(err.to_string()))?;
    }
    let mut png = std::io::Cursor::new(Vec::new());
    image::write_buffer_with_format(
        &mut png,
        &rgb,
        SIZE.0,
        SIZE.1,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .map_err(|err| plot_error(err.to_string()))?;
    Ok(png.into_inner())
}

fn register_font() -> Result<(), TrainError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    ok.then_some(())
        .ok_or_else(|| TrainError::Plot("the bundled font could not be read".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_phases_draw_into_pngs() {
        let record = |phase, epoch, acc: f64| EpochRecord {
            phase,
            epoch,
            learning_rate: 1e-4,
            train_loss: 1.0 - acc,
            train_accuracy: acc,
            val_loss: 1.1 - acc,
            val_accuracy: acc - 0.05,
            val_auc: Some(acc),
            seconds: 1.0,
        };
        let records = vec![
            record(Phase::Frozen, 1, 0.6),
            record(Phase::Frozen, 2, 0.7),
            record(Phase::FineTune, 1, 0.8),
        ];
        let dir = tempfile::tempdir().expect("temp dir");
        write(dir.path(), &records).expect("curves");
        for name in ["accuracy.png", "loss.png"] {
            let png = image::open(dir.path().join(name)).expect("png").to_rgb8();
            assert_eq!(png.dimensions(), SIZE);
            let red = png.pixels().filter(|p| p.0 == [255, 0, 0]).count();
            assert!(red > 50, "{name}: no validation line");
        }
    }
}

//! Learning curves as PNG, like the paper's figures: accuracy and loss per epoch on training
//! and validation data, both phases on one axis with the start of fine-tuning marked.

use std::path::Path;

use cxr_core::report::{LearningCurve, learning_curve_png};

use super::TrainError;
use super::checkpoint::write_atomic;
use super::log::{EpochRecord, Phase};

/// Writes `accuracy.png` and `loss.png` in `dir` (nothing before the first epoch).
pub fn write(dir: &Path, records: &[EpochRecord]) -> Result<(), TrainError> {
    if records.is_empty() {
        return Ok(());
    }
    let fine_tuning_from = records.iter().position(|r| r.phase == Phase::FineTune);
    let series = |value: fn(&EpochRecord) -> f64| records.iter().map(value).collect::<Vec<_>>();
    let charts = [
        (
            "accuracy.png",
            "Accuracy",
            series(|r| r.train_accuracy),
            series(|r| r.val_accuracy),
        ),
        (
            "loss.png",
            "Loss",
            series(|r| r.train_loss),
            series(|r| r.val_loss),
        ),
    ];
    for (file, title, training, validation) in charts {
        let curve = LearningCurve {
            title,
            training: &training,
            validation: &validation,
            fine_tuning_from,
        };
        let png = learning_curve_png(&curve)
            .map_err(|err| TrainError::Plot(format!("{title}: {err}")))?;
        write_atomic(&dir.join(file), &png)?;
    }
    Ok(())
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
            assert_eq!(png.dimensions(), cxr_core::report::LEARNING_CURVE_SIZE);
            let red = png.pixels().filter(|p| p.0 == [255, 0, 0]).count();
            assert!(red > 50, "{name}: no validation line");
        }
    }
}

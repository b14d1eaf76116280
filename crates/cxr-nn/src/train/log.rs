//! The training log: one record per epoch (loss, accuracy and AUC on training and validation
//! data, learning rate, time), written as CSV and JSON after every epoch.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::checkpoint::write_atomic;

/// The two phases of the paper's recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Trunk frozen, head trains.
    Frozen,
    /// The trunk's last stages train with the head.
    FineTune,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Frozen => "frozen",
            Self::FineTune => "fine_tune",
        }
    }
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub phase: Phase,
    /// 1-based, within the phase.
    pub epoch: usize,
    pub learning_rate: f64,
    pub train_loss: f64,
    /// Accuracy at 0.5 on the training batches as they were trained (dropout on), like Keras.
    pub train_accuracy: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub val_auc: Option<f64>,
    pub seconds: f64,
}

const CSV_HEADER: &str =
    "phase,epoch,learning_rate,train_loss,train_accuracy,val_loss,val_accuracy,val_auc,seconds";

/// Writes `metrics.csv` and `metrics.json` in `dir` (each replaced atomically).
pub fn write(dir: &Path, records: &[EpochRecord]) -> Result<(), TrainError> {
    let mut csv = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = writeln!(csv, "{CSV_HEADER}");
    for r in records {
        let auc = r.val_auc.map(|auc| format!("{auc:.6}")).unwrap_or_default();
        let _ = writeln!(
            csv,
            "{},{},{:.2e},{:.6},{:.6},{:.6},{:.6},{},{:.2}",
            r.phase.as_str(),
            r.epoch,
            r.learning_rate,
            r.train_loss,
            r.train_accuracy,
            r.val_loss,
            r.val_accuracy,
            auc,
            r.seconds
        );
    }
    write_atomic(&dir.join("metrics.csv"), &csv)?;
    let json = serde_json::to_vec_pretty(records).map_err(|err| TrainError::Json {
        path: dir.join("metrics.json"),
        message: err.to_string(),
    })?;
    write_atomic(&dir.join("metrics.json"), &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_csv_row_and_one_json_object_per_epoch() {
        let dir = tempfile::tempdir().expect("temp dir");
        let record = EpochRecord {
            phase: Phase::FineTune,
            epoch: 2,
            learning_rate: 1e-5,
            train_loss: 0.25,
            train_accuracy: 0.9,
            val_loss: 0.3,
            val_accuracy: 0.875,
            val_auc: None,
            seconds: 1.5,
        };
        write(dir.path(), &[record.clone(), record.clone()]).expect("write");
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).expect("csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            "fine_tune,2,1.00e-5,0.250000,0.900000,0.300000,0.875000,,1.50"
        );
        let json = std::fs::read(dir.path().join("metrics.json")).expect("json");
        let back: Vec<EpochRecord> = serde_json::from_slice(&json).expect("parse");
        assert_eq!(back, vec![record.clone(), record]);
    }
}

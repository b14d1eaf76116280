//! Checkpoints for `cxr train --resume`: the run's progress, the network and the optimiser's
//! state in one file, replaced atomically after every epoch so a kill loses at most one epoch.
//!
//! File layout: magic `CXRCKPT1`, then three sections each prefixed by its u64 little-endian
//! length: the JSON [`RunState`], the network (burnpack, which keeps parameter identities so
//! the optimiser's state finds its parameters again) and the optimiser record (burnpack).

use std::path::Path;

use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::log::{EpochRecord, Phase};
use super::recipe::Monitor;
use super::schedule::Plateau;

const MAGIC: &[u8; 8] = b"CXRCKPT1";

/// Where a run stands after its last completed epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub phase: Phase,
    /// Epochs completed in `phase`.
    pub epochs_done: usize,
    pub plateau: Plateau,
    /// The figure that chooses the kept weights (checkpoints from before it was a choice
    /// watched validation accuracy).
    #[serde(default)]
    pub monitor: Monitor,
    /// Best value of `monitor` so far over both phases (the weights are in `best.safetensors`).
    #[serde(alias = "best_val_accuracy")]
    pub best_score: Option<f64>,
    pub history: Vec<EpochRecord>,
}

/// Replaces `path` with `bytes` whole or not at all ([`crate::atomic_write`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    crate::atomic_write::write(path, bytes).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Saves a checkpoint of `model` and `optimizer` at `state`.
pub fn save<M: Module>(
    path: &Path,
    state: &RunState,
    model: &M,
    optimizer: &ModuleOptimizer,
) -> Result<(), TrainError> {
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let json = serde_json::to_vec(state).map_err(|err| bad(err.to_string()))?;
    let mut store = BurnpackStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|err| bad(err.to_string()))?;
    let network = store.get_bytes().map_err(|err| bad(err.to_string()))?;
    let optimizer = optimizer
        .to_record()
        .into_bytes()
        .map_err(|err| bad(err.to_string()))?;
    let mut bytes = MAGIC.to_vec();
    for section in [&json[..], &network[..], &optimizer[..]] {
        bytes.extend_from_slice(&(section.len() as u64).to_le_bytes());
        bytes.extend_from_slice(section);
    }
    write_atomic(path, &bytes)
}

/// Reads a checkpoint: its state, loads its weights into `model` (built the same way as the
/// saved one) and its state into `optimizer`.
pub fn load<M: Module>(
    path: &Path,
    mut model: M,
    optimizer: ModuleOptimizer,
) -> Result<(RunState, M, ModuleOptimizer), TrainError> {
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("not a cxr checkpoint".into()))?;
    let [json, network, record] = sections(body).ok_or_else(|| bad("truncated".into()))?;
    let state: RunState = serde_json::from_slice(json).map_err(|err| bad(err.to_string()))?;
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(network.to_vec())));
    let applied = model
        .load_from(&mut store)
        .map_err(|err| bad(err.to_string()))?;
    if !applied.missing.is_empty() || !applied.errors.is_empty() {
        return Err(bad(format!(
            "the saved network does not fit this recipe's: {} missing, {} mismatched tensors",
            applied.missing.len(),
            applied.errors.len()
        )));
    }
    let record = OptimizerRecord::from_bytes(Bytes::from_bytes_vec(record.to_vec()))
        .map_err(|err| bad(err.to_string()))?;
    Ok((state, model, optimizer.load_record(record)))
}

/// Splits the three length-prefixed sections; `None` if the file is cut short.
fn sections(mut body: &[u8]) -> Option<[&[u8]; 3]> {
    let mut next = || {
        let (len, rest) = body.split_first_chunk::<8>()?;
        let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
        let (section, rest) = (rest.get(..len)?, rest.get(len..)?);
        body = rest;
        Some(section)
    };
    Some([next()?, next()?, next()?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::training_device;
    use crate::train::optimizer::rmsprop;
    use crate::train::recipe::OptimizerRecipe;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::Tensor;

    fn step(layer: Linear, optim: &mut ModuleOptimizer) -> Linear {
        let device = training_device();
        let loss = layer.forward(Tensor::<2>::ones([2, 3], &device)).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        optim.step(1e-2, layer, grads)
    }

    /// Training on from a checkpoint gives the same weights as never stopping.
    #[test]
    fn a_resumed_run_continues_exactly() {
        let device = training_device();
        let recipe = OptimizerRecipe::default();
        let mut optim = rmsprop(&recipe);
        let layer = step(LinearConfig::new(3, 1).init(&device), &mut optim);
        let state = RunState {
            phase: Phase::Frozen,
            epochs_done: 1,
            plateau: Plateau::new(1e-2),
            monitor: Monitor::ValLoss,
            best_score: Some(0.5),
            history: Vec::new(),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("checkpoint.bin");
        save(&path, &state, &layer, &optim).expect("save");

        let (loaded_state, resumed, mut resumed_optim) = load(
            &path,
            LinearConfig::new(3, 1).init(&device),
            rmsprop(&recipe),
        )
        .expect("load");
        assert_eq!(loaded_state, state);
        let straight = step(layer, &mut optim);
        let resumed = step(resumed, &mut resumed_optim);
        let diff = (straight.weight.val() - resumed.weight.val()).abs().max();
        assert_eq!(diff.into_scalar::<f32>(), 0.0);
    }

    /// Run states written before the monitor was a recipe knob still load, as accuracy runs.
    #[test]
    fn an_old_run_state_reads_as_watching_accuracy() {
        let old = r#"{"phase":"frozen","epochs_done":3,
            "plateau":{"learning_rate":0.0001,"best":0.75,"wait":1},
            "best_val_accuracy":0.75,"history":[]}"#;
        let state: RunState = serde_json::from_str(old).expect("old state");
        assert_eq!(state.monitor, Monitor::ValAccuracy);
        assert_eq!(state.best_score, Some(0.75));
        assert_eq!(state.plateau.best, Some(0.75));
        let json = serde_json::to_string(&state).expect("json");
        assert!(json.contains(r#""monitor":"val_accuracy""#), "{json}");
        assert!(json.contains(r#""best_score":0.75"#), "{json}");
    }

    #[test]
    fn a_truncated_checkpoint_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("checkpoint.bin");
        std::fs::write(&path, b"CXRCKPT1\x10\0\0\0\0\0\0\0{}").expect("write");
        let device = training_device();
        let fresh = LinearConfig::new(3, 1).init(&device);
        let Err(err) = load(&path, fresh, rmsprop(&OptimizerRecipe::default())) else {
            panic!("a truncated checkpoint loaded");
        };
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}

//! PyTorch `.pth`/`.pt` state dicts, in both the zip format and the legacy pickle format
//! (PyTorch <= 1.5, as the registry's EfficientNet-Lite and MobileNetV2 files are).

use std::path::Path;

use burn::store::{KeyRemapper, ModuleSnapshot, PytorchStore};
use burn::tensor::Device;

use super::{ImportError, require_complete};
use crate::backbones::{Backbone, BackboneKind};

/// Loads a PyTorch state dict of `kind`'s original release into a new network.
///
/// burn's reader handles both containers; its PyTorch adapter transposes linear weights and
/// renames BatchNorm `weight`/`bias` to `gamma`/`beta`. BatchNorm's `num_batches_tracked`
/// counters have no counterpart and are the only tensors allowed to go unused.
pub fn load(kind: BackboneKind, path: &Path, device: &Device) -> Result<Backbone, ImportError> {
    let mismatch = |details| ImportError::Mismatch {
        path: path.to_path_buf(),
        backbone: kind,
        details,
    };
    let prefixes = kind.torch_prefixes().ok_or_else(|| {
        mismatch("  no PyTorch release of this backbone is known; import its Keras file".into())
    })?;
    let mut store = PytorchStore::from_file(path)
        .remap(prefix_remapper(&prefixes))
        .map_indices_contiguous(false)
        .allow_partial(true)
        .validate(false);
    let mut net = kind.init(device);
    let result = net.load_from(&mut store).map_err(|err| ImportError::Read {
        path: path.to_path_buf(),
        message: err.to_string(),
    })?;
    require_complete(&result, |name| name.ends_with(".num_batches_tracked")).map_err(mismatch)?;
    Ok(net)
}

/// Turns (original prefix, our prefix) pairs into anchored regex renames.
fn prefix_remapper(prefixes: &[(String, String)]) -> KeyRemapper {
    let patterns = prefixes
        .iter()
        .map(|(from, to)| (format!("^{}", from.replace('.', r"\.")), to.clone()));
    // Prefixes are made of [A-Za-z0-9_.] only, so once dots are escaped every pattern is valid.
    KeyRemapper::from_pattern_iter(patterns)
        .unwrap_or_else(|err| unreachable!("escaped prefix is not a valid regex: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_of_every_backbone_is_a_valid_pattern() {
        let torch_kinds = BackboneKind::ALL
            .into_iter()
            .filter_map(BackboneKind::torch_prefixes);
        assert_eq!(torch_kinds.clone().count(), 4);
        for prefixes in torch_kinds {
            assert!(!prefix_remapper(&prefixes).is_empty());
        }
    }

    #[test]
    fn a_file_that_is_not_a_checkpoint_is_a_read_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("garbage.pth");
        std::fs::write(&path, b"not a pytorch file").expect("write");
        let err = load(
            BackboneKind::MobileNetV2,
            &path,
            &crate::device::inference_device(),
        )
        .expect_err("garbage must not load");
        assert!(matches!(err, ImportError::Read { .. }), "{err}");
        assert!(err.to_string().contains("garbage.pth"), "{err}");
    }
}

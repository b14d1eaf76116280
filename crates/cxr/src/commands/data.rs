//! `cxr data`: check, split and summarise data sets.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Count images per class and split, find unreadable files and duplicates.
    Check {
        /// Data set root (paper layout, NLM file names, or a CSV manifest).
        dir: std::path::PathBuf,
    },
}

pub fn run(cmd: DataCommand, json: bool) -> anyhow::Result<ExitCode> {
    let _ = (cmd, json);
    anyhow::bail!("not implemented yet")
}

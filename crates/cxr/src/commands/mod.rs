//! One module per `cxr` subcommand; each exposes its clap arguments and a `run` function.

pub mod data;
pub mod train;
pub mod weights;

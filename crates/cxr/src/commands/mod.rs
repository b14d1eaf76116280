//! One module per `cxr` subcommand; each exposes its clap arguments and a `run` function.

pub mod calibrate;
pub mod compare;
pub mod data;
pub mod eval;
pub mod explain;
pub mod predict;
pub mod segment;
pub mod serve;
pub mod train;
pub mod weights;

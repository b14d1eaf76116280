//! Lung segmentation: the network, its loss, training data, the training loop with
//! checkpoints and resume, the lung model file, and inference at the original image size.

pub mod data;
pub mod loss;
pub mod model;
pub mod net;
pub mod predict;
pub mod train;

use std::path::PathBuf;

pub use model::{
    card_backbone, card_threshold, default_model_path, load_model, lung_card, save_model,
};
pub use net::LungNet;
pub use predict::{LungSegmenter, Segmentation};
pub use train::{EpochRecord, Progress, Provenance, TrainConfig, TrainOutcome, train};

use crate::backbones::UnknownBackbone;
use crate::weights::WeightsError;

#[derive(Debug, thiserror::Error)]
pub enum SegmentationError {
    #[error(
        "no lung model found: neither models/{file} beside the program or in the working \
         directory, nor ${env}",
        file = model::DEFAULT_MODEL_FILE,
        env = model::MODEL_ENV
    )]
    NoDefaultModel,
    #[error("cannot scale the X-ray down to find its lungs: {0}")]
    Scale(String),
    #[error(transparent)]
    Decode(#[from] cxr_core::DecodeError),
    #[error("{path}: {source}", path = path.display())]
    Preprocess {
        path: PathBuf,
        #[source]
        source: cxr_core::preprocess::PreprocessError,
    },
    #[error("cannot build a batch: {source}")]
    Batch {
        #[source]
        source: cxr_core::preprocess::PreprocessError,
    },
    #[error(
        "{mask}: mask is {}x{} but its X-ray is {}x{}",
        mask_size.0, mask_size.1, image_size.0, image_size.1,
        mask = mask.display()
    )]
    MaskSize {
        mask: PathBuf,
        mask_size: (usize, usize),
        image_size: (usize, usize),
    },
    #[error("{path}: {message}", path = path.display())]
    ModelFile { path: PathBuf, message: String },
    #[error(transparent)]
    ModelFileFormat(#[from] crate::model_file::ModelFileError),
    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", run_dir.display())]
    Run { run_dir: PathBuf, message: String },
    #[error("cannot read the network's output: {0}")]
    Tensor(String),
    #[error("invalid training settings: {0}")]
    Config(String),
    #[error(transparent)]
    UnknownBackbone(#[from] UnknownBackbone),
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

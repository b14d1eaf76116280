//! cxr-nn: the neural-network side of cxr, on burn.
//! Backbones, classifier head, weight import, training, Grad-CAM and the model file.

pub mod atomic_write;
pub mod backbones;
pub mod batch;
pub mod classifier;
pub mod compare;
pub mod device;
pub mod explain;
pub mod import;
pub mod model_file;
pub mod predict;
pub mod segmentation;
pub mod train;
pub mod weights;

#[cfg(test)]
mod test_support;

//! cxr-core: everything about chest X-ray images that needs no neural network.
//! Decoding (PNG/JPEG/DICOM), preprocessing, augmentation, data sets and metrics.

pub mod allocator;
pub mod augment;
pub mod dataset;
pub mod decode;
pub mod image;
pub mod lungs;
pub mod metrics;
pub mod preprocess;
pub mod quality;
pub mod report;

pub use decode::{DecodeError, DecodeErrorKind, DecodeLimits, decode_bytes, decode_file};
pub use image::{DecodedImage, GrayImage, ImageInfo, Photometric, SourceFormat};

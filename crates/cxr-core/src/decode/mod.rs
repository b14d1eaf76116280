//! Turns PNG, JPEG and DICOM files into a [`DecodedImage`] (grayscale f32 in [0,1]).
//! Every failure is a [`DecodeError`] naming the file and the reason; nothing here panics.

mod dicom;
pub mod dicom_writer;
mod png_stream;
mod raster;
mod sniff;
mod voi;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use crate::image::{DecodedImage, SourceFormat};
pub(crate) use raster::PngRows;
use sniff::Container;

/// Guards against decompression bombs and degenerate inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width or height.
    pub max_side: usize,
    /// Largest accepted width * height.
    pub max_pixels: usize,
    /// Smallest accepted width or height.
    pub min_side: usize,
    /// Largest accepted file size in bytes.
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_side: 16_384,
            max_pixels: 100_000_000,
            min_side: 16,
            max_file_bytes: 512 * 1024 * 1024,
        }
    }
}

impl DecodeLimits {
    /// Checks the size an image header declares, before any pixel buffer is allocated.
    pub fn check_size(&self, width: usize, height: usize) -> Result<(), DecodeErrorKind> {
        let too_large = width > self.max_side
            || height > self.max_side
            || width
                .checked_mul(height)
                .is_none_or(|n| n > self.max_pixels);
        if too_large {
            return Err(DecodeErrorKind::TooLarge {
                width,
                height,
                max_side: self.max_side,
                max_pixels: self.max_pixels,
            });
        }
        if width < self.min_side || height < self.min_side {
            return Err(DecodeErrorKind::TooSmall {
                width,
                height,
                min_side: self.min_side,
            });
        }
        Ok(())
    }
}

/// Why an image could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    #[error("is a directory or special file, not an image file")]
    NotAFile,
    #[error("file is empty")]
    Empty,
    #[error("file is {bytes} bytes, above the limit of {limit} bytes")]
    FileTooLarge { bytes: u64, limit: u64 },
    #[error("not a PNG, JPEG or DICOM file")]
    UnknownFormat,
    #[error(
        "image declares {width}x{height} pixels, above the limit \
         ({max_side} per side, {max_pixels} in all)"
    )]
    TooLarge {
        width: usize,
        height: usize,
        max_side: usize,
        max_pixels: usize,
    },
    #[error("image is {width}x{height} pixels, below the minimum side of {min_side}")]
    TooSmall {
        width: usize,
        height: usize,
        min_side: usize,
    },
    #[error("{format} data is truncated: {detail}")]
    Truncated {
        format: SourceFormat,
        detail: String,
    },
    #[error("{format} data is corrupt: {detail}")]
    Corrupt {
        format: SourceFormat,
        detail: String,
    },
    #[error("DICOM file has no pixel data")]
    NoPixelData,
    #[error("DICOM transfer syntax {uid} ({name}) cannot be decoded by this build")]
    UnsupportedTransferSyntax { uid: String, name: String },
    #[error("unsupported {format} image: {detail}")]
    Unsupported {
        format: SourceFormat,
        detail: String,
    },
    #[error("{format} decoder crashed: {message}")]
    DecoderPanicked {
        format: SourceFormat,
        message: String,
    },
}

/// A decoding failure, with the file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct DecodeError {
    pub path: PathBuf,
    #[source]
    pub kind: DecodeErrorKind,
}

/// Reads and decodes one image file.
pub fn decode_file(path: &Path, limits: &DecodeLimits) -> Result<DecodedImage, DecodeError> {
    let bytes = read_file(path, limits)?;
    decode_bytes(&bytes, path, limits)
}

/// Reads an image file's bytes, refusing directories and files above `limits.max_file_bytes`
/// before reading them (for callers that hash or cache the bytes before [`decode_bytes`]).
pub fn read_file(path: &Path, limits: &DecodeLimits) -> Result<Vec<u8>, DecodeError> {
    read_limited(path, limits).map_err(|kind| DecodeError {
        path: path.to_path_buf(),
        kind,
    })
}

/// Decodes an image held in memory; `name` is used in errors.
pub fn decode_bytes(
    bytes: &[u8],
    name: &Path,
    limits: &DecodeLimits,
) -> Result<DecodedImage, DecodeError> {
    decode_checked(bytes, limits).map_err(|kind| DecodeError {
        path: name.to_path_buf(),
        kind,
    })
}

/// The row stream of bytes that [`decode_bytes`] would decode as a PNG, for callers that
/// consume rows as they come; `None` where it does not apply or fails, and the caller then
/// uses [`decode_bytes`], which also names any error. Like [`decode_bytes`], callers must
/// contain panics from the decoder.
pub(crate) fn png_rows<'a>(bytes: &'a [u8], limits: &DecodeLimits) -> Option<PngRows<'a>> {
    let is_png = !bytes.is_empty()
        && bytes.len() as u64 <= limits.max_file_bytes
        && sniff::sniff(bytes) == Some(Container::Png);
    if is_png {
        PngRows::open(bytes, limits)
    } else {
        None
    }
}

pub(crate) fn read_limited(path: &Path, limits: &DecodeLimits) -> Result<Vec<u8>, DecodeErrorKind> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(DecodeErrorKind::NotAFile);
    }
    if metadata.len() > limits.max_file_bytes {
        return Err(DecodeErrorKind::FileTooLarge {
            bytes: metadata.len(),
            limit: limits.max_file_bytes,
        });
    }
    Ok(std::fs::read(path)?)
}

fn decode_checked(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, DecodeErrorKind> {
    if bytes.is_empty() {
        return Err(DecodeErrorKind::Empty);
    }
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(DecodeErrorKind::FileTooLarge {
            bytes: bytes.len() as u64,
            limit: limits.max_file_bytes,
        });
    }
    let container = sniff::sniff(bytes).ok_or(DecodeErrorKind::UnknownFormat)?;
    let format = container.format();
    // The decoders below are third-party code fed untrusted bytes: a panic in them must
    // become an error for this one file, not bring down a batch or the server.
    catch_unwind(AssertUnwindSafe(|| match container {
        Container::Png | Container::Jpeg => raster::decode(bytes, format, limits),
        Container::Dicom(layout) => dicom::decode(bytes, layout, limits),
    }))
    .unwrap_or_else(|payload| {
        Err(DecodeErrorKind::DecoderPanicked {
            format,
            message: panic_message(payload.as_ref()),
        })
    })
}

/// The error for bytes a decoder rejected: `Truncated` when the decoder ran out of input,
/// `Corrupt` otherwise, with the decoder's whole chain of reasons.
fn malformed(format: SourceFormat, error: &(dyn std::error::Error + 'static)) -> DecodeErrorKind {
    let chain = std::iter::successors(Some(error), |e| e.source());
    let mut detail = String::new();
    let mut truncated = false;
    for cause in chain {
        truncated |= cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof);
        let message = cause.to_string();
        if !detail.contains(&message) {
            if !detail.is_empty() {
                detail.push_str(": ");
            }
            detail.push_str(&message);
        }
    }
    if truncated {
        DecodeErrorKind::Truncated { format, detail }
    } else {
        DecodeErrorKind::Corrupt { format, detail }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_check_rejects_bombs_and_slivers() {
        let limits = DecodeLimits::default();
        assert!(limits.check_size(512, 512).is_ok());
        assert!(matches!(
            limits.check_size(100_000, 100_000),
            Err(DecodeErrorKind::TooLarge { .. })
        ));
        assert!(matches!(
            limits.check_size(16_000, 16_000),
            Err(DecodeErrorKind::TooLarge { .. })
        ));
        assert!(matches!(
            limits.check_size(usize::MAX, 2),
            Err(DecodeErrorKind::TooLarge { .. })
        ));
        assert!(matches!(
            limits.check_size(1, 1),
            Err(DecodeErrorKind::TooSmall { .. })
        ));
    }

    #[test]
    fn panic_payloads_become_messages() {
        let caught = catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "boom 7");
    }
}

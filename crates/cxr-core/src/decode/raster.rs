//! PNG and JPEG decoding through the `image` crate, straight to grayscale f32:
//! the header is checked against the limits before any pixel buffer is allocated.

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::codecs::png::PngDecoder;
use image::{ColorType, ImageDecoder, ImageError};

use super::{DecodeErrorKind, DecodeLimits, malformed};
use crate::image::{DecodedImage, GrayImage, Photometric, SourceFormat};

/// ITU-R BT.601 luma weights, the ones Pillow's `convert("L")` uses.
const LUMA_WEIGHTS: [f32; 3] = [0.299, 0.587, 0.114];

/// Decodes a PNG or JPEG byte stream.
pub(super) fn decode(
    bytes: &[u8],
    format: SourceFormat,
    limits: &DecodeLimits,
) -> Result<DecodedImage, DecodeErrorKind> {
    if !has_end_marker(bytes, format) {
        return Err(DecodeErrorKind::Truncated {
            format,
            detail: "the stream stops before its end marker".to_string(),
        });
    }
    let fail = |error| image_error(format, error);
    match format {
        SourceFormat::Png => decode_with(
            PngDecoder::new(Cursor::new(bytes)).map_err(fail)?,
            format,
            limits,
        ),
        SourceFormat::Jpeg => decode_with(
            JpegDecoder::new(Cursor::new(bytes)).map_err(fail)?,
            format,
            limits,
        ),
        SourceFormat::Dicom => Err(DecodeErrorKind::UnknownFormat),
    }
}

fn decode_with(
    decoder: impl ImageDecoder,
    format: SourceFormat,
    limits: &DecodeLimits,
) -> Result<DecodedImage, DecodeErrorKind> {
    let (width, height) = decoder.dimensions();
    let (width, height) = (width as usize, height as usize);
    limits.check_size(width, height)?;

    let color = decoder.color_type();
    let original = decoder.original_color_type();
    let bit_depth = original.bits_per_pixel() / u16::from(original.channel_count().max(1));
    let mut buffer = vec![0u8; width * height * usize::from(color.bytes_per_pixel())];
    decoder
        .read_image(&mut buffer)
        .map_err(|e| image_error(format, e))?;

    let pixels = gray_pixels(&buffer, color).ok_or_else(|| DecodeErrorKind::Unsupported {
        format,
        detail: format!("pixel layout {color:?}"),
    })?;
    let photometric = if color.has_color() {
        Photometric::Rgb
    } else {
        Photometric::Monochrome2
    };
    let image = GrayImage {
        width,
        height,
        pixels,
    };
    Ok(DecodedImage::new(image, format, bit_depth, photometric))
}

/// Converts decoded samples to gray in [0, 1]: alpha is dropped and colour becomes luma.
/// `None` for layouts PNG and JPEG decoders never produce (float samples).
pub(super) fn gray_pixels(buffer: &[u8], color: ColorType) -> Option<Vec<f32>> {
    let channels = usize::from(color.channel_count());
    match color {
        ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8 => {
            Some(to_gray(buffer, channels, |[v]: [u8; 1]| {
                f32::from(v) / 255.0
            }))
        }
        // the decoder hands 16-bit samples over in native byte order
        ColorType::L16 | ColorType::La16 | ColorType::Rgb16 | ColorType::Rgba16 => {
            Some(to_gray(buffer, channels, |b: [u8; 2]| {
                f32::from(u16::from_ne_bytes(b)) / 65535.0
            }))
        }
        _ => None,
    }
}

/// One gray value per pixel of `channels` samples of `N` bytes each; the sample width is a
/// constant so that the common 8-bit gray case compiles to a vectorised loop.
fn to_gray<const N: usize>(
    buffer: &[u8],
    channels: usize,
    value: impl Fn([u8; N]) -> f32,
) -> Vec<f32> {
    let (samples, _) = buffer.as_chunks::<N>();
    match channels {
        1 => samples.iter().map(|&s| value(s)).collect(),
        2 => samples.chunks_exact(2).map(|p| value(p[0])).collect(),
        _ => samples
            .chunks_exact(channels)
            .map(|p| {
                LUMA_WEIGHTS[0] * value(p[0])
                    + LUMA_WEIGHTS[1] * value(p[1])
                    + LUMA_WEIGHTS[2] * value(p[2])
            })
            .collect(),
    }
}

/// PNG ends with an IEND chunk and JPEG with an EOI marker; lenient decoders fill a missing
/// tail with gray, so a file cut short (an interrupted copy) is caught here instead.
/// A little trailing padding after the marker is tolerated.
fn has_end_marker(bytes: &[u8], format: SourceFormat) -> bool {
    let marker: &[u8] = match format {
        SourceFormat::Png => b"IEND",
        SourceFormat::Jpeg => &[0xFF, 0xD9],
        SourceFormat::Dicom => return true,
    };
    let tail = &bytes[bytes.len().saturating_sub(END_MARKER_SEARCH)..];
    tail.windows(marker.len()).any(|w| w == marker)
}

const END_MARKER_SEARCH: usize = 64;

fn image_error(format: SourceFormat, error: ImageError) -> DecodeErrorKind {
    match error {
        ImageError::Unsupported(_) | ImageError::Limits(_) => DecodeErrorKind::Unsupported {
            format,
            detail: error.to_string(),
        },
        // image reports an I/O error's source chain without the error itself
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeErrorKind::Truncated {
                format,
                detail: e.to_string(),
            }
        }
        _ => malformed(format, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_conversions() {
        assert_eq!(gray_pixels(&[0, 255], ColorType::L8), Some(vec![0.0, 1.0]));
        assert_eq!(
            gray_pixels(&[51, 0, 255, 9], ColorType::La8),
            Some(vec![0.2, 1.0])
        );
        let white_red = gray_pixels(&[255, 255, 255, 255, 0, 0], ColorType::Rgb8).unwrap();
        assert!((white_red[0] - 1.0).abs() < 1e-6);
        assert!((white_red[1] - 0.299).abs() < 1e-6);

        let mut wide = Vec::new();
        for v in [0u16, 65535, 32768] {
            wide.extend_from_slice(&v.to_ne_bytes());
        }
        let gray16 = gray_pixels(&wide, ColorType::L16).unwrap();
        assert_eq!(gray16[..2], [0.0, 1.0]);
        assert!((gray16[2] - 0.5).abs() < 1e-4);

        assert_eq!(gray_pixels(&[0; 12], ColorType::Rgb32F), None);
    }
}

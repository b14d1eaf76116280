//! PNG and JPEG decoding, straight to grayscale f32: PNG rows are streamed from the `png` crate
//! ([`PngRows`]), anything that stream does not take goes through the `image` crate, and the
//! header is checked against the limits before any pixel buffer is allocated.

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::codecs::png::PngDecoder;
use image::{ColorType, ImageDecoder, ImageError};

use super::png_stream::RawRows;
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
    if format == SourceFormat::Png
        && let Some(image) = PngRows::open(bytes, limits).and_then(PngRows::decode_all)
    {
        return Ok(image);
    }
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

/// A non-interlaced, still PNG read one row at a time, each row as gray f32 in [0, 1]: the
/// same values as [`decode`] gives, without holding the decoded samples of the whole image.
///
/// Every failure is `None`, and the caller decodes the bytes again through [`decode`], which
/// then names the error exactly as for any other file: this stream is a fast path for good
/// files, never the judge of bad ones. 8- and 16-bit images without palette or tRNS chunk are
/// unfiltered by [`RawRows`]; other layouts go through the `png` crate's reader, set up as the
/// `image` crate sets it up (palette and low bit depths expanded to 8 bits, 16 bits kept).
pub(crate) struct PngRows<'a> {
    source: RowSource<'a>,
    color: ColorType,
    width: usize,
    height: usize,
    rows_read: usize,
}

enum RowSource<'a> {
    Raw(RawRows<'a>),
    Reader {
        reader: png::Reader<Cursor<&'a [u8]>>,
        samples: Vec<u8>,
    },
}

impl<'a> PngRows<'a> {
    /// Opens the stream after the checks [`decode`] makes first (end marker, size limits);
    /// `None` for interlaced or animated images and for anything the header does not allow.
    pub(crate) fn open(bytes: &'a [u8], limits: &DecodeLimits) -> Option<Self> {
        if !has_end_marker(bytes, SourceFormat::Png) {
            return None;
        }
        if let Some((raw, header)) = RawRows::open(bytes) {
            limits.check_size(header.width, header.height).ok()?;
            return Some(Self {
                source: RowSource::Raw(raw),
                color: color_type(header.color, header.depth)?,
                width: header.width,
                height: header.height,
                rows_read: 0,
            });
        }
        let mut decoder =
            png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: usize::MAX });
        decoder.set_ignore_text_chunk(false);
        let header = decoder.read_header_info().ok()?;
        let (width, height, interlaced) = (header.width, header.height, header.interlaced);
        let (width, height) = (width as usize, height as usize);
        if interlaced || limits.check_size(width, height).is_err() {
            return None;
        }
        decoder.set_transformations(png::Transformations::EXPAND);
        let reader = decoder.read_info().ok()?;
        if reader.info().animation_control.is_some() {
            return None;
        }
        let (output_color, output_depth) = reader.output_color_type();
        let color = color_type(output_color, output_depth)?;
        let line = reader.output_line_size(reader.info().width)?;
        if line != width * usize::from(color.bytes_per_pixel()) {
            return None;
        }
        Some(Self {
            source: RowSource::Reader {
                reader,
                samples: vec![0; line],
            },
            color,
            width,
            height,
            rows_read: 0,
        })
    }

    pub(crate) fn width(&self) -> usize {
        self.width
    }

    pub(crate) fn height(&self) -> usize {
        self.height
    }

    /// Decodes the next row into `out` (`width` values); `None` on a decoding error or past
    /// the last row.
    pub(crate) fn next_row(&mut self, out: &mut [f32]) -> Option<()> {
        if self.rows_read == self.height || out.len() != self.width {
            return None;
        }
        let samples = match &mut self.source {
            RowSource::Raw(raw) => raw.next_row()?,
            RowSource::Reader { reader, samples } => {
                reader.read_row(samples).ok()??;
                samples
            }
        };
        self.rows_read += 1;
        gray_row(samples, self.color, out);
        Some(())
    }

    /// After the last row: reads the rest of the image data, as a whole-image decode does, so a
    /// stream that is corrupt after its last row fails here too.
    pub(crate) fn finish(mut self) -> Option<()> {
        if self.rows_read != self.height {
            return None;
        }
        match &mut self.source {
            RowSource::Raw(raw) => raw.finish(),
            RowSource::Reader { reader, samples } => match reader.read_row(samples) {
                Ok(None) => Some(()),
                _ => None,
            },
        }
    }

    /// The whole image, as [`decode`] gives it.
    fn decode_all(mut self) -> Option<DecodedImage> {
        let (width, height, color) = (self.width, self.height, self.color);
        let mut pixels = vec![0.0f32; width * height];
        for row in pixels.chunks_exact_mut(width) {
            self.next_row(row)?;
        }
        self.finish()?;
        let photometric = if color.has_color() {
            Photometric::Rgb
        } else {
            Photometric::Monochrome2
        };
        let bit_depth = color.bits_per_pixel() / u16::from(color.channel_count());
        let image = GrayImage {
            width,
            height,
            pixels,
        };
        Some(DecodedImage::new(
            image,
            SourceFormat::Png,
            bit_depth,
            photometric,
        ))
    }
}

/// The `image` crate's colour type for decoded PNG samples; `None` for the layouts it refuses.
fn color_type(color: png::ColorType, depth: png::BitDepth) -> Option<ColorType> {
    Some(match (color, depth) {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => ColorType::L8,
        (png::ColorType::Grayscale, png::BitDepth::Sixteen) => ColorType::L16,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => ColorType::La8,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Sixteen) => ColorType::La16,
        (png::ColorType::Rgb, png::BitDepth::Eight) => ColorType::Rgb8,
        (png::ColorType::Rgb, png::BitDepth::Sixteen) => ColorType::Rgb16,
        (png::ColorType::Rgba, png::BitDepth::Eight) => ColorType::Rgba8,
        (png::ColorType::Rgba, png::BitDepth::Sixteen) => ColorType::Rgba16,
        _ => return None,
    })
}

/// One row of PNG samples (16-bit ones big endian, as PNG stores them) as gray in [0, 1],
/// with the arithmetic of [`gray_pixels`].
fn gray_row(samples: &[u8], color: ColorType, out: &mut [f32]) {
    let channels = usize::from(color.channel_count());
    if color.bytes_per_pixel() / color.channel_count() == 1 {
        fill_gray(samples, channels, |[v]: [u8; 1]| f32::from(v) / 255.0, out);
    } else {
        fill_gray(
            samples,
            channels,
            |b: [u8; 2]| f32::from(u16::from_be_bytes(b)) / 65535.0,
            out,
        );
    }
}

/// [`to_gray`] into a caller's buffer.
fn fill_gray<const N: usize>(
    buffer: &[u8],
    channels: usize,
    value: impl Fn([u8; N]) -> f32,
    out: &mut [f32],
) {
    let (samples, _) = buffer.as_chunks::<N>();
    match channels {
        1 => {
            for (o, &s) in out.iter_mut().zip(samples) {
                *o = value(s);
            }
        }
        2 => {
            for (o, p) in out.iter_mut().zip(samples.chunks_exact(2)) {
                *o = value(p[0]);
            }
        }
        _ => {
            for (o, p) in out.iter_mut().zip(samples.chunks_exact(channels)) {
                *o = luma(value(p[0]), value(p[1]), value(p[2]));
            }
        }
    }
}

#[inline]
fn luma(red: f32, green: f32, blue: f32) -> f32 {
    LUMA_WEIGHTS[0] * red + LUMA_WEIGHTS[1] * green + LUMA_WEIGHTS[2] * blue
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
            .map(|p| luma(value(p[0]), value(p[1]), value(p[2])))
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

    /// A PNG decoded as every PNG was before the row stream: whole, by the `image` crate.
    fn through_the_image_crate(bytes: &[u8]) -> DecodedImage {
        let decoder = PngDecoder::new(Cursor::new(bytes)).unwrap();
        decode_with(decoder, SourceFormat::Png, &DecodeLimits::default()).unwrap()
    }

    fn bits(image: &DecodedImage) -> Vec<u32> {
        image.image.pixels.iter().map(|p| p.to_bits()).collect()
    }

    #[test]
    fn streamed_png_rows_match_the_image_crate_bit_for_bit() {
        use image::{ExtendedColorType, ImageEncoder, codecs::png::PngEncoder};
        let (width, height) = (97u32, 61u32);
        let layouts = [
            ExtendedColorType::L8,
            ExtendedColorType::L16,
            ExtendedColorType::La8,
            ExtendedColorType::La16,
            ExtendedColorType::Rgb8,
            ExtendedColorType::Rgb16,
            ExtendedColorType::Rgba8,
            ExtendedColorType::Rgba16,
        ];
        for color in layouts {
            let len = (width * height) as usize * usize::from(color.bits_per_pixel() / 8);
            // Smooth structure plus noise, so that the encoder picks different filters.
            let samples: Vec<u8> = (0..len)
                .map(|i| ((i / 7 % 200) as u8).wrapping_add((i * 7919 % 13) as u8))
                .collect();
            let mut bytes = Vec::new();
            PngEncoder::new(&mut bytes)
                .write_image(&samples, width, height, color)
                .unwrap();
            let rows = PngRows::open(&bytes, &DecodeLimits::default()).unwrap();
            assert!(matches!(rows.source, RowSource::Raw(_)), "{color:?}");
            let streamed = rows.decode_all().unwrap();
            let reference = through_the_image_crate(&bytes);
            assert_eq!(bits(&streamed), bits(&reference), "{color:?}");
            assert_eq!(streamed.info, reference.info, "{color:?}");
            // decode() takes the stream.
            let decoded = decode(&bytes, SourceFormat::Png, &DecodeLimits::default()).unwrap();
            assert_eq!(bits(&decoded), bits(&reference), "{color:?}");
        }
    }

    #[test]
    fn low_bit_depths_stream_through_the_png_reader() {
        let (width, height) = (33u32, 17u32);
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Four);
        let data: Vec<u8> = (0..17 * height as usize).map(|i| (i * 37) as u8).collect();
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
        let rows = PngRows::open(&bytes, &DecodeLimits::default()).unwrap();
        assert!(matches!(rows.source, RowSource::Reader { .. }));
        let streamed = rows.decode_all().unwrap();
        let reference = through_the_image_crate(&bytes);
        assert_eq!(bits(&streamed), bits(&reference));
        assert_eq!(streamed.info, reference.info);
    }
}

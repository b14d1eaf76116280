//! DICOM decoding: dicom-object parses the file, dicom-pixeldata decompresses the first frame,
//! and the grayscale pipeline of `voi` turns stored values into display brightness.

use std::borrow::Cow;

use dicom_core::Tag;
use dicom_dictionary_std::{tags, uids};
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject, OpenFileOptions};
use dicom_pixeldata::{
    DecodedPixelData, PhotometricInterpretation, PixelDecoder, PixelRepresentation,
    PlanarConfiguration, VoiLutFunction,
};
use dicom_transfer_syntax_registry::entries::{
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::sniff::DicomLayout;
use super::voi::{GrayscalePipeline, Voi};
use super::{DecodeErrorKind, DecodeLimits, malformed};
use crate::image::{DecodedImage, GrayImage, Photometric, SourceFormat};

const FORMAT: SourceFormat = SourceFormat::Dicom;

/// Decodes the first frame of a DICOM byte stream.
pub(super) fn decode(
    bytes: &[u8],
    layout: DicomLayout,
    limits: &DecodeLimits,
) -> Result<DecodedImage, DecodeErrorKind> {
    let object = parse(bytes, layout)?;
    let width = required_u32(&object, tags::COLUMNS, "Columns")? as usize;
    let height = required_u32(&object, tags::ROWS, "Rows")? as usize;
    limits.check_size(width, height)?;
    if object.get(tags::PIXEL_DATA).is_none() {
        return Err(DecodeErrorKind::NoPixelData);
    }
    check_transfer_syntax(object.meta().transfer_syntax())?;

    let pixel_data = object
        .decode_pixel_data_frame(0)
        .map_err(|e| malformed(FORMAT, &e))?;
    if (pixel_data.columns() as usize, pixel_data.rows() as usize) != (width, height) {
        return Err(corrupt("decoded frame size differs from Rows/Columns"));
    }
    let frame = pixel_data
        .frame_data(0)
        .map_err(|e| DecodeErrorKind::Truncated {
            format: FORMAT,
            detail: e.to_string(),
        })?;
    let (pixels, photometric) = match pixel_data.samples_per_pixel() {
        1 => grayscale(&pixel_data, frame)?,
        3 => (
            colour(&pixel_data, frame, width * height)?,
            Photometric::Rgb,
        ),
        n => return Err(unsupported(format!("{n} samples per pixel"))),
    };
    let image = GrayImage {
        width,
        height,
        pixels,
    };
    let mut result = DecodedImage::new(image, FORMAT, pixel_data.bits_stored(), photometric);
    result.info.pixel_spacing_mm = pixel_spacing(&object);
    result.info.view_position = text(&object, tags::VIEW_POSITION);
    Ok(result)
}

fn parse(bytes: &[u8], layout: DicomLayout) -> Result<DefaultDicomObject, DecodeErrorKind> {
    let preamble = match layout {
        DicomLayout::Preamble => ReadPreamble::Always,
        DicomLayout::NoPreamble => ReadPreamble::Never,
        DicomLayout::BareDataset { explicit_vr } => return parse_bare(bytes, explicit_vr),
    };
    OpenFileOptions::new()
        .read_preamble(preamble)
        .from_reader(bytes)
        .map_err(|e| malformed(FORMAT, &e))
}

/// A data set without file meta group gets one, so the rest of the code sees a normal file.
fn parse_bare(bytes: &[u8], explicit_vr: bool) -> Result<DefaultDicomObject, DecodeErrorKind> {
    let syntax = if explicit_vr {
        EXPLICIT_VR_LITTLE_ENDIAN.erased()
    } else {
        IMPLICIT_VR_LITTLE_ENDIAN.erased()
    };
    let dataset = InMemDicomObject::read_dataset_with_ts(bytes, &syntax)
        .map_err(|e| malformed(FORMAT, &e))?;
    // placeholders only for when the data set lacks its own SOP UIDs, which `with_meta` copies
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(syntax.uid())
        .media_storage_sop_class_uid(uids::SECONDARY_CAPTURE_IMAGE_STORAGE)
        .media_storage_sop_instance_uid("2.25.0");
    dataset.with_meta(meta).map_err(|e| malformed(FORMAT, &e))
}

fn check_transfer_syntax(uid: &str) -> Result<(), DecodeErrorKind> {
    let uid = uid.trim_end_matches(['\0', ' ']);
    match TransferSyntaxRegistry.get(uid) {
        Some(syntax) if syntax.can_decode_all() => Ok(()),
        found => Err(DecodeErrorKind::UnsupportedTransferSyntax {
            uid: uid.to_string(),
            name: found.map_or("unknown", |s| s.name()).to_string(),
        }),
    }
}

/// Monochrome frames: modality rescale, VOI, MONOCHROME1 inversion, via one table look-up.
fn grayscale(
    pixel_data: &DecodedPixelData<'_>,
    frame: &[u8],
) -> Result<(Vec<f32>, Photometric), DecodeErrorKind> {
    let (photometric, invert) = match pixel_data.photometric_interpretation() {
        PhotometricInterpretation::Monochrome1 => (Photometric::Monochrome1, true),
        PhotometricInterpretation::Monochrome2 => (Photometric::Monochrome2, false),
        other => return Err(unsupported(format!("photometric interpretation {other}"))),
    };
    let samples = SampleFormat::of(pixel_data)?;
    let pixel_error = |e: dicom_pixeldata::Error| malformed(FORMAT, &e);
    let rescale = pixel_data.rescale().map_err(pixel_error)?[0];
    if !(rescale.slope.is_finite() && rescale.intercept.is_finite()) {
        return Err(corrupt("Rescale Slope or Intercept is not a finite number"));
    }
    let function = pixel_data
        .voi_lut_function()
        .map_err(pixel_error)?
        .and_then(|f| f.first().copied())
        .unwrap_or(VoiLutFunction::Linear);
    let table = pixel_data
        .voi_lut_sequence()
        .map_err(pixel_error)?
        .and_then(|luts| luts.first())
        .and_then(|lut| Voi::table(lut.min_pixel_value, &lut.data, lut.bits_stored));
    let window = pixel_data
        .window()
        .map_err(pixel_error)?
        .and_then(|windows| windows.first())
        .and_then(|w| Voi::window(*w, function));

    let lookup = |low: i32, high: i32| {
        let voi = table.or(window).unwrap_or_else(|| {
            let ends = [
                rescale.apply(f64::from(low)),
                rescale.apply(f64::from(high)),
            ];
            Voi::MinMax {
                low: ends[0].min(ends[1]),
                high: ends[0].max(ends[1]),
            }
        });
        GrayscalePipeline {
            rescale,
            voi,
            invert,
        }
        .table(low, high)
    };
    let pixels = match samples.bytes {
        1 => map_frame::<1>(frame, &samples, lookup),
        _ => map_frame::<2>(frame, &samples, lookup),
    }
    .ok_or_else(|| corrupt("frame has no pixels"))?;
    Ok((pixels, photometric))
}

/// Maps each stored value of a frame through a table that `lookup` builds for the frame's
/// range of stored values; `N` is the sample width in bytes, a constant so the loops stay tight.
fn map_frame<const N: usize>(
    frame: &[u8],
    samples: &SampleFormat,
    lookup: impl FnOnce(i32, i32) -> Vec<f32>,
) -> Option<Vec<f32>> {
    let (chunks, _) = frame.as_chunks::<N>();
    let stored = || chunks.iter().map(|s| samples.stored(s));
    let (low, high) = stored().fold((i32::MAX, i32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if low > high {
        return None;
    }
    let table = lookup(low, high);
    Some(stored().map(|v| table[(v - low) as usize]).collect())
}

/// How stored values sit in their bytes (PS3.5 8.1.1: Bits Allocated/Stored, High Bit).
struct SampleFormat {
    bytes: usize,
    bits_stored: u32,
    shift: u32,
    signed: bool,
}

impl SampleFormat {
    fn of(pixel_data: &DecodedPixelData<'_>) -> Result<Self, DecodeErrorKind> {
        let allocated = u32::from(pixel_data.bits_allocated());
        let stored = u32::from(pixel_data.bits_stored());
        let high_bit = u32::from(pixel_data.high_bit());
        if allocated != 8 && allocated != 16 {
            return Err(unsupported(format!(
                "{allocated} bits allocated per sample"
            )));
        }
        if stored == 0 || stored > allocated {
            return Err(corrupt(format!(
                "{stored} bits stored in {allocated} allocated"
            )));
        }
        // a High Bit that contradicts Bits Stored is ignored rather than trusted
        let shift = (high_bit + 1)
            .checked_sub(stored)
            .filter(|s| s + stored <= allocated)
            .unwrap_or(0);
        Ok(Self {
            bytes: allocated as usize / 8,
            bits_stored: stored,
            shift,
            signed: pixel_data.pixel_representation() == PixelRepresentation::Signed,
        })
    }

    #[inline]
    fn stored<const N: usize>(&self, sample: &[u8; N]) -> i32 {
        let raw = match sample.as_slice() {
            [byte] => u32::from(*byte),
            [a, b, ..] => u32::from(u16::from_ne_bytes([*a, *b])),
            [] => 0,
        };
        let value = (raw >> self.shift) & ((1 << self.bits_stored) - 1);
        let sign_bit = 1 << (self.bits_stored - 1);
        if self.signed && value & sign_bit != 0 {
            value as i32 - (1 << self.bits_stored)
        } else {
            value as i32
        }
    }
}

/// Colour frames (rare for chest X-rays): RGB becomes luma, YBR_FULL keeps its Y plane.
fn colour(
    pixel_data: &DecodedPixelData<'_>,
    frame: &[u8],
    pixel_count: usize,
) -> Result<Vec<f32>, DecodeErrorKind> {
    if pixel_data.bits_allocated() != 8 {
        return Err(unsupported("colour with more than 8 bits per sample"));
    }
    if frame.len() < pixel_count * 3 {
        return Err(corrupt("colour frame shorter than Rows x Columns x 3"));
    }
    let interleaved: Cow<[u8]> = match pixel_data.planar_configuration() {
        PlanarConfiguration::Standard => Cow::Borrowed(frame),
        PlanarConfiguration::PixelFirst => Cow::Owned(
            (0..pixel_count * 3)
                .map(|i| frame[(i % 3) * pixel_count + i / 3])
                .collect(),
        ),
    };
    match pixel_data.photometric_interpretation() {
        PhotometricInterpretation::Rgb => {
            super::raster::gray_pixels(&interleaved, image::ColorType::Rgb8)
                .ok_or_else(|| unsupported("RGB layout"))
        }
        PhotometricInterpretation::YbrFull => Ok(interleaved
            .iter()
            .step_by(3)
            .map(|&y| f32::from(y) / 255.0)
            .collect()),
        other => Err(unsupported(format!("photometric interpretation {other}"))),
    }
}

fn required_u32(object: &DefaultDicomObject, tag: Tag, name: &str) -> Result<u32, DecodeErrorKind> {
    object
        .get(tag)
        .ok_or_else(|| corrupt(format!("{name} is missing")))?
        .to_int::<u32>()
        .map_err(|e| corrupt(format!("{name} is not a number: {e}")))
}

/// Pixel Spacing, or else Imager Pixel Spacing (projection radiography), in mm (row, column).
fn pixel_spacing(object: &DefaultDicomObject) -> Option<(f64, f64)> {
    [tags::PIXEL_SPACING, tags::IMAGER_PIXEL_SPACING]
        .into_iter()
        .find_map(|tag| match object.get(tag)?.to_multi_float64().ok()?[..] {
            [row, column, ..] if row > 0.0 && column > 0.0 => Some((row, column)),
            _ => None,
        })
}

fn text(object: &DefaultDicomObject, tag: Tag) -> Option<String> {
    let value = object.get(tag)?.to_str().ok()?;
    let value = value.trim_matches(['\0', ' ']);
    (!value.is_empty()).then(|| value.to_string())
}

fn corrupt(detail: impl Into<String>) -> DecodeErrorKind {
    DecodeErrorKind::Corrupt {
        format: FORMAT,
        detail: detail.into(),
    }
}

fn unsupported(detail: impl Into<String>) -> DecodeErrorKind {
    DecodeErrorKind::Unsupported {
        format: FORMAT,
        detail: detail.into(),
    }
}

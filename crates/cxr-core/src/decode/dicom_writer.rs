//! Builds grayscale DICOM files (no real chest DICOM ships with the project): tests,
//! benchmarks and the server use it to turn PNGs into DICOM of every supported kind.

use std::path::{Path, PathBuf};

use dicom_core::value::{DataSetSequence, PixelFragmentSequence};
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::adapters::EncodeOptions;
use dicom_object::{FileDicomObject, FileMetaTableBuilder, InMemDicomObject};
use dicom_pixeldata::Transcode;
use dicom_transfer_syntax_registry::entries;
use sha2::{Digest, Sha256};

use crate::image::{GrayImage, Photometric};

/// The VOI LUT Function of a [`Window`], re-exported so callers need no DICOM crate.
pub use dicom_pixeldata::VoiLutFunction;

/// Stored pixel samples of all frames, one frame after another, each row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
}

impl Samples {
    fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
        }
    }

    fn bits_allocated(&self) -> u16 {
        match self {
            Self::U8(_) => 8,
            Self::U16(_) | Self::I16(_) => 16,
        }
    }

    fn signed(&self) -> bool {
        matches!(self, Self::I16(_))
    }

    /// Little-endian bytes of every sample (the byte order of every syntax written here).
    fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Self::U8(v) => v.clone(),
            Self::U16(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
            Self::I16(v) => v.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }
}

/// How the file encodes its data set and pixel data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DicomEncoding {
    ExplicitVrLittleEndian,
    ImplicitVrLittleEndian,
    /// The whole data set deflated (zlib), pixel data native.
    DeflatedExplicitVrLittleEndian,
    /// Lossy JPEG baseline, 8-bit samples only; `quality` 1-100.
    JpegBaseline {
        quality: u8,
    },
    /// Lossless RLE (PS3.5 Annex G), one fragment per frame.
    RleLossless,
}

/// Window Center / Width (and VOI LUT Function when not the default LINEAR).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub center: f64,
    pub width: f64,
    pub function: VoiLutFunction,
}

/// One explicit VOI LUT (an item of the VOI LUT Sequence).
#[derive(Debug, Clone, PartialEq)]
pub struct VoiLutTable {
    /// The modality value mapped to the first entry.
    pub first_mapped: i32,
    /// Bits per entry, 8 to 16.
    pub bits: u8,
    pub entries: Vec<u16>,
}

/// A grayscale DICOM image to write; fields left `None` are not written.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomImage {
    pub width: u16,
    pub height: u16,
    /// Bits Stored; Bits Allocated follows from the sample type.
    pub bits_stored: u16,
    pub samples: Samples,
    /// `Monochrome1` or `Monochrome2`.
    pub photometric: Photometric,
    /// Rescale (slope, intercept).
    pub rescale: Option<(f64, f64)>,
    pub window: Option<Window>,
    pub voi_lut: Option<VoiLutTable>,
    /// Imager Pixel Spacing (row, column) in mm.
    pub pixel_spacing_mm: Option<(f64, f64)>,
    pub view_position: Option<String>,
    pub encoding: DicomEncoding,
}

/// Why a DICOM file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DicomWriteError {
    #[error("invalid DICOM image: {0}")]
    Invalid(String),
    #[error("cannot encode DICOM: {0}")]
    Encode(String),
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DicomImage {
    /// An uncompressed MONOCHROME2 image with Bits Stored equal to the sample width and no
    /// optional attributes; `samples` holds one or more whole frames.
    pub fn new(width: u16, height: u16, samples: Samples) -> Self {
        Self {
            width,
            height,
            bits_stored: samples.bits_allocated(),
            samples,
            photometric: Photometric::Monochrome2,
            rescale: None,
            window: None,
            voi_lut: None,
            pixel_spacing_mm: None,
            view_position: None,
            encoding: DicomEncoding::ExplicitVrLittleEndian,
        }
    }

    /// Quantises a [0, 1] image to unsigned `bits_stored`-bit samples (8-bit samples up to
    /// 8 bits, 16-bit above), e.g. to turn a PNG chest X-ray into a 12-bit DICOM.
    pub fn from_gray(image: &GrayImage, bits_stored: u16) -> Result<Self, DicomWriteError> {
        if !(1..=16).contains(&bits_stored) {
            return Err(invalid(format!("{bits_stored} bits stored")));
        }
        let side = |n: usize| u16::try_from(n).map_err(|_| invalid(format!("side {n} > 65535")));
        let (width, height) = (side(image.width)?, side(image.height)?);
        let white = f32::from(((1u32 << bits_stored) - 1) as u16);
        let level = |v: f32| (v.clamp(0.0, 1.0) * white).round() as u16;
        let samples = if bits_stored <= 8 {
            Samples::U8(image.pixels.iter().map(|&v| level(v) as u8).collect())
        } else {
            Samples::U16(image.pixels.iter().map(|&v| level(v)).collect())
        };
        Ok(Self {
            bits_stored,
            ..Self::new(width, height, samples)
        })
    }

    /// The complete DICOM file (preamble, file meta group, data set).
    pub fn to_bytes(&self) -> Result<Vec<u8>, DicomWriteError> {
        let mut bytes = Vec::new();
        self.to_object()?
            .write_all(&mut bytes)
            .map_err(|e| DicomWriteError::Encode(e.to_string()))?;
        Ok(bytes)
    }

    pub fn write_file(&self, path: &Path) -> Result<(), DicomWriteError> {
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes).map_err(|source| DicomWriteError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    fn frames(&self) -> Result<usize, DicomWriteError> {
        let frame_len = usize::from(self.width) * usize::from(self.height);
        let total = self.samples.len();
        if frame_len == 0 || total == 0 || !total.is_multiple_of(frame_len) {
            return Err(invalid(format!(
                "{total} samples do not make whole {}x{} frames",
                self.width, self.height
            )));
        }
        Ok(total / frame_len)
    }

    fn to_object(&self) -> Result<FileDicomObject<InMemDicomObject>, DicomWriteError> {
        let frames = self.frames()?;
        let allocated = self.samples.bits_allocated();
        if self.bits_stored == 0 || self.bits_stored > allocated {
            return Err(invalid(format!(
                "{} bits stored in {allocated}-bit samples",
                self.bits_stored
            )));
        }
        let photometric = match self.photometric {
            Photometric::Monochrome1 => "MONOCHROME1",
            Photometric::Monochrome2 => "MONOCHROME2",
            Photometric::Rgb => return Err(invalid("only grayscale images are written".into())),
        };

        let pixel_bytes = self.samples.to_le_bytes();
        let mut object = InMemDicomObject::new_empty();
        let mut put = |tag: Tag, vr: VR, value: PrimitiveValue| {
            object.put(DataElement::new(tag, vr, value));
        };
        put(
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION.into(),
        );
        put(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            instance_uid(&pixel_bytes).into(),
        );
        put(tags::MODALITY, VR::CS, "DX".into());
        put(tags::SAMPLES_PER_PIXEL, VR::US, 1_u16.into());
        put(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, photometric.into());
        put(tags::NUMBER_OF_FRAMES, VR::IS, frames.to_string().into());
        put(tags::ROWS, VR::US, self.height.into());
        put(tags::COLUMNS, VR::US, self.width.into());
        put(tags::BITS_ALLOCATED, VR::US, allocated.into());
        put(tags::BITS_STORED, VR::US, self.bits_stored.into());
        put(tags::HIGH_BIT, VR::US, (self.bits_stored - 1).into());
        put(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            u16::from(self.samples.signed()).into(),
        );
        if let Some((slope, intercept)) = self.rescale {
            put(tags::RESCALE_SLOPE, VR::DS, decimal(slope).into());
            put(tags::RESCALE_INTERCEPT, VR::DS, decimal(intercept).into());
        }
        if let Some(window) = self.window {
            put(tags::WINDOW_CENTER, VR::DS, decimal(window.center).into());
            put(tags::WINDOW_WIDTH, VR::DS, decimal(window.width).into());
            put(
                tags::VOILUT_FUNCTION,
                VR::CS,
                function_name(window.function).into(),
            );
        }
        if let Some((row, column)) = self.pixel_spacing_mm {
            let spacing = PrimitiveValue::Strs([decimal(row), decimal(column)].into());
            put(tags::IMAGER_PIXEL_SPACING, VR::DS, spacing);
        }
        if let Some(view) = &self.view_position {
            put(tags::VIEW_POSITION, VR::CS, view.as_str().into());
        }
        if let Some(lut) = &self.voi_lut {
            object.put(voi_lut_sequence(lut)?);
        }
        object.put(self.pixel_data(pixel_bytes, frames)?);

        let syntax = match self.encoding {
            DicomEncoding::ImplicitVrLittleEndian => uids::IMPLICIT_VR_LITTLE_ENDIAN,
            DicomEncoding::DeflatedExplicitVrLittleEndian => {
                uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
            }
            DicomEncoding::RleLossless => uids::RLE_LOSSLESS,
            // JPEG is made by transcoding the native file below
            DicomEncoding::ExplicitVrLittleEndian | DicomEncoding::JpegBaseline { .. } => {
                uids::EXPLICIT_VR_LITTLE_ENDIAN
            }
        };
        let mut file = object
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(syntax))
            .map_err(|e| DicomWriteError::Encode(e.to_string()))?;
        if let DicomEncoding::JpegBaseline { quality } = self.encoding {
            if allocated != 8 {
                return Err(invalid("JPEG baseline needs 8-bit samples".into()));
            }
            let mut options = EncodeOptions::new();
            options.quality = Some(quality.clamp(1, 100));
            file.transcode_with_options(&entries::JPEG_BASELINE.erased(), options)
                .map_err(|e| DicomWriteError::Encode(e.to_string()))?;
        }
        Ok(file)
    }

    fn pixel_data(
        &self,
        pixel_bytes: Vec<u8>,
        frames: usize,
    ) -> Result<DataElement<InMemDicomObject>, DicomWriteError> {
        if self.encoding != DicomEncoding::RleLossless {
            let vr = if self.samples.bits_allocated() == 8 {
                VR::OB
            } else {
                VR::OW
            };
            return Ok(DataElement::new(
                tags::PIXEL_DATA,
                vr,
                PrimitiveValue::from(pixel_bytes),
            ));
        }
        let frame_bytes = pixel_bytes.len() / frames;
        let bytes_per_sample = usize::from(self.samples.bits_allocated() / 8);
        let fragments: Vec<Vec<u8>> = pixel_bytes
            .chunks_exact(frame_bytes)
            .map(|frame| rle_frame(frame, bytes_per_sample))
            .collect();
        Ok(DataElement::new_with_len(
            tags::PIXEL_DATA,
            VR::OB,
            Length::UNDEFINED,
            PixelFragmentSequence::new_fragments(fragments),
        ))
    }
}

fn voi_lut_sequence(lut: &VoiLutTable) -> Result<DataElement<InMemDicomObject>, DicomWriteError> {
    let count = lut.entries.len();
    if count == 0 || count > usize::from(u16::MAX) || !(8..=16).contains(&lut.bits) {
        return Err(invalid(format!(
            "VOI LUT of {count} entries of {} bits",
            lut.bits
        )));
    }
    // The descriptor's VR is US, or SS when the first mapped value is negative (PS3.3 C.11.2.1.1)
    let descriptor = if lut.first_mapped < 0 {
        let first = i16::try_from(lut.first_mapped).map_err(|_| invalid("first mapped".into()))?;
        let count = i16::try_from(count).map_err(|_| invalid("signed LUT too long".into()))?;
        DataElement::new(
            tags::LUT_DESCRIPTOR,
            VR::SS,
            PrimitiveValue::from([count, first, i16::from(lut.bits)]),
        )
    } else {
        let first = u16::try_from(lut.first_mapped).map_err(|_| invalid("first mapped".into()))?;
        DataElement::new(
            tags::LUT_DESCRIPTOR,
            VR::US,
            PrimitiveValue::from([count as u16, first, u16::from(lut.bits)]),
        )
    };
    let item = InMemDicomObject::from_element_iter([
        descriptor,
        DataElement::new(
            tags::LUT_DATA,
            VR::OW,
            PrimitiveValue::U16(lut.entries.clone().into()),
        ),
    ]);
    Ok(DataElement::new(
        tags::VOILUT_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ))
}

/// Encodes one frame as RLE Lossless: one segment per byte of a sample, most significant
/// first, each PackBits-compressed and padded to even length, after a 64-byte header.
fn rle_frame(frame: &[u8], bytes_per_sample: usize) -> Vec<u8> {
    let segments: Vec<Vec<u8>> = (0..bytes_per_sample)
        .rev()
        .map(|byte| {
            let plane: Vec<u8> = frame
                .iter()
                .skip(byte)
                .step_by(bytes_per_sample)
                .copied()
                .collect();
            let mut segment = packbits(&plane);
            if !segment.len().is_multiple_of(2) {
                segment.push(0);
            }
            segment
        })
        .collect();
    let mut header = [0u32; 16];
    header[0] = segments.len() as u32;
    let mut offset = 64;
    for (slot, segment) in header[1..].iter_mut().zip(&segments) {
        *slot = offset;
        offset += segment.len() as u32;
    }
    let mut out: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
    segments.iter().for_each(|s| out.extend_from_slice(s));
    out
}

/// PackBits: a run of 2-128 equal bytes becomes (257 - n, byte); anything else is copied
/// in literal blocks of at most 128 bytes preceded by (n - 1).
fn packbits(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 128 + 1);
    let run_at = |i: usize| {
        data[i..]
            .iter()
            .take(128)
            .take_while(|&&b| b == data[i])
            .count()
    };
    let mut i = 0;
    while i < data.len() {
        let run = run_at(i);
        if run >= 2 {
            out.extend_from_slice(&[(257 - run) as u8, data[i]]);
            i += run;
            continue;
        }
        let start = i;
        while i < data.len() && i - start < 128 && (i == start || run_at(i) < 2) {
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&data[start..i]);
    }
    out
}

/// A UID derived from the pixels, so the same image always gets the same identity.
fn instance_uid(pixel_bytes: &[u8]) -> String {
    let digest = Sha256::digest(pixel_bytes);
    let mut head = [0u8; 16];
    head.copy_from_slice(&digest[..16]);
    format!("2.25.{}", u128::from_be_bytes(head))
}

/// A Decimal String value: at most 16 characters.
fn decimal(value: f64) -> String {
    let plain = format!("{value}");
    if plain.len() <= 16 {
        plain
    } else {
        format!("{value:.9e}")
    }
}

fn function_name(function: VoiLutFunction) -> &'static str {
    match function {
        VoiLutFunction::Linear => "LINEAR",
        VoiLutFunction::LinearExact => "LINEAR_EXACT",
        VoiLutFunction::Sigmoid => "SIGMOID",
    }
}

fn invalid(detail: String) -> DicomWriteError {
    DicomWriteError::Invalid(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expands PackBits, as PS3.5 G.3.2 defines it.
    fn unpack(mut data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while let [header, rest @ ..] = data {
            let n = *header as i8;
            if n >= 0 {
                let len = n as usize + 1;
                out.extend_from_slice(&rest[..len]);
                data = &rest[len..];
            } else if n != -128 {
                out.extend(std::iter::repeat_n(rest[0], (1 - isize::from(n)) as usize));
                data = &rest[1..];
            } else {
                data = rest;
            }
        }
        out
    }

    #[test]
    fn packbits_round_trips() {
        let mut data = vec![7u8; 300];
        data.extend(0..=255u8);
        data.extend([1, 1, 2, 3, 3, 3, 4]);
        let packed = packbits(&data);
        assert!(packed.len() < data.len());
        assert_eq!(unpack(&packed), data);
        assert_eq!(unpack(&packbits(&[9])), vec![9]);
    }

    #[test]
    fn decimals_fit_sixteen_characters() {
        assert_eq!(decimal(-1024.0), "-1024");
        assert_eq!(decimal(0.5), "0.5");
        assert!(decimal(1.0 / 3.0).len() <= 16);
    }

    #[test]
    fn rejects_what_it_cannot_write() {
        let partial_frame = DicomImage::new(4, 4, Samples::U8(vec![0; 15]));
        assert!(matches!(
            partial_frame.to_bytes(),
            Err(DicomWriteError::Invalid(_))
        ));

        let mut jpeg16 = DicomImage::new(4, 4, Samples::U16(vec![0; 16]));
        jpeg16.encoding = DicomEncoding::JpegBaseline { quality: 90 };
        assert!(matches!(
            jpeg16.to_bytes(),
            Err(DicomWriteError::Invalid(_))
        ));

        let mut overfull = DicomImage::new(4, 4, Samples::U8(vec![0; 16]));
        overfull.bits_stored = 9;
        assert!(matches!(
            overfull.to_bytes(),
            Err(DicomWriteError::Invalid(_))
        ));
    }
}

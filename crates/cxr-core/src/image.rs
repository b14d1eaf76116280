//! The one in-memory image type every stage of cxr passes along: grayscale f32 in [0, 1],
//! plus what decoding learnt about the source (size, bit depth, photometric, spacing, view).

use serde::{Deserialize, Serialize};

/// A single-channel image, row-major, values in [0, 1] where 1 is white (MONOCHROME2 sense).
#[derive(Debug, Clone, PartialEq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
}

impl GrayImage {
    /// Wraps `pixels` (row-major, `width * height` values); `None` when the length does not match.
    pub fn new(width: usize, height: usize, pixels: Vec<f32>) -> Option<Self> {
        (width.checked_mul(height)? == pixels.len()).then_some(Self {
            width,
            height,
            pixels,
        })
    }

    /// An image of one constant value.
    pub fn filled(width: usize, height: usize, value: f32) -> Self {
        Self {
            width,
            height,
            pixels: vec![value; width * height],
        }
    }

    #[inline]
    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.pixels[y * self.width + x]
    }

    /// The darkest and brightest pixel values; `None` for an image without pixels.
    pub fn min_max(&self) -> Option<(f32, f32)> {
        let first = *self.pixels.first()?;
        Some(
            self.pixels
                .iter()
                .fold((first, first), |(low, high), &v| (low.min(v), high.max(v))),
        )
    }

    /// True when every pixel has the same value (a blank or failed exposure).
    ///
    /// Decoding accepts such images, since they are well-formed files; rejecting them is the
    /// quality gate's decision, which can also use [`GrayImage::min_max`] for near-constant ones.
    pub fn is_constant(&self) -> bool {
        self.min_max().is_none_or(|(low, high)| low == high)
    }
}

/// The file format an image came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Png,
    Jpeg,
    Dicom,
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::Dicom => "DICOM",
        })
    }
}

/// How stored pixel values map to brightness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Photometric {
    /// Low values are dark (the usual sense; PNG and JPEG are always this).
    Monochrome2,
    /// Low values are bright (some DICOM); decoding inverts it to `Monochrome2`.
    Monochrome1,
    /// A colour source converted to gray.
    Rgb,
}

/// What decoding learnt about the source image on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub format: SourceFormat,
    pub original_width: usize,
    pub original_height: usize,
    /// Bits stored per sample in the source (8, 12, 16 ...).
    pub bit_depth: u16,
    /// Photometric interpretation of the source, before any inversion.
    pub photometric: Photometric,
    /// Row and column spacing in millimetres, when the source says.
    pub pixel_spacing_mm: Option<(f64, f64)>,
    /// DICOM View Position (e.g. "PA", "AP", "LL"), when present.
    pub view_position: Option<String>,
}

/// A decoded image and its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedImage {
    pub image: GrayImage,
    pub info: ImageInfo,
}

impl DecodedImage {
    /// A freshly decoded image: its size is the original size; no spacing or view known yet.
    pub fn new(
        image: GrayImage,
        format: SourceFormat,
        bit_depth: u16,
        photometric: Photometric,
    ) -> Self {
        let info = ImageInfo {
            format,
            original_width: image.width,
            original_height: image.height,
            bit_depth,
            photometric,
            pixel_spacing_mm: None,
            view_position: None,
        };
        Self { image, info }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_and_constancy() {
        let flat = GrayImage::filled(3, 2, 0.25);
        assert_eq!(flat.min_max(), Some((0.25, 0.25)));
        assert!(flat.is_constant());

        let ramp = GrayImage::new(2, 2, vec![0.5, 0.0, 1.0, 0.5]).unwrap();
        assert_eq!(ramp.min_max(), Some((0.0, 1.0)));
        assert!(!ramp.is_constant());

        assert_eq!(GrayImage::filled(0, 0, 0.0).min_max(), None);
    }
}

//! The one preprocessing path from a decoded gray image to a network input, driven by the
//! [`PreprocessSpec`] stored in the model file, so that training and inference cannot disagree.
//!
//! The path has two stages with augmentation between them:
//! `decode -> [lung crop] -> fit (resize to the input size, CLAHE, letterbox) -> [augment] ->
//! normalise`. The lung crop runs only when the spec names one, with the lung model it names
//! ([`crop_lungs`]). Crop and [`fit`] are the expensive, deterministic part, so they are what
//! [`PreprocessCache`] stores;
//! augmentation then works on the image at network size, exactly as Keras' ImageDataGenerator
//! did in the paper (it resizes on load and augments the resized image). Augmentation is
//! resolution-independent (fractions of the size), so inserting it before the resize instead
//! changes only interpolation detail, not what the network sees.

mod cache;
mod clahe;
mod resize;
mod spec;
mod tensor;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

pub use cache::{CacheStats, PreprocessCache};
pub use spec::{
    ClaheParams, InputSize, Normalisation, PRESET_NAMES, PreprocessSpec, ResizeMode, SPEC_VERSION,
};
pub use tensor::ChwTensor;

use crate::augment::AugmentParams;
use crate::decode::{DecodeError, DecodeLimits, decode_bytes, png_rows, read_file};
use crate::image::GrayImage;
use crate::lungs::{CropOutcome, LungCropSpec, LungCropper};

/// Why an image could not be preprocessed.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("invalid preprocessing spec: {0}")]
    InvalidSpec(String),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("cannot preprocess an empty {width}x{height} image")]
    EmptyImage { width: usize, height: usize },
    #[error(
        "image is {width}x{height} but the spec's input is {expected_width}x{expected_height}; fit it first"
    )]
    NotFitted {
        width: usize,
        height: usize,
        expected_width: usize,
        expected_height: usize,
    },
    #[error("lung crop: {0}")]
    LungCrop(String),
    #[error("preprocessing cache {}: {source}", path.display())]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The first stage when the spec names a lung crop: `image` cut to its lungs by `lungs`, or
/// kept whole with the reason when the lung checks fail. `None` when the spec names no crop.
/// An error when it does but no lung model, or another one than the spec names, is given.
pub fn crop_lungs(
    image: &GrayImage,
    spec: &PreprocessSpec,
    lungs: Option<&dyn LungCropper>,
) -> Result<Option<CropOutcome>, PreprocessError> {
    let Some((model, crop)) = required_lung_model(spec, lungs)? else {
        return Ok(None);
    };
    model
        .crop(image, crop)
        .map(Some)
        .map_err(PreprocessError::LungCrop)
}

/// The lung model and crop the spec asks for: `None` when it names no crop; an error when it
/// does but `lungs` is missing, or is another lung model than the spec names (any will do
/// when the spec names none).
fn required_lung_model<'a, 's>(
    spec: &'s PreprocessSpec,
    lungs: Option<&'a dyn LungCropper>,
) -> Result<Option<(&'a dyn LungCropper, &'s LungCropSpec)>, PreprocessError> {
    let Some(crop) = &spec.lung_crop else {
        return Ok(None);
    };
    let Some(model) = lungs else {
        return Err(PreprocessError::LungCrop(
            "the spec crops to the lungs but no lung model is loaded".into(),
        ));
    };
    let wanted = &crop.lung_model_sha256;
    if !wanted.is_empty() && wanted != model.lung_model_sha256() {
        return Err(PreprocessError::LungCrop(format!(
            "the model was trained on the crops of lung model sha256 {wanted}, but the loaded \
             lung model is sha256 {}",
            model.lung_model_sha256()
        )));
    }
    Ok(Some((model, crop)))
}

/// Brings a decoded image to the spec's input size: resize (antialiased; stretched, or
/// aspect-preserving inside a black letterbox), then CLAHE on the image area. Gray, [0, 1].
/// It does not crop: [`crop_lungs`] comes first when the spec names a lung crop.
pub fn fit(image: &GrayImage, spec: &PreprocessSpec) -> Result<GrayImage, PreprocessError> {
    spec.validate()?;
    if image.pixels.is_empty() {
        return Err(PreprocessError::EmptyImage {
            width: image.width,
            height: image.height,
        });
    }
    let (content_width, content_height) = content_size(image.width, image.height, spec);
    let content = resize::resize(image, content_width, content_height);
    Ok(finish_fit(content, spec))
}

/// The size of the image area inside the spec's input, for a `width` x `height` image.
fn content_size(width: usize, height: usize, spec: &PreprocessSpec) -> (usize, usize) {
    let InputSize {
        width: input_width,
        height: input_height,
    } = spec.input_size;
    match spec.resize {
        ResizeMode::Stretch => (input_width, input_height),
        ResizeMode::Letterbox => letterbox_content(width, height, input_width, input_height),
    }
}

/// The rest of [`fit`] after the resize to [`content_size`]: CLAHE, then the letterbox.
fn finish_fit(mut content: GrayImage, spec: &PreprocessSpec) -> GrayImage {
    let InputSize { width, height } = spec.input_size;
    let (content_width, content_height) = (content.width, content.height);
    if let Some(params) = &spec.clahe {
        // Equalise before padding, so the black bars do not count as image in the histograms.
        content = clahe::clahe(&content, params);
    }
    if (content_width, content_height) == (width, height) {
        content
    } else {
        pad_centred(&content, width, height)
    }
}

/// Finishes a fitted image: optional augmentation, then normalisation into `spec.channels`.
pub fn to_tensor(
    fitted: &GrayImage,
    spec: &PreprocessSpec,
    augment: Option<&AugmentParams>,
) -> Result<ChwTensor, PreprocessError> {
    spec.validate()?;
    let InputSize { width, height } = spec.input_size;
    if (fitted.width, fitted.height) != (width, height) {
        return Err(PreprocessError::NotFitted {
            width: fitted.width,
            height: fitted.height,
            expected_width: width,
            expected_height: height,
        });
    }
    Ok(match augment {
        Some(params) => tensor::normalise(&params.apply(fitted), spec),
        None => tensor::normalise(fitted, spec),
    })
}

/// The whole path for an image in memory: [`fit`], then [`to_tensor`].
pub fn preprocess(
    image: &GrayImage,
    spec: &PreprocessSpec,
    augment: Option<&AugmentParams>,
) -> Result<ChwTensor, PreprocessError> {
    to_tensor(&fit(image, spec)?, spec, augment)
}

/// The whole inference path for a file: decode, then [`preprocess`] without augmentation.
///
/// PNG rows go into the resize as they are decoded, so a large image is never held whole
/// (same result as decoding first: [`resize::StreamedResize`] adds in the same order).
pub fn preprocess_file(
    path: &Path,
    spec: &PreprocessSpec,
    limits: &DecodeLimits,
) -> Result<ChwTensor, PreprocessError> {
    let bytes = read_file(path, limits)?;
    if spec.validate().is_ok()
        && let Some(fitted) = fit_png_stream(&bytes, spec, limits)
    {
        return to_tensor(&fitted, spec, None);
    }
    let decoded = decode_bytes(&bytes, path, limits)?;
    preprocess(&decoded.image, spec, None)
}

/// [`fit`] of a PNG decoded row by row; `None` where the stream does not apply or fails (the
/// caller then decodes the whole image, which names any error). A panic in the decoder is
/// contained here and left for that decode to report.
fn fit_png_stream(bytes: &[u8], spec: &PreprocessSpec, limits: &DecodeLimits) -> Option<GrayImage> {
    catch_unwind(AssertUnwindSafe(|| {
        let mut rows = png_rows(bytes, limits)?;
        let (width, height) = (rows.width(), rows.height());
        if width == 0 || height == 0 {
            return None;
        }
        let (content_width, content_height) = content_size(width, height, spec);
        let mut resize = resize::StreamedResize::new(width, height, content_width, content_height);
        let mut row = vec![0.0f32; width];
        for _ in 0..height {
            rows.next_row(&mut row)?;
            resize.push_row(&row);
        }
        rows.finish()?;
        Some(finish_fit(resize.finish()?, spec))
    }))
    .ok()
    .flatten()
}

/// Size of the image area inside a `width` x `height` letterbox for a `from_width` x
/// `from_height` image: scaled to touch two sides, at least one pixel each way.
fn letterbox_content(
    from_width: usize,
    from_height: usize,
    width: usize,
    height: usize,
) -> (usize, usize) {
    let scale = (width as f64 / from_width as f64).min(height as f64 / from_height as f64);
    let side = |from: usize, limit: usize| ((from as f64 * scale).round() as usize).clamp(1, limit);
    (side(from_width, width), side(from_height, height))
}

/// `content` centred on a black `width` x `height` canvas.
fn pad_centred(content: &GrayImage, width: usize, height: usize) -> GrayImage {
    let mut canvas = GrayImage::filled(width, height, 0.0);
    let (left, top) = ((width - content.width) / 2, (height - content.height) / 2);
    for (y, row) in content.pixels.chunks_exact(content.width).enumerate() {
        let start = (top + y) * width + left;
        canvas.pixels[start..start + content.width].copy_from_slice(row);
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(width: usize, height: usize, resize: ResizeMode) -> PreprocessSpec {
        PreprocessSpec {
            input_size: InputSize { width, height },
            resize,
            ..PreprocessSpec::default()
        }
    }

    #[test]
    fn letterbox_keeps_the_aspect_ratio_and_pads_with_black() {
        let wide = GrayImage::filled(400, 200, 1.0);
        let out = fit(&wide, &spec(100, 100, ResizeMode::Letterbox)).unwrap();
        assert_eq!((out.width, out.height), (100, 100));
        // 100 x 50 of white, centred: rows 25..75.
        assert_eq!(out.get(50, 24), 0.0);
        assert!((out.get(50, 25) - 1.0).abs() < 1e-6);
        assert!((out.get(0, 74) - 1.0).abs() < 1e-6);
        assert_eq!(out.get(50, 75), 0.0);
    }

    #[test]
    fn stretch_fills_the_input() {
        let tall = GrayImage::filled(50, 300, 0.5);
        let out = fit(&tall, &spec(64, 32, ResizeMode::Stretch)).unwrap();
        assert_eq!((out.width, out.height), (64, 32));
        assert!(out.pixels.iter().all(|&p| (p - 0.5).abs() < 1e-6));
    }

    #[test]
    fn extreme_aspect_ratios_keep_at_least_one_pixel() {
        assert_eq!(letterbox_content(10_000, 16, 299, 299), (299, 1));
        assert_eq!(letterbox_content(512, 512, 299, 299), (299, 299));
    }

    #[test]
    fn letterbox_clahe_ignores_the_black_bars() {
        // The image area of a letterboxed, equalised image is exactly the image stretched to
        // that area and equalised: the bars take no part in the histograms.
        let pixels = (0..400 * 200)
            .map(|i| 0.4 + 0.2 * ((i % 400) as f32 / 400.0))
            .collect();
        let wide = GrayImage::new(400, 200, pixels).unwrap();
        let with_clahe = |spec: PreprocessSpec| PreprocessSpec {
            clahe: Some(ClaheParams::default()),
            ..spec
        };
        let boxed = fit(&wide, &with_clahe(spec(100, 100, ResizeMode::Letterbox))).unwrap();
        let area = fit(&wide, &with_clahe(spec(100, 50, ResizeMode::Stretch))).unwrap();
        assert!(boxed.pixels[..100 * 25].iter().all(|&p| p == 0.0));
        assert_eq!(boxed.pixels[100 * 25..100 * 75], area.pixels[..]);
    }

    #[test]
    fn to_tensor_refuses_an_image_of_the_wrong_size() {
        let error = to_tensor(
            &GrayImage::filled(10, 10, 0.0),
            &PreprocessSpec::default(),
            None,
        )
        .unwrap_err();
        assert!(error.to_string().contains("10x10"), "{error}");
    }

    #[test]
    fn empty_images_and_invalid_specs_are_errors_not_panics() {
        let empty = GrayImage::new(0, 0, Vec::new()).unwrap();
        assert!(matches!(
            preprocess(&empty, &PreprocessSpec::default(), None),
            Err(PreprocessError::EmptyImage { .. })
        ));
        let bad = PreprocessSpec {
            channels: 4,
            ..PreprocessSpec::default()
        };
        assert!(matches!(
            preprocess(&GrayImage::filled(20, 20, 0.0), &bad, None),
            Err(PreprocessError::InvalidSpec(_))
        ));
    }

    #[test]
    fn augmentation_is_applied_between_fit_and_normalisation() {
        let pixels = (0..64 * 64).map(|i| (i % 64) as f32 / 63.0).collect();
        let image = GrayImage::new(64, 64, pixels).unwrap();
        let spec = spec(32, 32, ResizeMode::Stretch);
        let shifted = AugmentParams {
            shift_x: 0.25,
            ..AugmentParams::identity()
        };
        let plain = preprocess(&image, &spec, None).unwrap();
        let moved = preprocess(&image, &spec, Some(&shifted)).unwrap();
        let expected =
            to_tensor(&shifted.apply(&fit(&image, &spec).unwrap()), &spec, None).unwrap();
        assert_eq!(moved, expected);
        assert_ne!(moved, plain);
        assert_eq!(
            preprocess(&image, &spec, Some(&AugmentParams::identity())).unwrap(),
            plain
        );
    }

    #[test]
    fn a_streamed_png_fits_to_the_same_bits_as_a_decoded_one() {
        // A textured 16-bit PNG; the reference decodes it whole with the `image` crate.
        let (width, height) = (640u32, 480u32);
        let values =
            image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(width, height, |x, y| {
                image::Luma([((x * 97 + y * 41) % 60_000 + (x * y * 7919) % 5000) as u16])
            });
        let mut bytes = Vec::new();
        values
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        let pixels = values
            .pixels()
            .map(|p| f32::from(p.0[0]) / 65535.0)
            .collect();
        let decoded = GrayImage::new(width as usize, height as usize, pixels).unwrap();
        let specs = [
            PreprocessSpec::default(),
            spec(299, 299, ResizeMode::Letterbox),
            PreprocessSpec {
                clahe: Some(ClaheParams::default()),
                ..spec(224, 224, ResizeMode::Letterbox)
            },
            spec(700, 900, ResizeMode::Stretch),
            spec(640, 480, ResizeMode::Stretch),
        ];
        let bits =
            |image: &GrayImage| -> Vec<u32> { image.pixels.iter().map(|p| p.to_bits()).collect() };
        for spec in specs {
            let streamed = fit_png_stream(&bytes, &spec, &DecodeLimits::default()).unwrap();
            let whole = fit(&decoded, &spec).unwrap();
            assert_eq!(
                (streamed.width, streamed.height),
                (whole.width, whole.height)
            );
            assert!(bits(&streamed) == bits(&whole), "{:?}", spec.input_size);
        }
        // Not a PNG, or a broken one: no stream, and preprocess_file decodes (and reports) whole.
        assert!(
            fit_png_stream(
                b"not an image",
                &PreprocessSpec::default(),
                &DecodeLimits::default()
            )
            .is_none()
        );
        let cut = &bytes[..bytes.len() / 2];
        assert!(
            fit_png_stream(cut, &PreprocessSpec::default(), &DecodeLimits::default()).is_none()
        );
    }
}

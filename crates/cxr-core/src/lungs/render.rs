//! Pictures of a lung mask for people: the mask as a black-and-white PNG, and the lung
//! outline drawn over the X-ray (green when the checks passed, orange when they failed).

use std::io::Cursor;

use super::LungMask;
use super::morphology::erode;
use crate::image::GrayImage;

/// Outline colours: the checks passed / failed.
const PASSED: [u8; 3] = [0, 220, 0];
const FAILED: [u8; 3] = [255, 140, 0];

#[derive(Debug, thiserror::Error)]
#[error("cannot encode the {what} PNG: {source}")]
pub struct RenderError {
    what: &'static str,
    #[source]
    source: image::ImageError,
}

/// The mask as an 8-bit gray PNG, 255 for lung (the layout of the Shenzhen masks).
pub fn mask_png(mask: &LungMask) -> Result<Vec<u8>, RenderError> {
    let bytes: Vec<u8> = mask
        .pixels
        .iter()
        .map(|&p| if p { 255 } else { 0 })
        .collect();
    encode_png(
        "mask",
        &bytes,
        mask.width,
        mask.height,
        image::ExtendedColorType::L8,
    )
}

/// `image` in gray with the mask's outline drawn over it, as an RGB PNG. The mask is scaled
/// to the image when their sizes differ; the line is about 0.4 % of the image's shorter side.
pub fn outline_png(
    image: &GrayImage,
    mask: &LungMask,
    passed: bool,
) -> Result<Vec<u8>, RenderError> {
    let outline = outline(mask, image.width, image.height);
    let colour = outline_colour(passed);
    let mut rgb = Vec::with_capacity(image.pixels.len() * 3);
    for (&gray, &on_line) in image.pixels.iter().zip(&outline) {
        if on_line {
            rgb.extend_from_slice(&colour);
        } else {
            let level = (gray.clamp(0.0, 1.0) * 255.0).round() as u8;
            rgb.extend_from_slice(&[level; 3]);
        }
    }
    encode_png(
        "outline",
        &rgb,
        image.width,
        image.height,
        image::ExtendedColorType::Rgb8,
    )
}

/// The outline alone, `width` x `height`, as an RGBA PNG that is transparent off the line:
/// a layer a web page can show over the X-ray or hide.
pub fn outline_layer_png(
    mask: &LungMask,
    width: usize,
    height: usize,
    passed: bool,
) -> Result<Vec<u8>, RenderError> {
    let [red, green, blue] = outline_colour(passed);
    let rgba: Vec<u8> = outline(mask, width, height)
        .into_iter()
        .flat_map(|on_line| {
            if on_line {
                [red, green, blue, 255]
            } else {
                [0; 4]
            }
        })
        .collect();
    encode_png(
        "outline layer",
        &rgba,
        width,
        height,
        image::ExtendedColorType::Rgba8,
    )
}

fn outline_colour(passed: bool) -> [u8; 3] {
    if passed { PASSED } else { FAILED }
}

/// Which pixels of a `width` x `height` picture lie on the mask's boundary line.
fn outline(mask: &LungMask, width: usize, height: usize) -> Vec<bool> {
    let mask = scale_nearest(mask, width, height);
    let thickness = (width.min(height) / 256).max(1);
    let inner = erode(&mask, thickness);
    mask.pixels
        .iter()
        .zip(&inner.pixels)
        .map(|(&lung, &inside)| lung && !inside)
        .collect()
}

/// `mask` resampled to `width` x `height` by nearest neighbour.
pub fn scale_nearest(mask: &LungMask, width: usize, height: usize) -> LungMask {
    if (mask.width, mask.height) == (width, height) {
        return mask.clone();
    }
    let pixels = (0..height)
        .flat_map(|y| {
            let source_y = (y * mask.height / height.max(1)).min(mask.height - 1);
            (0..width).map(move |x| {
                let source_x = (x * mask.width / width.max(1)).min(mask.width - 1);
                mask.get(source_x, source_y)
            })
        })
        .collect();
    LungMask {
        width,
        height,
        pixels,
    }
}

/// Encodes raw 8-bit pixels as PNG; `what` names the picture in errors.
pub(crate) fn encode_png(
    what: &'static str,
    bytes: &[u8],
    width: usize,
    height: usize,
    colour: image::ExtendedColorType,
) -> Result<Vec<u8>, RenderError> {
    let mut png = Cursor::new(Vec::new());
    // Sizes come from decoded images, which are capped far below u32::MAX pixels a side.
    let (width, height) = (width as u32, height as u32);
    image::write_buffer_with_format(
        &mut png,
        bytes,
        width,
        height,
        colour,
        image::ImageFormat::Png,
    )
    .map_err(|source| RenderError { what, source })?;
    Ok(png.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lungs::components::tests::mask_from;

    #[test]
    fn the_mask_png_decodes_to_the_mask() {
        let mask = mask_from(&["#..", ".##"]);
        let png = mask_png(&mask).unwrap();
        let decoded = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(decoded.as_raw(), &vec![255, 0, 0, 0, 255, 255]);
    }

    #[test]
    fn only_the_mask_border_is_coloured() {
        let mask = mask_from(&[
            ".....", //
            ".###.", //
            ".###.", //
            ".###.", //
            ".....",
        ]);
        let image = GrayImage::filled(5, 5, 0.5);
        let png = outline_png(&image, &mask, true).unwrap();
        let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(decoded.get_pixel(1, 1).0, PASSED);
        assert_eq!(decoded.get_pixel(2, 2).0, [128; 3], "the inside stays gray");
        assert_eq!(decoded.get_pixel(0, 0).0, [128; 3]);
        let failed = outline_png(&image, &mask, false).unwrap();
        let decoded = image::load_from_memory(&failed).unwrap().to_rgb8();
        assert_eq!(decoded.get_pixel(3, 3).0, FAILED);
    }

    #[test]
    fn the_outline_layer_is_transparent_off_the_line() {
        let mask = mask_from(&[".....", ".###.", ".###.", ".###.", "....."]);
        let png = outline_layer_png(&mask, 10, 10, true).unwrap();
        let decoded = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!((decoded.width(), decoded.height()), (10, 10));
        assert_eq!(decoded.get_pixel(2, 2).0, [0, 220, 0, 255]);
        assert_eq!(decoded.get_pixel(5, 5).0[3], 0, "inside the lung");
        assert_eq!(decoded.get_pixel(0, 0).0[3], 0, "outside the lung");
    }

    #[test]
    fn a_smaller_mask_is_scaled_to_the_image() {
        let mask = mask_from(&["#.", ".."]);
        let scaled = scale_nearest(&mask, 4, 4);
        assert_eq!(scaled.area(), 4);
        assert!(scaled.get(1, 1) && !scaled.get(2, 2));
    }
}

//! Heat-map overlays as PNG: the X-ray beside the same X-ray with a heat map blended over it
//! in the jet colour map, a colour bar, and a caption (probability, decision).

use plotters::prelude::*;

use super::ReportError;
use super::canvas::{Canvas, FONT_FAMILY};
use crate::image::GrayImage;
use crate::lungs::RenderError;
use crate::lungs::render::encode_png;
use crate::preprocess::{InputSize, PreprocessSpec, ResizeMode, fit};

/// Longest side of each X-ray panel; larger X-rays are shown scaled down.
const MAX_PANEL_SIDE: usize = 640;
const CAPTION_HEIGHT: u32 = 44;
const LEGEND_WIDTH: u32 = 90;
const GAP: u32 = 8;
/// How opaque the heat map is where it is hottest; cold areas show the X-ray alone.
const MAX_ALPHA: f32 = 0.6;

/// Draws `xray` and `heat` (values in [0, 1], any size: it is stretched over the X-ray) side
/// by side, with `caption` above them.
pub fn overlay_png(
    xray: &GrayImage,
    heat: &GrayImage,
    caption: &str,
) -> Result<Vec<u8>, ReportError> {
    let panel = fit_within(xray, MAX_PANEL_SIDE)?;
    let size = InputSize {
        width: panel.width,
        height: panel.height,
    };
    let heat = resize(heat, size)?;
    let (panel_width, panel_height) = (size.width as u32, size.height as u32);
    let mut canvas = Canvas::white(
        2 * panel_width + GAP + LEGEND_WIDTH,
        panel_height + CAPTION_HEIGHT,
    );
    let overlay_left = panel_width + GAP;
    for y in 0..size.height {
        for x in 0..size.width {
            let gray = panel.get(x, y).clamp(0.0, 1.0);
            let hot = heat.get(x, y).clamp(0.0, 1.0);
            let (px, py) = (x as u32, y as u32 + CAPTION_HEIGHT);
            canvas.put(px, py, [to_byte(gray); 3]);
            let alpha = MAX_ALPHA * hot;
            let colour = jet(hot).map(|c| to_byte((1.0 - alpha) * gray + alpha * c));
            canvas.put(overlay_left + px, py, colour);
        }
    }
    let bar_left = 2 * panel_width + GAP + 12;
    let bar_height = panel_height.saturating_sub(40).max(1);
    for dy in 0..bar_height {
        let colour = jet(1.0 - dy as f32 / bar_height as f32).map(to_byte);
        for dx in 0..18 {
            canvas.put(bar_left + dx, CAPTION_HEIGHT + 20 + dy, colour);
        }
    }
    let caption = caption.to_string();
    canvas.draw("heat-map overlay", |root| {
        let font = |size: u32| (FONT_FAMILY, size).into_font();
        let (bar_left, top) = (bar_left as i32, (CAPTION_HEIGHT + 20) as i32);
        root.draw(&Text::new(caption, (10, 12), font(18)))?;
        root.draw(&Text::new("high", (bar_left + 22, top - 6), font(13)))?;
        root.draw(&Text::new(
            "low",
            (bar_left + 22, top + bar_height as i32 - 10),
            font(13),
        ))?;
        root.draw(&Text::new("attention", (bar_left - 6, top - 22), font(13)))
    })?;
    canvas.to_png()
}

/// `image` scaled down (never up) so that its longer side is at most `max_side`, keeping its
/// aspect ratio: the X-ray a page shows, and the size its layers are drawn at.
pub fn fit_within(image: &GrayImage, max_side: usize) -> Result<GrayImage, ReportError> {
    let scale = (max_side as f64 / image.width.max(image.height).max(1) as f64).min(1.0);
    if scale >= 1.0 {
        return Ok(image.clone());
    }
    let size = InputSize {
        width: ((image.width as f64 * scale).round() as usize).max(1),
        height: ((image.height as f64 * scale).round() as usize).max(1),
    };
    resize(image, size)
}

/// `image` as an 8-bit gray PNG.
pub fn gray_png(image: &GrayImage) -> Result<Vec<u8>, ReportError> {
    let bytes: Vec<u8> = image.pixels.iter().map(|&gray| to_byte(gray)).collect();
    encode_png(
        "X-ray",
        &bytes,
        image.width,
        image.height,
        image::ExtendedColorType::L8,
    )
    .map_err(png_error)
}

/// `heat` (values in [0, 1], any size) stretched to `width` x `height` as an RGBA PNG in the
/// jet colour map, as opaque as [`overlay_png`]'s blend where hot and transparent where cold:
/// a layer a web page can show over the X-ray or hide.
pub fn heat_layer_png(
    heat: &GrayImage,
    width: usize,
    height: usize,
) -> Result<Vec<u8>, ReportError> {
    let heat = resize(heat, InputSize { width, height })?;
    let rgba: Vec<u8> = heat
        .pixels
        .iter()
        .flat_map(|&hot| {
            let hot = hot.clamp(0.0, 1.0);
            let [red, green, blue] = jet(hot).map(to_byte);
            [red, green, blue, to_byte(MAX_ALPHA * hot)]
        })
        .collect();
    encode_png(
        "heat-map layer",
        &rgba,
        width,
        height,
        image::ExtendedColorType::Rgba8,
    )
    .map_err(png_error)
}

fn png_error(error: RenderError) -> ReportError {
    ReportError::Plot {
        what: "PNG encoding",
        error: error.to_string(),
    }
}

/// The one resize of `preprocess`, to an exact size.
fn resize(image: &GrayImage, size: InputSize) -> Result<GrayImage, ReportError> {
    let spec = PreprocessSpec {
        input_size: size,
        resize: ResizeMode::Stretch,
        clahe: None,
        ..PreprocessSpec::default()
    };
    fit(image, &spec).map_err(|error| ReportError::Plot {
        what: "heat-map overlay",
        error: error.to_string(),
    })
}

/// MATLAB's jet: dark blue (0) through cyan, yellow to dark red (1).
fn jet(value: f32) -> [f32; 3] {
    let ramp = |centre: f32| (1.5 - (4.0 * value - centre).abs()).clamp(0.0, 1.0);
    [ramp(3.0), ramp(2.0), ramp(1.0)]
}

fn to_byte(value: f32) -> u8 {
    (value.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heat_layer_is_red_and_opaque_where_hot_and_clear_where_cold() {
        let mut heat = GrayImage::filled(2, 1, 0.0);
        heat.pixels[1] = 1.0;
        let png = heat_layer_png(&heat, 20, 10).unwrap();
        let layer = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!((layer.width(), layer.height()), (20, 10));
        assert_eq!(layer.get_pixel(0, 5).0[3], 0);
        let hot = layer.get_pixel(19, 5).0;
        assert_eq!(hot, [128, 0, 0, 153], "{hot:?}");
    }

    #[test]
    fn large_x_rays_are_scaled_down_to_fit_and_small_ones_kept() {
        let wide = GrayImage::filled(3000, 1500, 0.25);
        let fitted = fit_within(&wide, 1000).unwrap();
        assert_eq!((fitted.width, fitted.height), (1000, 500));
        assert_eq!(fit_within(&fitted, 2000).unwrap(), fitted);
        let png = gray_png(&fitted).unwrap();
        let decoded = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(decoded.get_pixel(10, 10).0, [64]);
    }

    #[test]
    fn jet_runs_from_blue_to_red() {
        assert_eq!(jet(0.0), [0.0, 0.0, 0.5]);
        assert_eq!(jet(0.5), [0.5, 1.0, 0.5]);
        assert_eq!(jet(1.0), [0.5, 0.0, 0.0]);
    }

    #[test]
    fn the_hot_spot_is_red_in_the_overlay_panel_only() {
        let xray = GrayImage::filled(100, 80, 0.5);
        let mut heat = GrayImage::filled(10, 8, 0.0);
        heat.pixels[4 * 10 + 5] = 1.0;
        let png = overlay_png(&xray, &heat, "TB probability 0.91").unwrap();
        let picture = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(picture.width(), 2 * 100 + GAP + LEGEND_WIDTH);
        assert_eq!(picture.height(), 80 + CAPTION_HEIGHT);
        let (x, y) = (55, 45 + CAPTION_HEIGHT);
        let plain = picture.get_pixel(x, y).0;
        let hot = picture.get_pixel(100 + GAP + x, y).0;
        assert_eq!(plain, [128, 128, 128]);
        assert!(hot[0] > hot[2] + 20, "{hot:?}");
        let cold = picture.get_pixel(100 + GAP + 5, 5 + CAPTION_HEIGHT).0;
        assert_eq!(cold, [128, 128, 128]);
    }
}

//! An RGB picture that plotters draws on and that leaves as PNG bytes: the one drawing surface
//! of report plots and heat-map overlays, with the bundled font registered for text.

use std::io::Cursor;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::ReportError;

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/DejaVuSans-LICENSE.txt`), bundled so
/// that text renders the same on machines without system fonts.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name plots ask plotters for.
pub(crate) const FONT_FAMILY: &str = "sans-serif";

/// What a drawing closure returns: plotters' error for a backend borrowing the canvas for `'a`.
pub(crate) type DrawResult<'a> =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

/// A `width` x `height` RGB picture, row-major, 3 bytes a pixel.
pub(crate) struct Canvas {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn white(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            rgb: vec![255; width as usize * height as usize * 3],
        }
    }

    /// Sets one pixel; callers stay inside the canvas.
    pub fn put(&mut self, x: u32, y: u32, rgb: [u8; 3]) {
        let at = (y as usize * self.width as usize + x as usize) * 3;
        self.rgb[at..at + 3].copy_from_slice(&rgb);
    }

    /// Lets plotters draw over the current pixels (`what` names the picture in errors).
    pub fn draw<F>(&mut self, what: &'static str, paint: F) -> Result<(), ReportError>
    where
        F: for<'a> FnOnce(&DrawingArea<BitMapBackend<'a>, Shift>) -> DrawResult<'a>,
    {
        register_font()?;
        let plot_error = |error: String| ReportError::Plot { what, error };
        let backend =
            BitMapBackend::with_buffer_and_format(&mut self.rgb, (self.width, self.height))
                .map_err(|error| plot_error(format!("{error:?}")))?;
        let root = backend.into_drawing_area();
        paint(&root).map_err(|error| plot_error(error.to_string()))?;
        root.present()
            .map_err(|error| plot_error(error.to_string()))
    }

    /// The picture as PNG bytes.
    pub fn to_png(&self) -> Result<Vec<u8>, ReportError> {
        let mut bytes = Cursor::new(Vec::new());
        image::write_buffer_with_format(
            &mut bytes,
            &self.rgb,
            self.width,
            self.height,
            image::ExtendedColorType::Rgb8,
            image::ImageFormat::Png,
        )
        .map_err(|error| ReportError::Plot {
            what: "PNG encoding",
            error: error.to_string(),
        })?;
        Ok(bytes.into_inner())
    }
}

fn register_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    if registered {
        Ok(())
    } else {
        Err(ReportError::Plot {
            what: "font",
            error: "the bundled DejaVu Sans font could not be read".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_text_and_encodes_a_png() {
        let mut canvas = Canvas::white(120, 40);
        canvas
            .draw("test", |root| {
                root.draw(&Text::new(
                    "AUC 0.95",
                    (5, 5),
                    (FONT_FAMILY, 20).into_font(),
                ))
            })
            .unwrap();
        assert!(canvas.rgb.iter().any(|&v| v < 128), "no dark text pixels");
        let png = canvas.to_png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let decoded = image::load_from_memory(&png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (120, 40));
    }
}

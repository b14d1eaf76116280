//! The DICOM grayscale display pipeline (PS3.3 C.11): stored value -> modality rescale ->
//! VOI (explicit LUT, window, or min-max) -> [0, 1] -> MONOCHROME1 inversion.

use dicom_pixeldata::{Rescale, VoiLutFunction, WindowLevel, WindowLevelTransform};

/// How modality values are mapped to display values.
#[derive(Debug)]
pub(super) enum Voi<'a> {
    /// An explicit VOI LUT (first item of the VOI LUT Sequence).
    Table {
        first_mapped: i32,
        entries: &'a [u16],
        /// The entry value that means white.
        white: f64,
    },
    /// Window Center / Width with its VOI LUT Function.
    Window(WindowLevelTransform),
    /// No VOI in the file: the frame's lowest modality value is black, its highest white.
    MinMax { low: f64, high: f64 },
}

impl<'a> Voi<'a> {
    /// An explicit LUT whose entries are `declared_bits` wide.
    ///
    /// Some devices (Agfa CR, for one) declare 16-bit entries for a table that only spans
    /// 12 bits; taken at face value that renders the image nearly black, so the bits the entries
    /// actually use win when they are fewer (the same rule as dicom-pixeldata's own LUT code).
    pub(super) fn table(first_mapped: i32, entries: &'a [u16], declared_bits: u8) -> Option<Self> {
        let largest = *entries.iter().max()?;
        let used_bits = u16::BITS - largest.leading_zeros();
        let declared_bits = u32::from(declared_bits).clamp(1, 16);
        let bits = if used_bits == 0 {
            declared_bits
        } else {
            used_bits.min(declared_bits)
        };
        Some(Self::Table {
            first_mapped,
            entries,
            white: f64::from((1u32 << bits) - 1),
        })
    }

    /// A window, or `None` when its numbers are unusable (not finite, or not positive width).
    pub(super) fn window(window: WindowLevel, function: VoiLutFunction) -> Option<Self> {
        let usable = window.center.is_finite() && window.width.is_finite() && window.width > 0.0;
        usable.then(|| Self::Window(WindowLevelTransform::new(function, window)))
    }

    fn apply(&self, value: f64) -> f64 {
        match self {
            Self::Table {
                first_mapped,
                entries,
                white,
            } => {
                let offset = value.round() - f64::from(*first_mapped);
                let index = offset.clamp(0.0, (entries.len() - 1) as f64) as usize;
                f64::from(entries[index]) / white
            }
            Self::Window(transform) => transform.apply(value, 1.0),
            Self::MinMax { low, high } if high > low => (value - low) / (high - low),
            Self::MinMax { .. } => 0.0,
        }
    }
}

/// The whole stored-value-to-brightness mapping of one frame.
#[derive(Debug)]
pub(super) struct GrayscalePipeline<'a> {
    pub(super) rescale: Rescale,
    pub(super) voi: Voi<'a>,
    /// MONOCHROME1: low values are white.
    pub(super) invert: bool,
}

impl GrayscalePipeline<'_> {
    /// Brightness in [0, 1] of one stored value.
    pub(super) fn apply(&self, stored: i32) -> f32 {
        let shown = self.voi.apply(self.rescale.apply(f64::from(stored)));
        let shown = if shown.is_nan() {
            0.0
        } else {
            shown.clamp(0.0, 1.0)
        };
        (if self.invert { 1.0 - shown } else { shown }) as f32
    }

    /// Brightness of every stored value from `low` to `high`, so that mapping a frame costs one
    /// table look-up per pixel (stored values have at most 16 bits).
    pub(super) fn table(&self, low: i32, high: i32) -> Vec<f32> {
        (low..=high).map(|v| self.apply(v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(voi: Voi<'_>) -> GrayscalePipeline<'_> {
        GrayscalePipeline {
            rescale: Rescale::new(1.0, 0.0),
            voi,
            invert: false,
        }
    }

    #[test]
    fn linear_window_follows_ps3_3() {
        // C.11.2.1.2.1: x <= c - 0.5 - (w-1)/2 -> 0; x > c - 0.5 + (w-1)/2 -> 1
        let window = Voi::window(
            WindowLevel {
                center: 100.0,
                width: 51.0,
            },
            VoiLutFunction::Linear,
        )
        .unwrap();
        let p = pipeline(window);
        assert_eq!(p.apply(74), 0.0);
        assert_eq!(p.apply(125), 1.0);
        let mid = f64::from(p.apply(100));
        assert!((mid - ((100.0 - 99.5) / 50.0 + 0.5)).abs() < 1e-6);
    }

    #[test]
    fn sigmoid_window_is_half_at_center() {
        let window = Voi::window(
            WindowLevel {
                center: 10.0,
                width: 4.0,
            },
            VoiLutFunction::Sigmoid,
        )
        .unwrap();
        let p = pipeline(window);
        assert!((p.apply(10) - 0.5).abs() < 1e-6);
        assert!((f64::from(p.apply(11)) - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-6);
    }

    #[test]
    fn unusable_windows_are_refused() {
        let nan = WindowLevel {
            center: f64::NAN,
            width: 10.0,
        };
        let flat = WindowLevel {
            center: 0.0,
            width: 0.0,
        };
        assert!(Voi::window(nan, VoiLutFunction::Linear).is_none());
        assert!(Voi::window(flat, VoiLutFunction::Linear).is_none());
    }

    #[test]
    fn rescale_then_min_max_then_inversion() {
        let p = GrayscalePipeline {
            rescale: Rescale::new(2.0, -1024.0),
            voi: Voi::MinMax {
                low: -1024.0,
                high: -824.0,
            },
            invert: true,
        };
        for (v, shown) in p.table(0, 100).into_iter().enumerate() {
            assert!(
                (shown - (1.0 - v as f32 / 100.0)).abs() < 1e-6,
                "{v}: {shown}"
            );
        }
    }

    #[test]
    fn constant_frames_map_to_black() {
        let p = pipeline(Voi::MinMax {
            low: 5.0,
            high: 5.0,
        });
        assert_eq!(p.apply(5), 0.0);
    }

    #[test]
    fn lut_clamps_and_uses_the_bits_it_spans() {
        let entries = [0u16, 1024, 2048, 4095];
        let p = pipeline(Voi::table(10, &entries, 16).unwrap());
        assert_eq!(p.apply(-5), 0.0);
        assert!((p.apply(12) - 2048.0 / 4095.0).abs() < 1e-6);
        assert_eq!(p.apply(13), 1.0);
        assert_eq!(p.apply(1000), 1.0);
        assert!(Voi::table(0, &[], 8).is_none());
    }
}

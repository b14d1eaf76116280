//! How well a predicted lung mask matches a reference one: Dice and intersection over union,
//! the two figures lung segmentation papers report.

use serde::{Deserialize, Serialize};

use super::LungMask;

/// Overlap of a predicted mask with a reference mask of the same size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    /// 2 |A ∩ B| / (|A| + |B|).
    pub dice: f64,
    /// |A ∩ B| / |A ∪ B|.
    pub iou: f64,
}

impl Overlap {
    /// `None` when the sizes differ. Two empty masks agree perfectly.
    pub fn between(predicted: &LungMask, reference: &LungMask) -> Option<Self> {
        if (predicted.width, predicted.height) != (reference.width, reference.height) {
            return None;
        }
        let (mut both, mut either, mut total) = (0usize, 0usize, 0usize);
        for (&p, &r) in predicted.pixels.iter().zip(&reference.pixels) {
            both += usize::from(p && r);
            either += usize::from(p || r);
            total += usize::from(p) + usize::from(r);
        }
        if either == 0 {
            return Some(Self {
                dice: 1.0,
                iou: 1.0,
            });
        }
        Some(Self {
            dice: 2.0 * both as f64 / total as f64,
            iou: both as f64 / either as f64,
        })
    }

    /// The mean of several overlaps (`None` for none).
    pub fn mean(overlaps: &[Self]) -> Option<Self> {
        let n = overlaps.len() as f64;
        (!overlaps.is_empty()).then(|| Self {
            dice: overlaps.iter().map(|o| o.dice).sum::<f64>() / n,
            iou: overlaps.iter().map(|o| o.iou).sum::<f64>() / n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(bits: &[u8]) -> LungMask {
        LungMask {
            width: bits.len(),
            height: 1,
            pixels: bits.iter().map(|&b| b == 1).collect(),
        }
    }

    #[test]
    fn half_overlapping_masks_score_as_the_formulas_say() {
        let overlap = Overlap::between(&mask(&[1, 1, 0, 0]), &mask(&[0, 1, 1, 0])).unwrap();
        assert_eq!(overlap.dice, 0.5);
        assert!((overlap.iou - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn identical_masks_score_one_and_disjoint_zero() {
        let a = mask(&[1, 0, 1, 0]);
        assert_eq!(Overlap::between(&a, &a).map(|o| o.dice), Some(1.0));
        let disjoint = Overlap::between(&a, &mask(&[0, 1, 0, 1])).unwrap();
        assert_eq!((disjoint.dice, disjoint.iou), (0.0, 0.0));
        assert!(Overlap::between(&a, &mask(&[1, 0])).is_none());
    }

    #[test]
    fn the_mean_averages_each_figure() {
        let mean = Overlap::mean(&[
            Overlap {
                dice: 1.0,
                iou: 1.0,
            },
            Overlap {
                dice: 0.5,
                iou: 0.25,
            },
        ])
        .unwrap();
        assert_eq!((mean.dice, mean.iou), (0.75, 0.625));
        assert!(Overlap::mean(&[]).is_none());
    }
}

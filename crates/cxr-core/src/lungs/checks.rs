//! Sanity checks of a cleaned lung mask: plausible lung area, two lungs, one on each side,
//! of comparable size. A mask that fails is not used for cropping (the caller says so).

use serde::{Deserialize, Serialize};

use super::LungMask;
use super::components::components;

/// Limits the checks apply. Defaults suit frontal chest X-rays framed on the chest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckLimits {
    /// Lung area as a fraction of the image: below `min_area` the network found no lungs,
    /// above `max_area` it took other tissue for lung.
    pub min_area: f64,
    pub max_area: f64,
    /// Smaller lung over larger lung: the left lung is smaller (the heart), but not this much.
    pub min_balance: f64,
}

impl Default for CheckLimits {
    fn default() -> Self {
        Self {
            min_area: 0.05,
            max_area: 0.65,
            min_balance: 0.25,
        }
    }
}

/// One failed check, with the measured value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum CheckFailure {
    AreaTooSmall {
        fraction: f64,
        min: f64,
    },
    AreaTooLarge {
        fraction: f64,
        max: f64,
    },
    NotTwoLungs {
        found: usize,
    },
    /// Both regions' centres are on the same half of the image.
    SameSide,
    Unbalanced {
        ratio: f64,
        min: f64,
    },
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AreaTooSmall { fraction, min } => write!(
                f,
                "lungs cover {:.1} % of the image, less than {:.1} %",
                fraction * 100.0,
                min * 100.0
            ),
            Self::AreaTooLarge { fraction, max } => write!(
                f,
                "lungs cover {:.1} % of the image, more than {:.1} %",
                fraction * 100.0,
                max * 100.0
            ),
            Self::NotTwoLungs { found } => write!(f, "{found} lung regions found, not 2"),
            Self::SameSide => f.write_str("both lung regions lie on the same side"),
            Self::Unbalanced { ratio, min } => write!(
                f,
                "one lung is {:.0} % of the other's size, less than {:.0} %",
                ratio * 100.0,
                min * 100.0
            ),
        }
    }
}

/// What the checks measured and which failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LungCheck {
    /// Lung pixels over image pixels.
    pub area_fraction: f64,
    pub regions: usize,
    /// Smaller region's area over the larger's; `None` with fewer than two regions.
    pub balance: Option<f64>,
    pub failures: Vec<CheckFailure>,
}

impl LungCheck {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The failures as one sentence, for messages and reports.
    pub fn summary(&self) -> String {
        let reasons: Vec<String> = self.failures.iter().map(ToString::to_string).collect();
        reasons.join("; ")
    }
}

/// Checks a cleaned mask against `limits`.
pub fn check(mask: &LungMask, limits: &CheckLimits) -> LungCheck {
    let area_fraction = mask.area() as f64 / mask.pixels.len().max(1) as f64;
    let regions = components(mask, true);
    let mut failures = Vec::new();
    if area_fraction < limits.min_area {
        failures.push(CheckFailure::AreaTooSmall {
            fraction: area_fraction,
            min: limits.min_area,
        });
    }
    if area_fraction > limits.max_area {
        failures.push(CheckFailure::AreaTooLarge {
            fraction: area_fraction,
            max: limits.max_area,
        });
    }
    if regions.len() != 2 {
        failures.push(CheckFailure::NotTwoLungs {
            found: regions.len(),
        });
    }
    let balance = match regions.as_slice() {
        [larger, smaller, ..] => Some(smaller.area() as f64 / larger.area() as f64),
        _ => None,
    };
    if let [first, second] = regions.as_slice() {
        let middle = mask.width as f64 / 2.0;
        let left_of_middle = |x: f64| x < middle;
        if left_of_middle(first.centroid_x(mask.width))
            == left_of_middle(second.centroid_x(mask.width))
        {
            failures.push(CheckFailure::SameSide);
        }
    }
    if let Some(ratio) = balance
        && ratio < limits.min_balance
    {
        failures.push(CheckFailure::Unbalanced {
            ratio,
            min: limits.min_balance,
        });
    }
    LungCheck {
        area_fraction,
        regions: regions.len(),
        balance,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lungs::components::tests::mask_from;

    fn limits() -> CheckLimits {
        CheckLimits {
            min_area: 0.1,
            max_area: 0.6,
            min_balance: 0.5,
        }
    }

    #[test]
    fn two_balanced_lungs_pass() {
        let mask = mask_from(&[
            "..........", //
            ".###..###.", //
            ".###..##..", //
            "..........",
        ]);
        let result = check(&mask, &limits());
        assert!(result.passed(), "{}", result.summary());
        assert_eq!(result.regions, 2);
        assert_eq!(result.area_fraction, 11.0 / 40.0);
        assert_eq!(result.balance, Some(5.0 / 6.0));
    }

    #[test]
    fn each_failure_is_named() {
        let one_lung = mask_from(&[".###......", ".###......", "..........", ".........."]);
        let result = check(&one_lung, &limits());
        assert_eq!(
            result.failures,
            vec![CheckFailure::NotTwoLungs { found: 1 }]
        );

        let same_side = mask_from(&["##........", "..........", "##........", ".........."]);
        let failures = check(&same_side, &CheckLimits::default()).failures;
        assert!(failures.contains(&CheckFailure::SameSide), "{failures:?}");

        let unbalanced = mask_from(&["####....#.", "####......", "..........", ".........."]);
        let result = check(&unbalanced, &limits());
        assert!(matches!(
            result.failures.as_slice(),
            [CheckFailure::Unbalanced { .. }]
        ));
        assert!(
            result.summary().starts_with("one lung is 12"),
            "{}",
            result.summary()
        );

        let empty = mask_from(&["....", "...."]);
        let failures = check(&empty, &limits()).failures;
        assert!(matches!(failures[0], CheckFailure::AreaTooSmall { .. }));
        let full = mask_from(&["#####", "#####"]);
        assert!(matches!(
            check(&full, &limits()).failures[0],
            CheckFailure::AreaTooLarge { .. }
        ));
    }
}

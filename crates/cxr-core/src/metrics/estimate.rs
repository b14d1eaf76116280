//! Point estimates with confidence intervals: the confidence level, the estimate type every
//! metric reports, and proportions with Wilson score intervals.

use serde::{Deserialize, Serialize};

use super::{MetricsError, normal};

/// A two-sided confidence level strictly between 0 and 1 (0.95 by default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceLevel(f64);

impl ConfidenceLevel {
    pub fn new(level: f64) -> Result<Self, MetricsError> {
        if level > 0.0 && level < 1.0 {
            Ok(Self(level))
        } else {
            Err(MetricsError::InvalidParameter {
                name: "confidence level",
                value: level,
                expected: "a probability strictly between 0 and 1, e.g. 0.95",
            })
        }
    }

    pub fn level(self) -> f64 {
        self.0
    }

    /// Probability left outside the interval on each side, e.g. 0.025 for 95 %.
    pub fn tail_probability(self) -> f64 {
        (1.0 - self.0) / 2.0
    }

    /// The standard normal critical value, e.g. 1.959964 for 95 %.
    pub fn z(self) -> f64 {
        -normal::quantile(self.tail_probability())
    }
}

impl Default for ConfidenceLevel {
    fn default() -> Self {
        Self(0.95)
    }
}

/// A point estimate with the bounds of its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
}

impl Estimate {
    pub fn width(&self) -> f64 {
        self.upper - self.lower
    }

    pub fn contains(&self, x: f64) -> bool {
        self.lower <= x && x <= self.upper
    }
}

/// `successes` out of `trials`, e.g. true positives out of all positive cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proportion {
    pub successes: usize,
    pub trials: usize,
}

impl Proportion {
    /// The observed fraction; `None` when there were no trials.
    pub fn value(self) -> Option<f64> {
        (self.trials > 0).then(|| self.successes as f64 / self.trials as f64)
    }

    /// The fraction with its Wilson score interval; `None` when there were no trials.
    ///
    /// Wilson rather than the Wald interval because Wald collapses to a zero-width interval
    /// at 0 % and 100 %, which sensitivities on small test sets often are; Wilson rather than
    /// Clopper-Pearson because the latter is conservative (wider than its nominal level).
    pub fn wilson(self, confidence: ConfidenceLevel) -> Option<Estimate> {
        let value = self.value()?;
        let n = self.trials as f64;
        let z = confidence.z();
        let z2_over_n = z * z / n;
        let centre = (value + z2_over_n / 2.0) / (1.0 + z2_over_n);
        let half_width =
            z / (1.0 + z2_over_n) * (value * (1.0 - value) / n + z2_over_n / (4.0 * n)).sqrt();
        Some(Estimate {
            value,
            lower: (centre - half_width).max(0.0),
            upper: (centre + half_width).min(1.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_level_rejects_values_outside_the_open_unit_interval() {
        for level in [0.0, 1.0, 95.0, f64::NAN] {
            assert!(ConfidenceLevel::new(level).is_err(), "{level}");
        }
        let level = ConfidenceLevel::new(0.9).unwrap();
        assert!((level.tail_probability() - 0.05).abs() < 1e-15);
        assert!((ConfidenceLevel::default().z() - 1.959963984540054).abs() < 1e-13);
    }

    #[test]
    fn wilson_interval_stays_inside_zero_one_at_the_extremes() {
        let all = Proportion {
            successes: 10,
            trials: 10,
        }
        .wilson(ConfidenceLevel::default());
        let all = all.unwrap();
        assert_eq!(all.value, 1.0);
        assert_eq!(all.upper, 1.0);
        assert!(all.lower > 0.6 && all.lower < 0.8, "{all:?}");
        let none = Proportion {
            successes: 0,
            trials: 10,
        }
        .wilson(ConfidenceLevel::default());
        assert_eq!(none.unwrap().lower, 0.0);
    }

    #[test]
    fn no_trials_means_no_estimate() {
        let empty = Proportion {
            successes: 0,
            trials: 0,
        };
        assert_eq!(empty.value(), None);
        assert_eq!(empty.wilson(ConfidenceLevel::default()), None);
    }
}

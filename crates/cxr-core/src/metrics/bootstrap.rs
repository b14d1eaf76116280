//! Seeded, stratified bootstrap confidence intervals (percentile method) for any metric of
//! scores and labels: AUC, or sensitivity, PPV, F1... at a fixed threshold.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{ConfidenceLevel, Estimate, MetricsError, check_class_counts, check_scores, roc_curve};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapConfig {
    /// How many resampled data sets to draw (2000 by default).
    pub resamples: usize,
    /// Seed of the ChaCha8 generator: the same seed gives the same interval.
    pub seed: u64,
    pub confidence: ConfidenceLevel,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            resamples: 2000,
            seed: 0,
            confidence: ConfidenceLevel::default(),
        }
    }
}

/// A metric on the original cases, with the percentile interval of its resampled values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapEstimate {
    pub estimate: Estimate,
    /// Standard deviation of the resampled values.
    pub std_error: f64,
    /// Resamples on which the metric was defined.
    pub resamples_used: usize,
    /// Resamples on which the metric was undefined (e.g. PPV with nothing predicted positive).
    pub resamples_skipped: usize,
}

/// Bootstraps `metric`, which returns `None` where it is undefined.
///
/// Stratified: each resample draws, with replacement, as many positives from the positives
/// and as many negatives from the negatives as the original has, so class balance (and with
/// it the meaning of sensitivity, specificity and AUC) is the same in every resample. The
/// interval is the metric's (1 - level) / 2 and (1 + level) / 2 quantiles over resamples,
/// interpolated linearly (numpy's default percentile).
pub fn bootstrap_ci<F>(
    scores: &[f64],
    labels: &[bool],
    config: &BootstrapConfig,
    metric: F,
) -> Result<BootstrapEstimate, MetricsError>
where
    F: Fn(&[f64], &[bool]) -> Option<f64>,
{
    const METRIC: &str = "bootstrap";
    check_scores(METRIC, scores, labels)?;
    if config.resamples == 0 {
        return Err(MetricsError::InvalidParameter {
            name: "bootstrap resamples",
            value: 0.0,
            expected: "at least 1 (2000 is usual)",
        });
    }
    let value = metric(scores, labels).ok_or(MetricsError::Undefined {
        metric: "the bootstrapped metric",
    })?;
    let positives: Vec<usize> = (0..labels.len()).filter(|&i| labels[i]).collect();
    let negatives: Vec<usize> = (0..labels.len()).filter(|&i| !labels[i]).collect();
    // Labels never change under stratified resampling: positives first, then negatives.
    let resampled_labels: Vec<bool> = std::iter::repeat_n(true, positives.len())
        .chain(std::iter::repeat_n(false, negatives.len()))
        .collect();
    let mut resampled_scores = Vec::with_capacity(scores.len());
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut values = Vec::with_capacity(config.resamples);
    for _ in 0..config.resamples {
        resampled_scores.clear();
        for class in [&positives, &negatives] {
            for _ in 0..class.len() {
                resampled_scores.push(scores[class[rng.random_range(0..class.len())]]);
            }
        }
        values.extend(metric(&resampled_scores, &resampled_labels));
    }
    if values.is_empty() {
        return Err(MetricsError::Undefined {
            metric: "the bootstrapped metric, on every resample,",
        });
    }
    values.sort_by(f64::total_cmp);
    let tail = config.confidence.tail_probability();
    Ok(BootstrapEstimate {
        estimate: Estimate {
            value,
            lower: percentile(&values, tail),
            upper: percentile(&values, 1.0 - tail),
        },
        std_error: standard_deviation(&values),
        resamples_used: values.len(),
        resamples_skipped: config.resamples - values.len(),
    })
}

/// Bootstrap interval of the ROC AUC; needs both classes.
pub fn bootstrap_auc(
    scores: &[f64],
    labels: &[bool],
    config: &BootstrapConfig,
) -> Result<BootstrapEstimate, MetricsError> {
    check_scores("bootstrap AUC", scores, labels)?;
    check_class_counts("bootstrap AUC", labels, (1, 1))?;
    bootstrap_ci(scores, labels, config, |scores, labels| {
        roc_curve(scores, labels).ok().map(|curve| curve.auc())
    })
}

/// The `q` quantile (0 <= q <= 1) of non-empty ascending `sorted`, interpolating linearly
/// between order statistics.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

fn standard_deviation(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let squares: f64 = values.iter().map(|value| (value - mean).powi(2)).sum();
    (squares / (n - 1.0)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ConfusionMatrix;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let sorted = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 1.0), 8.0);
        assert_eq!(percentile(&sorted, 0.5), 3.0);
        assert!((percentile(&sorted, 0.025) - 1.075).abs() < 1e-15);
    }

    #[test]
    fn keeps_class_counts_in_every_resample() {
        let scores = [0.9, 0.1, 0.8, 0.3, 0.2];
        let labels = [true, false, true, false, false];
        let config = BootstrapConfig {
            resamples: 50,
            ..Default::default()
        };
        let positives =
            |_: &[f64], labels: &[bool]| Some(labels.iter().filter(|&&label| label).count() as f64);
        let estimate = bootstrap_ci(&scores, &labels, &config, positives).unwrap();
        assert_eq!(
            (estimate.estimate.lower, estimate.estimate.upper),
            (2.0, 2.0)
        );
    }

    #[test]
    fn skips_resamples_where_the_metric_is_undefined() {
        // PPV at 0.85 is defined only when the resample contains the 0.9 case.
        let scores = [0.9, 0.8, 0.1, 0.3];
        let labels = [true, true, false, false];
        let config = BootstrapConfig {
            resamples: 200,
            ..Default::default()
        };
        let ppv = |scores: &[f64], labels: &[bool]| {
            ConfusionMatrix::at_threshold(scores, labels, 0.85)
                .ok()?
                .ppv()
                .value()
        };
        let estimate = bootstrap_ci(&scores, &labels, &config, ppv).unwrap();
        assert!(estimate.resamples_skipped > 20 && estimate.resamples_used > 100);
        assert_eq!(estimate.resamples_used + estimate.resamples_skipped, 200);
    }

    #[test]
    fn rejects_zero_resamples_and_an_undefined_estimate() {
        let config = BootstrapConfig {
            resamples: 0,
            ..Default::default()
        };
        let error = bootstrap_auc(&[0.1, 0.9], &[false, true], &config).unwrap_err();
        assert!(matches!(error, MetricsError::InvalidParameter { .. }));
        let error = bootstrap_ci(&[0.1], &[true], &BootstrapConfig::default(), |_, _| None);
        assert!(matches!(error, Err(MetricsError::Undefined { .. })));
    }
}

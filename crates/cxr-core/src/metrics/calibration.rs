//! How well predicted probabilities match observed frequencies: the Brier score, reliability
//! diagram data (scikit-learn's `calibration_curve`, uniform bins) and expected calibration error.

use serde::{Deserialize, Serialize};

use super::{MetricsError, check_scores};

/// The usual number of equal-width bins for reliability diagrams and ECE.
pub const DEFAULT_CALIBRATION_BINS: usize = 10;

/// Mean squared difference between the predicted probability and the outcome (0 or 1).
pub fn brier_score(probabilities: &[f64], labels: &[bool]) -> Result<f64, MetricsError> {
    check_probabilities("Brier score", probabilities, labels)?;
    let squares: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &label)| (p - f64::from(u8::from(label))).powi(2))
        .sum();
    Ok(squares / probabilities.len() as f64)
}

/// One equal-width bin of predicted probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    /// Cases whose probability fell in this bin.
    pub count: usize,
    /// Mean predicted probability of those cases; `None` for an empty bin.
    pub mean_predicted: Option<f64>,
    /// Fraction of those cases that are positive; `None` for an empty bin.
    pub observed_fraction: Option<f64>,
}

/// All bins in ascending order, empty ones included so that plots keep a fixed x axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityDiagram {
    pub bins: Vec<ReliabilityBin>,
}

/// Sorts cases into `bins` equal-width bins of [0, 1].
///
/// A probability on an inner edge goes to the bin below it (bins are (lower, upper], the
/// first [0, upper]), and edges are computed as numpy's `linspace` does, so bin membership
/// is exactly scikit-learn's `calibration_curve(strategy="uniform")`.
pub fn reliability_diagram(
    probabilities: &[f64],
    labels: &[bool],
    bins: usize,
) -> Result<ReliabilityDiagram, MetricsError> {
    check_probabilities("reliability diagram", probabilities, labels)?;
    if bins == 0 {
        return Err(MetricsError::InvalidParameter {
            name: "calibration bins",
            value: 0.0,
            expected: "at least 1 (10 is usual)",
        });
    }
    let width = 1.0 / bins as f64;
    let edges: Vec<f64> = (0..bins).map(|k| k as f64 * width).chain([1.0]).collect();
    let inner_edges = &edges[1..bins];
    let mut counts = vec![0_usize; bins];
    let mut probability_sums = vec![0.0; bins];
    let mut positive_counts = vec![0_usize; bins];
    for (&p, &label) in probabilities.iter().zip(labels) {
        let bin = inner_edges.partition_point(|&edge| edge < p);
        counts[bin] += 1;
        probability_sums[bin] += p;
        positive_counts[bin] += usize::from(label);
    }
    let bins = (0..bins)
        .map(|b| {
            let mean = |total: f64| (counts[b] > 0).then(|| total / counts[b] as f64);
            ReliabilityBin {
                lower: edges[b],
                upper: edges[b + 1],
                count: counts[b],
                mean_predicted: mean(probability_sums[b]),
                observed_fraction: mean(positive_counts[b] as f64),
            }
        })
        .collect();
    Ok(ReliabilityDiagram { bins })
}

impl ReliabilityDiagram {
    /// Expected calibration error: `sum over bins of |observed - predicted| * count / n`.
    pub fn expected_calibration_error(&self) -> f64 {
        let cases: usize = self.bins.iter().map(|bin| bin.count).sum();
        self.bins
            .iter()
            .filter_map(|bin| {
                let gap = (bin.observed_fraction? - bin.mean_predicted?).abs();
                Some(gap * bin.count as f64 / cases as f64)
            })
            .sum()
    }
}

fn check_probabilities(
    metric: &'static str,
    probabilities: &[f64],
    labels: &[bool],
) -> Result<(), MetricsError> {
    check_scores(metric, probabilities, labels)?;
    match probabilities.iter().position(|p| !(0.0..=1.0).contains(p)) {
        Some(index) => Err(MetricsError::NotAProbability {
            metric,
            index,
            value: probabilities[index],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brier_score_of_confident_predictions() {
        assert_eq!(brier_score(&[1.0, 0.0], &[true, false]), Ok(0.0));
        assert_eq!(brier_score(&[0.0, 1.0], &[true, false]), Ok(1.0));
        assert_eq!(brier_score(&[0.5, 0.5], &[true, false]), Ok(0.25));
    }

    #[test]
    fn probabilities_on_an_edge_go_to_the_lower_bin() {
        let diagram = reliability_diagram(&[0.0, 0.5, 0.75, 1.0], &[false; 4], 2).unwrap();
        let counts: Vec<usize> = diagram.bins.iter().map(|bin| bin.count).collect();
        assert_eq!(counts, vec![2, 2]);
        assert_eq!(diagram.bins[1].mean_predicted, Some(0.875));
        assert_eq!((diagram.bins[1].lower, diagram.bins[1].upper), (0.5, 1.0));
    }

    #[test]
    fn ece_weights_each_bin_gap_by_its_share_of_cases() {
        // Bin [0, 0.5]: predicted 0.2, observed 0; bin (0.5, 1]: predicted 0.9, observed 0.5.
        let diagram = reliability_diagram(&[0.2, 0.9, 0.9], &[false, true, false], 2).unwrap();
        let expected = 0.2 / 3.0 + 0.4 * 2.0 / 3.0;
        assert!((diagram.expected_calibration_error() - expected).abs() < 1e-15);
    }

    #[test]
    fn empty_bins_have_no_means() {
        let diagram = reliability_diagram(&[0.05], &[true], 10).unwrap();
        assert_eq!(diagram.bins.len(), 10);
        assert_eq!(diagram.bins[9].count, 0);
        assert_eq!(diagram.bins[9].observed_fraction, None);
    }

    #[test]
    fn rejects_values_outside_zero_one_and_zero_bins() {
        let error = brier_score(&[0.5, 1.2], &[true, false]).unwrap_err();
        assert!(error.to_string().starts_with("score 1 is 1.2"));
        let error = reliability_diagram(&[0.5], &[true], 0).unwrap_err();
        assert!(matches!(error, MetricsError::InvalidParameter { .. }));
    }
}

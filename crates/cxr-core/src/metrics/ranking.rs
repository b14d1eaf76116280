//! Cumulative true- and false-positive counts at every distinct score, from the highest down:
//! the shared core of the ROC and precision-recall curves (scikit-learn's `_binary_clf_curve`).

/// At `thresholds[k]` (distinct scores, descending), predicting `score >= thresholds[k]`
/// positive yields `true_positives[k]` and `false_positives[k]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ThresholdCounts {
    pub thresholds: Vec<f64>,
    pub true_positives: Vec<usize>,
    pub false_positives: Vec<usize>,
}

impl ThresholdCounts {
    /// Expects validated input (see `check_scores`): finite scores, one label each.
    pub fn new(scores: &[f64], labels: &[bool]) -> Self {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut counts = Self {
            thresholds: Vec::new(),
            true_positives: Vec::new(),
            false_positives: Vec::new(),
        };
        let (mut true_positives, mut false_positives) = (0, 0);
        for (rank, &case) in order.iter().enumerate() {
            if labels[case] {
                true_positives += 1;
            } else {
                false_positives += 1;
            }
            // Close a group at the last case of each run of equal scores; `!=` rather than
            // total_cmp so that -0.0 and 0.0 count as one score, as in numpy.
            let group_ends = order
                .get(rank + 1)
                .is_none_or(|&next| scores[next] != scores[case]);
            if group_ends {
                counts.thresholds.push(scores[case]);
                counts.true_positives.push(true_positives);
                counts.false_positives.push(false_positives);
            }
        }
        counts
    }
}

/// Midranks (1-based ranks, ties sharing their mean rank) of `values` in ascending order.
pub(crate) fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Ranks start..end (0-based) share the mean of the 1-based ranks start+1..=end.
        let midrank = (start + end + 1) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = midrank;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_tied_scores_into_one_threshold() {
        let counts = ThresholdCounts::new(
            &[0.2, 0.8, 0.5, 0.8, -0.0, 0.0],
            &[false, true, true, false, true, false],
        );
        assert_eq!(counts.thresholds, vec![0.8, 0.5, 0.2, 0.0]);
        assert_eq!(counts.true_positives, vec![1, 2, 2, 3]);
        assert_eq!(counts.false_positives, vec![1, 1, 2, 3]);
    }

    #[test]
    fn midranks_average_ties() {
        assert_eq!(
            midranks(&[3.0, 1.0, 3.0, 2.0, 3.0]),
            vec![4.0, 1.0, 4.0, 2.0, 4.0]
        );
        assert_eq!(midranks(&[]), Vec::<f64>::new());
    }
}

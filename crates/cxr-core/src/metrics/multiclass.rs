//! Figures of a classifier over more than two classes: one-vs-rest AUC per class (DeLong CIs)
//! and the confusion matrix of the most probable class.

use serde::{Deserialize, Serialize};

use super::{ConfidenceLevel, Estimate, MetricsError, delong_auc};

/// One class against the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneVsRest {
    pub class: String,
    /// Images of this class.
    pub images: usize,
    /// `None` when there are fewer than two images of this class or of the rest.
    pub auc: Option<Estimate>,
}

/// Per-class figures of one set of images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassFigures {
    /// What was measured on what, e.g. "5-fold cross-validation, pooled (562 images)".
    pub name: String,
    pub images: usize,
    pub one_vs_rest: Vec<OneVsRest>,
    /// Share of images whose most probable class is their class.
    pub accuracy: f64,
    /// `confusion[true class][predicted class]`: image counts.
    pub confusion: Vec<Vec<usize>>,
}

impl std::fmt::Display for ClassFigures {
    /// A few lines for a terminal: accuracy, one-vs-rest AUC per class, the confusion matrix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: most probable class right for {:.3}",
            self.name, self.accuracy
        )?;
        let width = self
            .one_vs_rest
            .iter()
            .map(|c| c.class.len())
            .max()
            .unwrap_or(0)
            .max(5);
        write!(
            f,
            "  {:<width$} {:>6}  {:<22}",
            "class", "images", "AUC one vs rest"
        )?;
        for class in &self.one_vs_rest {
            write!(f, " {:>width$}", class.class)?;
        }
        writeln!(f, "   <- called")?;
        for (class, row) in self.one_vs_rest.iter().zip(&self.confusion) {
            let auc = class.auc.map_or("-".to_string(), |e| {
                format!("{:.3} [{:.3}, {:.3}]", e.value, e.lower, e.upper)
            });
            write!(
                f,
                "  {:<width$} {:>6}  {auc:<22}",
                class.class, class.images
            )?;
            for count in row {
                write!(f, " {count:>width$}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// The class a row of probabilities calls: the most probable, ties going to the later class
/// (as a binary score of exactly 0.5 counts as positive).
pub fn predicted_class(probabilities: &[f64]) -> usize {
    let mut best = 0;
    for (class, &p) in probabilities.iter().enumerate() {
        if p >= probabilities[best] {
            best = class;
        }
    }
    best
}

/// Figures of `probabilities` (one row per image, one column per class of `class_names`)
/// against the true classes `labels`.
pub fn class_figures(
    name: &str,
    class_names: &[String],
    probabilities: &[Vec<f64>],
    labels: &[usize],
) -> Result<ClassFigures, MetricsError> {
    let metric = "per-class figures";
    if probabilities.len() != labels.len() {
        return Err(MetricsError::LengthMismatch {
            metric,
            scores: probabilities.len(),
            labels: labels.len(),
        });
    }
    if labels.is_empty() {
        return Err(MetricsError::Empty { metric });
    }
    let classes = class_names.len();
    if let Some(index) = probabilities.iter().position(|row| row.len() != classes) {
        return Err(MetricsError::LengthMismatch {
            metric,
            scores: probabilities[index].len(),
            labels: classes,
        });
    }
    if let Some(&label) = labels.iter().find(|&&label| label >= classes) {
        return Err(MetricsError::InvalidParameter {
            name: "label",
            value: label as f64,
            expected: "a class index below the number of classes",
        });
    }
    let mut confusion = vec![vec![0; classes]; classes];
    for (row, &label) in probabilities.iter().zip(labels) {
        confusion[label][predicted_class(row)] += 1;
    }
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let mut one_vs_rest = Vec::with_capacity(classes);
    for (class, name) in class_names.iter().enumerate() {
        let scores: Vec<f64> = probabilities.iter().map(|row| row[class]).collect();
        let is_class: Vec<bool> = labels.iter().map(|&label| label == class).collect();
        let auc = match delong_auc(&scores, &is_class, ConfidenceLevel::default()) {
            Ok(result) => Some(result.auc),
            Err(MetricsError::NotEnoughCases { .. }) => None,
            Err(error) => return Err(error),
        };
        one_vs_rest.push(OneVsRest {
            class: name.clone(),
            images: is_class.iter().filter(|&&b| b).count(),
            auc,
        });
    }
    Ok(ClassFigures {
        name: name.to_string(),
        images: labels.len(),
        one_vs_rest,
        accuracy: correct as f64 / labels.len() as f64,
        confusion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["normal", "tb", "other"].map(String::from).to_vec()
    }

    #[test]
    fn the_confusion_matrix_counts_the_most_probable_class() {
        let probabilities = vec![
            vec![0.7, 0.2, 0.1],
            vec![0.2, 0.5, 0.3],
            vec![0.1, 0.3, 0.6],
            vec![0.4, 0.4, 0.2],
            vec![0.6, 0.1, 0.3],
            vec![0.1, 0.8, 0.1],
        ];
        let labels = [0, 1, 2, 1, 2, 0];
        let figures = class_figures("test", &names(), &probabilities, &labels).expect("figures");
        assert_eq!(
            figures.confusion,
            [vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]
        );
        assert!((figures.accuracy - 4.0 / 6.0).abs() < 1e-12);
        let text = figures.to_string();
        assert!(text.contains("right for 0.667"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("tb") && l.ends_with("0      2      0")),
            "{text}"
        );
        // Class "other": its two images score 0.6 and 0.3 against 0.1, 0.3, 0.2, 0.1 for the
        // rest: 7.5 of 8 pairs ordered (one tie counts a half).
        let other = &figures.one_vs_rest[2];
        assert_eq!(other.images, 2);
        let auc = other.auc.expect("defined").value;
        assert!((auc - 7.5 / 8.0).abs() < 1e-12, "{auc}");
    }

    #[test]
    fn a_class_without_images_has_no_auc_and_bad_rows_are_refused() {
        let probabilities = vec![vec![0.9, 0.1, 0.0], vec![0.2, 0.8, 0.0]];
        let figures = class_figures("two", &names(), &probabilities, &[0, 1]).expect("figures");
        assert_eq!(figures.one_vs_rest[2].auc, None);
        assert!(class_figures("bad", &names(), &[vec![0.5, 0.5]], &[0]).is_err());
        assert!(class_figures("bad", &names(), &[vec![0.5, 0.3, 0.2]], &[3]).is_err());
        assert_eq!(predicted_class(&[0.5, 0.5]), 1);
    }
}

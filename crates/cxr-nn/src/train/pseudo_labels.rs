//! Learning from images without labels by pseudo-labelling (self-training): a teacher trained
//! on the labelled images labels the unlabelled ones it is sure of, and a student learns from both.

use cxr_core::metrics::predicted_class;
use serde::{Deserialize, Serialize};

use super::data::Partition;
use super::recipe::PseudoLabelRecipe;
use super::run::{self, RunOutcome, RunSetup, TrunkCaches};
use super::{TrainError, write_json};

/// Written in the student's run folder: what the teacher labelled.
pub const REPORT_FILE: &str = "pseudo-labels.json";
/// The teacher's run folder, inside the student's.
pub const TEACHER_DIR: &str = "teacher";

/// What the teacher labelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PseudoLabelReport {
    pub confidence: f64,
    /// Unlabelled images the teacher scored.
    pub unlabelled: usize,
    /// Of those, the ones called with at least `confidence`: the student trains on these with
    /// the teacher's call as their label. Abnormal counts calls of a class the screening
    /// refers, normal the rest; `per_class` counts each class.
    pub abnormal: usize,
    pub normal: usize,
    #[serde(default)]
    pub per_class: Vec<usize>,
    /// Pseudo-labelled images whose true label was only hidden (`labelled_fraction`), and how
    /// many of their pseudo-labels were right: the teacher's precision, never used in training.
    pub hidden_checked: usize,
    pub hidden_correct: usize,
}

/// `(image, class)` for each image whose most probable class has a probability of at least
/// `confidence` (for the binary head: a score at least `confidence` one way or the other);
/// the rest stay unlabelled.
pub fn confident(indices: &[usize], classes: &[Vec<f64>], confidence: f64) -> Vec<(usize, usize)> {
    indices
        .iter()
        .zip(classes)
        .filter_map(|(&image, row)| {
            let class = predicted_class(row);
            (row[class] >= confidence).then_some((image, class))
        })
        .collect()
}

/// Trains the run in `setup.dir` by self-training: the teacher in `dir/teacher` on the labelled
/// images, then the student in `dir` on those plus the unlabelled images the teacher is
/// confident about. Both are ordinary runs, so both resume. Images with an index below
/// `dataset_images` are data set images whose true labels (in `setup.labels`) are hidden;
/// they only check the teacher's precision.
pub fn self_train(
    setup: RunSetup<'_>,
    config: &PseudoLabelRecipe,
    dataset_images: usize,
    caches: &mut TrunkCaches,
) -> Result<RunOutcome, TrainError> {
    let teacher_dir = setup.dir.join(TEACHER_DIR);
    eprintln!(
        "pseudo-labelling: training the teacher on {} labelled images",
        setup.partition.train.len()
    );
    let teacher = run::run(
        RunSetup {
            dir: &teacher_dir,
            initial: setup.initial.clone(),
            ..setup
        },
        caches,
    )?;
    let unlabelled = &setup.partition.unlabelled;
    let scores = run::score_plain(&teacher.model, caches, unlabelled, setup.stop)?;
    let chosen = confident(unlabelled, &scores.classes, config.confidence);
    let mut labels = setup.labels.clone();
    let mut report = PseudoLabelReport {
        confidence: config.confidence,
        unlabelled: unlabelled.len(),
        abnormal: 0,
        normal: 0,
        per_class: vec![0; labels.class_count()],
        hidden_checked: 0,
        hidden_correct: 0,
    };
    for &(image, class) in &chosen {
        if labels.refer[class] {
            report.abnormal += 1;
        } else {
            report.normal += 1;
        }
        report.per_class[class] += 1;
        if image < dataset_images {
            report.hidden_checked += 1;
            report.hidden_correct += usize::from(labels.classes[image] == class);
        }
        labels.classes[image] = class;
    }
    write_json(&setup.dir.join(REPORT_FILE), &report)?;
    eprintln!(
        "pseudo-labelling: {} of {} unlabelled images called with confidence >= {} ({} abnormal, {} normal); training the student",
        chosen.len(),
        report.unlabelled,
        config.confidence,
        report.abnormal,
        report.normal
    );
    let mut train: Vec<usize> = setup.partition.train.clone();
    train.extend(chosen.iter().map(|&(image, _)| image));
    train.sort_unstable();
    let partition = Partition {
        train,
        unlabelled: unlabelled
            .iter()
            .copied()
            .filter(|image| !chosen.iter().any(|&(c, _)| c == *image))
            .collect(),
        ..setup.partition.clone()
    };
    run::run(
        RunSetup {
            labels: &labels,
            partition: &partition,
            ..setup
        },
        caches,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_confident_scores_become_labels_either_way() {
        let binary = |p: f64| vec![1.0 - p, p];
        let rows: Vec<Vec<f64>> = [0.95, 0.5, 0.08, 0.89].map(binary).to_vec();
        let chosen = confident(&[4, 7, 9, 12], &rows, 0.9);
        assert_eq!(chosen, [(4, 1), (9, 0)]);
        assert!(confident(&[1], &[binary(0.5)], 0.5).contains(&(1, 1)));
        assert!(confident(&[], &[], 0.9).is_empty());
        // Three classes: only a class with at least the confidence is a call.
        let rows = vec![vec![0.05, 0.05, 0.9], vec![0.45, 0.1, 0.45]];
        assert_eq!(confident(&[3, 5], &rows, 0.9), [(3, 2)]);
    }
}

//! The data a training run sees: which images train and which validate (a fixed split or
//! cross-validation folds), their classes, class weights, and the manifest hash for the card.

use std::path::Path;

use cxr_core::dataset::{ClassNames, Dataset, Split, SplitPlan};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::TrainError;
use crate::model_file::DataManifest;

/// Image indices (into `Dataset::items`) of one training run.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    /// Held out from both (cross-validation's test fold); scored at the end.
    pub test: Vec<usize>,
    /// Images whose labels the run does not see: hidden by the recipe's `labelled_fraction`,
    /// or given without labels (`--unlabelled`). Only pseudo-labelling uses them.
    pub unlabelled: Vec<usize>,
}

/// What a run learns from: each image's class, and which classes a screening refers.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// Class index by image index (the data set's items, then any unlabelled images, whose
    /// entry is never read before a teacher gives them one).
    pub classes: Vec<usize>,
    /// Whether a screening refers each class (calls it positive).
    pub refer: Vec<bool>,
}

impl Labels {
    /// The data set's labels, read with the classes `names`.
    pub fn of(dataset: &Dataset, names: &ClassNames) -> Self {
        Self {
            classes: dataset.items.iter().map(|item| item.label).collect(),
            refer: names.refer_mask().to_vec(),
        }
    }

    pub fn class_count(&self) -> usize {
        self.refer.len()
    }

    /// Whether a screening should refer image `image`.
    pub fn refers(&self, image: usize) -> bool {
        self.refer[self.classes[image]]
    }

    /// The screening truth (refer or not) of images `indices`.
    pub fn screening(&self, indices: &[usize]) -> Vec<bool> {
        indices.iter().map(|&i| self.refers(i)).collect()
    }

    /// The classes of images `indices`.
    pub fn classes_of(&self, indices: &[usize]) -> Vec<usize> {
        indices.iter().map(|&i| self.classes[i]).collect()
    }
}

/// The data set's own train/validation split if it has one, else a seeded stratified split
/// holding out `val_fraction`. Test images never train.
pub fn fixed_split(
    dataset: &Dataset,
    labels: &Labels,
    val_fraction: f64,
    seed: u64,
) -> Result<Partition, TrainError> {
    let has_val = dataset.items.iter().any(|item| item.split == Split::Val);
    let split = if has_val {
        dataset.clone()
    } else {
        let mut resplit = dataset.clone();
        resplit.assign_splits(&SplitPlan {
            val: val_fraction,
            test: 0.0,
            folds: None,
            seed,
        })?;
        resplit
    };
    let pick = |wanted: &[Split]| -> Vec<usize> {
        (0..split.items.len())
            .filter(|&i| wanted.contains(&split.items[i].split))
            .collect()
    };
    // A data set without split folders reads as all "unassigned": it all trains.
    let partition = Partition {
        train: pick(&[Split::Train, Split::Unassigned]),
        val: pick(&[Split::Val]),
        test: Vec::new(),
        unlabelled: Vec::new(),
    };
    require_classes(dataset, labels, &partition)?;
    Ok(partition)
}

/// `folds` cross-validation partitions: in run `k` fold `k` is the test fold, fold `k + 1`
/// (cyclically) validates (chooses the checkpoint and drives the learning-rate schedule), and
/// the rest train. So no score of a test fold was seen by any choice made in its run.
pub fn cross_validation(
    dataset: &Dataset,
    labels: &Labels,
    folds: usize,
    seed: u64,
) -> Result<Vec<Partition>, TrainError> {
    if folds < 3 {
        return Err(TrainError::Data(format!(
            "--folds {folds}: cross-validation needs at least 3 folds (one tests, one validates, the rest train)"
        )));
    }
    let mut split = dataset.clone();
    split.assign_splits(&SplitPlan {
        val: 0.0,
        test: 0.0,
        folds: Some(folds),
        seed,
    })?;
    let fold_of: Vec<usize> = split
        .items
        .iter()
        .map(|item| item.fold.unwrap_or(0))
        .collect();
    let fold_of = &fold_of;
    (0..folds)
        .map(|k| {
            let val_fold = (k + 1) % folds;
            let members = |fold: usize| -> Vec<usize> {
                (0..fold_of.len()).filter(|&i| fold_of[i] == fold).collect()
            };
            let partition = Partition {
                train: (0..fold_of.len())
                    .filter(|&i| fold_of[i] != k && fold_of[i] != val_fold)
                    .collect(),
                val: members(val_fold),
                test: members(k),
                unlabelled: Vec::new(),
            };
            require_classes(dataset, labels, &partition)?;
            Ok(partition)
        })
        .collect()
}

/// Training and validation images both need images a screening refers and images it does
/// not, and every class needs training images, or the run cannot learn or be judged.
fn require_classes(
    dataset: &Dataset,
    labels: &Labels,
    partition: &Partition,
) -> Result<(), TrainError> {
    for (name, part) in [
        ("training", &partition.train),
        ("validation", &partition.val),
    ] {
        let referred = part.iter().filter(|&&i| labels.refers(i)).count();
        if referred == 0 || referred == part.len() {
            return Err(TrainError::Data(format!(
                "{}: the {name} images ({}) need both classes; found {referred} abnormal",
                dataset.source.display(),
                part.len()
            )));
        }
    }
    for (class, class_name) in dataset.class_names.iter().enumerate() {
        if !partition.train.iter().any(|&i| labels.classes[i] == class) {
            return Err(TrainError::Data(format!(
                "{}: no training images of class '{class_name}'",
                dataset.source.display()
            )));
        }
    }
    Ok(())
}

impl Partition {
    /// Keeps the labels of `fraction` of the training and of the validation images, per class
    /// (seeded; at least one image of each class present), and moves the rest to
    /// `unlabelled`: a label-scarce experiment on a fully labelled set. Test images keep
    /// their labels, since they only score the run.
    pub fn hide_labels(mut self, labels: &Labels, fraction: f64, seed: u64) -> Partition {
        if fraction >= 1.0 {
            return self;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c61_6265_6c73);
        for part in [&mut self.train, &mut self.val] {
            let mut kept = Vec::with_capacity(part.len());
            for class in 0..labels.class_count() {
                let mut members: Vec<usize> = part
                    .iter()
                    .copied()
                    .filter(|&i| labels.classes[i] == class)
                    .collect();
                members.shuffle(&mut rng);
                let keep = ((members.len() as f64 * fraction).round() as usize)
                    .clamp(members.len().min(1), members.len());
                self.unlabelled.extend_from_slice(&members[keep..]);
                kept.extend_from_slice(&members[..keep]);
            }
            kept.sort_unstable();
            *part = kept;
        }
        self.unlabelled.sort_unstable();
        self
    }
}

/// Loss weight per class: inverse class frequency over `train`, scaled so an average image
/// weighs 1 (Keras' "balanced"); all 1 when `balanced` is off or a class has no images.
pub fn class_weights(labels: &Labels, train: &[usize], balanced: bool) -> Vec<f32> {
    let classes = labels.class_count();
    let mut counts = vec![0usize; classes];
    for &i in train {
        counts[labels.classes[i]] += 1;
    }
    if !balanced || counts.contains(&0) {
        return vec![1.0; classes];
    }
    let n = train.len() as f32;
    counts
        .iter()
        .map(|&count| n / (classes as f32 * count as f32))
        .collect()
}

/// The card's data manifest: SHA-256 over the sorted "file sha256 label" lines.
pub fn manifest(dataset: &Dataset, source: &Path) -> Result<DataManifest, TrainError> {
    let mut lines = Vec::with_capacity(dataset.items.len());
    for item in &dataset.items {
        let bytes = std::fs::read(&item.path).map_err(|source| TrainError::Io {
            path: item.path.clone(),
            source,
        })?;
        lines.push(format!(
            "{} {}\n",
            hex::encode(Sha256::digest(&bytes)),
            item.label
        ));
    }
    lines.sort();
    let mut hash = Sha256::new();
    for line in &lines {
        hash.update(line.as_bytes());
    }
    Ok(DataManifest {
        source: source.display().to_string(),
        images: dataset.items.len(),
        class_counts: dataset.class_counts(),
        sha256: hex::encode(hash.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxr_core::dataset::{Item, Layout};
    use std::path::PathBuf;

    fn dataset(n: usize) -> Dataset {
        Dataset {
            source: PathBuf::from("synthetic"),
            layout: Layout::NlmNames,
            class_names: vec!["normal".into(), "tb".into()],
            items: (0..n)
                .map(|i| Item {
                    path: PathBuf::from(format!("img_{i:03}_{}.png", i % 2)),
                    label: i % 2,
                    split: Split::Unassigned,
                    fold: None,
                    group: None,
                    mask: None,
                })
                .collect(),
        }
    }

    #[test]
    fn cross_validation_tests_every_image_once_and_never_trains_on_it() {
        let data = dataset(50);
        let labels = Labels::of(&data, &ClassNames::default());
        let parts = cross_validation(&data, &labels, 5, 7).expect("folds");
        let mut tested: Vec<usize> = parts.iter().flat_map(|p| p.test.clone()).collect();
        tested.sort();
        assert_eq!(tested, (0..50).collect::<Vec<_>>());
        for p in &parts {
            assert!(
                p.train
                    .iter()
                    .all(|i| !p.test.contains(i) && !p.val.contains(i))
            );
            assert_eq!(p.train.len() + p.val.len() + p.test.len(), 50);
        }
        assert!(cross_validation(&data, &labels, 2, 7).is_err());
    }

    #[test]
    fn a_fixed_split_holds_out_the_val_fraction_of_each_class() {
        let data = dataset(40);
        let labels = Labels::of(&data, &ClassNames::default());
        let part = fixed_split(&data, &labels, 0.25, 1).expect("split");
        assert_eq!(part.val.len(), 10);
        assert_eq!(part.train.len(), 30);
    }

    #[test]
    fn hiding_labels_keeps_a_share_of_each_class_in_train_and_val() {
        let data = dataset(100);
        let labels = Labels::of(&data, &ClassNames::default());
        let full = cross_validation(&data, &labels, 5, 3)
            .expect("folds")
            .remove(0);
        let scarce = full.clone().hide_labels(&labels, 0.2, 3);
        assert_eq!(scarce.test, full.test);
        for (kept, all) in [(&scarce.train, &full.train), (&scarce.val, &full.val)] {
            for class in [0, 1] {
                let count =
                    |part: &[usize]| part.iter().filter(|&&i| labels.classes[i] == class).count();
                let expected = (count(all) as f64 * 0.2).round() as usize;
                assert_eq!(count(kept), expected.max(1));
            }
            assert!(kept.iter().all(|i| all.contains(i)));
        }
        // Every hidden image was a training or validation image, and none is still labelled.
        assert_eq!(
            scarce.train.len() + scarce.val.len() + scarce.unlabelled.len(),
            full.train.len() + full.val.len()
        );
        assert!(scarce.unlabelled.iter().all(|i| !scarce.train.contains(i)
            && !scarce.val.contains(i)
            && !scarce.test.contains(i)));
        // Seeded: the same call hides the same images; a fraction of 1 hides none.
        assert_eq!(full.clone().hide_labels(&labels, 0.2, 3), scarce);
        assert_eq!(full.clone().hide_labels(&labels, 1.0, 3), full);
    }

    #[test]
    fn balanced_weights_even_out_the_classes() {
        let labels = Labels {
            classes: vec![1, 0, 0, 0, 2, 2],
            refer: vec![false, true, true],
        };
        let weights = class_weights(&labels, &[0, 1, 2, 3], false);
        assert_eq!(weights, [1.0, 1.0, 1.0]);
        // Class 2 has no training images among 0..4: no weighting.
        assert_eq!(class_weights(&labels, &[0, 1, 2, 3], true), [1.0, 1.0, 1.0]);
        let weights = class_weights(&labels, &[0, 1, 2, 3, 4, 5], true);
        assert_eq!(weights, [6.0 / 9.0, 2.0, 1.0]);
        assert_eq!(labels.screening(&[0, 1, 4]), [true, false, true]);
    }

    #[test]
    fn every_class_needs_training_images() {
        let mut data = dataset(30);
        data.class_names.push("other".into());
        let names = ClassNames::listed(&data.class_names, &["tb".to_string(), "other".to_string()])
            .expect("classes");
        let labels = Labels::of(&data, &names);
        let error = fixed_split(&data, &labels, 0.2, 1).expect_err("no 'other' images");
        assert!(error.to_string().contains("class 'other'"), "{error}");
    }
}

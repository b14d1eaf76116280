//! Seeded, stratified, group-aware splits: train/validation/test and k-fold cross-validation.
//! A group (patient) never straddles two parts, and each class keeps its share in every part.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{Dataset, Split};

/// How to split a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitPlan {
    /// Share of images for validation (must be 0 with `folds`).
    pub val: f64,
    /// Share of images held out for testing, taken before any folds.
    pub test: f64,
    /// Number of cross-validation folds over the non-test images.
    pub folds: Option<usize>,
    pub seed: u64,
}

/// Why a split plan cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SplitError {
    #[error("split shares must be in [0, 1) and leave some training data (val {val}, test {test})")]
    BadShares { val: f64, test: f64 },
    #[error("choose either a validation share or folds, not both")]
    ValWithFolds,
    #[error(
        "{folds} folds need at least {folds} patients/images outside the test set, found {groups}"
    )]
    TooFewGroups { folds: usize, groups: usize },
    #[error("at least 2 folds are needed, got {0}")]
    TooFewFolds(usize),
}

/// A set of images that must stay together, and the class it is stratified by.
struct Group {
    items: Vec<usize>,
    stratum: usize,
}

impl Dataset {
    /// Replaces every item's split and fold according to `plan`. With folds, non-test items
    /// are `Split::Train` with a fold index; the validation fold is chosen at training time.
    pub fn assign_splits(&mut self, plan: &SplitPlan) -> Result<(), SplitError> {
        let shares_ok = [plan.val, plan.test].iter().all(|s| (0.0..1.0).contains(s))
            && plan.val + plan.test < 1.0;
        if !shares_ok {
            return Err(SplitError::BadShares {
                val: plan.val,
                test: plan.test,
            });
        }
        if plan.folds.is_some() && plan.val > 0.0 {
            return Err(SplitError::ValWithFolds);
        }
        if let Some(folds @ 0..2) = plan.folds {
            return Err(SplitError::TooFewFolds(folds));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
        let groups = self.groups();
        let all: Vec<&Group> = groups.iter().collect();
        let train = 1.0 - plan.val - plan.test;
        let parts = assign_groups(&all, &[train, plan.val, plan.test], &mut rng);
        let mut folds_of = vec![None; groups.len()];
        if let Some(folds) = plan.folds {
            let pool: Vec<usize> = (0..groups.len()).filter(|&g| parts[g] == 0).collect();
            if pool.len() < folds {
                return Err(SplitError::TooFewGroups {
                    folds,
                    groups: pool.len(),
                });
            }
            let pool_groups: Vec<&Group> = pool.iter().map(|&g| &groups[g]).collect();
            let fold_of = assign_groups(&pool_groups, &vec![1.0 / folds as f64; folds], &mut rng);
            for (g, fold) in pool.into_iter().zip(fold_of) {
                folds_of[g] = Some(fold);
            }
        }
        for ((group, part), fold) in groups.iter().zip(parts).zip(folds_of) {
            for &i in &group.items {
                self.items[i].split = [Split::Train, Split::Val, Split::Test][part];
                self.items[i].fold = fold;
            }
        }
        Ok(())
    }

    /// Items grouped by group id (an item without one is its own group), in a stable order.
    fn groups(&self) -> Vec<Group> {
        let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, item) in self.items.iter().enumerate() {
            let key = match &item.group {
                Some(group) => format!("g:{group}"),
                None => format!("p:{}", item.path.display()),
            };
            by_key.entry(key).or_default().push(i);
        }
        by_key
            .into_values()
            .map(|items| {
                let mut counts = vec![0usize; self.class_names.len()];
                for &i in &items {
                    counts[self.items[i].label] += 1;
                }
                // The majority class; ties go to the lower label.
                let stratum = (0..counts.len())
                    .max_by_key(|&label| (counts[label], Reverse(label)))
                    .unwrap_or(0);
                Group { items, stratum }
            })
            .collect()
    }
}

/// Puts each group in one part so that, within each stratum, part sizes follow `shares`:
/// each group goes to the part furthest below its target. With single-image groups every
/// part ends within one image of its target per class.
fn assign_groups(groups: &[&Group], shares: &[f64], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut stratum_sizes: BTreeMap<usize, usize> = BTreeMap::new();
    for group in groups {
        *stratum_sizes.entry(group.stratum).or_default() += group.items.len();
    }
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.shuffle(rng);
    // Large groups first, while there is still room to balance around them; the sort is
    // stable, so groups of equal size stay in shuffled order.
    order.sort_by_key(|&g| Reverse(groups[g].items.len()));

    let mut filled: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut part_of = vec![0; groups.len()];
    for g in order {
        let group = &groups[g];
        let total = stratum_sizes[&group.stratum] as f64;
        let filled = filled
            .entry(group.stratum)
            .or_insert_with(|| vec![0; shares.len()]);
        let deficit = |part: usize| shares[part] * total - filled[part] as f64;
        let part = (0..shares.len())
            .reduce(|best, part| {
                if deficit(part) > deficit(best) {
                    part
                } else {
                    best
                }
            })
            .unwrap_or(0);
        filled[part] += group.items.len();
        part_of[g] = part;
    }
    part_of
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::path::PathBuf;

    use super::*;
    use crate::dataset::{Item, Layout};

    /// `n` images, every `positive_every`-th one positive, `per_group` images per patient.
    fn dataset(n: usize, positive_every: usize, per_group: usize) -> Dataset {
        let items = (0..n)
            .map(|i| Item {
                path: PathBuf::from(format!("img{i:04}.png")),
                label: usize::from(i % positive_every == 0),
                split: Split::Unassigned,
                fold: None,
                group: (per_group > 1).then(|| format!("patient{}", i / per_group)),
                mask: None,
            })
            .collect();
        Dataset {
            source: PathBuf::from("synthetic"),
            layout: Layout::Manifest,
            class_names: vec!["normal".into(), "abnormal".into()],
            items,
        }
    }

    fn plan(val: f64, test: f64, folds: Option<usize>, seed: u64) -> SplitPlan {
        SplitPlan {
            val,
            test,
            folds,
            seed,
        }
    }

    fn count(ds: &Dataset, split: Split, label: usize) -> usize {
        ds.items
            .iter()
            .filter(|i| i.split == split && i.label == label)
            .count()
    }

    #[test]
    fn single_images_split_within_one_of_each_class_share() {
        let mut ds = dataset(503, 3, 1);
        ds.assign_splits(&plan(0.2, 0.1, None, 42)).unwrap();
        for label in [0, 1] {
            let total = ds.items.iter().filter(|i| i.label == label).count() as f64;
            for (split, share) in [(Split::Train, 0.7), (Split::Val, 0.2), (Split::Test, 0.1)] {
                let got = count(&ds, split, label) as f64;
                assert!(
                    (got - share * total).abs() < 1.0,
                    "{split:?} {label}: {got}"
                );
            }
        }
        assert!(ds.items.iter().all(|i| i.split != Split::Unassigned));
    }

    #[test]
    fn folds_are_disjoint_complete_and_stratified() {
        let mut ds = dataset(200, 4, 1);
        ds.assign_splits(&plan(0.0, 0.0, Some(5), 7)).unwrap();
        for fold in 0..5 {
            let in_fold: Vec<_> = ds.items.iter().filter(|i| i.fold == Some(fold)).collect();
            assert_eq!(in_fold.len(), 40);
            assert_eq!(in_fold.iter().filter(|i| i.label == 1).count(), 10);
        }
        assert!(ds.items.iter().all(|i| i.split == Split::Train));
    }

    #[test]
    fn groups_never_straddle_splits_or_folds() {
        let mut ds = dataset(300, 5, 3);
        ds.assign_splits(&plan(0.0, 0.2, Some(4), 1)).unwrap();
        let mut seen: HashMap<&str, (Split, Option<usize>)> = HashMap::new();
        for item in &ds.items {
            let part = (item.split, item.fold);
            let group = item.group.as_deref().unwrap();
            assert_eq!(*seen.entry(group).or_insert(part), part, "{group}");
        }
        let test = ds.items.iter().filter(|i| i.split == Split::Test).count();
        assert!((test as f64 - 60.0).abs() <= 3.0, "{test}");
        assert!(
            ds.items
                .iter()
                .filter(|i| i.split == Split::Test)
                .all(|i| i.fold.is_none())
        );
    }

    #[test]
    fn same_seed_same_split_other_seed_other_split() {
        let split_with = |seed| {
            let mut ds = dataset(100, 2, 1);
            ds.assign_splits(&plan(0.3, 0.0, None, seed)).unwrap();
            ds.items
                .iter()
                .filter(|i| i.split == Split::Val)
                .map(|i| i.path.clone())
                .collect::<HashSet<_>>()
        };
        assert_eq!(split_with(42), split_with(42));
        assert_ne!(split_with(42), split_with(43));
    }

    #[test]
    fn bad_plans_are_rejected() {
        let mut ds = dataset(10, 2, 1);
        let cases = [
            (plan(0.6, 0.5, None, 0), "leave some training data"),
            (plan(-0.1, 0.0, None, 0), "leave some training data"),
            (plan(0.2, 0.0, Some(5), 0), "not both"),
            (plan(0.0, 0.0, Some(1), 0), "at least 2 folds"),
            (plan(0.0, 0.5, Some(7), 0), "need at least 7"),
        ];
        for (plan, expected) in cases {
            let err = ds.assign_splits(&plan).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}

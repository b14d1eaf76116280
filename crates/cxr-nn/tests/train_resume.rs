//! Resuming a cross-validation, between folds or in the middle of one, scores every fold as an
//! uninterrupted run did, bit for bit.

mod train_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cxr_nn::train::recipe::Recipe;
use cxr_nn::train::{CacheDirs, TrainError, TrainReport, TrainRequest, train};

/// A tiny two-class data set and private caches in a folder of their own.
struct Bench {
    dir: tempfile::TempDir,
    caches: CacheDirs,
}

impl Bench {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        train_support::write_blob_dataset(&dir.path().join("data"), 9);
        let caches = train_support::private_caches(dir.path());
        Self { dir, caches }
    }

    /// A 3-fold cross-validation of `recipe` into folder `out`.
    fn request(&self, recipe: &Recipe, out: &str) -> TrainRequest {
        TrainRequest {
            data: self.dir.path().join("data"),
            out: self.dir.path().join(out),
            recipe: recipe.clone(),
            folds: Some(3),
            unlabelled: None,
        }
    }

    /// `request` trained to the end, uninterrupted.
    fn train(&self, request: &TrainRequest) -> TrainReport {
        train(request, &self.caches, &AtomicBool::new(false)).expect("train")
    }
}

/// Each fold's held-out scores.
fn fold_scores(report: &TrainReport) -> Vec<Vec<f64>> {
    report
        .cross_validation
        .as_ref()
        .expect("cv")
        .scores
        .iter()
        .map(|fold| fold.test_scores.clone())
        .collect()
}

#[test]
fn a_cross_validation_resumed_after_its_first_fold_scores_as_if_never_stopped() {
    let bench = Bench::new();
    let mut recipe = train_support::tiny_recipe(3, 0);
    // As the shipped recipe: cached views (a new process computes the trunk outputs of other
    // images first) and the schedule on the validation loss.
    recipe.augmented_views = 2;
    recipe.schedule.monitor = cxr_nn::train::recipe::Monitor::ValLoss;
    let whole = bench.request(&recipe, "whole");
    let uninterrupted = bench.train(&whole);

    // As if killed after the first fold (in another process, whose trunk-output cache holds
    // nothing yet): its folder is all a new process finds.
    let resumed = bench.request(&recipe, "resumed");
    let (from, to) = (whole.out.join("fold-1"), resumed.out.join("fold-1"));
    std::fs::create_dir_all(&to).expect("fold folder");
    for entry in std::fs::read_dir(&from).expect("fold") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    let again = bench.train(&resumed);
    assert_eq!(fold_scores(&again), fold_scores(&uninterrupted));
}

#[test]
fn a_cross_validation_stopped_in_the_middle_of_a_fold_resumes_to_the_same_scores() {
    let bench = Bench::new();
    // Both phases, so that the schedule, the kept weights and the phase change all resume.
    let mut recipe = train_support::tiny_recipe(4, 2);
    recipe.augmented_views = 2;
    let uninterrupted = bench.train(&bench.request(&recipe, "whole"));

    // Stopped (as Ctrl-C stops it) once the second fold has finished an epoch: wherever the
    // stop lands, the run keeps only what its last checkpoint holds.
    let stopped = bench.request(&recipe, "stopped");
    let stop = Arc::new(AtomicBool::new(false));
    let trainer = {
        let (stopped, caches, stop) = (stopped.clone(), bench.caches.clone(), stop.clone());
        std::thread::spawn(move || train(&stopped, &caches, &stop))
    };
    let metrics = stopped.out.join("fold-2").join("metrics.csv");
    while !trainer.is_finished() {
        let epochs = std::fs::read_to_string(&metrics).map_or(0, |csv| csv.lines().count());
        if epochs >= 2 {
            stop.store(true, Ordering::Relaxed);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let outcome = trainer.join().expect("training thread");
    assert!(
        matches!(outcome, Err(TrainError::Interrupted)),
        "the run ended before it could be stopped"
    );

    let again = bench.train(&TrainRequest::resume(&stopped.out).expect("resume request"));
    assert_eq!(fold_scores(&again), fold_scores(&uninterrupted));
    assert_eq!(again.card.validation, uninterrupted.card.validation);
}

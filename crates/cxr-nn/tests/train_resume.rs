//! Resuming a cross-validation in a new process scores every fold as an uninterrupted run did.
//! A test binary of its own: the backend's random stream (dropout) is one per process, and the
//! tests of one binary run in parallel threads that would draw from it too.

mod train_support;

use std::sync::atomic::AtomicBool;

use cxr_nn::train::{TrainRequest, train};

#[test]
fn a_cross_validation_resumed_after_its_first_fold_scores_as_if_never_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 9);
    let caches = train_support::private_caches(dir.path());
    let mut recipe = train_support::tiny_recipe(3, 0);
    // As the shipped recipe: cached views (a new process computes the trunk outputs of other
    // images first) and the schedule on the validation loss.
    recipe.augmented_views = 2;
    recipe.schedule.monitor = cxr_nn::train::recipe::Monitor::ValLoss;
    let request = |out: &str| TrainRequest {
        data: data.clone(),
        out: dir.path().join(out),
        recipe: recipe.clone(),
        folds: Some(3),
        unlabelled: None,
    };
    let whole = train(&request("whole"), &caches, &AtomicBool::new(false)).expect("train");

    // As if killed after the first fold (in another process, whose trunk-output cache holds
    // nothing yet): its folder is all a new process finds.
    let resumed = request("resumed");
    std::fs::create_dir_all(&resumed.out).expect("run folder");
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        std::fs::create_dir_all(to).expect("fold folder");
        for entry in std::fs::read_dir(from).expect("fold") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    };
    copy(
        &request("whole").out.join("fold-1"),
        &resumed.out.join("fold-1"),
    );
    let again = train(&resumed, &caches, &AtomicBool::new(false)).expect("resume");
    let scores = |report: &cxr_nn::train::TrainReport| {
        report
            .cross_validation
            .as_ref()
            .expect("cv")
            .scores
            .iter()
            .map(|fold| fold.test_scores.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(scores(&again), scores(&whole));
}

//! The shipped model on real X-rays: an image's probability is the same bits alone and
//! in a batch, since the server batches whichever requests are waiting together.

use std::path::{Path, PathBuf};

use cxr_nn::predict::{ScreenOptions, Screener};

fn shenzhen(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/shenzhen/images")
        .join(name)
}

#[test]
fn an_x_ray_scores_the_same_alone_and_among_others() {
    let screener = Screener::load(None).unwrap();
    let (one, other) = (shenzhen("CHNCXR_0001_0.png"), shenzhen("CHNCXR_0002_0.png"));
    let probabilities = |paths: &[PathBuf]| -> Vec<f64> {
        let results = screener
            .screen_files(paths, &ScreenOptions::default(), |_| {})
            .unwrap();
        results
            .into_iter()
            .map(|r| r.unwrap().probability)
            .collect()
    };
    let alone = probabilities(std::slice::from_ref(&one))[0];
    let batch = probabilities(&[other.clone(), one.clone(), other]);
    assert_eq!(
        batch[1].to_bits(),
        alone.to_bits(),
        "{} vs {alone}",
        batch[1]
    );
    assert_ne!(
        batch[0], alone,
        "two different X-rays should not score alike"
    );
}

#[test]
fn augmented_views_follow_the_position_in_the_batch_not_the_thread_that_prepares_them() {
    // A batch's images are prepared side by side; each view's draws come from its position.
    let screener = Screener::load(None).unwrap();
    let (one, other) = (shenzhen("CHNCXR_0001_0.png"), shenzhen("CHNCXR_0002_0.png"));
    let options = ScreenOptions {
        tta_views: 2,
        ..ScreenOptions::default()
    };
    let paths = [one.clone(), other, one];
    let bits = || -> Vec<u64> {
        let results = screener.screen_files(&paths, &options, |_| {}).unwrap();
        results
            .into_iter()
            .map(|r| r.unwrap().probability.to_bits())
            .collect()
    };
    let (first, second) = (bits(), bits());
    assert_eq!(first, second);
    assert_ne!(first[0], first[2], "positions 0 and 2 draw other views");
}

//! Research tool: are two cross-validated runs of `cxr train --folds K` different? Pairs their
//! out-of-fold scores image by image (the runs must validate and hold out the same images:
//! same data, seed and folds) and prints each run's pooled figures and DeLong's paired test
//! of their AUCs.
//!
//! Usage: paired_runs RUN_A RUN_B

use std::path::Path;

use cxr_core::metrics::delong_paired_test;
use cxr_nn::train::crossval::{CrossValidation, pooled, same_folds};
use cxr_nn::train::{CROSS_VALIDATION_FILE, read_json};

fn read_run(dir: &str) -> Result<CrossValidation, Box<dyn std::error::Error>> {
    let path = Path::new(dir).join(CROSS_VALIDATION_FILE);
    let cv: CrossValidation =
        read_json(&path).map_err(|err| format!("{err} (not a finished `--folds` run?)"))?;
    if cv.scores.is_empty() {
        return Err(format!("{}: no out-of-fold scores to pair", path.display()).into());
    }
    Ok(cv)
}

fn describe(name: &str, cv: &CrossValidation) {
    let figure = |estimate: Option<cxr_core::metrics::Estimate>| {
        estimate.map_or("-".to_string(), |e| format!("{:.3}", e.value))
    };
    let who = cv.who.as_ref().map_or("-".to_string(), |who| {
        format!(
            "sensitivity {} specificity {}",
            figure(who.sensitivity),
            figure(who.specificity)
        )
    });
    println!(
        "{name}: pooled AUC {}, accuracy {} (0.5), fold AUC {:.3} ± {:.3}; WHO point: {who}",
        figure(cv.pooled.auc),
        figure(cv.pooled.accuracy),
        cv.auc.mean,
        cv.auc.sd,
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [a, b] = args.as_slice() else {
        return Err("usage: paired_runs RUN_A RUN_B".into());
    };
    let (run_a, run_b) = (read_run(a)?, read_run(b)?);
    if !same_folds(&run_a, &run_b) {
        return Err(format!(
            "{a} and {b} validated or held out different images: train them on the same data \
             with the same seed and folds"
        )
        .into());
    }
    describe(a, &run_a);
    describe(b, &run_b);
    let ((scores_a, labels), (scores_b, _)) = (pooled(&run_a.scores), pooled(&run_b.scores));
    let test = delong_paired_test(&scores_a, &scores_b, &labels)?;
    println!(
        "paired DeLong, A - B: {:+.4} (SE {:.4}), z {:.2}, p {:.4}",
        test.difference, test.std_error, test.z, test.p_value
    );
    Ok(())
}

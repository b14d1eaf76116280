//! `cxr_nn::compare` end to end on a tiny synthetic set: two backbones (one "pretrained", one
//! from scratch) on the same folds, the report's rows and files, and resuming after a kill;
//! a pseudo-labelling recipe variant tested against the main recipe.

mod train_support;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use cxr_nn::compare::measure::SpeedConfig;
use cxr_nn::compare::{CompareError, CompareRequest, REPORT_MD, RecipeVariant, compare};
use cxr_nn::train::recipe::PseudoLabelRecipe;

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn two_backbones_on_the_same_folds_then_a_resumed_comparison_retrains_nothing_finished() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 9);
    let caches = train_support::private_caches(dir.path());
    let request = CompareRequest {
        data,
        out: dir.path().join("compare"),
        recipe: train_support::tiny_recipe(1, 1),
        backbones: vec!["efficientnet-lite0".into(), "alexnet".into()],
        variants: Vec::new(),
        folds: 3,
        unlabelled: None,
        timing: SpeedConfig {
            batch: 2,
            batches: 1,
        },
    };
    let stop = AtomicBool::new(false);
    let report = compare(&request, &caches, &stop).expect("compare");

    assert_eq!(report.images, 18);
    let names: Vec<&str> = report.results.iter().map(|r| r.backbone.as_str()).collect();
    assert_eq!(names, ["efficientnet-lite0", "alexnet"]);
    assert_eq!(
        report
            .results
            .iter()
            .map(|r| r.pretrained)
            .collect::<Vec<_>>(),
        [true, false]
    );
    for r in &report.results {
        let auc = r.pooled_auc.expect("pooled AUC").value;
        assert!((0.0..=1.0).contains(&auc), "{}: AUC {auc}", r.backbone);
        assert!(r.auc_ci.lower <= r.auc.mean && r.auc.mean <= r.auc_ci.upper);
        assert_eq!(r.who.thresholds.len(), 3);
        assert!(r.who.sensitivity.is_some() && r.who.specificity.is_some());
        assert!(r.costs.parameters > 100_000, "{}", r.costs.parameters);
        assert_eq!(r.costs.input_size, 64);
        assert!(r.costs.images_per_second > 0.0);
        // Lite0 at 64 px: about (64/224)^2 of its 0.39 GMACs at 224.
        let giga_macs = r.costs.giga_macs.expect("GMACs");
        assert!(giga_macs > 0.005 && giga_macs < 0.1, "{giga_macs}");
        assert!(r.training_seconds > 0.0);
        assert_eq!(r.versus_best.is_none(), r.backbone == report.best);
        if let Some(test) = r.versus_best {
            assert!((0.0..=1.0).contains(&test.p_value));
            assert!(test.difference <= 0.0, "the best has the highest AUC");
        }
    }
    // Both rows as one ensemble: its scores are neither row's, and it costs what both do.
    let ensemble = report.ensemble.as_ref().expect("an ensemble of two rows");
    assert_eq!(ensemble.members, ["efficientnet-lite0", "alexnet"]);
    let auc = ensemble.pooled_auc.expect("ensemble AUC").value;
    assert!((0.0..=1.0).contains(&auc), "ensemble AUC {auc}");
    assert_eq!(ensemble.who.thresholds.len(), 3);
    let parameters: usize = report.results.iter().map(|r| r.costs.parameters).sum();
    assert_eq!(ensemble.parameters, parameters);
    let slowest = report.results.iter().map(|r| r.costs.images_per_second);
    assert!(ensemble.images_per_second < slowest.fold(f64::INFINITY, f64::min));
    let best = report.results.iter().find(|r| r.backbone == report.best);
    let best_auc = best.and_then(|r| r.pooled_auc).expect("best AUC").value;
    assert!((ensemble.versus_best.difference - (auc - best_auc)).abs() < 1e-9);
    let out = &request.out;
    let md = std::fs::read_to_string(out.join(REPORT_MD)).expect("report.md");
    assert!(
        md.contains("| ensemble of every row (mean logit) |"),
        "{md}"
    );
    assert!(md.contains("| efficientnet-lite0 | pretrained |"), "{md}");
    assert!(md.contains("| alexnet | from scratch |"), "{md}");
    assert!(md.contains("| GMACs |"), "{md}");
    for file in ["report.json", "curves_accuracy.png", "curves_loss.png"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }

    // A kill during alexnet's third fold: its later files never got written.
    let alexnet = out.join("alexnet");
    for file in ["model.safetensors", "cross-validation.json"] {
        std::fs::remove_file(alexnet.join(file)).expect("remove");
    }
    std::fs::remove_dir_all(alexnet.join("fold-3")).expect("remove fold");
    std::fs::remove_dir_all(alexnet.join("final")).expect("remove final");
    let finished = [
        out.join("efficientnet-lite0/model.safetensors"),
        out.join("efficientnet-lite0/fold-2/metrics.csv"),
        alexnet.join("fold-1/metrics.csv"),
    ];
    let before: Vec<SystemTime> = finished.iter().map(|p| modified(p)).collect();
    let again = compare(&request, &caches, &stop).expect("resumed compare");
    let after: Vec<SystemTime> = finished.iter().map(|p| modified(p)).collect();
    assert_eq!(before, after, "finished work was redone");
    assert!(alexnet.join("fold-3/metrics.csv").is_file());
    assert!(alexnet.join("model.safetensors").is_file());
    assert_eq!(again.results.len(), 2);
    let (first, resumed) = (&report.results[0], &again.results[0]);
    // Costs come back from costs.json, not from a new timing; JSON keeps floats to within an
    // ulp or so, while a second timing would differ by far more.
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
    let (c0, c1) = (&first.costs, &resumed.costs);
    assert!(
        c0.parameters == c1.parameters
            && same(c0.images_per_second, c1.images_per_second)
            && same(
                c0.peak_rss_mib.unwrap_or(0.0),
                c1.peak_rss_mib.unwrap_or(0.0)
            ),
        "costs are measured once: {c0:?} then {c1:?}"
    );
    let auc = |r: &cxr_nn::compare::BackboneResult| r.pooled_auc.map(|e| e.value).unwrap_or(-1.0);
    assert!((auc(resumed) - auc(first)).abs() < 1e-12);

    // Another fold count in the same folder is another comparison: refused.
    let other = CompareRequest {
        folds: 4,
        ..request.clone()
    };
    match compare(&other, &caches, &stop) {
        Err(CompareError::Mismatch { message, .. }) => {
            assert!(message.contains("new --out"), "{message}")
        }
        other => panic!("expected a mismatch, got {:?}", other.map(|r| r.best)),
    }
}

#[test]
fn a_pseudo_labelling_variant_is_tested_against_the_main_recipe_and_its_teachers_timed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 9);
    let caches = train_support::private_caches(dir.path());
    let mut scarce = train_support::tiny_recipe(1, 0);
    scarce.labelled_fraction = 0.5;
    let mut pseudo = scarce.clone();
    pseudo.pseudo_labels = Some(PseudoLabelRecipe { confidence: 0.5 });
    let request = CompareRequest {
        data,
        out: dir.path().join("compare"),
        recipe: scarce,
        backbones: vec!["efficientnet-lite0".into()],
        variants: vec![RecipeVariant {
            name: "pseudo".into(),
            recipe: pseudo,
        }],
        folds: 3,
        unlabelled: None,
        timing: SpeedConfig {
            batch: 1,
            batches: 1,
        },
    };
    let report = compare(&request, &caches, &AtomicBool::new(false)).expect("compare");
    let names: Vec<&str> = report.results.iter().map(|r| r.backbone.as_str()).collect();
    assert_eq!(names, ["efficientnet-lite0", "efficientnet-lite0+pseudo"]);
    assert!(report.results[0].versus_main.is_none());
    let versus_main = report.results[1].versus_main.expect("variant vs main");
    let difference = report.results[1].pooled_auc.expect("AUC").value
        - report.results[0].pooled_auc.expect("AUC").value;
    assert!((versus_main.difference - difference).abs() < 1e-9);

    // The variant's training time counts its teachers' epochs as well as its students'.
    let variant = request.out.join("efficientnet-lite0+pseudo");
    let students: f64 = (1..=3)
        .map(|k| {
            let json = std::fs::read(variant.join(format!("fold-{k}/metrics.json"))).expect("log");
            let history: Vec<serde_json::Value> = serde_json::from_slice(&json).expect("json");
            history
                .iter()
                .map(|r| r["seconds"].as_f64().unwrap_or(0.0))
                .sum::<f64>()
        })
        .sum();
    assert!(variant.join("fold-1/teacher/metrics.json").is_file());
    assert!(report.results[1].training_seconds > students);
    let md = std::fs::read_to_string(request.out.join(REPORT_MD)).expect("report.md");
    assert!(md.contains("vs main recipe"), "{md}");
}

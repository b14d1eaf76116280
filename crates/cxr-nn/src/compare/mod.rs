//! `cxr compare`: several backbones (and, optionally, recipe variants) trained on the same
//! seeded cross-validation folds, then tabulated, plotted and tested against the best; resumable.
//!
//! The comparison folder holds `compare.json` (what was asked), one `cxr train --folds` run
//! folder per candidate (`<backbone>/`, or `<backbone>+<variant>/` for a recipe variant;
//! skipped when finished, resumed when not), and at the end `report.json`, `report.md`,
//! `curves_accuracy.png` and `curves_loss.png`.

pub mod measure;
mod report;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use cxr_core::metrics::{Estimate, PairedAucTest, delong_paired_test};
use serde::{Deserialize, Serialize};

use crate::backbones::BackboneKind;
use crate::classifier::HeadConfig;
use crate::train::crossval::{self, CrossValidation, Spread};
pub use crate::train::crossval::{WHO_MIN_SENSITIVITY, WhoPoint};
use crate::train::log::EpochRecord;
use crate::train::recipe::Recipe;
use crate::train::{
    CacheDirs, MODEL_FILE, TrainError, TrainRequest, pseudo_labels, read_json, train, write_json,
};
use crate::weights::CATALOG;
use measure::{Costs, SpeedConfig};

pub const REQUEST_FILE: &str = "compare.json";
pub const REPORT_JSON: &str = "report.json";
pub const REPORT_MD: &str = "report.md";
const COSTS_FILE: &str = "costs.json";

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Mismatch { path: PathBuf, message: String },
    #[error("{backbone}: {source}")]
    Metrics {
        backbone: String,
        source: cxr_core::metrics::MetricsError,
    },
    #[error("plot: {0}")]
    Plot(String),
    #[error("compare: {0}")]
    Invalid(String),
}

/// What `cxr compare` was asked to do; stored as `compare.json` so that a rerun into the same
/// folder can tell a continuation from a different comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRequest {
    pub data: PathBuf,
    pub out: PathBuf,
    pub recipe: Recipe,
    pub backbones: Vec<String>,
    /// Other recipes, each trained with every backbone too (its backbone field is replaced),
    /// e.g. the same recipe with lung crops: is the change worth it, on the same folds?
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<RecipeVariant>,
    pub folds: usize,
    /// Images without labels, for recipes that pseudo-label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlabelled: Option<PathBuf>,
    pub timing: SpeedConfig,
}

/// A recipe compared against the main one; its rows are named `<backbone>+<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecipeVariant {
    pub name: String,
    pub recipe: Recipe,
}

/// One row of the comparison: a backbone with the main recipe or a variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The backbone's name, plus `+<variant>` for a recipe variant; also its folder's name.
    pub name: String,
    pub kind: BackboneKind,
    pub recipe: Recipe,
}

/// One candidate's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneResult {
    /// The candidate's name: the backbone, plus `+<variant>` for a recipe variant.
    pub backbone: String,
    /// False: no pretrained weights here, so it trained from random weights with every stage
    /// trainable in phase 2.
    pub pretrained: bool,
    /// Held-out AUC over folds: mean, sd, min, max.
    pub auc: Spread,
    /// Student-t 95 % interval of the mean held-out AUC over folds.
    pub auc_ci: Estimate,
    /// AUC of all out-of-fold scores pooled, with its DeLong 95 % interval.
    pub pooled_auc: Option<Estimate>,
    /// At each fold's WHO threshold (sensitivity >= 0.90 on its validation images and the
    /// other folds' held-out images), applied to its held-out images; counts pooled over
    /// folds, Wilson 95 % intervals.
    pub who: WhoPoint,
    pub costs: Costs,
    /// Sum of the epoch times of the cross-validation folds, which include computing the
    /// cached trunk outputs (in each cache's first epoch), not the final model's run.
    pub training_seconds: f64,
    /// DeLong's paired test of this backbone's pooled out-of-fold scores against the best
    /// backbone's (`auc_a` is this one); `None` for the best itself.
    pub versus_best: Option<PairedAucTest>,
    /// For a recipe variant's row, the same test against its backbone with the main recipe:
    /// is the variant's change worth it? `None` for main-recipe rows.
    #[serde(default)]
    pub versus_main: Option<PairedAucTest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    pub request: CompareRequest,
    /// Highest pooled out-of-fold AUC.
    pub best: String,
    pub images: usize,
    pub results: Vec<BackboneResult>,
    /// Every row together (mean logit), where there are two or more binary rows.
    #[serde(default)]
    pub ensemble: Option<EnsembleResult>,
}

/// The rows' held-out scores averaged image by image on the logit scale
/// ([`crossval::mean_logit_ensemble`]): what an ensemble of the compared models would score
/// on the same folds. Its costs are its members' added up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleResult {
    pub members: Vec<String>,
    pub auc: Spread,
    pub auc_ci: Estimate,
    pub pooled_auc: Option<Estimate>,
    pub who: WhoPoint,
    pub parameters: usize,
    pub giga_macs: Option<f64>,
    /// One image through every member in turn.
    pub images_per_second: f64,
    /// DeLong's paired test of the ensemble's pooled scores against the best row's.
    pub versus_best: PairedAucTest,
}

/// Trains what is not yet trained, measures what is not yet measured, and writes the report.
/// `stop` (Ctrl-C) interrupts the backbone in training; a rerun continues from there.
pub fn compare(
    request: &CompareRequest,
    cache_dirs: &CacheDirs,
    stop: &AtomicBool,
) -> Result<CompareReport, CompareError> {
    let candidates = check(request)?;
    let out = &request.out;
    std::fs::create_dir_all(out).map_err(|source| CompareError::Io {
        path: out.clone(),
        source,
    })?;
    let request_path = out.join(REQUEST_FILE);
    if request_path.is_file() {
        let before: CompareRequest = read_json(&request_path)?;
        if !same_comparison(&before, request) {
            return Err(CompareError::Mismatch {
                path: request_path,
                message: "this folder holds a comparison with another recipe, data set, fold \
                          count or timing; use a new --out folder"
                    .into(),
            });
        }
    }
    write_json(&request_path, request)?;
    let mut done = Vec::new();
    for (k, candidate) in candidates.iter().enumerate() {
        eprintln!(
            "compare: {} ({}/{})",
            candidate.name,
            k + 1,
            candidates.len()
        );
        done.push(backbone_run(request, candidate, cache_dirs, stop)?);
    }
    let report = summarise(request, &done)?;
    write_json(&out.join(REPORT_JSON), &report)?;
    report::write(out, &report, &done)?;
    Ok(report)
}

/// A finished candidate: its cross-validation, per-fold histories and costs.
pub(crate) struct Trained {
    pub name: String,
    pub pretrained: bool,
    pub cross_validation: CrossValidation,
    /// Per fold, the validation curve of the run whose model was scored.
    pub histories: Vec<Vec<EpochRecord>>,
    /// The folds' epoch times summed, pseudo-labelling teachers' included.
    pub training_seconds: f64,
    pub costs: Costs,
}

/// The candidates in report order: every backbone with the main recipe, then with each variant.
fn check(request: &CompareRequest) -> Result<Vec<Candidate>, CompareError> {
    if request.backbones.is_empty() {
        return Err(CompareError::Invalid(
            "--backbones lists no backbone".into(),
        ));
    }
    let mut kinds = Vec::new();
    for name in &request.backbones {
        let kind =
            BackboneKind::from_name(name).map_err(|err| CompareError::Invalid(err.to_string()))?;
        if kinds.contains(&kind) {
            return Err(CompareError::Invalid(format!("{name} is listed twice")));
        }
        kinds.push(kind);
    }
    let mut variants = vec![(None, &request.recipe)];
    for variant in &request.variants {
        let clean = !variant.name.is_empty()
            && variant
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !clean || variant.name.starts_with('.') {
            return Err(CompareError::Invalid(format!(
                "recipe variant name {:?} must be letters, digits, '-', '_' or '.' (it names a \
                 folder)",
                variant.name
            )));
        }
        if variants
            .iter()
            .any(|(name, _)| *name == Some(&variant.name))
        {
            return Err(CompareError::Invalid(format!(
                "recipe variant {} is listed twice",
                variant.name
            )));
        }
        variant.recipe.validate().map_err(TrainError::from)?;
        variants.push((Some(&variant.name), &variant.recipe));
    }
    Ok(variants
        .iter()
        .flat_map(|&(variant, recipe)| {
            kinds.iter().map(move |&kind| Candidate {
                name: match variant {
                    None => kind.name().to_string(),
                    Some(variant) => format!("{}+{variant}", kind.name()),
                },
                kind,
                recipe: recipe_for(recipe, kind),
            })
        })
        .collect())
}

/// The same comparison, perhaps with more or fewer backbones or variants (adding one later is
/// fine, and a variant's runs are kept only under its name, so a changed variant is refused).
fn same_comparison(a: &CompareRequest, b: &CompareRequest) -> bool {
    let same_variants = a.variants.iter().all(|old| {
        b.variants
            .iter()
            .all(|new| new.name != old.name || new.recipe == old.recipe)
    });
    same_variants
        && (&a.data, &a.recipe, a.folds, &a.unlabelled, a.timing)
            == (&b.data, &b.recipe, b.folds, &b.unlabelled, b.timing)
}

pub fn has_pretrained_weights(kind: BackboneKind) -> bool {
    CATALOG.iter().any(|entry| entry.backbone == kind)
}

/// The comparison's recipe for `kind`: its backbone, and the stage phase 2 unfreezes from:
/// the recipe's where `kind` has that stage, else the backbone's default; with no pretrained
/// weights, the first stage (the whole network trains).
pub fn recipe_for(recipe: &Recipe, kind: BackboneKind) -> Recipe {
    let spec = kind.spec();
    let mut recipe = Recipe {
        backbone: kind.name().to_string(),
        ..recipe.clone()
    };
    if !has_pretrained_weights(kind) {
        recipe.fine_tune.unfreeze_from = spec.stages.first().cloned().unwrap_or_default();
    } else if spec.stage_index(&recipe.fine_tune.unfreeze_from).is_none() {
        recipe.fine_tune.unfreeze_from.clear();
    }
    recipe
}

fn backbone_run(
    request: &CompareRequest,
    candidate: &Candidate,
    cache_dirs: &CacheDirs,
    stop: &AtomicBool,
) -> Result<Trained, CompareError> {
    let (kind, recipe) = (candidate.kind, &candidate.recipe);
    let dir = request.out.join(&candidate.name);
    // Measured before training, so that memory the training leaves resident does not hide
    // what inference needs (the first backbone measured in a process sees a clean heap).
    std::fs::create_dir_all(&dir).map_err(|source| CompareError::Io {
        path: dir.clone(),
        source,
    })?;
    let costs_path = dir.join(COSTS_FILE);
    let costs = if costs_path.is_file() {
        read_json(&costs_path)?
    } else {
        let head = HeadConfig {
            hidden: recipe.head.hidden,
            dropout: recipe.head.dropout,
            ..HeadConfig::paper(kind.spec().feature_channels)
        };
        let side = recipe
            .preprocess
            .input_size
            .unwrap_or(kind.spec().input_size);
        let costs = measure::measure(kind, &head, side, request.timing);
        write_json(&costs_path, &costs)?;
        costs
    };
    let cv_path = dir.join(crate::train::CROSS_VALIDATION_FILE);
    let finished = cv_path.is_file() && dir.join(MODEL_FILE).is_file();
    let cross_validation: Option<CrossValidation> = if finished {
        Some(read_json(&cv_path)?).filter(|cv: &CrossValidation| !cv.scores.is_empty())
    } else {
        None
    };
    let cross_validation = match cross_validation {
        Some(cv) => {
            eprintln!("compare: {} already trained, skipped", candidate.name);
            cv
        }
        None => {
            let train_request = TrainRequest {
                data: request.data.clone(),
                out: dir.clone(),
                recipe: recipe.clone(),
                folds: Some(request.folds),
                unlabelled: request.unlabelled.clone(),
            };
            let report = train(&train_request, cache_dirs, stop)?;
            report.cross_validation.ok_or_else(|| {
                CompareError::Invalid(format!("{}: no cross-validation", candidate.name))
            })?
        }
    };
    let histories = (1..=request.folds)
        .map(|k| read_json(&dir.join(format!("fold-{k}")).join("metrics.json")))
        .collect::<Result<Vec<Vec<EpochRecord>>, _>>()?;
    let mut training_seconds: f64 = histories.iter().flatten().map(|r| r.seconds).sum();
    for k in 1..=request.folds {
        let teacher = dir
            .join(format!("fold-{k}"))
            .join(pseudo_labels::TEACHER_DIR)
            .join("metrics.json");
        if teacher.is_file() {
            let history: Vec<EpochRecord> = read_json(&teacher)?;
            training_seconds += history.iter().map(|r| r.seconds).sum::<f64>();
        }
    }
    Ok(Trained {
        name: candidate.name.clone(),
        pretrained: has_pretrained_weights(kind),
        cross_validation,
        histories,
        training_seconds,
        costs,
    })
}

fn summarise(request: &CompareRequest, done: &[Trained]) -> Result<CompareReport, CompareError> {
    // Pairing needs every backbone to have scored the same images in the same order.
    let order = |t: &Trained| -> Vec<usize> {
        t.cross_validation
            .scores
            .iter()
            .flat_map(|f| f.test.clone())
            .collect()
    };
    let reference = order(&done[0]);
    if let Some(other) = done.iter().find(|t| order(t) != reference) {
        return Err(CompareError::Mismatch {
            path: request.out.join(&other.name),
            message: format!(
                "its folds differ from {}'s; it was trained on other data or another seed",
                done[0].name
            ),
        });
    }
    let pooled = |t: &Trained| crossval::pooled(&t.cross_validation.scores);
    let auc_of = |t: &Trained| t.cross_validation.pooled.auc.map_or(f64::NAN, |e| e.value);
    let best = done
        .iter()
        .max_by(|a, b| auc_of(a).total_cmp(&auc_of(b)))
        .ok_or_else(|| CompareError::Invalid("nothing to compare".into()))?;
    let (best_scores, labels) = pooled(best);
    let mut results = Vec::new();
    for t in done {
        let metrics_error = |source| CompareError::Metrics {
            backbone: t.name.clone(),
            source,
        };
        let (scores, _) = pooled(t);
        let versus_best = if t.name == best.name {
            None
        } else {
            Some(delong_paired_test(&scores, &best_scores, &labels).map_err(metrics_error)?)
        };
        let main = t
            .name
            .split_once('+')
            .and_then(|(backbone, _)| done.iter().find(|m| m.name == backbone));
        let versus_main = match main {
            Some(main) => {
                Some(delong_paired_test(&scores, &pooled(main).0, &labels).map_err(metrics_error)?)
            }
            None => None,
        };
        let cv = &t.cross_validation;
        results.push(BackboneResult {
            backbone: t.name.clone(),
            pretrained: t.pretrained,
            auc: cv.auc.clone(),
            auc_ci: mean_interval(&cv.auc, cv.folds.len()),
            pooled_auc: cv.pooled.auc,
            who: crossval::who_point(&cv.scores).map_err(metrics_error)?,
            costs: t.costs.clone(),
            training_seconds: t.training_seconds,
            versus_best,
            versus_main,
        });
    }
    Ok(CompareReport {
        request: request.clone(),
        best: best.name.clone(),
        images: labels.len(),
        results,
        ensemble: ensemble(done, &best_scores, &labels)?,
    })
}

/// Every row of `done` as one ensemble, tested against the best row's pooled `best_scores`;
/// `None` for a single row or a multi-class comparison.
fn ensemble(
    done: &[Trained],
    best_scores: &[f64],
    labels: &[bool],
) -> Result<Option<EnsembleResult>, CompareError> {
    let binary = done.iter().all(|t| t.cross_validation.classes.is_none());
    if done.len() < 2 || !binary {
        return Ok(None);
    }
    let members: Vec<&CrossValidation> = done.iter().map(|t| &t.cross_validation).collect();
    let metrics_error = |source| CompareError::Metrics {
        backbone: "ensemble".into(),
        source,
    };
    let cv = match crossval::mean_logit_ensemble(&members) {
        Some(cv) => cv?,
        // `summarise` has checked that the rows held out the same images.
        None => return Ok(None),
    };
    let (scores, _) = crossval::pooled(&cv.scores);
    let costs = done.iter().map(|t| &t.costs);
    Ok(Some(EnsembleResult {
        members: done.iter().map(|t| t.name.clone()).collect(),
        auc_ci: mean_interval(&cv.auc, cv.folds.len()),
        auc: cv.auc.clone(),
        pooled_auc: cv.pooled.auc,
        who: crossval::who_point(&cv.scores).map_err(metrics_error)?,
        parameters: costs.clone().map(|c| c.parameters).sum(),
        giga_macs: costs.clone().map(|c| c.giga_macs).sum(),
        images_per_second: 1.0 / costs.map(|c| 1.0 / c.images_per_second).sum::<f64>(),
        versus_best: delong_paired_test(&scores, best_scores, labels).map_err(metrics_error)?,
    }))
}

/// Student-t 95 % interval of a mean over `n` folds (clipped to [0, 1]).
fn mean_interval(spread: &Spread, n: usize) -> Estimate {
    let half = if n > 1 {
        t_975(n - 1) * spread.sd / (n as f64).sqrt()
    } else {
        f64::NAN
    };
    Estimate {
        value: spread.mean,
        lower: (spread.mean - half).max(0.0),
        upper: (spread.mean + half).min(1.0),
    }
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom: tabulated to 30, then the
/// Cornish-Fisher expansion around the normal quantile (error below 1e-4 there).
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if (1..=30).contains(&df) {
        return TABLE[df - 1];
    }
    let z: f64 = 1.959_964;
    let v = df.max(1) as f64;
    z + (z.powi(3) + z) / (4.0 * v)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_t_quantile_continues_the_table() {
        assert_eq!(t_975(4), 2.776);
        assert!((t_975(40) - 2.021).abs() < 1e-3, "{}", t_975(40));
        assert!((t_975(120) - 1.980).abs() < 1e-3, "{}", t_975(120));
        let s = Spread {
            mean: 0.9,
            sd: 0.02,
            min: 0.88,
            max: 0.92,
        };
        let ci = mean_interval(&s, 5);
        assert!((ci.upper - ci.lower - 2.0 * 2.776 * 0.02 / 5f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn scratch_backbones_train_whole_and_stage_names_follow_the_backbone() {
        let mut recipe = Recipe::default();
        recipe.fine_tune.unfreeze_from = "mixed9".into();
        let alexnet = recipe_for(&recipe, BackboneKind::AlexNet);
        assert_eq!(alexnet.unfreeze_stage().expect("stage"), 0);
        let mobilenet = recipe_for(&recipe, BackboneKind::MobileNetV2);
        assert_eq!(mobilenet.fine_tune.unfreeze_from, "");
        mobilenet.validate().expect("valid");
        let inception = recipe_for(&recipe, BackboneKind::InceptionV3);
        assert_eq!(inception.fine_tune.unfreeze_from, "mixed9");
    }

    #[test]
    fn recipe_variants_add_a_row_per_backbone_and_bad_names_are_refused() {
        let mut cropped = Recipe::default();
        cropped.preprocess.lung_crop = Some(cxr_core::lungs::LungCropSpec::default());
        let mut request = CompareRequest {
            data: PathBuf::from("data"),
            out: PathBuf::from("out"),
            recipe: Recipe::default(),
            backbones: vec!["mobilenet-v2".into(), "efficientnet-lite0".into()],
            variants: vec![RecipeVariant {
                name: "lungcrop".into(),
                recipe: cropped.clone(),
            }],
            folds: 3,
            unlabelled: None,
            timing: SpeedConfig::default(),
        };
        let candidates = check(&request).expect("candidates");
        let names: Vec<&str> = candidates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mobilenet-v2",
                "efficientnet-lite0",
                "mobilenet-v2+lungcrop",
                "efficientnet-lite0+lungcrop"
            ]
        );
        assert_eq!(
            candidates[3].recipe.preprocess.lung_crop,
            cropped.preprocess.lung_crop
        );
        assert_eq!(candidates[3].recipe.backbone, "efficientnet-lite0");
        assert!(candidates[1].recipe.preprocess.lung_crop.is_none());

        // Adding a variant continues a comparison; changing one under its name does not.
        let before = CompareRequest {
            variants: Vec::new(),
            ..request.clone()
        };
        assert!(same_comparison(&before, &request));
        let mut changed = request.clone();
        changed.variants[0].recipe.seed += 1;
        assert!(!same_comparison(&request, &changed));

        for bad in ["../x", "", ".hidden", "a b"] {
            request.variants[0].name = bad.into();
            let error = check(&request).expect_err(bad).to_string();
            assert!(error.contains("variant name"), "{error}");
        }
        request.variants[0].name = "lungcrop".into();
        request.variants.push(request.variants[0].clone());
        assert!(
            check(&request)
                .expect_err("twice")
                .to_string()
                .contains("twice")
        );
    }
}

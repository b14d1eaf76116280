//! Training an ensemble (`ensemble = [...]` in the recipe): one run of the recipe per listed
//! member in `members/<member>/` (e.g. `members/mobilenet-v2+lung-crop/`), on the same folds
//! and split, then one model file whose networks' screening log-odds are averaged, its
//! thresholds chosen on the stored file's scores.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use cxr_core::dataset::Dataset;
use cxr_core::metrics::class_figures;

use super::crossval::{self, CrossValidation, FoldScores};
use super::data::Labels;
use super::recipe::Recipe;
use super::{
    CROSS_VALIDATION_FILE, CacheDirs, MODEL_FILE, REPORT_FILE, REQUEST_FILE, TrainError,
    TrainReport, TrainRequest, operating_points, read_json, start_run, train_one, validation,
    write_json,
};
use crate::classifier::{self, mean_log_odds};
use crate::device::inference_device;
use crate::model_file::{self, Architecture, ENSEMBLE_NETWORK, Member, ModelCard, ModelKind};
use crate::predict::{ScreenOptions, Screener};

/// Sub-folder of the run folder holding one run folder per member.
pub const MEMBERS_DIR: &str = "members";

/// Trains every member (or takes a member's finished run as it is), then writes the ensemble.
pub(crate) fn train_ensemble(
    request: &TrainRequest,
    dataset: &Dataset,
    cache_dirs: &CacheDirs,
    stop: &AtomicBool,
) -> Result<TrainReport, TrainError> {
    let recipe = &request.recipe;
    let out = &request.out;
    let count = recipe.ensemble.len();
    let mut reports = Vec::with_capacity(count);
    for (k, name) in recipe.ensemble.iter().enumerate() {
        eprintln!("ensemble member {}/{count}: {name}", k + 1);
        let member = TrainRequest {
            out: out.join(MEMBERS_DIR).join(name),
            recipe: recipe.member(name),
            ..request.clone()
        };
        let report = match finished(&member)? {
            Some(report) => report,
            None => {
                start_run(&member)?;
                train_one(&member, dataset, cache_dirs, stop)?
            }
        };
        reports.push(report);
    }
    let validation_images = &reports[0].validation_scores;
    if reports
        .iter()
        .any(|report| report.validation_scores.val != validation_images.val)
    {
        return Err(TrainError::Data(
            "the ensemble's members chose their weights on different validation images".into(),
        ));
    }
    let cross_validation = match request.folds {
        Some(_) => {
            let cv = cross_validate(&reports)?;
            write_json(&out.join(CROSS_VALIDATION_FILE), &cv)?;
            Some(cv)
        }
        None => None,
    };

    let device = inference_device();
    let networks = reports
        .iter()
        .map(|report| classifier::load(&report.model, &device).map(|(network, _)| network))
        .collect::<Result<Vec<_>, _>>()?;
    let path = out.join(MODEL_FILE);
    let mut card = ensemble_card(recipe, &reports)?;
    classifier::save(&path, &networks, &card)?;

    // The thresholds are chosen on what the stored file scores (f16 storage moves scores a
    // little), through the same path `cxr predict` takes.
    let labels = Labels::of(dataset, &recipe.class_names()?);
    let stored = score_stored(&path, dataset, &labels, &validation_images.val)?;
    let members_mean: Vec<f64> = (0..stored.screening.len())
        .map(|i| {
            let members: Vec<f64> = reports
                .iter()
                .map(|report| report.validation_scores.val_scores[i])
                .collect();
            mean_log_odds(&members)
        })
        .collect();
    let drift = stored
        .screening
        .iter()
        .zip(&members_mean)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "stored ensemble: validation scores within {drift:.4} of the members' combined scores"
    );
    let labels = &validation_images.val_labels;
    let name = format!("validation split ({} images)", labels.len());
    card.operating_points = operating_points(&stored.screening, labels, cross_validation.as_ref())?;
    card.default_operating_point = "default".to_string();
    card.validation
        .push(validation(&name, &stored.screening, labels)?);
    if !card.refer.is_empty() {
        card.class_validation.push(class_figures(
            &name,
            &card.classes,
            &stored.classes,
            &stored.class_labels,
        )?);
    }
    if let Some(cv) = &cross_validation {
        card.validation.push(cv.pooled.clone());
    }
    // The loaded weights already hold the stored values: saving them again rounds nothing.
    let (loaded, stored_card) = classifier::load_networks(&path, &device)?;
    let loaded: Vec<_> = loaded.into_iter().map(|n| n.classifier).collect();
    // The report's card as the file's: with the trunks its members share.
    card.members = stored_card.members;
    classifier::save(&path, &loaded, &card)?;

    let report = TrainReport {
        model: path,
        card,
        cross_validation,
        validation_scores: FoldScores {
            val_scores: stored.screening,
            ..validation_images.clone()
        },
    };
    write_json(&out.join(REPORT_FILE), &report)?;
    Ok(report)
}

/// The report of a member's run that finished with the request `member`, if there is one.
fn finished(member: &TrainRequest) -> Result<Option<TrainReport>, TrainError> {
    let dir = &member.out;
    if !dir.join(REPORT_FILE).is_file() || !dir.join(REQUEST_FILE).is_file() {
        return Ok(None);
    }
    if TrainRequest::resume(dir)? != *member {
        return Ok(None);
    }
    let mut report: TrainReport = read_json(&dir.join(REPORT_FILE))?;
    report.model = dir.join(MODEL_FILE);
    Ok(Some(report))
}

/// The members' held-out scores combined image by image, fold by fold.
fn cross_validate(reports: &[TrainReport]) -> Result<CrossValidation, TrainError> {
    let members = reports
        .iter()
        .map(|report| report.cross_validation.as_ref())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| TrainError::Data("a member has no cross-validation figures".into()))?;
    crossval::mean_logit_ensemble(&members).ok_or_else(|| {
        TrainError::Data("the ensemble's members were cross-validated on different folds".into())
    })?
}

/// The ensemble's card before its thresholds: the members' networks and preprocessing, the
/// first member's classes and data record, the ensemble's recipe.
fn ensemble_card(recipe: &Recipe, reports: &[TrainReport]) -> Result<ModelCard, TrainError> {
    let first = &reports[0].card;
    let members: Vec<Member> = reports
        .iter()
        .map(|report| Member {
            architecture: report.card.architecture.clone(),
            preprocess: report.card.preprocess.clone(),
            trunk_of: None,
        })
        .collect();
    let architecture = Architecture {
        network: ENSEMBLE_NETWORK.to_string(),
        input_size: members
            .iter()
            .map(|member| member.architecture.input_size)
            .max()
            .unwrap_or(0),
        params: [("members".to_string(), members.len() as f64)].into(),
    };
    let mut card = ModelCard::new(
        ModelKind::Classifier,
        architecture,
        first.preprocess.clone(),
        first.classes.clone(),
    );
    card.refer = first.refer.clone();
    card.weights = recipe.weights;
    let names = members
        .iter()
        .map(Member::name)
        .collect::<Vec<_>>()
        .join(", ");
    let recipe_json = serde_json::to_value(recipe).map_err(|err| TrainError::Json {
        path: PathBuf::from(REQUEST_FILE),
        message: err.to_string(),
    })?;
    card.training = first.training.clone().map(|record| model_file::TrainingRecord {
        recipe: recipe_json,
        protocol: format!(
            "{}; an ensemble of {} such models ({names}) averaging their screening log-odds, its thresholds chosen on the stored ensemble's validation scores",
            record.protocol,
            members.len()
        ),
        ..record
    });
    card.members = members;
    Ok(card)
}

/// What the stored model file scores on `dataset`'s images `indices`, with their labels.
struct StoredScores {
    screening: Vec<f64>,
    classes: Vec<Vec<f64>>,
    class_labels: Vec<usize>,
}

fn score_stored(
    path: &Path,
    dataset: &Dataset,
    labels: &Labels,
    indices: &[usize],
) -> Result<StoredScores, TrainError> {
    let paths: Vec<PathBuf> = indices
        .iter()
        .map(|&i| dataset.items[i].path.clone())
        .collect();
    let predict_error = |err: crate::predict::PredictError| TrainError::Data(err.to_string());
    let screener = Screener::load(Some(path)).map_err(predict_error)?;
    let results = screener
        .screen_files(&paths, &ScreenOptions::default(), |_| {})
        .map_err(predict_error)?;
    let mut scores = StoredScores {
        screening: Vec::with_capacity(paths.len()),
        classes: Vec::with_capacity(paths.len()),
        class_labels: labels.classes_of(indices),
    };
    for result in results {
        let screening = result.map_err(predict_error)?;
        scores.screening.push(screening.probability);
        scores
            .classes
            .push(screening.classes.iter().map(|c| c.probability).collect());
    }
    Ok(scores)
}

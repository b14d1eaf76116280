//! Research tool: how a cross-validated run's held-out figures move when its X-rays arrive as
//! another site might send them (other gamma, contrast, noise, sharpness or field of view).
//! Each fold's kept model scores its held-out images after the shift, through the same
//! `Screener` that `cxr predict` uses; the WHO thresholds stay those chosen on the unshifted
//! scores (each fold's validation images and the other folds' held-out images), as for a
//! model calibrated at home and then deployed elsewhere.
//!
//! Usage: site_shift [--tta N] [--scores CSV] RUN_DIR[,RUN_DIR...] [SHIFT...]
//! RUN_DIR is a finished `cxr train --folds K` run, one network or an ensemble (members scored
//! in turn and averaged in log-odds, as the ensemble's own cross-validation does). Several runs
//! on the same data and folds, joined by commas, are scored as one ensemble of all their
//! networks (e.g. a whole-X-ray run with a lung-crop run). SHIFTs are
//! names from the table below (all by default). The `none` row rescores the unshifted images
//! and prints how far those scores are from the run's own: a check of the whole path.
//! `--tta N` scores each X-ray as `cxr predict --tta N` does: itself and N augmented views,
//! probabilities averaged (the `none` row then differs from the run's own scores).
//! `--scores CSV` also writes every member's held-out score of every image under every shift
//! (`shift,run,member,fold,image,label,score`), so that subsets of the members can be scored
//! afterwards without rescoring the images.

use std::io::Write;
use std::path::{Path, PathBuf};

use cxr_core::augment::{AugmentParams, FillMode};
use cxr_core::dataset::Dataset;
use cxr_core::{DecodeLimits, DecodedImage, GrayImage, decode_file};
use cxr_nn::predict::{ScreenOptions, Screener};
use cxr_nn::train::crossval::{
    CrossValidation, FoldScores, from_scores, mean_logit_ensemble, same_folds, who_point_at,
    who_thresholds,
};
use cxr_nn::train::ensemble::MEMBERS_DIR;
use cxr_nn::train::run::BEST_FILE;
use cxr_nn::train::{CROSS_VALIDATION_FILE, TrainRequest, read_json};

type Error = Box<dyn std::error::Error>;

/// One way another site's X-rays may differ; `apply` takes the decoded image (values in
/// [0, 1]) and its index in the data set.
struct Shift {
    name: &'static str,
    apply: fn(&GrayImage, u64) -> GrayImage,
}

// Every shift goes through the augmentation code itself, so that a shift and the training
// jitter of the same kind mean the same thing.

fn gamma(gamma: f32) -> AugmentParams {
    AugmentParams {
        gamma,
        ..AugmentParams::identity()
    }
}

fn contrast(contrast: f32) -> AugmentParams {
    AugmentParams {
        contrast,
        ..AugmentParams::identity()
    }
}

fn black_border(zoom_x: f32, zoom_y: f32) -> AugmentParams {
    AugmentParams {
        zoom_x,
        zoom_y,
        fill: FillMode::Constant { value: 0.0 },
        ..AugmentParams::identity()
    }
}

/// Gaussian blur of standard deviation `pixels` source pixels.
fn blur(image: &GrayImage, pixels: f32) -> AugmentParams {
    AugmentParams {
        blur: pixels / image.width.min(image.height).max(1) as f32,
        ..AugmentParams::identity()
    }
}

/// Additive Gaussian noise of standard deviation `sigma`, its pattern seeded by the image's
/// index.
fn noise(sigma: f32, index: u64) -> AugmentParams {
    AugmentParams {
        noise: sigma,
        noise_seed: index,
        ..AugmentParams::identity()
    }
}

const SHIFTS: &[Shift] = &[
    Shift {
        name: "none",
        apply: |image, _| image.clone(),
    },
    Shift {
        name: "gamma-0.6",
        apply: |image, _| gamma(0.6).apply(image),
    },
    Shift {
        name: "gamma-1.6",
        apply: |image, _| gamma(1.6).apply(image),
    },
    Shift {
        name: "contrast-0.6",
        apply: |image, _| contrast(0.6).apply(image),
    },
    Shift {
        name: "contrast-1.5",
        apply: |image, _| contrast(1.5).apply(image),
    },
    Shift {
        name: "noise-0.03",
        apply: |image, index| noise(0.03, index).apply(image),
    },
    Shift {
        name: "blur-3px",
        apply: |image, _| blur(image, 3.0).apply(image),
    },
    // The field of view 20 % wider each way, black beyond the film.
    Shift {
        name: "wider-field",
        apply: |image, _| black_border(1.2, 1.2).apply(image),
    },
    // The chest 15 % larger: a tighter collimation.
    Shift {
        name: "tighter-field",
        apply: |image, _| black_border(0.85, 0.85).apply(image),
    },
    // A portrait film (about 4020 x 4892 px) squashed to a square, as the Montgomery images of
    // the reference data set were: the chest 1.22x as wide for its height, black above and
    // below.
    Shift {
        name: "portrait-squashed",
        apply: |image, _| black_border(1.0, 1.22).apply(image),
    },
];

/// One network's runs: its out-of-fold scores and each fold's kept model, loaded.
struct Member {
    /// The run folder it came from, as given.
    run: String,
    name: String,
    cv: CrossValidation,
    fold_models: Vec<Screener>,
}

fn read_member(run: &Path, dir: &Path, name: String) -> Result<Member, Error> {
    let path = dir.join(CROSS_VALIDATION_FILE);
    let cv: CrossValidation =
        read_json(&path).map_err(|err| format!("{err} (not a finished `--folds` run?)"))?;
    let fold_models = (1..=cv.scores.len())
        .map(|k| {
            let path = dir.join(format!("fold-{k}")).join(BEST_FILE);
            Screener::load(Some(&path)).map_err(|err| format!("{}: {err}", path.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Member {
        run: run.display().to_string(),
        name,
        cv,
        fold_models,
    })
}

fn read_members(run: &Path, request: &TrainRequest) -> Result<Vec<Member>, Error> {
    if request.recipe.ensemble.is_empty() {
        return Ok(vec![read_member(
            run,
            run,
            request.recipe.backbone.clone(),
        )?]);
    }
    request
        .recipe
        .ensemble
        .iter()
        .map(|name| read_member(run, &run.join(MEMBERS_DIR).join(name), name.clone()))
        .collect()
}

/// Every image after `shift`: the same pictures for every member.
fn shifted_images(
    images: &[DecodedImage],
    paths: &[PathBuf],
    shift: &Shift,
) -> Vec<(PathBuf, DecodedImage)> {
    images
        .iter()
        .zip(paths)
        .enumerate()
        .map(|(index, (decoded, path))| {
            let image = DecodedImage {
                image: (shift.apply)(&decoded.image, index as u64),
                info: decoded.info.clone(),
            };
            (path.clone(), image)
        })
        .collect()
}

/// The member's fold scores with each fold's held-out images rescored as `shifted`.
fn shifted_scores(
    member: &Member,
    shifted: &[(PathBuf, DecodedImage)],
    tta_views: usize,
) -> Result<Vec<FoldScores>, Error> {
    let options = ScreenOptions {
        operating_point: None,
        tta_views,
        seed: 0,
    };
    let mut folds = Vec::with_capacity(member.cv.scores.len());
    for (fold, screener) in member.cv.scores.iter().zip(&member.fold_models) {
        let mut test_scores = Vec::with_capacity(fold.test.len());
        for chunk in fold.test.chunks(cxr_nn::predict::BATCH_SIZE) {
            let batch: Vec<(PathBuf, DecodedImage)> =
                chunk.iter().map(|&index| shifted[index].clone()).collect();
            for screening in screener.screen_decoded(&batch, &options)? {
                test_scores.push(screening.probability);
            }
        }
        folds.push(FoldScores {
            test_scores,
            ..fold.clone()
        });
    }
    Ok(folds)
}

/// The members' cross-validations as one ensemble's (a lone member's as it is, bit for bit).
fn as_one(members: &[&CrossValidation]) -> Result<CrossValidation, Error> {
    match members {
        [one] => Ok((*one).clone()),
        _ => Ok(mean_logit_ensemble(members).ok_or("members held out different images")??),
    }
}

/// Removes `--flag VALUE` from `args` and returns VALUE, if the flag is there.
fn take_option(args: &mut Vec<String>, flag: &str) -> Result<Option<String>, Error> {
    let Some(at) = args.iter().position(|arg| arg == flag) else {
        return Ok(None);
    };
    let value = args
        .get(at + 1)
        .cloned()
        .ok_or_else(|| format!("{flag} needs a value"))?;
    args.drain(at..at + 2);
    Ok(Some(value))
}

fn main() -> Result<(), Error> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let tta_views = match take_option(&mut args, "--tta")? {
        Some(views) => views
            .parse()
            .map_err(|_| format!("--tta {views}: not a number of views"))?,
        None => 0,
    };
    let mut scores_csv = match take_option(&mut args, "--scores")? {
        Some(path) => {
            let file = std::fs::File::create(&path).map_err(|err| format!("{path}: {err}"))?;
            let mut csv = std::io::BufWriter::new(file);
            writeln!(csv, "shift,run,member,fold,image,label,score")?;
            Some(csv)
        }
        None => None,
    };
    let Some((run, names)) = args.split_first() else {
        return Err(
            "usage: site_shift [--tta N] [--scores CSV] RUN_DIR[,RUN_DIR...] [SHIFT...]".into(),
        );
    };
    let shifts: Vec<&Shift> = match names.is_empty() {
        true => SHIFTS.iter().collect(),
        false => names
            .iter()
            .map(|name| {
                SHIFTS.iter().find(|s| s.name == name).ok_or_else(|| {
                    let known: Vec<&str> = SHIFTS.iter().map(|s| s.name).collect();
                    format!("unknown shift '{name}' (known: {})", known.join(", "))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let mut requests = Vec::new();
    let mut members = Vec::new();
    for run in run.split(',').map(Path::new) {
        let request = TrainRequest::resume(run)?;
        members.extend(read_members(run, &request)?);
        if !members.iter().all(|m| same_folds(&m.cv, &members[0].cv)) {
            return Err(format!(
                "{}: held out other images than the runs before",
                run.display()
            )
            .into());
        }
        requests.push(request);
    }
    let request = &requests[0];
    let canonical = |r: &TrainRequest| std::fs::canonicalize(&r.data).ok();
    if requests.iter().any(|r| canonical(r) != canonical(request)) {
        return Err("the runs were trained on different data".into());
    }
    let dataset = Dataset::open(&request.data, &request.recipe.class_names()?)?;
    let paths: Vec<PathBuf> = dataset.items.iter().map(|item| item.path.clone()).collect();
    let limits = DecodeLimits::default();
    let images = paths
        .iter()
        .map(|path| decode_file(path, &limits))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "| shift | pooled AUC [95 % CI] | change | accuracy at 0.5 | sensitivity / specificity at the home WHO thresholds | mean probability | members' pooled AUC |"
    );
    println!("|---|---|---|---|---|---|---|");
    // The WHO thresholds are chosen once, on the runs' own (unshifted) scores: shifted
    // held-out scores of the other folds must not recalibrate them.
    let home = as_one(&members.iter().map(|m| &m.cv).collect::<Vec<_>>())?;
    let home_thresholds = who_thresholds(&home.scores).ok();
    let mut reference = None;
    for shift in shifts {
        let shifted = shifted_images(&images, &paths, shift);
        let mut runs = Vec::with_capacity(members.len());
        for member in &members {
            let folds = shifted_scores(member, &shifted, tta_views)?;
            if shift.name == "none" {
                let largest = folds
                    .iter()
                    .zip(&member.cv.scores)
                    .flat_map(|(new, old)| new.test_scores.iter().zip(&old.test_scores))
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                eprintln!(
                    "{}: rescored unshifted, largest change {largest:.2e}",
                    member.name
                );
            }
            if let Some(csv) = scores_csv.as_mut() {
                for (k, fold) in folds.iter().enumerate() {
                    let rows = fold.test.iter().zip(&fold.test_labels);
                    for ((image, label), score) in rows.zip(&fold.test_scores) {
                        let (run, name) = (&member.run, &member.name);
                        let (fold, label) = (k + 1, u8::from(*label));
                        writeln!(
                            csv,
                            "{},{run},{name},{fold},{image},{label},{score}",
                            shift.name
                        )?;
                    }
                }
            }
            runs.push(from_scores(folds)?);
        }
        let combined = as_one(&runs.iter().collect::<Vec<_>>())?;
        let auc = combined.pooled.auc.ok_or("no AUC: one class only")?;
        let reference = *reference.get_or_insert(auc.value);
        let value = |e: Option<cxr_core::metrics::Estimate>| {
            e.map_or("-".to_string(), |e| format!("{:.3}", e.value))
        };
        let who = match &home_thresholds {
            Some(thresholds) => {
                let who = who_point_at(&combined.scores, thresholds.clone())?;
                format!("{} / {}", value(who.sensitivity), value(who.specificity))
            }
            None => "-".to_string(),
        };
        let scores: Vec<f64> = combined
            .scores
            .iter()
            .flat_map(|f| f.test_scores.iter().copied())
            .collect();
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        let member_aucs: Vec<String> = runs.iter().map(|r| value(r.pooled.auc)).collect();
        println!(
            "| {} | {:.3} [{:.3}, {:.3}] | {:+.3} | {} | {who} | {mean:.3} | {} |",
            shift.name,
            auc.value,
            auc.lower,
            auc.upper,
            auc.value - reference,
            value(combined.pooled.accuracy),
            member_aucs.join(", ")
        );
    }
    if let Some(mut csv) = scores_csv {
        csv.flush()?;
    }
    Ok(())
}

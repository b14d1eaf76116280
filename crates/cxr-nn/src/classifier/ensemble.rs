//! Ensembles: classifiers trained on the same folds whose screening log-odds are averaged per
//! image, stored together in one model file (member K's tensors under `members.K.`).

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use cxr_core::preprocess::PreprocessSpec;

use super::{Classifier, is_imagenet_classifier};
use crate::model_file::{self, ModelCard, ModelFileError, ModelKind};

/// The networks of an ensemble model file, as the one module that is stored.
#[derive(Module, Debug)]
pub struct Ensemble {
    pub members: Vec<Classifier>,
}

/// One network of a classifier model file and the preprocessing that feeds it.
#[derive(Debug, Clone)]
pub struct Network {
    pub classifier: Classifier,
    pub preprocess: PreprocessSpec,
}

/// Loads a classifier model file, one network or an ensemble (as trained: BatchNorm not
/// folded), with its card.
pub fn load_networks(
    path: &Path,
    device: &Device,
) -> Result<(Vec<Network>, ModelCard), ModelFileError> {
    let card = model_file::read_card(path)?;
    if card.members.is_empty() {
        let (classifier, card) = super::load(path, device)?;
        let preprocess = card.preprocess.clone();
        return Ok((
            vec![Network {
                classifier,
                preprocess,
            }],
            card,
        ));
    }
    let members = card
        .members
        .iter()
        .map(|member| Classifier::from_architecture(&member.architecture, &card, device))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| ModelFileError::BadCard {
            path: path.to_path_buf(),
            reason,
        })?;
    let (ensemble, card) = model_file::load_into(
        Ensemble { members },
        path,
        ModelKind::Classifier,
        is_imagenet_classifier,
    )?;
    let networks = ensemble
        .members
        .into_iter()
        .zip(&card.members)
        .map(|(classifier, member)| Network {
            classifier,
            preprocess: member.preprocess.clone(),
        })
        .collect();
    Ok((networks, card))
}

/// Writes `networks` with `card`, which must describe as many: a single network as itself, an
/// ensemble's as an [`Ensemble`].
pub fn save(path: &Path, networks: &[Classifier], card: &ModelCard) -> Result<(), ModelFileError> {
    let described = card.networks().len();
    if described != networks.len() {
        return Err(ModelFileError::Write {
            path: path.to_path_buf(),
            message: format!(
                "the card describes {described} networks but {} were given",
                networks.len()
            ),
        });
    }
    match networks {
        [network] if card.members.is_empty() => model_file::save(path, network, card),
        _ => {
            let ensemble = Ensemble {
                members: networks.to_vec(),
            };
            model_file::save(path, &ensemble, card)
        }
    }
}

/// The probability whose log-odds are the mean of `probabilities`' log-odds: how an ensemble
/// combines its members (an average of log-odds, so one very confident member does not
/// outvote the rest as it would through the mean probability).
pub fn mean_log_odds(probabilities: &[f64]) -> f64 {
    let n = probabilities.len().max(1) as f64;
    let mean = probabilities.iter().map(|&p| logit(p)).sum::<f64>() / n;
    1.0 / (1.0 + (-mean).exp())
}

/// `ln(p / (1 - p))`, with `p` kept off 0 and 1 (a saturated sigmoid) so that it stays finite.
fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-7, 1.0 - 1e-7);
    (p / (1.0 - p)).ln()
}

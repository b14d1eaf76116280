//! Ensembles: classifiers trained on the same folds whose screening log-odds are averaged per
//! image, stored together in one model file (member K's tensors under `members.K.`; a trunk
//! that two members share, stored once under the first).

use std::path::Path;

use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::tensor::Device;
use cxr_core::preprocess::PreprocessSpec;

use super::{Classifier, is_imagenet_classifier};
use crate::model_file::{self, Member, ModelCard, ModelFileError, ModelKind, WeightPrecision};

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
    let bad_card = |reason: String| ModelFileError::BadCard {
        path: path.to_path_buf(),
        reason,
    };
    let members = card
        .members
        .iter()
        .map(|member| Classifier::from_architecture(&member.architecture, &card, device))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad_card)?;
    let sharing = sharing_members(&card.members).map_err(bad_card)?;
    let shared_trunk = |name: &str| sharing.iter().any(|&k| name.starts_with(&trunk_prefix(k)));
    let (mut ensemble, card) =
        model_file::load_into(Ensemble { members }, path, ModelKind::Classifier, |name| {
            is_imagenet_classifier(name) || shared_trunk(name)
        })?;
    for (k, member) in card.members.iter().enumerate() {
        if let Some(owner) = member.trunk_of {
            // A clone shares the tensors, which nothing writes to once loaded.
            ensemble.members[k].backbone = ensemble.members[owner].backbone.clone();
        }
    }
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

/// The members whose card says they share an earlier member's trunk, after checking that each
/// names an earlier member of the same network.
fn sharing_members(members: &[Member]) -> Result<Vec<usize>, String> {
    let mut sharing = Vec::new();
    for (k, member) in members.iter().enumerate() {
        let Some(owner) = member.trunk_of else {
            continue;
        };
        match members.get(owner) {
            Some(earlier)
                if owner < k && earlier.architecture.network == member.architecture.network =>
            {
                sharing.push(k)
            }
            _ => {
                return Err(format!(
                    "ensemble member {k} ({}) claims the trunk of member {owner}, which is not an earlier {} member",
                    member.name(),
                    member.architecture.network
                ));
            }
        }
    }
    Ok(sharing)
}

/// Where member `k`'s trunk tensors are stored.
fn trunk_prefix(k: usize) -> String {
    format!("members.{k}.backbone.")
}

/// For each network, the earlier network (itself sharing none) whose trunk holds the same
/// tensors: a trunk the file stores once.
fn shared_trunks(networks: &[Classifier]) -> Vec<Option<usize>> {
    let trunks: Vec<_> = networks
        .iter()
        .map(|network| network.backbone.collect(None, None, false))
        .collect();
    let same = |a: &[burn::store::burn_pack::Tensor], b: &[burn::store::burn_pack::Tensor]| {
        a.len() == b.len()
            && a.iter().zip(b).all(|(a, b)| {
                a.name == b.name
                    && a.dtype == b.dtype
                    && a.shape == b.shape
                    && matches!((a.to_bytes(), b.to_bytes()), (Ok(a), Ok(b)) if a[..] == b[..])
            })
    };
    let mut owners: Vec<Option<usize>> = Vec::with_capacity(networks.len());
    for k in 0..networks.len() {
        let owner = (0..k).find(|&j| owners[j].is_none() && same(&trunks[j], &trunks[k]));
        owners.push(owner);
    }
    owners
}

/// Writes `networks` with `card`, which must describe as many: a single network as itself, an
/// ensemble's as an [`Ensemble`], each trunk that two members share stored once (the card's
/// `trunk_of` says which, whatever the given card said). A card whose `weights` are
/// [`WeightPrecision::F16Int8Heads`] has each head written with a whole-number hidden matrix
/// ([`super::Head::with_integer_hidden`]) first: load the file to score what it holds.
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
    let networks: Vec<Classifier> = match card.weights {
        WeightPrecision::F16Int8Heads => networks
            .iter()
            .map(|network| {
                let head = network.head.clone().with_integer_hidden();
                head.map(|head| Classifier {
                    backbone: network.backbone.clone(),
                    head,
                })
                .map_err(|message| ModelFileError::Write {
                    path: path.to_path_buf(),
                    message,
                })
            })
            .collect::<Result<_, _>>()?,
        WeightPrecision::F32 | WeightPrecision::F16 => networks.to_vec(),
    };
    match &networks[..] {
        [network] if card.members.is_empty() => model_file::save(path, network, card),
        _ => {
            let owners = shared_trunks(&networks);
            let mut card = card.clone();
            for (member, owner) in card.members.iter_mut().zip(&owners) {
                member.trunk_of = *owner;
            }
            let sharing: Vec<String> = (0..owners.len())
                .filter(|&k| owners[k].is_some())
                .map(trunk_prefix)
                .collect();
            let ensemble = Ensemble { members: networks };
            model_file::save_leaving_out(path, &ensemble, &card, |name| {
                sharing.iter().any(|prefix| name.starts_with(prefix))
            })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::BackboneKind;
    use crate::classifier::{HeadConfig, architecture};
    use crate::device::inference_device;
    use crate::model_file::{Architecture, ENSEMBLE_NETWORK};
    use crate::test_support::small_head;
    use burn::tensor::{Distribution, Tensor};
    use cxr_core::preprocess::PreprocessSpec;

    fn ensemble_card(kinds: &[BackboneKind], head: &HeadConfig) -> ModelCard {
        let spec = PreprocessSpec::preset(kinds[0].spec().preprocess_preset).expect("preset");
        let mut card = ModelCard::new(
            ModelKind::Classifier,
            Architecture {
                network: ENSEMBLE_NETWORK.into(),
                input_size: 224,
                params: Default::default(),
            },
            spec.clone(),
            vec!["normal".into(), "tb".into()],
        );
        card.members = kinds
            .iter()
            .map(|&kind| Member {
                architecture: architecture(kind, head, 224),
                preprocess: spec.clone(),
                trunk_of: None,
            })
            .collect();
        card
    }

    /// One network per trunk, each with a `head` of its own seed (1, 2, ...).
    fn heads_on(trunks: Vec<crate::backbones::Backbone>, head: &HeadConfig) -> Vec<Classifier> {
        let device = inference_device();
        (1..)
            .zip(trunks)
            .map(|(seed, trunk)| Classifier::seeded(trunk, head, seed, &device))
            .collect()
    }

    #[test]
    fn a_trunk_two_members_share_is_stored_once_and_loads_into_both() {
        let device = inference_device();
        let kind = BackboneKind::MobileNetV2;
        let head = small_head(kind);
        let trunk = kind.init(&device);
        // Two heads on one trunk (as a whole-X-ray and a lung-crop member of one frozen
        // backbone), and a third member whose trunk has other weights.
        let networks = heads_on(vec![trunk.clone(), kind.init(&device), trunk], &head);
        let card = ensemble_card(&[kind; 3], &head);
        let dir = tempfile::tempdir().expect("temp dir");
        let (shared, whole) = (
            dir.path().join("shared.safetensors"),
            dir.path().join("whole.safetensors"),
        );
        save(&shared, &networks, &card).expect("save");
        let ensemble = Ensemble {
            members: networks.clone(),
        };
        model_file::save(&whole, &ensemble, &card).expect("save every tensor");

        let size = |path: &Path| std::fs::metadata(path).expect("size").len();
        let trunk_bytes = networks[0].backbone.num_params() as u64 * 4;
        let saved = size(&whole) - size(&shared);
        // The weights, plus the BatchNorm statistics and the tensors' names in the header.
        assert!(
            saved >= trunk_bytes && saved < trunk_bytes + 100_000,
            "{saved} bytes saved, the trunk has {trunk_bytes}"
        );
        let (loaded, loaded_card) = load_networks(&shared, &device).expect("load");
        let owners: Vec<_> = loaded_card.members.iter().map(|m| m.trunk_of).collect();
        assert_eq!(owners, [None, None, Some(0)]);
        let x = Tensor::<4>::random([2, 3, 64, 64], Distribution::Default, &device);
        for (network, loaded) in networks.iter().zip(&loaded) {
            let diff = (network.forward(x.clone()) - loaded.classifier.forward(x.clone()))
                .abs()
                .max();
            assert_eq!(diff.into_scalar::<f32>(), 0.0);
        }
        // Saving what was loaded finds the same sharing: the file is written again as it was.
        let again = dir.path().join("again.safetensors");
        let loaded: Vec<_> = loaded.into_iter().map(|n| n.classifier).collect();
        save(&again, &loaded, &loaded_card).expect("save again");
        assert_eq!(size(&again), size(&shared));
    }

    #[test]
    fn int8_heads_are_written_as_whole_numbers_and_saved_again_byte_for_byte() {
        let device = inference_device();
        let kind = BackboneKind::MobileNetV2;
        let head = small_head(kind);
        let trunk = kind.init(&device);
        let networks = heads_on(vec![trunk.clone(), trunk], &head);
        let mut card = ensemble_card(&[kind; 2], &head);
        let dir = tempfile::tempdir().expect("temp dir");
        let (half, bytes) = (
            dir.path().join("f16.safetensors"),
            dir.path().join("int8.safetensors"),
        );
        card.weights = WeightPrecision::F16;
        save(&half, &networks, &card).expect("save f16");
        card.weights = WeightPrecision::F16Int8Heads;
        save(&bytes, &networks, &card).expect("save int8");
        let size = |path: &Path| std::fs::metadata(path).expect("size").len();
        // Two hidden matrices of 1280 x 8 at one byte instead of two.
        let saved = size(&half) - size(&bytes);
        assert!((20_400..=20_480).contains(&saved), "{saved} bytes saved");

        let (loaded, loaded_card) = load_networks(&bytes, &device).expect("load");
        assert_eq!(loaded_card.weights, WeightPrecision::F16Int8Heads);
        // The file holds the integer hidden layer and its folded scales exactly.
        let hidden_layer = |head: &crate::classifier::Head| {
            let (hidden, norm) = (head.hidden.as_ref(), head.norm.as_ref());
            let (hidden, norm) = (hidden.expect("hidden"), norm.expect("batchnorm"));
            let bias = hidden.bias.as_ref().expect("bias").val();
            [
                hidden.weight.val().into_data(),
                bias.into_data(),
                norm.gamma.val().into_data(),
                norm.running_mean.value().into_data(),
            ]
        };
        for (network, loaded) in networks.iter().zip(&loaded) {
            let integer = network
                .head
                .clone()
                .with_integer_hidden()
                .expect("quantise");
            assert!(hidden_layer(&integer) == hidden_layer(&loaded.classifier.head));
        }
        // A loaded file saved again (as training does once its thresholds are chosen) is the
        // same file: nothing is rounded twice.
        let again = dir.path().join("again.safetensors");
        let loaded: Vec<_> = loaded.into_iter().map(|n| n.classifier).collect();
        save(&again, &loaded, &loaded_card).expect("save again");
        // The same header (its metadata in any order) and the same tensor bytes.
        let parts = |path: &Path| {
            let file = std::fs::read(path).expect("read");
            let length = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
            let header: serde_json::Value =
                serde_json::from_slice(&file[8..8 + length]).expect("header");
            (header, file[8 + length..].to_vec())
        };
        assert!(parts(&again) == parts(&bytes));
    }

    #[test]
    fn a_card_that_shares_a_trunk_it_cannot_is_refused() {
        let device = inference_device();
        let kinds = [BackboneKind::MobileNetV2, BackboneKind::EfficientNetLite0];
        let head = small_head(kinds[0]);
        let networks: Vec<_> = kinds
            .iter()
            .map(|kind| Classifier::new(kind.init(&device), &head, &device))
            .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.safetensors");
        for (k, owner, why) in [
            (1, 0, "not an earlier efficientnet-lite0"),
            (0, 1, "member 1"),
        ] {
            let mut card = ensemble_card(&kinds, &head);
            card.members[k].trunk_of = Some(owner);
            let ensemble = Ensemble {
                members: networks.clone(),
            };
            model_file::save(&path, &ensemble, &card).expect("save");
            let error = load_networks(&path, &device).expect_err("bad trunk_of");
            let message = error.to_string();
            assert!(
                message.contains(&format!("ensemble member {k}")),
                "{message}"
            );
            assert!(message.contains(why), "{message}");
        }
    }
}

//! Screening X-rays with a trained classifier: file or bytes -> decode -> quality gate -> the
//! card's preprocessing -> probability (optionally averaged over augmented views; an
//! ensemble's networks each see their own input and their log-odds are averaged) -> decision.
//!
//! The CLI (`cxr predict`, `cxr eval`, `cxr calibrate`) and the server all call [`Screener`],
//! so a file is scored the same way everywhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use cxr_core::augment::AugmentConfig;
use cxr_core::lungs::{BoundingBox, LungCropper};
use cxr_core::preprocess::{
    ChwTensor, PreprocessError, PreprocessSpec, crop_lungs, fit, to_tensor,
};
use cxr_core::quality::{QualityConfig, QualityReport, check_quality};
use cxr_core::{DecodeError, DecodeLimits, DecodedImage, decode_bytes, decode_file};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::batch::batch_tensor;
use crate::classifier::{self, Network, Scores, mean_log_odds};
use crate::device::inference_device;
use crate::model_file::{ModelCard, ModelFileError};
use crate::segmentation::{LungSegmenter, SegmentationError};

/// Images scored per forward pass: large enough to amortise per-call overhead, small enough
/// to keep memory flat with 3000 px sources.
pub const BATCH_SIZE: usize = 8;

/// The threshold of a sigmoid output when a card names no operating point.
const FALLBACK_THRESHOLD: f64 = 0.5;

/// Why an image could not be screened (each names the file) or a model not used.
#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Model(#[from] ModelFileError),
    #[error("no model given and no shipped model found (models/{file} or ${env}); pass a model file", file = classifier::DEFAULT_MODEL_FILE, env = classifier::MODEL_ENV)]
    NoDefaultModel,
    #[error("the model crops X-rays to the lungs, but no lung model can be loaded: {0}")]
    LungModel(#[source] Box<SegmentationError>),
    #[error("the model has no operating point {name:?}; it has: {available}")]
    UnknownOperatingPoint { name: String, available: String },
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("{}: {source}", path.display())]
    Preprocess {
        path: PathBuf,
        #[source]
        source: PreprocessError,
    },
    #[error("inference failed: {0}")]
    Inference(String),
}

/// How to screen.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScreenOptions {
    /// Operating point name from the model card; `None` for the card's default.
    pub operating_point: Option<String>,
    /// Augmented views scored besides the image itself (test-time augmentation); 0 for none.
    pub tta_views: usize,
    /// Seed of the augmentation draws: the same seed gives the same views.
    pub seed: u64,
}

/// The outcome for one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Screening {
    /// Probability of abnormality; the mean over all views with test-time augmentation.
    pub probability: f64,
    /// Standard deviation of the probability over the views (uncertainty); `None` without TTA.
    pub spread: Option<f64>,
    pub operating_point: String,
    pub threshold: f64,
    /// `probability >= threshold`.
    pub positive: bool,
    /// The class name of the decision, e.g. "tb" or "normal".
    pub decision: String,
    pub quality: QualityReport,
    /// What the card's lung crop did; absent for models that see the whole X-ray (in an
    /// ensemble, members may differ: see each network's preprocessing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lung_crop: Option<LungCropReport>,
    /// A multi-class model's probability of each class (the card's order, mean over views);
    /// empty for a binary model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassProbability>,
}

/// One class's probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassProbability {
    pub class: String,
    pub probability: f64,
}

/// What the card's lung crop did to one X-ray: the region the network saw, or why it saw the
/// whole image (the lung checks failed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LungCropReport {
    pub region: Option<BoundingBox>,
    pub fallback: Option<String>,
}

/// The network inputs of one image and what its lung crop did (for the networks that crop).
#[derive(Debug)]
pub struct Views {
    /// Per network of the model (one, or an ensemble's members in card order): the image
    /// itself, then the augmented views.
    pub inputs: Vec<Vec<ChwTensor>>,
    pub lung_crop: Option<LungCropReport>,
}

/// A loaded classifier (one network or an ensemble) ready to screen images.
pub struct Screener {
    networks: Vec<Network>,
    card: ModelCard,
    device: Device,
    /// The lung model of a card whose preprocessing crops to the lungs.
    lungs: Option<Arc<LungSegmenter>>,
    pub limits: DecodeLimits,
    pub quality: QualityConfig,
}

impl Screener {
    /// Loads the classifier at `path`, or the shipped default model with `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, PredictError> {
        Self::load_sharing_lungs(path, None)
    }

    /// [`Self::load`], taking `lungs` for a card that crops to the lungs when it is the lung
    /// model the card pins (same sha256), so that a caller that also draws lung outlines (the
    /// server) keeps one copy; any other card loads the shipped lung model as `load` does.
    pub fn load_sharing_lungs(
        path: Option<&Path>,
        lungs: Option<Arc<LungSegmenter>>,
    ) -> Result<Self, PredictError> {
        let path = match path {
            Some(path) => path.to_path_buf(),
            None => classifier::default_model_path().ok_or(PredictError::NoDefaultModel)?,
        };
        let (networks, card) = classifier::load_networks(&path, &inference_device())?;
        Self::from_networks(&path, networks, card, lungs)
    }

    /// A screener of a model file's `networks` and `card` (loaded from `path`), with the lung
    /// model its card crops with: `lungs` when it is the one the card pins (see
    /// [`Self::load_sharing_lungs`]), else the shipped lung model.
    pub fn from_networks(
        path: &Path,
        networks: Vec<Network>,
        card: ModelCard,
        lungs: Option<Arc<LungSegmenter>>,
    ) -> Result<Self, PredictError> {
        // One lung crop serves every member that crops, so they must agree on it; the
        // others see the whole X-ray.
        let mut crops = networks
            .iter()
            .filter_map(|network| network.preprocess.lung_crop.as_ref());
        let crop = crops.next().cloned();
        if crops.any(|other| Some(other) != crop.as_ref()) {
            return Err(PredictError::Model(ModelFileError::BadCard {
                path: path.to_path_buf(),
                reason: "the ensemble's members crop to the lungs differently".into(),
            }));
        }
        let mut screener = Self::new(networks, card, inference_device());
        if let Some(crop) = crop {
            let pinned = lungs.filter(|lungs| lungs.sha256 == crop.lung_model_sha256);
            // Whether the shipped lung model is the one the card was trained with is checked
            // (by sha256) when it crops.
            let lungs = match pinned {
                Some(lungs) => lungs,
                None => Arc::new(
                    LungSegmenter::load_shipped()
                        .map_err(|source| PredictError::LungModel(Box::new(source)))?,
                ),
            };
            screener.lungs = Some(lungs);
        }
        Ok(screener)
    }

    /// Wraps a model's networks (BatchNorm is folded here, for speed) and its card, without a
    /// lung model: [`Self::from_networks`] adds the one a card that crops to the lungs needs.
    fn new(networks: Vec<Network>, card: ModelCard, device: Device) -> Self {
        let networks = networks
            .into_iter()
            .map(|network| Network {
                classifier: network.classifier.fold_batchnorm(),
                preprocess: network.preprocess,
            })
            .collect();
        Self {
            networks,
            card,
            device,
            lungs: None,
            limits: DecodeLimits::default(),
            quality: QualityConfig::default(),
        }
    }

    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// The model's networks: one, or an ensemble's members in card order.
    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The operating point `name` (or the card's default) and its threshold.
    pub fn operating_point(&self, name: Option<&str>) -> Result<(String, f64), PredictError> {
        let card = &self.card;
        let name = name.unwrap_or(match card.default_operating_point.as_str() {
            "" => "default",
            named => named,
        });
        match card.operating_point(name) {
            Some(point) => Ok((point.name.clone(), point.threshold)),
            None if name == "default" && card.operating_points.is_empty() => {
                Ok((name.to_string(), FALLBACK_THRESHOLD))
            }
            None => Err(PredictError::UnknownOperatingPoint {
                name: name.to_string(),
                available: card
                    .operating_points
                    .iter()
                    .map(|point| point.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Screens image bytes (PNG, JPEG or DICOM); `name` labels errors.
    pub fn screen_bytes(
        &self,
        bytes: &[u8],
        name: &Path,
        options: &ScreenOptions,
    ) -> Result<Screening, PredictError> {
        let decoded = decode_bytes(bytes, name, &self.limits)?;
        let mut screenings = self.screen_decoded(&[(name.to_path_buf(), decoded)], options)?;
        screenings
            .pop()
            .ok_or_else(|| PredictError::Inference("no output".into()))
    }

    /// Screens files in batches; one result per path, in order. A file that cannot be read
    /// gets its error and the others go on. `on_done(n)` reports progress after each batch.
    pub fn screen_files(
        &self,
        paths: &[PathBuf],
        options: &ScreenOptions,
        mut on_done: impl FnMut(usize),
    ) -> Result<Vec<Result<Screening, PredictError>>, PredictError> {
        // An unknown operating point is the caller's mistake, not one file's: fail at once.
        self.operating_point(options.operating_point.as_deref())?;
        let mut results = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(BATCH_SIZE) {
            let mut decoded = Vec::new();
            let mut slots = Vec::new();
            // Decoding runs on one core per file: a batch's files are decoded side by side.
            let decodings: Vec<_> = chunk
                .par_iter()
                .map(|path| decode_file(path, &self.limits))
                .collect();
            for (path, decoding) in chunk.iter().zip(decodings) {
                match decoding {
                    Ok(image) => {
                        slots.push(None);
                        decoded.push((path.clone(), image));
                    }
                    Err(error) => slots.push(Some(Err(error.into()))),
                }
            }
            let mut screened = self.screen_batch(&decoded, options).into_iter();
            for slot in slots {
                results.push(match slot {
                    Some(error) => error,
                    None => screened
                        .next()
                        .unwrap_or_else(|| Err(PredictError::Inference("missing output".into()))),
                });
            }
            on_done(chunk.len());
        }
        Ok(results)
    }

    /// [`Self::screen_decoded`], falling back to one image at a time when the batch fails, so
    /// that one bad image gets the error and not its batch mates.
    pub fn screen_batch(
        &self,
        images: &[(PathBuf, DecodedImage)],
        options: &ScreenOptions,
    ) -> Vec<Result<Screening, PredictError>> {
        match self.screen_decoded(images, options) {
            Ok(screenings) => screenings.into_iter().map(Ok).collect(),
            Err(_) if images.len() > 1 => images
                .iter()
                .map(|image| {
                    let mut one = self.screen_decoded(std::slice::from_ref(image), options)?;
                    one.pop()
                        .ok_or_else(|| PredictError::Inference("no output".into()))
                })
                .collect(),
            Err(error) => vec![Err(error)],
        }
    }

    /// Screens decoded images (one batch): quality gate, preprocessing, one forward pass.
    pub fn screen_decoded(
        &self,
        images: &[(PathBuf, DecodedImage)],
        options: &ScreenOptions,
    ) -> Result<Vec<Screening>, PredictError> {
        let (point, threshold) = self.operating_point(options.operating_point.as_deref())?;
        let views = options.tta_views + 1;
        let mut inputs: Vec<Vec<ChwTensor>> = self
            .networks
            .iter()
            .map(|_| Vec::with_capacity(images.len() * views))
            .collect();
        let mut crops = Vec::with_capacity(images.len());
        // Preprocessing (the lung model's cleanup, fitting, CLAHE) is mostly one core's work
        // per image, so a batch's images are prepared side by side; each keeps its own seed.
        let prepared = images
            .par_iter()
            .enumerate()
            .map(|(index, (path, image))| {
                let seed = options.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                self.views(path, image, options.tta_views, seed)
            })
            .collect::<Vec<_>>()
            .into_iter()
            // In order: the error reported is the batch's first failing image's.
            .collect::<Result<Vec<_>, _>>()?;
        for image_views in prepared {
            for (all, network_views) in inputs.iter_mut().zip(image_views.inputs) {
                all.extend(network_views);
            }
            crops.push(image_views.lung_crop);
        }
        let scores = self.scores(inputs)?;
        let multi_class = !self.card.refer.is_empty();
        Ok(images
            .iter()
            .zip(scores.screening.chunks(views))
            .zip(scores.classes.chunks(views))
            .zip(crops)
            .map(|((((_, image), views), class_views), lung_crop)| {
                let probability = views.iter().sum::<f64>() / views.len() as f64;
                let positive = probability >= threshold;
                let classes = match multi_class {
                    true => self.class_probabilities(class_views),
                    false => Vec::new(),
                };
                Screening {
                    probability,
                    spread: (views.len() > 1).then(|| standard_deviation(views, probability)),
                    operating_point: point.clone(),
                    threshold,
                    positive,
                    decision: self.class_name(positive),
                    quality: check_quality(image, &self.quality),
                    lung_crop,
                    classes,
                }
            })
            .collect())
    }

    /// The card's classes with their probabilities averaged over one image's views.
    fn class_probabilities(&self, views: &[Vec<f64>]) -> Vec<ClassProbability> {
        self.card
            .classes
            .iter()
            .enumerate()
            .map(|(class, name)| ClassProbability {
                class: name.clone(),
                probability: views.iter().map(|row| row[class]).sum::<f64>() / views.len() as f64,
            })
            .collect()
    }

    /// The network inputs of one image, per network: the image itself (cut to its lungs, once,
    /// for the networks whose preprocessing says so), then `tta_views` augmented views (the
    /// same draws for every network).
    pub fn views(
        &self,
        path: &Path,
        image: &DecodedImage,
        tta_views: usize,
        seed: u64,
    ) -> Result<Views, PredictError> {
        let preprocess_error = |source| PredictError::Preprocess {
            path: path.to_path_buf(),
            source,
        };
        let lungs = self.lungs.as_deref().map(|lungs| lungs as &dyn LungCropper);
        let cropped = match self.cropping_network() {
            Some(network) => {
                crop_lungs(&image.image, &network.preprocess, lungs).map_err(preprocess_error)?
            }
            None => None,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let augment = AugmentConfig::paper();
        let draws = std::iter::once(None)
            .chain((0..tta_views).map(|_| Some(augment.sample(&mut rng))))
            .collect::<Vec<_>>();
        let network_views = |spec: &PreprocessSpec| -> Result<Vec<ChwTensor>, PredictError> {
            let source = match (&cropped, &spec.lung_crop) {
                (Some(crop), Some(_)) => &crop.image,
                _ => &image.image,
            };
            let fitted = fit(source, spec).map_err(preprocess_error)?;
            draws
                .iter()
                .map(|params| to_tensor(&fitted, spec, params.as_ref()).map_err(preprocess_error))
                .collect()
        };
        let inputs = self
            .networks
            .iter()
            .map(|network| network_views(&network.preprocess))
            .collect::<Result<_, _>>()?;
        Ok(Views {
            inputs,
            lung_crop: cropped.map(|crop| LungCropReport {
                region: crop.region,
                fallback: crop.fallback,
            }),
        })
    }

    /// The first network that sees the X-ray cut to its lungs (they all cut it alike).
    fn cropping_network(&self) -> Option<&Network> {
        self.networks
            .iter()
            .find(|network| network.preprocess.lung_crop.is_some())
    }

    /// Probabilities (screening and per class) of preprocessed inputs, given per network
    /// (the same images in the same order for each): each network's, [`BATCH_SIZE`] at a
    /// time, then combined over networks ([`mean_log_odds`] for screening, the mean for
    /// classes).
    pub fn scores(&self, inputs: Vec<Vec<ChwTensor>>) -> Result<Scores, PredictError> {
        let per_network = self
            .networks
            .iter()
            .zip(inputs)
            .map(|(network, inputs)| self.network_scores(network, inputs))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(combine(per_network))
    }

    fn network_scores(
        &self,
        network: &Network,
        inputs: Vec<ChwTensor>,
    ) -> Result<Scores, PredictError> {
        let mut scores = Scores::default();
        let mut inputs = inputs.into_iter().peekable();
        let classifier = &network.classifier;
        while inputs.peek().is_some() {
            let batch: Vec<ChwTensor> = inputs.by_ref().take(BATCH_SIZE).collect();
            let features = classifier.feature_map(batch_tensor(batch, &self.device));
            let head = &classifier.head;
            scores.extend(
                head.scores(head.class_logits(features))
                    .map_err(PredictError::Inference)?,
            );
        }
        Ok(scores)
    }

    /// The card's name of a decision, e.g. "tb" or "normal".
    pub fn class_name(&self, positive: bool) -> String {
        self.card.decision_name(positive)
    }
}

/// One set of scores from each network's: the screening probability by [`mean_log_odds`],
/// each class's probability by the mean.
fn combine(mut per_network: Vec<Scores>) -> Scores {
    if per_network.len() == 1 {
        return per_network.remove(0);
    }
    let Some(first) = per_network.first() else {
        return Scores::default();
    };
    let n = per_network.len() as f64;
    let screening = (0..first.screening.len())
        .map(|i| {
            let members: Vec<f64> = per_network.iter().map(|s| s.screening[i]).collect();
            mean_log_odds(&members)
        })
        .collect();
    let classes = (0..first.classes.len())
        .map(|i| {
            (0..first.classes[i].len())
                .map(|c| per_network.iter().map(|s| s.classes[i][c]).sum::<f64>() / n)
                .collect()
        })
        .collect();
    Scores { screening, classes }
}

fn standard_deviation(values: &[f64], mean: f64) -> f64 {
    let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    (squares / (values.len() - 1).max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::BackboneKind;
    use crate::classifier::Classifier;
    use crate::model_file::{self, ModelKind};
    use crate::test_support::small_head;
    use cxr_core::lungs::LungCropSpec;

    /// A small untrained classifier whose card crops to the lung model with `lung_sha256`.
    fn crop_model(dir: &Path, lung_sha256: &str) -> PathBuf {
        let device = inference_device();
        let kind = BackboneKind::MobileNetV2;
        let head = small_head(kind);
        let mut spec = PreprocessSpec::preset(kind.spec().preprocess_preset).expect("preset");
        spec.lung_crop = Some(LungCropSpec {
            lung_model_sha256: lung_sha256.to_string(),
            ..LungCropSpec::default()
        });
        let card = ModelCard::new(
            ModelKind::Classifier,
            classifier::architecture(kind, &head, 224),
            spec,
            vec!["normal".into(), "tb".into()],
        );
        let path = dir.join(format!("crop-{}.safetensors", &lung_sha256[..8]));
        let model = Classifier::new(kind.init(&device), &head, &device);
        model_file::save(&path, &model, &card).expect("save");
        path
    }

    #[test]
    fn a_cropping_model_shares_the_lung_model_it_pins_and_loads_its_own_otherwise() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shipped = Arc::new(LungSegmenter::load_shipped().expect("shipped lung model"));
        let pinned = crop_model(dir.path(), &shipped.sha256);
        let screener =
            Screener::load_sharing_lungs(Some(&pinned), Some(shipped.clone())).expect("load");
        let shared = screener.lungs.as_ref().expect("lung model");
        assert!(Arc::ptr_eq(shared, &shipped));

        // A card pinned to another lung model does not take the given one: it loads the
        // shipped model, whose sha256 the crop then checks against the card.
        let other = crop_model(dir.path(), &"ab".repeat(32));
        let screener =
            Screener::load_sharing_lungs(Some(&other), Some(shipped.clone())).expect("load");
        let own = screener.lungs.as_ref().expect("lung model");
        assert!(!Arc::ptr_eq(own, &shipped));
    }
}

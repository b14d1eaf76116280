//! The models behind the service, loaded once: the TB classifier and, when present, the lung
//! model. Turns uploads into screenings (the JSON result and the pictures a page shows).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cxr_core::lungs::{LungCheck, LungMask, scale_nearest};
use cxr_core::report::fit_within;
use cxr_core::{DecodeError, DecodeLimits, DecodedImage, GrayImage, decode_bytes};
use cxr_nn::explain::{CamMethod, explain};
use cxr_nn::model_file::{ModelCard, file_sha256};
use cxr_nn::predict::{LungCropReport, PredictError, ScreenOptions, Screener, Screening};
use cxr_nn::segmentation::LungSegmenter;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Longest side of the X-ray kept for the page and for heat maps: the classifiers read 224 to
/// 299 px, so heat maps lose nothing, and a kept picture costs at most 4 MiB.
pub const PICTURE_SIDE: usize = 1024;

/// Why the models could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot load the TB model: {0}")]
    Classifier(#[from] PredictError),
    #[error("cannot load the lung model {}: {source}", path.display())]
    Lungs {
        path: PathBuf,
        // Boxed: the segmentation error is large and loading is not a hot path.
        #[source]
        source: Box<cxr_nn::segmentation::SegmentationError>,
    },
    #[error(transparent)]
    ModelFile(#[from] cxr_nn::model_file::ModelFileError),
}

/// What a client learns about a model file.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The file's name without extension, e.g. "cxr-tb-default".
    pub name: String,
    /// The network, e.g. "efficientnet-lite0".
    pub network: String,
    /// sha256 of the model file: which weights produced a result.
    pub sha256: String,
    /// When the model file was made (RFC 3339) and by which software.
    pub created: String,
    pub software: String,
}

/// A named operating point of the TB model.
#[derive(Debug, Clone, Serialize)]
pub struct PointInfo {
    pub name: String,
    pub threshold: f64,
    /// How it was chosen.
    pub rule: String,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
}

/// The decision at one operating point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub operating_point: String,
    pub threshold: f64,
    pub positive: bool,
    pub decision: String,
}

/// A quality flag with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    pub flag: String,
    pub explanation: String,
}

/// What decoding learnt about the upload. Nothing that identifies a patient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageSummary {
    pub sha256: String,
    pub format: String,
    pub width: usize,
    pub height: usize,
    pub bit_depth: u16,
    pub photometric: String,
    pub view_position: Option<String>,
}

/// The lung model's verdict on the upload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LungSummary {
    pub passed: bool,
    pub area_fraction: f64,
    pub regions: usize,
    pub balance: Option<f64>,
    /// Why the checks failed, in words; empty when they passed.
    pub problems: Vec<String>,
}

/// One screening's numbers (the API's result body, without id, time and links).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Findings {
    pub image: ImageSummary,
    pub probability: f64,
    /// At the requested (or the model's default) operating point.
    pub decision: Decision,
    /// At every named operating point of the model, so a page can switch without asking again.
    pub decisions: Vec<Decision>,
    pub flags: Vec<Flag>,
    pub lungs: Option<LungSummary>,
    /// The region the model saw, for models that crop to the lungs; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lung_crop: Option<LungCropReport>,
}

/// A screened upload: its findings and the pictures kept for the page.
#[derive(Debug, Clone)]
pub struct Screened {
    pub findings: Findings,
    pub pictures: Pictures,
}

/// The X-ray scaled to at most [`PICTURE_SIDE`] and its lung mask at that size.
#[derive(Debug, Clone)]
pub struct Pictures {
    pub xray: DecodedImage,
    pub lungs: Option<(LungMask, bool)>,
}

/// The loaded models.
pub struct Engine {
    screener: Screener,
    segmenter: Option<Arc<LungSegmenter>>,
    pub model: ModelInfo,
    pub lung_model: Option<ModelInfo>,
    pub points: Vec<PointInfo>,
    pub default_point: String,
}

impl Engine {
    /// Loads the TB model (`None`: the shipped one) and the lung model, if one is given.
    pub fn load(
        model: Option<&Path>,
        lungs: Option<&Path>,
        limits: DecodeLimits,
    ) -> Result<Self, EngineError> {
        let model_path = match model {
            Some(path) => path.to_path_buf(),
            None => cxr_nn::classifier::default_model_path().ok_or(PredictError::NoDefaultModel)?,
        };
        let (segmenter, lung_model) = match lungs {
            Some(path) => {
                let segmenter = LungSegmenter::load(path).map_err(|source| EngineError::Lungs {
                    path: path.to_path_buf(),
                    source: Box::new(source),
                })?;
                let info = model_info(path, segmenter.sha256.clone(), &segmenter.card);
                (Some(Arc::new(segmenter)), Some(info))
            }
            None => (None, None),
        };
        // A TB model that crops to the lungs shares the outline's lung model when it is the
        // one it was trained with.
        let mut screener = Screener::load_sharing_lungs(Some(&model_path), segmenter.clone())?;
        screener.limits = limits;
        let model = model_info(&model_path, file_sha256(&model_path)?, screener.card());
        let card = screener.card();
        let points = card
            .operating_points
            .iter()
            .map(|point| PointInfo {
                name: point.name.clone(),
                threshold: point.threshold,
                rule: point.rule.clone(),
                sensitivity: point.sensitivity.as_ref().map(|e| e.value),
                specificity: point.specificity.as_ref().map(|e| e.value),
            })
            .collect();
        let (default_point, _) = screener.operating_point(None)?;
        Ok(Self {
            screener,
            segmenter,
            model,
            lung_model,
            points,
            default_point,
        })
    }

    pub fn has_lung_model(&self) -> bool {
        self.segmenter.is_some()
    }

    /// Checks an operating point name before any work is queued.
    pub fn check_operating_point(&self, name: Option<&str>) -> Result<(), ApiError> {
        self.screener
            .operating_point(name)
            .map(|_| ())
            .map_err(|error| ApiError::bad_request(error.to_string()))
    }

    /// Decodes one upload (`name` labels errors).
    pub fn decode(&self, bytes: &[u8], name: &str) -> Result<DecodedImage, ApiError> {
        decode_bytes(bytes, Path::new(name), &self.screener.limits).map_err(decode_error)
    }

    /// Screens decoded uploads in one batch; one result per image, in order.
    pub fn screen(
        &self,
        images: Vec<(String, DecodedImage, String)>,
        operating_point: Option<&str>,
        with_lungs: bool,
    ) -> Vec<Result<Screened, ApiError>> {
        let options = ScreenOptions {
            operating_point: operating_point.map(str::to_string),
            ..ScreenOptions::default()
        };
        // The images move into the batch and out again: a 3000 px X-ray is 36 MB as f32.
        let (batch, hashes): (Vec<(PathBuf, DecodedImage)>, Vec<String>) = images
            .into_iter()
            .map(|(name, image, sha256)| ((PathBuf::from(name), image), sha256))
            .unzip();
        let screenings = self.screener.screen_batch(&batch, &options);
        batch
            .into_iter()
            .zip(hashes)
            .zip(screenings)
            .map(|(((_, image), sha256), screening)| {
                let screening = screening.map_err(predict_error)?;
                self.findings(image, sha256, &screening, with_lungs)
            })
            .collect()
    }

    fn findings(
        &self,
        image: DecodedImage,
        sha256: String,
        screening: &Screening,
        with_lungs: bool,
    ) -> Result<Screened, ApiError> {
        let segmentation = match (&self.segmenter, with_lungs) {
            (Some(segmenter), true) => Some(
                segmenter
                    .segment(&image.image)
                    .map_err(|error| ApiError::internal(format!("lung model: {error}")))?,
            ),
            _ => None,
        };
        let xray = fit_within(&image.image, PICTURE_SIDE)
            .map_err(|error| ApiError::internal(error.to_string()))?;
        let lungs = segmentation.as_ref().map(|segmentation| {
            let mask = scale_nearest(&segmentation.mask, xray.width, xray.height);
            (mask, segmentation.check.passed())
        });
        let info = &image.info;
        let findings = Findings {
            image: ImageSummary {
                sha256,
                format: format!("{:?}", info.format).to_lowercase(),
                width: info.original_width,
                height: info.original_height,
                bit_depth: info.bit_depth,
                photometric: format!("{:?}", info.photometric),
                view_position: info.view_position.clone(),
            },
            probability: screening.probability,
            decision: Decision {
                operating_point: screening.operating_point.clone(),
                threshold: screening.threshold,
                positive: screening.positive,
                decision: screening.decision.clone(),
            },
            decisions: self.decisions(screening.probability),
            flags: screening
                .quality
                .flags
                .iter()
                .map(|flag| Flag {
                    flag: flag.as_str().to_string(),
                    explanation: flag.explanation().to_string(),
                })
                .collect(),
            lungs: segmentation.map(|s| lung_summary(&s.check)),
            lung_crop: screening.lung_crop.clone(),
        };
        Ok(Screened {
            findings,
            pictures: Pictures {
                xray: DecodedImage {
                    image: xray,
                    info: image.info,
                },
                lungs,
            },
        })
    }

    /// The decision at every named operating point (the default one alone if there are none).
    fn decisions(&self, probability: f64) -> Vec<Decision> {
        let points: Vec<(String, f64)> = if self.points.is_empty() {
            self.screener.operating_point(None).into_iter().collect()
        } else {
            let named = self.points.iter();
            named.map(|p| (p.name.clone(), p.threshold)).collect()
        };
        points
            .into_iter()
            .map(|(operating_point, threshold)| {
                let positive = probability >= threshold;
                Decision {
                    operating_point,
                    threshold,
                    positive,
                    decision: self.screener.class_name(positive),
                }
            })
            .collect()
    }

    /// The Grad-CAM heat map of the TB score over the kept X-ray, kept to the lungs when
    /// their mask passed its checks (a failed mask would hide real findings).
    pub fn heat_map(&self, pictures: &Pictures) -> Result<GrayImage, ApiError> {
        let lungs = match &pictures.lungs {
            Some((mask, true)) => Some(mask),
            _ => None,
        };
        explain(
            &self.screener,
            Path::new("upload"),
            &pictures.xray,
            CamMethod::GradCam,
            lungs,
        )
        .map(|explanation| explanation.heat)
        .map_err(|error| ApiError::internal(format!("heat map: {error}")))
    }
}

/// sha256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn model_info(path: &Path, sha256: String, card: &ModelCard) -> ModelInfo {
    ModelInfo {
        name: path
            .file_stem()
            .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned()),
        network: card.network_name(),
        sha256,
        created: card.created.clone(),
        software: card.software.clone(),
    }
}

fn lung_summary(check: &LungCheck) -> LungSummary {
    LungSummary {
        passed: check.passed(),
        area_fraction: check.area_fraction,
        regions: check.regions,
        balance: check.balance,
        problems: check.failures.iter().map(ToString::to_string).collect(),
    }
}

fn decode_error(error: DecodeError) -> ApiError {
    let message = error.to_string();
    ApiError::from_decode(&error.kind, message)
}

fn predict_error(error: PredictError) -> ApiError {
    match error {
        PredictError::Decode(error) => decode_error(error),
        PredictError::Preprocess { .. } => ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "unusable-image",
            error.to_string(),
        ),
        other => ApiError::internal(other.to_string()),
    }
}

//! The model file: one `.safetensors` file holding a trained network's tensors and, in its
//! metadata, the JSON model card that says what the network is, how to feed it and how good it is.
//!
//! Every trained model of cxr (classifier, lung segmenter) is written and read here. Writing is
//! atomic (temporary file, then rename), so a crash never leaves half a model behind; reading
//! refuses a card from a newer format, a model of the wrong kind, or tensors that do not fit.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::burn_pack::Tensor as StoredTensor;
use burn::store::{
    FloatCastAdapter, ModuleAdapter, ModuleContext, ModuleSnapshot, SafetensorsStore, bridge,
};
use burn::tensor::DType;
use cxr_core::dataset::ClassNames;
use cxr_core::metrics::{ClassFigures, Estimate};
use cxr_core::preprocess::PreprocessSpec;
use serde::{Deserialize, Serialize};

/// The card format this build writes and the newest it reads. Format 2 added ensembles
/// (`members`) and half-precision weights (`weights`); format 3 members that share another
/// member's trunk (`trunk_of`); format 4 8-bit head matrices (`weights = "f16_int8_heads"`);
/// older cards read unchanged.
pub const FORMAT_VERSION: u32 = 4;

/// Metadata key of the JSON model card in the safetensors header.
const CARD_KEY: &str = "cxr.model_card";

/// Stated on every card, as on every report.
pub use cxr_core::report::NOTICE;

/// The safetensors format caps its JSON header at 100 MB.
const MAX_HEADER_BYTES: usize = 100_000_000;

/// What a model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Chest X-ray -> probability of abnormality (one logit).
    Classifier,
    /// Chest X-ray -> lung mask.
    LungSegmentation,
}

/// Which network the tensors belong to, in enough detail to build it before loading them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// The network's name: a backbone (`BackboneKind::name`) for classifiers, the
    /// segmenter's own name for lung models.
    pub network: String,
    /// Square input side, in pixels.
    pub input_size: usize,
    /// Hyper-parameters that shape the tensors or the forward pass (e.g. `head_hidden` 512,
    /// `dropout` 0.5), read by the code that builds the network.
    #[serde(default)]
    pub params: BTreeMap<String, f64>,
}

/// `Architecture::network` of an ensemble; its members are listed in `ModelCard::members`.
pub const ENSEMBLE_NETWORK: &str = "ensemble";

/// One network of an ensemble and the preprocessing that feeds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub architecture: Architecture,
    pub preprocess: PreprocessSpec,
    /// The earlier member whose trunk (backbone) tensors this one uses, stored once: two
    /// members of one frozen pretrained backbone (e.g. one on the whole X-ray, one on the
    /// lung crop) differ only in their heads. Set by the writer when the tensors are equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunk_of: Option<usize>,
}

impl Member {
    /// The network's name, with " (lung crop)" when it sees the X-ray cut to its lungs.
    pub fn name(&self) -> String {
        match self.preprocess.lung_crop {
            Some(_) => format!("{} (lung crop)", self.architecture.network),
            None => self.architecture.network.clone(),
        }
    }
}

/// How a model file stores its weights. Whichever, they are loaded as f32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightPrecision {
    #[default]
    F32,
    /// Kernels and weight matrices in IEEE half precision (half the file); vectors (biases,
    /// BatchNorm statistics, whose variances underflow in f16) stay f32.
    F16,
    /// As `F16`, but a matrix whose values are all whole numbers from -127 to 127 is stored in
    /// 8 bits: a classifier's writer first rewrites each head's hidden matrix so
    /// ([`crate::classifier::Head::with_integer_hidden`]), halving the heads' bytes.
    F16Int8Heads,
}

impl WeightPrecision {
    fn is_f32(&self) -> bool {
        *self == WeightPrecision::F32
    }
}

/// A named decision threshold on the model's probability, and what it achieved where it was
/// chosen. A case is called positive when `probability >= threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatingPoint {
    /// E.g. "default", "who-min" (sensitivity >= 0.90), "youden".
    pub name: String,
    pub threshold: f64,
    /// How it was chosen, e.g. "sensitivity >= 0.9 on 5-fold cross-validation scores".
    pub rule: String,
    pub sensitivity: Option<Estimate>,
    pub specificity: Option<Estimate>,
}

/// The images a model was trained on: enough to tell whether two models saw the same data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataManifest {
    /// The folder or manifest it was read from, as given.
    pub source: String,
    pub images: usize,
    /// Images per class, indexed like [`ModelCard::classes`].
    pub class_counts: Vec<usize>,
    /// SHA-256 over the sorted "file sha256, label" lines of every image: independent of
    /// paths and order, so moving the data does not change it.
    pub sha256: String,
}

/// How the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingRecord {
    pub data: DataManifest,
    /// The full recipe, as the training command read it.
    pub recipe: serde_json::Value,
    /// E.g. "trained on folds 1-4, checkpoint chosen on fold 5".
    pub protocol: String,
    /// Epochs run in each phase.
    pub epochs: Vec<usize>,
}

/// Measured quality on images the model was not trained on, with 95 % confidence intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// What was measured on what, e.g. "validation split (112 images)".
    pub name: String,
    pub images: usize,
    pub auc: Option<Estimate>,
    pub accuracy: Option<Estimate>,
    pub sensitivity: Option<Estimate>,
    pub specificity: Option<Estimate>,
    /// The threshold the rates were read at.
    pub threshold: f64,
}

/// Everything a model file says about its tensors. Stored as JSON; unknown fields are refused
/// so that a card from a newer build fails loudly instead of being half understood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub format_version: u32,
    pub kind: ModelKind,
    pub architecture: Architecture,
    /// The one preprocessing path's spec: how a file becomes this model's input (an
    /// ensemble's first member's; each member's own is in `members`).
    pub preprocess: PreprocessSpec,
    /// The networks of an ensemble, whose screening log-odds are averaged; their tensors are
    /// stored under `members.K.`. Empty for a single network (`architecture`, `preprocess`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// How the weights are stored.
    #[serde(default, skip_serializing_if = "WeightPrecision::is_f32")]
    pub weights: WeightPrecision,
    /// Class names by label index (negative first).
    pub classes: Vec<String>,
    /// The classes a screening refers, for a model with a softmax head over `classes`; empty
    /// for the paper's binary model, which refers class 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refer: Vec<String>,
    pub operating_points: Vec<OperatingPoint>,
    /// Name of the operating point used when the user names none.
    pub default_operating_point: String,
    pub training: Option<TrainingRecord>,
    pub validation: Vec<Validation>,
    /// Per-class figures (one-vs-rest AUC, confusion matrix) of a multi-class model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_validation: Vec<ClassFigures>,
    /// E.g. "cxr 0.1.0".
    pub software: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub notice: String,
}

impl ModelCard {
    /// A card with no thresholds, training record or validation yet, dated now.
    pub fn new(
        kind: ModelKind,
        architecture: Architecture,
        preprocess: PreprocessSpec,
        classes: Vec<String>,
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            kind,
            architecture,
            preprocess,
            members: Vec::new(),
            weights: WeightPrecision::F32,
            classes,
            refer: Vec::new(),
            operating_points: Vec::new(),
            default_operating_point: String::new(),
            training: None,
            validation: Vec::new(),
            class_validation: Vec::new(),
            software: format!("cxr {}", env!("CARGO_PKG_VERSION")),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            notice: NOTICE.to_string(),
        }
    }

    /// The networks the card describes, with their preprocessing: an ensemble's members, or
    /// the one network.
    pub fn networks(&self) -> Vec<Member> {
        match self.members.is_empty() {
            true => vec![Member {
                architecture: self.architecture.clone(),
                preprocess: self.preprocess.clone(),
                trunk_of: None,
            }],
            false => self.members.clone(),
        }
    }

    /// The network's name, or an ensemble's members' names joined by " + " ([`Member::name`]).
    pub fn network_name(&self) -> String {
        self.networks()
            .iter()
            .map(Member::name)
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// The operating point called `name`.
    pub fn operating_point(&self, name: &str) -> Option<&OperatingPoint> {
        self.operating_points
            .iter()
            .find(|point| point.name == name)
    }

    /// The default operating point, if the card names one that it holds.
    pub fn default_point(&self) -> Option<&OperatingPoint> {
        self.operating_point(&self.default_operating_point)
    }

    /// The model's classes and which of them a screening refers.
    pub fn class_names(&self) -> Result<ClassNames, String> {
        if self.refer.is_empty() {
            return Ok(ClassNames::default());
        }
        ClassNames::listed(&self.classes, &self.refer).map_err(|error| error.to_string())
    }

    /// The screening decision's name: the refer classes' names for a positive one (e.g.
    /// "tb"), the others' for a negative one (e.g. "normal").
    pub fn decision_name(&self, positive: bool) -> String {
        if self.refer.is_empty() {
            let fallback = if positive { "abnormal" } else { "normal" };
            return self
                .classes
                .get(usize::from(positive))
                .cloned()
                .unwrap_or_else(|| fallback.to_string());
        }
        let refers = |name: &String| self.refer.iter().any(|r| r.eq_ignore_ascii_case(name));
        self.classes
            .iter()
            .filter(|name| refers(name) == positive)
            .cloned()
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// A hyper-parameter of the architecture, or `default` when the card does not set it.
    pub fn param(&self, name: &str, default: f64) -> f64 {
        self.architecture
            .params
            .get(name)
            .copied()
            .unwrap_or(default)
    }
}

/// Why a model file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a safetensors model file: {reason}", path.display())]
    NotSafetensors { path: PathBuf, reason: String },
    #[error("{}: no cxr model card in the file (is it a bare weight file? use `cxr weights import` for those)", path.display())]
    NoCard { path: PathBuf },
    #[error("{}: unreadable model card: {reason}", path.display())]
    BadCard { path: PathBuf, reason: String },
    #[error(
        "{}: model card format {found} is newer than this build reads ({FORMAT_VERSION}); update cxr",
        path.display()
    )]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error("{}: this is a {found:?} model, expected a {expected:?} model", path.display())]
    WrongKind {
        path: PathBuf,
        expected: ModelKind,
        found: ModelKind,
    },
    #[error("{}: the tensors do not fit the {network} network named on the card:\n{details}", path.display())]
    TensorMismatch {
        path: PathBuf,
        network: String,
        details: String,
    },
    #[error("{}: cannot write the model: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

/// Writes `module`'s tensors and `card` to `path`, replacing any file there only once the new
/// one is complete.
pub fn save<M: Module>(path: &Path, module: &M, card: &ModelCard) -> Result<(), ModelFileError> {
    save_leaving_out(path, module, card, |_| false)
}

/// [`save`], leaving out the tensors whose names `left_out` picks (ones the card says how to
/// restore, e.g. a trunk shared with another member); [`load_into`]'s `ignorable` must then
/// let them be absent.
pub fn save_leaving_out<M: Module>(
    path: &Path,
    module: &M,
    card: &ModelCard,
    left_out: impl Fn(&str) -> bool,
) -> Result<(), ModelFileError> {
    let io_error = |source| ModelFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let card_json = serde_json::to_string(card).map_err(|err| ModelFileError::Write {
        path: path.to_path_buf(),
        message: err.to_string(),
    })?;
    let temp = crate::atomic_write::temp_beside(path).map_err(io_error)?;
    let mut store = SafetensorsStore::from_file(temp.path())
        .metadata(CARD_KEY, card_json)
        .overwrite(true);
    match card.weights {
        WeightPrecision::F32 => {}
        WeightPrecision::F16 => store = store.with_to_adapter(HALF_PRECISION_MATRICES),
        WeightPrecision::F16Int8Heads => {
            store = store.with_to_adapter(BYTE_MATRICES.chain(HALF_PRECISION_MATRICES))
        }
    }
    let names: Vec<String> = module
        .collect(None, None, false)
        .into_iter()
        .map(|tensor| tensor.name)
        .collect();
    if names.iter().any(|name| left_out(name)) {
        store = store.with_full_paths(names.into_iter().filter(|name| !left_out(name)));
    }
    module
        .save_into(&mut store)
        .map_err(|err| ModelFileError::Write {
            path: path.to_path_buf(),
            message: err.to_string(),
        })?;
    crate::atomic_write::commit(temp, path).map_err(io_error)
}

/// Where a model shipped with cxr is: the file named by the environment variable `env`, else
/// `models/<file_name>` beside the executable, in one of its parent folders (a build inside the
/// repository), or in the current folder. `None` if none exists.
pub fn shipped_model_path(file_name: &str, env: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let exe_dirs = std::env::current_exe().ok().into_iter().flat_map(|exe| {
        exe.ancestors()
            .skip(1)
            .map(Path::to_path_buf)
            .collect::<Vec<_>>()
    });
    let cwd = std::env::current_dir().ok();
    exe_dirs
        .chain(cwd)
        .map(|dir| dir.join("models").join(file_name))
        .find(|candidate| candidate.is_file())
}

/// Hex SHA-256 of the model file at `path`: which weights produced a result.
pub fn file_sha256(path: &Path) -> Result<String, ModelFileError> {
    use sha2::{Digest, Sha256};
    let io = |source| ModelFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok(hex::encode(hasher.finalize()))
}

/// The model card of the file at `path`, reading only the header.
pub fn read_card(path: &Path) -> Result<ModelCard, ModelFileError> {
    let metadata = read_metadata(path)?;
    let json = metadata
        .get(CARD_KEY)
        .ok_or_else(|| ModelFileError::NoCard {
            path: path.to_path_buf(),
        })?;
    parse_card(path, json)
}

/// Converts each tensor that `target` gives a dtype for to that dtype, as it is written or
/// read; the rest pass unchanged.
#[derive(Debug, Clone, Copy)]
struct Recast {
    target: fn(&StoredTensor) -> Option<DType>,
}

impl ModuleAdapter for Recast {
    fn adapt(&self, tensor: StoredTensor, _ctx: ModuleContext<'_>) -> StoredTensor {
        let Some(dtype) = (self.target)(&tensor) else {
            return tensor;
        };
        let (name, shape) = (tensor.name.clone(), tensor.shape.clone());
        bridge::map_data(tensor, name, dtype, shape, move |data| {
            data.convert_dtype(dtype)
        })
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

/// f32 tensors of two or more dimensions (kernels, weight matrices) to f16.
const HALF_PRECISION_MATRICES: Recast = Recast {
    target: |tensor| {
        (tensor.dtype == DType::F32 && tensor.shape.num_dims() >= 2).then_some(DType::F16)
    },
};

/// f32 matrices whose values are all whole numbers from -127 to 127 to i8: exactly the same
/// values in a quarter of the bytes. Two-dimensional tensors only (the heads' hidden matrices
/// are written so): finding out means reading the values, once more than writing them does,
/// which kernels, never whole numbers, need not pay.
const BYTE_MATRICES: Recast = Recast {
    target: |tensor| {
        if tensor.dtype != DType::F32 || tensor.shape.num_dims() != 2 {
            return None;
        }
        let data = bridge::to_data(tensor).ok()?;
        let values = data.as_slice::<f32>().ok()?;
        let whole_bytes = values
            .iter()
            .all(|v| v.fract() == 0.0 && (-127.0..=127.0).contains(v));
        whole_bytes.then_some(DType::I8)
    },
};

/// i8 tensors (from [`BYTE_MATRICES`]) to the f32 values they hold.
const WIDEN_BYTES: Recast = Recast {
    target: |tensor| (tensor.dtype == DType::I8).then_some(DType::F32),
};

/// Loads the tensors of the file at `path` into `module` (built from the card, e.g. by
/// [`read_card`] first) after checking the card's format and kind. Every tensor must fit, and
/// every stored tensor must be used and every tensor of `module` stored, except those
/// `ignorable` names (which keep their built values): nothing is loaded partially.
/// Half-precision and 8-bit weights are widened to f32. BatchNorm statistics are written in
/// place, and burn's clones of a module share them: load into a module of its own (`valid()`
/// gives one), not into a clone of one still in use.
pub fn load_into<M: Module>(
    mut module: M,
    path: &Path,
    expected: ModelKind,
    ignorable: impl Fn(&str) -> bool,
) -> Result<(M, ModelCard), ModelFileError> {
    let card = read_card(path)?;
    if card.kind != expected {
        return Err(ModelFileError::WrongKind {
            path: path.to_path_buf(),
            expected,
            found: card.kind,
        });
    }
    let mut store = SafetensorsStore::from_file(path)
        .allow_partial(true)
        .validate(false)
        .with_from_adapter(WIDEN_BYTES.chain(FloatCastAdapter::to(DType::F32)));
    let mismatch = |details: String| ModelFileError::TensorMismatch {
        path: path.to_path_buf(),
        network: card.architecture.network.clone(),
        details,
    };
    let result = module
        .load_from(&mut store)
        .map_err(|err| mismatch(format!("  {err}")))?;
    crate::import::require_complete(&result, ignorable).map_err(mismatch)?;
    Ok((module, card))
}

fn parse_card(path: &Path, json: &str) -> Result<ModelCard, ModelFileError> {
    // Read the version first, so that a newer card is reported as such rather than as a
    // card with unknown fields.
    #[derive(Deserialize)]
    struct VersionOnly {
        format_version: u32,
    }
    let bad_card = |err: serde_json::Error| ModelFileError::BadCard {
        path: path.to_path_buf(),
        reason: err.to_string(),
    };
    let version: VersionOnly = serde_json::from_str(json).map_err(bad_card)?;
    if version.format_version > FORMAT_VERSION {
        return Err(ModelFileError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version.format_version,
        });
    }
    let card: ModelCard = serde_json::from_str(json).map_err(bad_card)?;
    for network in
        std::iter::once(&card.preprocess).chain(card.members.iter().map(|m| &m.preprocess))
    {
        network.validate().map_err(|err| ModelFileError::BadCard {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
    }
    Ok(card)
}

/// The `__metadata__` map of a safetensors file, reading only its header.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>, ModelFileError> {
    let not_safetensors = |reason: String| ModelFileError::NotSafetensors {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = std::fs::File::open(path).map_err(|source| ModelFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|err| not_safetensors(err.to_string()))?;
    let len = usize::try_from(u64::from_le_bytes(len))
        .ok()
        .filter(|&len| len <= MAX_HEADER_BYTES)
        .ok_or_else(|| not_safetensors("header length out of range".to_string()))?;
    let mut header = vec![0u8; len];
    file.read_exact(&mut header)
        .map_err(|err| not_safetensors(err.to_string()))?;
    #[derive(Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__", default)]
        metadata: BTreeMap<String, String>,
    }
    let header: Header =
        serde_json::from_slice(&header).map_err(|err| not_safetensors(err.to_string()))?;
    Ok(header.metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Tensor;

    fn card() -> ModelCard {
        ModelCard::new(
            ModelKind::Classifier,
            Architecture {
                network: "linear".to_string(),
                input_size: 4,
                params: BTreeMap::new(),
            },
            PreprocessSpec::default(),
            vec!["normal".to_string(), "tb".to_string()],
        )
    }

    fn linear(inputs: usize) -> Linear {
        LinearConfig::new(inputs, 1).init(&inference_device())
    }

    #[test]
    fn a_saved_model_loads_back_with_its_card() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("model.safetensors");
        let model = linear(4);
        let mut card = card();
        card.operating_points.push(OperatingPoint {
            name: "default".to_string(),
            threshold: 0.5,
            rule: "fixed".to_string(),
            sensitivity: None,
            specificity: None,
        });
        card.default_operating_point = "default".to_string();
        save(&path, &model, &card).expect("save");

        assert_eq!(read_card(&path).expect("card"), card);
        let (loaded, loaded_card) =
            load_into(linear(4), &path, ModelKind::Classifier, |_| false).expect("load");
        assert_eq!(loaded_card.default_point().map(|p| p.threshold), Some(0.5));
        let x = Tensor::<2>::ones([1, 4], &inference_device());
        let diff = (model.forward(x.clone()) - loaded.forward(x)).abs().max();
        assert_eq!(diff.into_scalar::<f32>(), 0.0);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name() != "model.safetensors")
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn thresholds_read_back_exactly_as_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("model.safetensors");
        let mut card = card();
        // Written as "0.49990305304495797", which serde_json's fast float parser reads one
        // step off unless its exact parser (feature `float_roundtrip`) is on.
        let threshold = 0.49990305304495797;
        card.operating_points.push(OperatingPoint {
            name: "who-min".to_string(),
            threshold,
            rule: "sensitivity >= 0.9".to_string(),
            sensitivity: None,
            specificity: None,
        });
        save(&path, &linear(4), &card).expect("save");
        let read = read_card(&path).expect("card");
        assert_eq!(
            read.operating_points[0].threshold.to_bits(),
            threshold.to_bits()
        );
    }

    #[test]
    fn wrong_kind_and_misfit_tensors_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("model.safetensors");
        save(&path, &linear(4), &card()).expect("save");

        let err =
            load_into(linear(4), &path, ModelKind::LungSegmentation, |_| false).expect_err("kind");
        assert!(err.to_string().contains("Classifier model"), "{err}");
        let err = load_into(linear(3), &path, ModelKind::Classifier, |_| false).expect_err("shape");
        assert!(
            matches!(err, ModelFileError::TensorMismatch { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("weight"), "{err}");
    }

    #[test]
    fn half_precision_files_store_matrices_as_f16_and_load_as_f32() {
        let dir = tempfile::tempdir().expect("temp dir");
        let model = LinearConfig::new(64, 32).init(&inference_device());
        let (full, half) = (
            dir.path().join("f32.safetensors"),
            dir.path().join("f16.safetensors"),
        );
        save(&full, &model, &card()).expect("save f32");
        let mut half_card = card();
        half_card.weights = WeightPrecision::F16;
        save(&half, &model, &half_card).expect("save f16");
        let size = |path: &Path| std::fs::metadata(path).expect("size").len();
        // 2048 weights at 2 bytes instead of 4 (less the card's longer header); the 32
        // biases stay 4 bytes.
        let saved = size(&full) - size(&half);
        assert!((4050..=4096).contains(&saved), "{saved} bytes saved");

        let (loaded, loaded_card) = load_into(
            LinearConfig::new(64, 32).init(&inference_device()),
            &half,
            ModelKind::Classifier,
            |_| false,
        )
        .expect("load");
        assert_eq!(loaded_card.weights, WeightPrecision::F16);
        let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().expect("f32");
        let (stored, original) = (values(loaded.weight.val()), values(model.weight.val()));
        for (s, o) in stored.iter().zip(&original) {
            assert_eq!(*s, half::f16::from_f32(*o).to_f32());
        }
        let bias = |l: &Linear| l.bias.as_ref().expect("bias").val().into_data();
        assert_eq!(bias(&loaded), bias(&model));
    }

    #[test]
    fn whole_number_matrices_are_stored_in_eight_bits_and_the_rest_in_f16() {
        let dir = tempfile::tempdir().expect("temp dir");
        let device = inference_device();
        let matrix = |values: Vec<f32>| {
            let mut layer = LinearConfig::new(64, 32).init(&device);
            layer.weight = burn::module::Param::from_tensor(Tensor::from_data(
                burn::tensor::TensorData::new(values, [64, 32]),
                &device,
            ));
            layer
        };
        // Whole numbers spanning the whole range of a byte, and the same off by a quarter.
        let whole: Vec<f32> = (0..2048).map(|i| ((i * 37) % 255) as f32 - 127.0).collect();
        let fractional: Vec<f32> = whole.iter().map(|v| v + 0.25).collect();
        let (half_path, byte_path) = (
            dir.path().join("f16.safetensors"),
            dir.path().join("int8.safetensors"),
        );
        let mut half_card = card();
        half_card.weights = WeightPrecision::F16;
        save(&half_path, &matrix(whole.clone()), &half_card).expect("save f16");
        let mut byte_card = card();
        byte_card.weights = WeightPrecision::F16Int8Heads;
        save(&byte_path, &matrix(whole.clone()), &byte_card).expect("save int8");
        let size = |path: &Path| std::fs::metadata(path).expect("size").len();
        // 2048 weights at 1 byte instead of 2, less the card's longer precision name.
        let whole_size = size(&byte_path);
        let saved = size(&half_path) - whole_size;
        assert!((2016..=2048).contains(&saved), "{saved} bytes saved");

        let load = |path: &Path| {
            let blank = LinearConfig::new(64, 32).init(&device);
            let (loaded, card) =
                load_into(blank, path, ModelKind::Classifier, |_| false).expect("load");
            assert_eq!(card.weights, WeightPrecision::F16Int8Heads);
            loaded
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        assert_eq!(load(&byte_path), whole);
        // Not whole numbers: f16 as before (these quarters are exact in f16).
        save(&byte_path, &matrix(fractional.clone()), &byte_card).expect("save");
        let grown = size(&byte_path) - whole_size;
        assert!((2040..=2056).contains(&grown), "{grown} bytes more");
        assert_eq!(load(&byte_path), fractional);
    }

    #[test]
    fn newer_cards_and_bare_weights_get_clear_messages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let newer = dir.path().join("newer.safetensors");
        let mut future = serde_json::to_value(card()).expect("json");
        future["format_version"] = (FORMAT_VERSION + 1).into();
        future["from_the_future"] = true.into();
        let mut store = SafetensorsStore::from_file(&newer)
            .metadata(CARD_KEY, future.to_string())
            .overwrite(true);
        linear(4).save_into(&mut store).expect("write");
        let err = read_card(&newer).expect_err("newer");
        assert!(err.to_string().contains("update cxr"), "{err}");

        let bare = dir.path().join("bare.safetensors");
        let mut store = SafetensorsStore::from_file(&bare).overwrite(true);
        linear(4).save_into(&mut store).expect("write");
        assert!(matches!(
            read_card(&bare),
            Err(ModelFileError::NoCard { .. })
        ));

        let junk = dir.path().join("junk.safetensors");
        std::fs::write(&junk, b"not a model").expect("write");
        assert!(matches!(
            read_card(&junk),
            Err(ModelFileError::NotSafetensors { .. })
        ));
    }
}

//! The training recipe: every knob of `cxr train`, read from a TOML file whose defaults are
//! the reference paper's recipe exactly (Inception V3, frozen base, RMSprop 1e-4, 20 + 5 epochs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cxr_core::augment::AugmentConfig;
use cxr_core::dataset::ClassNames;
use cxr_core::lungs::LungCropSpec;
use cxr_core::preprocess::ClaheParams;
use serde::{Deserialize, Serialize};

use super::log::{EpochRecord, Phase};
use crate::backbones::BackboneKind;
use crate::model_file::WeightPrecision;

/// The ending of an `ensemble` entry whose member sees the X-ray cut to its lungs.
pub const LUNG_CROP_MEMBER: &str = "+lung-crop";

/// The ending of an `ensemble` entry that names a recipe file of its own.
pub const RECIPE_FILE_MEMBER: &str = ".toml";

/// A whole recipe. Missing fields take the paper's values; unknown fields are refused, so a
/// misspelt knob is an error rather than silently ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Recipe {
    /// The pretrained trunk (`cxr weights list`).
    pub backbone: String,
    /// Seeds the validation split, shuffling, augmentation and initialisation.
    pub seed: u64,
    /// Images per optimisation step.
    pub batch_size: usize,
    /// Share of the data held out for validation when the data set has no validation split.
    pub val_fraction: f64,
    /// Weigh each class's loss by the inverse of its share, for imbalanced data.
    pub class_weights: bool,
    pub preprocess: PreprocessChoice,
    pub augment: AugmentConfig,
    pub head: HeadRecipe,
    pub optimizer: OptimizerRecipe,
    pub schedule: ScheduleRecipe,
    /// Phase 1: the trunk frozen, only the head trains.
    pub frozen: PhaseRecipe,
    /// Phase 2: from the best phase-1 weights, the trunk's last stages train too.
    pub fine_tune: FineTuneRecipe,
    /// Augmented views of each training image whose trunk outputs are computed once and
    /// reused: epoch `e` sees view `e mod views`. 0 means a fresh view every epoch (the
    /// paper's on-the-fly augmentation); fewer views make later epochs nearly free. Either
    /// way, phase 2's epoch `e` shows phase 1's view for epoch `e`, so its frozen stages need
    /// not run again.
    pub augmented_views: usize,
    /// Train on the plain view too (no augmentation: the view every score is taken on), as
    /// the last view of the cycle: epoch `e` sees view `e mod (augmented_views + 1)`. Needs
    /// `augmented_views` of at least 1.
    #[serde(skip_serializing_if = "is_false")]
    pub train_on_plain_view: bool,
    /// Keep the labels of only this share of each run's training and validation images
    /// (per class, seeded) and treat the rest as unlabelled: the label-scarce experiment.
    /// 1 (the default) keeps every label.
    pub labelled_fraction: f64,
    /// Self-training on unlabelled images (`--unlabelled DIR`, and those `labelled_fraction`
    /// hides); absent: unlabelled images are not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pseudo_labels: Option<PseudoLabelRecipe>,
    /// More than two classes (folder names or manifest labels, in label order) and which of
    /// them a screening refers; the head becomes a softmax over them. Absent: the paper's
    /// binary normal/abnormal head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassesRecipe>,
    /// Train one model of this recipe per member listed here (same folds, same split) and
    /// store them as one ensemble that averages their screening log-odds; empty: the one
    /// `backbone`. A member is a backbone name, or a backbone name followed by
    /// [`LUNG_CROP_MEMBER`] (`"mobilenet-v2+lung-crop"`): that member sees each X-ray cut to
    /// its lungs (`preprocess.lung_crop`'s margin, else the default) while the others see it
    /// as `preprocess` says. A member ending in [`RECIPE_FILE_MEMBER`]
    /// (`"cxr-tb-finetune.toml"`, beside this recipe's file) trains by that recipe instead,
    /// which must keep this one's seed, validation share and classes (same folds, same split).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ensemble: Vec<String>,
    /// The recipes of the `ensemble` entries that name recipe files, by entry, as read when
    /// this recipe's file was: a run folder keeps them, so resuming needs no other file.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub member_recipes: BTreeMap<String, Recipe>,
    /// How an ensemble's model file stores its weights: "f32"; "f16" (half the size); or
    /// "f16_int8_heads" (as f16, with each head's hidden matrix in 8 bits, one scale per
    /// hidden unit folded into its bias and BatchNorm: a 1280-feature head 0.66 MB instead of
    /// 1.3). The card's thresholds are chosen on the stored weights' scores.
    #[serde(skip_serializing_if = "is_f32")]
    pub weights: WeightPrecision,
}

fn is_false(flag: &bool) -> bool {
    !flag
}

fn is_f32(precision: &WeightPrecision) -> bool {
    *precision == WeightPrecision::F32
}

/// A multi-class head: `names = ["normal", "tb", "age-related"]`, `refer = ["tb"]`. The
/// screening probability is the softmax mass of the `refer` classes, so thresholds,
/// operating points and heat maps work as for the binary head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassesRecipe {
    pub names: Vec<String>,
    /// Default: every class but the first.
    #[serde(default)]
    pub refer: Vec<String>,
}

impl ClassesRecipe {
    /// The classes as the data set reader matches them.
    pub fn class_names(&self) -> Result<ClassNames, RecipeError> {
        ClassNames::listed_or_all_but_first(&self.names, &self.refer)
            .map_err(|error| RecipeError::Invalid(format!("classes: {error}")))
    }
}

/// Pseudo-labelling: a first model (the teacher) trains on the labelled images and scores the
/// unlabelled ones on their plain view; those it calls with at least `confidence` join the
/// training images with its call as their label, and the model trains again from the start.
/// They are then seen under augmentation, so the student also learns to give the same answer
/// on perturbed copies of what the teacher saw plainly (a consistency objective).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PseudoLabelRecipe {
    /// A pseudo-label is kept when the teacher's probability is at least this, or at most
    /// one minus this.
    pub confidence: f64,
}

impl Default for PseudoLabelRecipe {
    fn default() -> Self {
        Self { confidence: 0.9 }
    }
}

/// How images become inputs, on top of the backbone's own preprocessing preset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreprocessChoice {
    /// Square input side in pixels instead of the backbone's native one (smaller is faster;
    /// the trunks are fully convolutional, so any multiple of 32 works).
    pub input_size: Option<usize>,
    /// Contrast-limited adaptive histogram equalisation after resizing (evens out exposure
    /// differences between hospitals and machines).
    pub clahe: Option<ClaheParams>,
    /// Crop every X-ray to its lungs (found by the shipped lung model, or `$CXR_LUNG_MODEL`)
    /// before resizing: `lung_crop = { margin = 0.05 }`. The model card records the crop and
    /// the lung model's sha256, so prediction crops the same way.
    pub lung_crop: Option<LungCropSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadRecipe {
    /// Width of the hidden layer (the paper's 512); 0 makes a linear head: pooled features,
    /// standardised with the training images' statistics, into the output layer.
    pub hidden: usize,
    pub dropout: f64,
    /// L2 penalty added to the training loss: this times the sum of the squared weights of
    /// the head's dense kernels (Keras' `kernel_regularizer=l2(...)`); 0 in the paper.
    pub weight_decay: f64,
}

/// RMSprop as Keras defines it (see `train::optimizer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerRecipe {
    pub learning_rate: f64,
    pub rho: f32,
    pub epsilon: f32,
    /// `lr g / sqrt(a + eps)` (tf.keras 2.x, Keras 3) instead of the paper's Keras 2.2.4
    /// `lr g / (sqrt(a) + eps)`: parameters with gradients below ~sqrt(eps) move less.
    pub epsilon_in_sqrt: bool,
}

/// Keras' ReduceLROnPlateau on a validation figure, which also chooses the kept weights; or a
/// cosine decay over each phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleRecipe {
    /// How the learning rate moves within a phase.
    #[serde(skip_serializing_if = "is_plateau")]
    pub kind: ScheduleKind,
    /// The validation figure that drives the schedule and picks the best checkpoint.
    pub monitor: Monitor,
    pub factor: f64,
    /// Epochs without improvement before the rate drops.
    pub patience: usize,
    /// An improvement must exceed this.
    pub min_delta: f64,
    pub min_learning_rate: f64,
}

/// How the learning rate moves within a phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Cut by `factor` after `patience` epochs without a gain in the monitored figure (the
    /// paper's Keras ReduceLROnPlateau).
    #[default]
    Plateau,
    /// From the phase's rate down to `min_learning_rate` along half a cosine over the phase's
    /// epochs (PyTorch's CosineAnnealingLR): whole trunks fine-tuned at a constant rate keep
    /// moving, and a small validation set cannot tell when to cut.
    Cosine,
}

fn is_plateau(kind: &ScheduleKind) -> bool {
    *kind == ScheduleKind::Plateau
}

/// A validation figure to watch: accuracy at 0.5 (the paper's, Keras' `val_acc`), the
/// binary cross-entropy, or the ROC AUC. Higher is better except for the loss. `none` watches
/// nothing: the learning rate stays, and the last epoch's weights are kept (for heads whose
/// L2 penalty, not early stopping on a hundred validation images, keeps them from overfitting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    #[default]
    ValAccuracy,
    ValLoss,
    ValAuc,
    None,
}

impl Monitor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValAccuracy => "val_accuracy",
            Self::ValLoss => "val_loss",
            Self::ValAuc => "val_auc",
            Self::None => "none",
        }
    }

    /// The watched figure of an epoch; `None` when it is undefined (an AUC on validation
    /// images of one class, a loss that is not finite).
    pub fn value(self, record: &EpochRecord) -> Option<f64> {
        let value = match self {
            Self::ValAccuracy => Some(record.val_accuracy),
            Self::ValLoss => Some(record.val_loss),
            Self::ValAuc => record.val_auc,
            Self::None => None,
        };
        value.filter(|v| v.is_finite())
    }

    /// Whether `value` beats `best` by more than `min_delta` (Keras' mode "max", or "min"
    /// for the loss).
    pub fn improves(self, value: f64, best: f64, min_delta: f64) -> bool {
        match self {
            Self::ValLoss => value + min_delta < best,
            Self::ValAccuracy | Self::ValAuc => value - min_delta > best,
            Self::None => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhaseRecipe {
    pub epochs: usize,
    /// Starting learning rate of this phase; absent: `optimizer.learning_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FineTuneRecipe {
    pub epochs: usize,
    /// Starting learning rate of this phase; absent: `optimizer.learning_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    /// First trainable stage (`BackboneSpec::stages`); empty means the backbone's default:
    /// Inception V3's "mixed9" (Keras layer 249, as in the paper), else the last two stages.
    pub unfreeze_from: String,
    /// What the unfrozen stages' BatchNorm layers do.
    pub batchnorm: FineTuneBatchNorm,
    /// After each epoch, set the head's BatchNorm statistics to those of the training images'
    /// plain view under the current weights ("precise BatchNorm"). The running averages
    /// (momentum 0.99) lag a trunk that moves every step: whole-trunk fine-tuning then scored
    /// validation images through stale statistics, with AUC rising but the loss many times
    /// phase 1's, so the kept weights, chosen by loss, were always phase 1's.
    #[serde(skip_serializing_if = "is_false")]
    pub refresh_head_statistics: bool,
    /// Each epoch trains on a newly drawn augmented view of the training images instead of
    /// cycling through phase 1's cached ones (`augmented_views`, and the plain view). A trunk
    /// that moves can learn a handful of fixed pictures by heart; fresh ones each epoch are
    /// what the PyTorch probe of whole-trunk fine-tuning used. The view is computed up to the
    /// first unfrozen stage when its epoch starts and dropped when it ends, so it costs that
    /// frozen part's forward pass per epoch (nothing for `unfreeze_from = "stem"`).
    #[serde(skip_serializing_if = "is_false")]
    pub fresh_views: bool,
}

/// BatchNorm in the unfrozen stages during phase 2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FineTuneBatchNorm {
    /// Normalise with each batch's statistics and update the running averages: what the
    /// paper's Keras 2.2 did with unfrozen layers.
    #[default]
    Train,
    /// Normalise with the running statistics, train neither them nor the scale and shift
    /// (Keras' `trainable = False`, as TensorFlow's fine-tuning guide advises).
    Frozen,
}

/// Why a recipe cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("recipe: {0}")]
    Invalid(String),
}

impl Default for Recipe {
    fn default() -> Self {
        Self {
            backbone: BackboneKind::InceptionV3.name().to_string(),
            seed: 42,
            batch_size: 32,
            val_fraction: 0.2,
            class_weights: false,
            preprocess: PreprocessChoice::default(),
            augment: AugmentConfig::paper(),
            head: HeadRecipe::default(),
            optimizer: OptimizerRecipe::default(),
            schedule: ScheduleRecipe::default(),
            frozen: PhaseRecipe::default(),
            fine_tune: FineTuneRecipe::default(),
            augmented_views: 0,
            train_on_plain_view: false,
            labelled_fraction: 1.0,
            pseudo_labels: None,
            classes: None,
            ensemble: Vec::new(),
            member_recipes: BTreeMap::new(),
            weights: WeightPrecision::F32,
        }
    }
}

impl Default for HeadRecipe {
    fn default() -> Self {
        Self {
            hidden: 512,
            dropout: 0.5,
            weight_decay: 0.0,
        }
    }
}

impl Default for OptimizerRecipe {
    fn default() -> Self {
        Self {
            learning_rate: 1e-4,
            rho: 0.9,
            epsilon: 1e-7,
            epsilon_in_sqrt: false,
        }
    }
}

impl Default for ScheduleRecipe {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Plateau,
            monitor: Monitor::ValAccuracy,
            factor: 0.1,
            patience: 3,
            min_delta: 1e-4,
            min_learning_rate: 0.0,
        }
    }
}

impl Default for PhaseRecipe {
    fn default() -> Self {
        Self {
            epochs: 20,
            learning_rate: None,
        }
    }
}

impl Default for FineTuneRecipe {
    fn default() -> Self {
        Self {
            epochs: 5,
            learning_rate: None,
            unfreeze_from: String::new(),
            batchnorm: FineTuneBatchNorm::default(),
            refresh_head_statistics: false,
            fresh_views: false,
        }
    }
}

impl Recipe {
    /// Reads and checks a recipe file.
    pub fn from_file(path: &Path) -> Result<Self, RecipeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RecipeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let parse_error = |err: RecipeError| RecipeError::Parse {
            path: path.to_path_buf(),
            message: err.to_string(),
        };
        let mut recipe = Self::parsed(&text).map_err(parse_error)?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for entry in &recipe.ensemble {
            if entry.ends_with(RECIPE_FILE_MEMBER) && !recipe.member_recipes.contains_key(entry) {
                // Its own errors name its file.
                let member = Self::from_file(&dir.join(entry))?;
                recipe.member_recipes.insert(entry.clone(), member);
            }
        }
        recipe.validate().map_err(parse_error)?;
        Ok(recipe)
    }

    /// Parses and checks a recipe.
    pub fn from_toml(text: &str) -> Result<Self, RecipeError> {
        let recipe = Self::parsed(text)?;
        recipe.validate()?;
        Ok(recipe)
    }

    /// A recipe's TOML read into its fields, not yet checked (a file's recipe-file members
    /// are read between the two).
    fn parsed(text: &str) -> Result<Self, RecipeError> {
        toml::from_str(text).map_err(|err| RecipeError::Invalid(err.to_string()))
    }

    pub fn to_toml(&self) -> String {
        // A recipe is plain data: serialising it cannot fail.
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The recipe of the ensemble's member `member` (an entry of `ensemble`): this one, for
    /// that backbone alone, cut to the lungs if the entry says so, stored at full precision
    /// (the ensemble's own file takes `weights`).
    pub fn member(&self, member: &str) -> Recipe {
        if let Some(own) = self.member_recipes.get(member) {
            return Recipe {
                weights: WeightPrecision::F32,
                ..own.clone()
            };
        }
        let (backbone, lung_crop) = match member.strip_suffix(LUNG_CROP_MEMBER) {
            Some(backbone) => (
                backbone,
                Some(self.preprocess.lung_crop.clone().unwrap_or_default()),
            ),
            None => (member, self.preprocess.lung_crop.clone()),
        };
        Recipe {
            backbone: backbone.to_string(),
            ensemble: Vec::new(),
            member_recipes: BTreeMap::new(),
            weights: WeightPrecision::F32,
            preprocess: PreprocessChoice {
                lung_crop,
                ..self.preprocess.clone()
            },
            ..self.clone()
        }
    }

    pub fn backbone_kind(&self) -> Result<BackboneKind, RecipeError> {
        BackboneKind::from_name(&self.backbone).map_err(|err| RecipeError::Invalid(err.to_string()))
    }

    /// The learning rate `phase` starts at (and its schedule starts from).
    pub fn learning_rate(&self, phase: Phase) -> f64 {
        let own = match phase {
            Phase::Frozen => self.frozen.learning_rate,
            Phase::FineTune => self.fine_tune.learning_rate,
        };
        own.unwrap_or(self.optimizer.learning_rate)
    }

    /// Index of the first stage that phase 2 trains.
    pub fn unfreeze_stage(&self) -> Result<usize, RecipeError> {
        let spec = self.backbone_kind()?.spec();
        let name = match self.fine_tune.unfreeze_from.as_str() {
            "" if spec.stage_index("mixed9").is_some() => "mixed9",
            "" => return Ok(spec.stages.len().saturating_sub(2)),
            name => name,
        };
        spec.stage_index(name).ok_or_else(|| {
            RecipeError::Invalid(format!(
                "fine_tune.unfreeze_from: {} has no stage {name:?}; its stages are {}",
                spec.name,
                spec.stages.join(", ")
            ))
        })
    }

    /// The classes the recipe trains on: its `[classes]`, or binary normal/abnormal.
    pub fn class_names(&self) -> Result<ClassNames, RecipeError> {
        match &self.classes {
            Some(classes) => classes.class_names(),
            None => Ok(ClassNames::default()),
        }
    }

    /// A recipe-file member: read (only a recipe read from a file can resolve its path), not
    /// an ensemble itself, and on this recipe's folds and validation images.
    fn check_member_recipe(&self, member: &str) -> Result<(), RecipeError> {
        let invalid = |message: String| {
            Err(RecipeError::Invalid(format!(
                "ensemble member {member}: {message}"
            )))
        };
        let Some(own) = self.member_recipes.get(member) else {
            return invalid("a recipe file is read beside the recipe that lists it; read this recipe from its file".into());
        };
        if !own.ensemble.is_empty() {
            return invalid("an ensemble cannot be a member of another".into());
        }
        let differs = |what: &str, own: String, ours: String| {
            invalid(format!(
                "its {what} {own} is not the ensemble's {ours}: members must share folds and validation images"
            ))
        };
        if own.seed != self.seed {
            return differs("seed", own.seed.to_string(), self.seed.to_string());
        }
        if own.val_fraction != self.val_fraction {
            return differs(
                "val_fraction",
                own.val_fraction.to_string(),
                self.val_fraction.to_string(),
            );
        }
        if own.labelled_fraction != self.labelled_fraction {
            return differs(
                "labelled_fraction",
                own.labelled_fraction.to_string(),
                self.labelled_fraction.to_string(),
            );
        }
        if own.classes != self.classes {
            return differs(
                "classes",
                format!("{:?}", own.classes),
                format!("{:?}", self.classes),
            );
        }
        own.validate()
            .map_err(|err| RecipeError::Invalid(format!("ensemble member {member}: {err}")))
    }

    pub fn validate(&self) -> Result<(), RecipeError> {
        let invalid = |message: String| Err(RecipeError::Invalid(message));
        let members: Vec<Recipe> = self.ensemble.iter().map(|m| self.member(m)).collect();
        for (k, (member, recipe)) in self.ensemble.iter().zip(&members).enumerate() {
            if self.ensemble[..k].contains(member) {
                return invalid(format!("ensemble lists {member} twice"));
            }
            // `preprocess.lung_crop` already crops every member: the suffix then adds a twin.
            if let Some(twin) = (0..k).find(|&j| members[j] == *recipe) {
                return invalid(format!(
                    "ensemble members {} and {member} are the same model (preprocess.lung_crop already crops every member)",
                    self.ensemble[twin]
                ));
            }
            if member.ends_with(RECIPE_FILE_MEMBER) {
                self.check_member_recipe(member)?;
                continue;
            }
            recipe.validate().map_err(|err| {
                RecipeError::Invalid(format!(
                    "ensemble member {member} (a backbone, a backbone then {LUNG_CROP_MEMBER}, or a recipe file): {err}"
                ))
            })?;
        }
        if let Some(stray) = self
            .member_recipes
            .keys()
            .find(|k| !self.ensemble.contains(k))
        {
            return invalid(format!(
                "member_recipes has {stray}, which the ensemble does not list"
            ));
        }
        if self.ensemble.is_empty() && self.weights != WeightPrecision::F32 {
            let weights = serde_json::to_string(&self.weights).unwrap_or_default();
            return invalid(format!(
                "weights = {weights} applies to an ensemble's file; for one network write ensemble = [\"{}\"]",
                self.backbone
            ));
        }
        self.backbone_kind()?;
        self.unfreeze_stage()?;
        self.class_names()?;
        if let Some(side) = self
            .preprocess
            .input_size
            .filter(|side| *side < 32 || side % 32 != 0)
        {
            return invalid(format!(
                "preprocess.input_size {side} must be a multiple of 32"
            ));
        }
        if self.batch_size == 0 {
            return invalid("batch_size must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return invalid(format!(
                "val_fraction {} is not in [0, 1)",
                self.val_fraction
            ));
        }
        if !(0.0..1.0).contains(&self.head.dropout) {
            return invalid(format!(
                "head.dropout {} is not in [0, 1)",
                self.head.dropout
            ));
        }
        if !(self.head.weight_decay.is_finite() && self.head.weight_decay >= 0.0) {
            return invalid(format!(
                "head.weight_decay {} must be 0 or more",
                self.head.weight_decay
            ));
        }
        for (name, lr) in [
            (
                "optimizer.learning_rate",
                Some(self.optimizer.learning_rate),
            ),
            ("frozen.learning_rate", self.frozen.learning_rate),
            ("fine_tune.learning_rate", self.fine_tune.learning_rate),
        ] {
            if let Some(lr) = lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
                return invalid(format!("{name} {lr} must be positive"));
            }
        }
        if self.train_on_plain_view && self.augmented_views == 0 {
            return invalid(
                "train_on_plain_view needs augmented_views of at least 1 (the views it joins)"
                    .into(),
            );
        }
        if !(self.labelled_fraction > 0.0 && self.labelled_fraction <= 1.0) {
            return invalid(format!(
                "labelled_fraction {} is not in (0, 1]",
                self.labelled_fraction
            ));
        }
        if let Some(confidence) = self
            .pseudo_labels
            .as_ref()
            .map(|p| p.confidence)
            .filter(|c| !(0.5..1.0).contains(c))
        {
            return invalid(format!(
                "pseudo_labels.confidence {confidence} is not in [0.5, 1)"
            ));
        }
        if !(self.schedule.factor > 0.0 && self.schedule.factor < 1.0) {
            return invalid(format!(
                "schedule.factor {} must be in (0, 1)",
                self.schedule.factor
            ));
        }
        self.augment
            .validate()
            .map_err(|err| RecipeError::Invalid(format!("augment: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_papers_recipe() {
        let recipe = Recipe::from_toml("").expect("empty recipe");
        assert_eq!(recipe, Recipe::default());
        assert_eq!(recipe.backbone, "inception-v3");
        assert_eq!((recipe.frozen.epochs, recipe.fine_tune.epochs), (20, 5));
        assert_eq!(recipe.batch_size, 32);
        let spec = BackboneKind::InceptionV3.spec();
        assert_eq!(
            spec.stages[recipe.unfreeze_stage().expect("stage")],
            "mixed9"
        );
    }

    #[test]
    fn recipes_round_trip_and_reject_typos() {
        let mut recipe = Recipe {
            backbone: "efficientnet-lite0".into(),
            ..Recipe::default()
        };
        recipe.augment.contrast = 0.2;
        recipe.fine_tune.batchnorm = FineTuneBatchNorm::Frozen;
        assert_eq!(
            Recipe::from_toml(&recipe.to_toml()).expect("round trip"),
            recipe
        );
        let frozen = Recipe::from_toml("[fine_tune]\nbatchnorm = \"frozen\"").expect("frozen");
        assert_eq!(frozen.fine_tune.batchnorm, FineTuneBatchNorm::Frozen);
        assert_eq!(
            Recipe::default().fine_tune.batchnorm,
            FineTuneBatchNorm::Train
        );
        let err = Recipe::from_toml("[fine_tune]\nbatchnorm = \"fixed\"").expect_err("mode");
        assert!(err.to_string().contains("frozen"), "{err}");

        let err = Recipe::from_toml("batch_sise = 8").expect_err("typo");
        assert!(err.to_string().contains("batch_sise"), "{err}");
        let err = Recipe::from_toml("backbone = \"resnet\"").expect_err("unknown backbone");
        assert!(err.to_string().contains("efficientnet-lite0"), "{err}");
        let err = Recipe::from_toml("[fine_tune]\nunfreeze_from = \"mixed99\"").expect_err("stage");
        assert!(err.to_string().contains("mixed10"), "{err}");
    }

    #[test]
    fn an_ensemble_lists_valid_distinct_backbones_and_its_members_are_single() {
        let recipe = Recipe::from_toml(
            "ensemble = [\"mobilenet-v2\", \"efficientnet-lite0\"]\nweights = \"f16\"\n[fine_tune]\nepochs = 0",
        )
        .expect("ensemble");
        assert_eq!(recipe.weights, WeightPrecision::F16);
        assert_eq!(
            Recipe::from_toml(&recipe.to_toml()).expect("round trip"),
            recipe
        );
        let member = recipe.member("mobilenet-v2");
        assert_eq!(member.backbone, "mobilenet-v2");
        assert!(member.ensemble.is_empty());
        assert_eq!(member.weights, WeightPrecision::F32);
        assert_eq!(member.augment, recipe.augment);

        let err = Recipe::from_toml("ensemble = [\"mobilenet-v2\", \"resnet\"]").expect_err("name");
        assert!(err.to_string().contains("ensemble member resnet"), "{err}");
        let err = Recipe::from_toml("ensemble = [\"mobilenet-v2\", \"mobilenet-v2\"]")
            .expect_err("twice");
        assert!(err.to_string().contains("twice"), "{err}");
        // A stage name that only one member has.
        let err = Recipe::from_toml(
            "ensemble = [\"inception-v3\", \"xception\"]\n[fine_tune]\nunfreeze_from = \"mixed9\"",
        )
        .expect_err("stage");
        assert!(
            err.to_string().contains("ensemble member xception"),
            "{err}"
        );
        let err = Recipe::from_toml("weights = \"f8\"").expect_err("precision");
        assert!(err.to_string().contains("f16_int8_heads"), "{err}");
        // One network's file is written at full precision: say how to get a smaller one.
        let err = Recipe::from_toml("weights = \"f16\"").expect_err("not an ensemble");
        assert!(
            err.to_string().contains("ensemble = [\"inception-v3\"]"),
            "{err}"
        );
        let one = Recipe::from_toml("ensemble = [\"mobilenet-v2\"]\nweights = \"f16_int8_heads\"")
            .expect("an ensemble of one");
        assert_eq!(one.weights, WeightPrecision::F16Int8Heads);
    }

    #[test]
    fn an_ensemble_member_can_see_the_lung_crop_while_the_others_see_the_whole_x_ray() {
        let recipe = Recipe::from_toml(
            "ensemble = [\"mobilenet-v2+lung-crop\", \"mobilenet-v2\", \"efficientnet-lite0\"]",
        )
        .expect("mixed ensemble");
        let cropped = recipe.member("mobilenet-v2+lung-crop");
        assert_eq!(cropped.backbone, "mobilenet-v2");
        assert_eq!(cropped.preprocess.lung_crop, Some(LungCropSpec::default()));
        assert_eq!(recipe.member("mobilenet-v2").preprocess.lung_crop, None);
        assert_eq!(
            recipe.member("efficientnet-lite0").preprocess.lung_crop,
            None
        );
        // The crop's margin comes from `preprocess.lung_crop` when it is set, which then
        // crops every member: a suffixed twin of a listed backbone is the same model.
        let margin = "\n[preprocess]\nlung_crop = { margin = 0.1 }";
        let recipe = Recipe::from_toml(&format!(
            "ensemble = [\"mobilenet-v2+lung-crop\", \"efficientnet-lite0\"]{margin}"
        ))
        .expect("margin");
        let crop = recipe.member("mobilenet-v2+lung-crop").preprocess.lung_crop;
        assert_eq!(crop.map(|crop| crop.margin), Some(0.1));
        let err = Recipe::from_toml(&format!(
            "ensemble = [\"mobilenet-v2\", \"mobilenet-v2+lung-crop\"]{margin}"
        ))
        .expect_err("twins");
        assert!(err.to_string().contains("same model"), "{err}");
        let err = Recipe::from_toml("ensemble = [\"mobilenet-v2+lungs\"]").expect_err("suffix");
        assert!(err.to_string().contains("mobilenet-v2+lungs"), "{err}");
        assert!(err.to_string().contains(LUNG_CROP_MEMBER), "{err}");
    }

    #[test]
    fn a_classes_section_lists_the_classes_and_what_is_referred() {
        let recipe = Recipe::from_toml(
            "[classes]\nnames = [\"normal\", \"tb\", \"age-related\"]\nrefer = [\"tb\"]",
        )
        .expect("classes");
        let names = recipe.class_names().expect("names");
        assert_eq!(names.refer_mask(), [false, true, false]);
        assert_eq!(
            Recipe::from_toml(&recipe.to_toml()).expect("round trip"),
            recipe
        );
        // Without refer, every class but the first is referred.
        let recipe = Recipe::from_toml("[classes]\nnames = [\"normal\", \"tb\", \"other\"]")
            .expect("default refer");
        assert_eq!(
            recipe.class_names().expect("names").refer_mask(),
            [false, true, true]
        );
        let err = Recipe::from_toml("[classes]\nnames = [\"normal\", \"tb\"]\nrefer = [\"covid\"]")
            .expect_err("unknown refer class");
        assert!(err.to_string().contains("covid"), "{err}");
        assert_eq!(
            Recipe::default().class_names().expect("binary"),
            ClassNames::default()
        );
    }

    #[test]
    fn every_recipe_in_the_repository_reads_and_validates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
        let mut read = 0;
        for entry in std::fs::read_dir(&dir).expect("recipes/") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let recipe = Recipe::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
                recipe
                    .validate()
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                read += 1;
            }
        }
        assert!(read >= 3, "only {read} recipes in {}", dir.display());
        let crop = Recipe::from_file(&dir.join("cxr-tb-lungcrop.toml")).expect("lung crop");
        assert_eq!(crop.preprocess.lung_crop.map(|c| c.margin), Some(0.05));
    }

    #[test]
    fn training_on_the_plain_view_needs_cached_views_and_is_written_only_when_set() {
        let recipe =
            Recipe::from_toml("augmented_views = 4\ntrain_on_plain_view = true\n").expect("recipe");
        assert!(recipe.train_on_plain_view);
        assert_eq!(Recipe::from_toml(&recipe.to_toml()).expect("again"), recipe);
        assert!(!Recipe::default().to_toml().contains("train_on_plain_view"));
        let err = Recipe::from_toml("train_on_plain_view = true").expect_err("no cached views");
        assert!(err.to_string().contains("train_on_plain_view"), "{err}");
    }

    #[test]
    fn a_linear_head_with_an_l2_penalty_and_no_monitor_is_read_and_checked() {
        let recipe = Recipe::from_toml(
            "[head]\nhidden = 0\ndropout = 0.0\nweight_decay = 0.01\n[schedule]\nmonitor = \"none\"\n",
        )
        .expect("recipe");
        assert_eq!(recipe.head.hidden, 0);
        assert_eq!(recipe.head.weight_decay, 0.01);
        assert_eq!(recipe.schedule.monitor, Monitor::None);
        assert_eq!(Recipe::default().head.weight_decay, 0.0);
        let err = Recipe::from_toml("[head]\nweight_decay = -1.0").expect_err("negative");
        assert!(err.to_string().contains("head.weight_decay"), "{err}");
        let err = Recipe::from_toml("[head]\ndropout = 1.0").expect_err("dropout");
        assert!(err.to_string().contains("head.dropout"), "{err}");
    }

    #[test]
    fn an_ensemble_member_may_be_a_recipe_file_beside_the_ensembles() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        write(
            "tuned.toml",
            "backbone = \"mobilenet-v2\"\n[fine_tune]\nepochs = 3\nunfreeze_from = \"stem\"\n",
        );
        let ensemble = write(
            "ensemble.toml",
            "ensemble = [\"efficientnet-lite0\", \"tuned.toml\"]\nweights = \"f16\"\n[fine_tune]\nepochs = 0\n",
        );
        let recipe = Recipe::from_file(&ensemble).expect("recipe");
        let tuned = recipe.member("tuned.toml");
        assert_eq!(tuned.backbone, "mobilenet-v2");
        assert_eq!(tuned.fine_tune.epochs, 3);
        assert_eq!(tuned.unfreeze_stage().expect("stage"), 0);
        assert_eq!(tuned.weights, WeightPrecision::F32);
        // A backbone member keeps the ensemble's settings and carries no member recipes, so
        // its run request is what it was before recipe-file members existed.
        let lite0 = recipe.member("efficientnet-lite0");
        assert_eq!(lite0.fine_tune.epochs, 0);
        assert!(lite0.member_recipes.is_empty());
        // A run folder's copy (JSON) holds the member's recipe: resuming reads no other file.
        let json = serde_json::to_string(&recipe).expect("json");
        std::fs::remove_file(dir.path().join("tuned.toml")).expect("remove");
        let kept: Recipe = serde_json::from_str(&json).expect("read back");
        assert_eq!(kept, recipe);
        kept.validate().expect("valid without the file");
        // Without the file the ensemble's recipe names what is missing.
        let err = Recipe::from_file(&ensemble).expect_err("missing member");
        assert!(err.to_string().contains("tuned.toml"), "{err}");
        // Text alone cannot say where the file is.
        let err = Recipe::from_toml("ensemble = [\"tuned.toml\"]").expect_err("no file");
        assert!(
            err.to_string().contains("read this recipe from its file"),
            "{err}"
        );
        // Members must share the folds and the validation images.
        write("reseeded.toml", "backbone = \"mobilenet-v2\"\nseed = 7\n");
        let other = write("other.toml", "ensemble = [\"reseeded.toml\"]\n");
        let err = Recipe::from_file(&other).expect_err("seed");
        assert!(
            err.to_string().contains("reseeded.toml") && err.to_string().contains("seed 7"),
            "{err}"
        );
        write("nested.toml", "ensemble = [\"mobilenet-v2\"]\n");
        let outer = write("outer.toml", "ensemble = [\"nested.toml\"]\n");
        let err = Recipe::from_file(&outer).expect_err("nested");
        assert!(err.to_string().contains("cannot be a member"), "{err}");
    }

    #[test]
    fn a_cosine_schedule_refreshed_head_statistics_and_fresh_views_are_written_only_when_set() {
        let recipe = Recipe::from_toml(
            "[schedule]\nkind = \"cosine\"\n[fine_tune]\nrefresh_head_statistics = true\nfresh_views = true\n",
        )
        .expect("recipe");
        assert_eq!(recipe.schedule.kind, ScheduleKind::Cosine);
        assert!(recipe.fine_tune.refresh_head_statistics);
        assert!(recipe.fine_tune.fresh_views);
        assert_eq!(
            Recipe::from_toml(&recipe.to_toml()).expect("round trip"),
            recipe
        );
        // Recipes without them (every run folder written before them) read and write as before.
        let paper = Recipe::default().to_toml();
        assert!(
            !paper.contains("kind") && !paper.contains("refresh") && !paper.contains("fresh_views"),
            "{paper}"
        );
        let err = Recipe::from_toml("[schedule]\nkind = \"step\"").expect_err("kind");
        assert!(err.to_string().contains("step"), "{err}");
    }

    #[test]
    fn the_monitor_and_phase_rates_are_read_and_checked() {
        let recipe = Recipe::from_toml(
            "[schedule]\nmonitor = \"val_loss\"\n[frozen]\nlearning_rate = 1e-3\n",
        )
        .expect("recipe");
        assert_eq!(recipe.schedule.monitor, Monitor::ValLoss);
        assert_eq!(recipe.learning_rate(Phase::Frozen), 1e-3);
        assert_eq!(recipe.learning_rate(Phase::FineTune), 1e-4);
        assert_eq!(
            Recipe::from_toml(&recipe.to_toml()).expect("round trip"),
            recipe
        );
        // The paper's recipe written out has no per-phase rates and watches accuracy.
        let paper = Recipe::default().to_toml();
        let rates = paper
            .lines()
            .filter(|l| l.starts_with("learning_rate"))
            .count();
        assert_eq!(rates, 1, "{paper}");
        assert!(paper.contains("monitor = \"val_accuracy\""), "{paper}");

        let err = Recipe::from_toml("[schedule]\nmonitor = \"val_acc\"").expect_err("monitor");
        assert!(err.to_string().contains("val_auc"), "{err}");
        let err = Recipe::from_toml("[fine_tune]\nlearning_rate = 0.0").expect_err("rate");
        assert!(err.to_string().contains("fine_tune.learning_rate"), "{err}");
    }

    #[test]
    fn label_scarcity_and_pseudo_labels_are_read_and_checked() {
        let recipe =
            Recipe::from_toml("labelled_fraction = 0.2\n[pseudo_labels]\nconfidence = 0.95\n")
                .expect("recipe");
        assert_eq!(recipe.labelled_fraction, 0.2);
        assert_eq!(
            recipe.pseudo_labels.as_ref().map(|p| p.confidence),
            Some(0.95)
        );
        assert_eq!(
            Recipe::from_toml(&recipe.to_toml()).expect("round trip"),
            recipe
        );
        assert!(!Recipe::default().to_toml().contains("pseudo_labels"));
        let empty = Recipe::from_toml("[pseudo_labels]\n").expect("defaults");
        assert_eq!(
            empty.pseudo_labels,
            Some(PseudoLabelRecipe { confidence: 0.9 })
        );
        let err = Recipe::from_toml("labelled_fraction = 0.0").expect_err("fraction");
        assert!(err.to_string().contains("labelled_fraction"), "{err}");
        let err = Recipe::from_toml("[pseudo_labels]\nconfidence = 0.3").expect_err("confidence");
        assert!(
            err.to_string().contains("pseudo_labels.confidence"),
            "{err}"
        );
    }

    #[test]
    fn the_monitor_reads_its_figure_in_its_direction() {
        let record = EpochRecord {
            phase: Phase::Frozen,
            epoch: 1,
            learning_rate: 1e-4,
            train_loss: 0.5,
            train_accuracy: 0.8,
            val_loss: 0.4,
            val_accuracy: 0.75,
            val_auc: None,
            seconds: 1.0,
        };
        assert_eq!(Monitor::ValAccuracy.value(&record), Some(0.75));
        assert_eq!(Monitor::ValLoss.value(&record), Some(0.4));
        assert_eq!(Monitor::ValAuc.value(&record), None);
        let nan_loss = EpochRecord {
            val_loss: f64::NAN,
            ..record
        };
        assert_eq!(Monitor::ValLoss.value(&nan_loss), None);

        assert!(Monitor::ValLoss.improves(0.3, 0.4, 1e-4));
        assert!(!Monitor::ValLoss.improves(0.5, 0.4, 1e-4));
        assert!(!Monitor::ValLoss.improves(0.39995, 0.4, 1e-4));
        assert!(Monitor::ValAuc.improves(0.9, 0.8, 1e-4));
        assert!(!Monitor::ValAuc.improves(0.7, 0.8, 1e-4));
        assert!(!Monitor::ValAccuracy.improves(0.80005, 0.8, 1e-4));
    }
}

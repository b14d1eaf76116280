//! The preprocessing spec: input size, resize mode, normalisation, channel layout and CLAHE.
//! Stored as JSON in every model file, so its shape is stable and checked on load.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PreprocessError;
use crate::lungs::LungCropSpec;

/// The spec format this build writes and the newest it reads.
pub const SPEC_VERSION: u32 = 1;

/// Largest accepted input width or height: a guard against absurd specs from a model file.
const MAX_INPUT_SIDE: usize = 4096;

/// Everything that decides how a decoded image becomes a network input.
///
/// JSON shape (all fields optional on read; missing ones take the [`Default`] values, unknown
/// ones are refused so that a spec from a newer build fails loudly instead of silently
/// preprocessing differently):
/// `{"version":1,"input_size":{"width":299,"height":299},"resize":"stretch",
///   "normalisation":{"kind":"unit"},"channels":3,"clahe":null}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreprocessSpec {
    pub version: u32,
    pub input_size: InputSize,
    pub resize: ResizeMode,
    pub normalisation: Normalisation,
    /// 1 (gray) or 3 (gray replicated into each channel).
    pub channels: usize,
    /// Contrast-limited adaptive histogram equalisation, applied at input size (see `fit`).
    pub clahe: Option<ClaheParams>,
    /// Crop the X-ray to its lungs (found by the lung model) before everything else.
    /// Left out of the JSON when off, so specs without it keep their form and fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lung_crop: Option<LungCropSpec>,
}

/// Network input size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSize {
    pub width: usize,
    pub height: usize,
}

/// How the image is brought to the input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Scale each axis independently to fill the input (what the paper and Keras do).
    Stretch,
    /// Keep the aspect ratio, centre the image and pad the rest with black.
    Letterbox,
}

/// Maps gray values x in [0, 1] to what the backbone was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Normalisation {
    /// x (pixels / 255), the paper's rescale.
    Unit,
    /// 2x - 1, i.e. pixels / 127.5 - 1 (Keras Inception V3 and Xception).
    SymmetricUnit,
    /// (x - mean[c]) / std[c], one entry per output channel (torchvision's ImageNet models).
    MeanStd { mean: Vec<f32>, std: Vec<f32> },
    /// (pixels - 127) / 128 (EfficientNet-Lite).
    EfficientNetLite,
}

/// CLAHE settings, in OpenCV's terms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaheParams {
    /// Tiles across the width.
    pub tiles_x: usize,
    /// Tiles down the height.
    pub tiles_y: usize,
    /// Histogram bins are clipped at `clip_limit` times the mean bin count.
    pub clip_limit: f32,
}

impl Default for ClaheParams {
    /// OpenCV's defaults.
    fn default() -> Self {
        Self {
            tiles_x: 8,
            tiles_y: 8,
            clip_limit: 2.0,
        }
    }
}

/// The named presets, for command lines and model cards.
pub const PRESET_NAMES: &[&str] = &[
    "paper",
    "keras-inception",
    "keras-xception",
    "keras-inception-resnet-v2",
    "torchvision-inception",
    "torchvision-mobilenet",
    "torchvision-alexnet",
    "torchvision-googlenet",
    "efficientnet-lite0",
    "efficientnet-lite1",
    "efficientnet-lite2",
];

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Default for PreprocessSpec {
    /// The paper's recipe: 299 x 299, stretched, pixels / 255, three channels.
    fn default() -> Self {
        Self {
            version: SPEC_VERSION,
            input_size: InputSize {
                width: 299,
                height: 299,
            },
            resize: ResizeMode::Stretch,
            normalisation: Normalisation::Unit,
            channels: 3,
            clahe: None,
            lung_crop: None,
        }
    }
}

impl Normalisation {
    /// torchvision's ImageNet mean and standard deviation (three channels).
    pub fn imagenet() -> Self {
        Self::MeanStd {
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
        }
    }

    /// The affine map `x * scale + offset` for output channel `channel`; every variant is one.
    pub(crate) fn scale_offset(&self, channel: usize) -> (f32, f32) {
        match self {
            Self::Unit => (1.0, 0.0),
            Self::SymmetricUnit => (2.0, -1.0),
            Self::MeanStd { mean, std } => (1.0 / std[channel], -mean[channel] / std[channel]),
            Self::EfficientNetLite => (255.0 / 128.0, -127.0 / 128.0),
        }
    }
}

impl PreprocessSpec {
    /// A square spec of `side` pixels with the given normalisation, stretched, three channels.
    fn square(side: usize, normalisation: Normalisation) -> Self {
        Self {
            input_size: InputSize {
                width: side,
                height: side,
            },
            normalisation,
            ..Self::default()
        }
    }

    /// The spec named `name` (one of [`PRESET_NAMES`]).
    pub fn preset(name: &str) -> Result<Self, PreprocessError> {
        Ok(match name {
            "paper" => Self::default(),
            "keras-inception" | "keras-xception" | "keras-inception-resnet-v2" => {
                Self::square(299, Normalisation::SymmetricUnit)
            }
            "torchvision-inception" => Self::square(299, Normalisation::imagenet()),
            "torchvision-mobilenet" | "torchvision-alexnet" | "torchvision-googlenet" => {
                Self::square(224, Normalisation::imagenet())
            }
            "efficientnet-lite0" => Self::square(224, Normalisation::EfficientNetLite),
            "efficientnet-lite1" => Self::square(240, Normalisation::EfficientNetLite),
            "efficientnet-lite2" => Self::square(260, Normalisation::EfficientNetLite),
            _ => {
                return Err(PreprocessError::InvalidSpec(format!(
                    "unknown preset {name:?}; known presets: {}",
                    PRESET_NAMES.join(", ")
                )));
            }
        })
    }

    /// Checks what serde cannot: sizes, channel count, per-channel statistics, CLAHE grid.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        let invalid = |reason: String| Err(PreprocessError::InvalidSpec(reason));
        if self.version > SPEC_VERSION {
            return invalid(format!(
                "spec version {} is newer than this build understands ({SPEC_VERSION}); upgrade cxr",
                self.version
            ));
        }
        let InputSize { width, height } = self.input_size;
        if !(1..=MAX_INPUT_SIDE).contains(&width) || !(1..=MAX_INPUT_SIDE).contains(&height) {
            return invalid(format!(
                "input size {width}x{height} is outside 1..={MAX_INPUT_SIDE} pixels per side"
            ));
        }
        if self.channels != 1 && self.channels != 3 {
            return invalid(format!("channels must be 1 or 3, not {}", self.channels));
        }
        if let Normalisation::MeanStd { mean, std } = &self.normalisation {
            if mean.len() != self.channels || std.len() != self.channels {
                return invalid(format!(
                    "mean_std needs one mean and one std per channel ({}), got {} and {}",
                    self.channels,
                    mean.len(),
                    std.len()
                ));
            }
            if std.iter().any(|s| !s.is_finite() || *s <= 0.0)
                || mean.iter().any(|m| !m.is_finite())
            {
                return invalid("mean_std needs finite means and positive finite stds".into());
            }
        }
        if let Some(clahe) = &self.clahe {
            if clahe.tiles_x == 0 || clahe.tiles_y == 0 {
                return invalid("CLAHE needs at least one tile on each axis".into());
            }
            if clahe.tiles_x > width || clahe.tiles_y > height {
                return invalid(format!(
                    "CLAHE grid {}x{} has more tiles than the {width}x{height} input has pixels",
                    clahe.tiles_x, clahe.tiles_y
                ));
            }
            if !clahe.clip_limit.is_finite() || clahe.clip_limit < 0.0 {
                return invalid(format!(
                    "CLAHE clip limit must be finite and >= 0 (0 disables clipping), not {}",
                    clahe.clip_limit
                ));
            }
        }
        if let Some(crop) = &self.lung_crop
            && !(0.0..=1.0).contains(&crop.margin)
        {
            return invalid(format!(
                "lung crop margin must be in [0, 1] of the lung box, not {}",
                crop.margin
            ));
        }
        Ok(())
    }

    /// The spec as stable JSON (field order fixed by the struct; floats printed shortest).
    pub fn to_json(&self) -> String {
        // Serialising plain structs of numbers, strings and vectors cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a spec from JSON, refusing unknown fields, newer versions and invalid values.
    pub fn from_json(json: &str) -> Result<Self, PreprocessError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| PreprocessError::InvalidSpec(format!("not JSON: {e}")))?;
        // Check the version before the fields, so that a newer spec says so instead of
        // complaining about a field this build has never heard of.
        if let Some(version) = value.get("version").and_then(serde_json::Value::as_u64)
            && version > u64::from(SPEC_VERSION)
        {
            return Err(PreprocessError::InvalidSpec(format!(
                "spec version {version} is newer than this build understands ({SPEC_VERSION}); upgrade cxr"
            )));
        }
        let spec: Self = serde_json::from_value(value)
            .map_err(|e| PreprocessError::InvalidSpec(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Hex SHA-256 of [`Self::to_json`]: identifies the spec in manifests.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.to_json().as_bytes()))
    }

    /// Hex SHA-256 of only the fields that shape the fitted image (size, resize, CLAHE), so
    /// that specs differing only in normalisation or channels share cached fitted images.
    pub fn fit_fingerprint(&self) -> String {
        let mut fit_only = serde_json::json!({
            "version": self.version,
            "input_size": self.input_size,
            "resize": self.resize,
            "clahe": self.clahe,
        });
        if let Some(crop) = &self.lung_crop {
            fit_only["lung_crop"] = serde_json::json!(crop);
        }
        hex::encode(Sha256::digest(fit_only.to_string().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_round_trips_through_json() {
        for name in PRESET_NAMES {
            let spec = PreprocessSpec::preset(name).unwrap();
            spec.validate().unwrap();
            assert_eq!(
                PreprocessSpec::from_json(&spec.to_json()).unwrap(),
                spec,
                "{name}"
            );
        }
        assert!(PreprocessSpec::preset("resnet").is_err());
    }

    #[test]
    fn json_shape_is_stable() {
        let spec = PreprocessSpec {
            clahe: Some(ClaheParams::default()),
            ..PreprocessSpec::preset("torchvision-mobilenet").unwrap()
        };
        assert_eq!(
            spec.to_json(),
            r#"{"version":1,"input_size":{"width":224,"height":224},"resize":"stretch","normalisation":{"kind":"mean_std","mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]},"channels":3,"clahe":{"tiles_x":8,"tiles_y":8,"clip_limit":2.0}}"#
        );
    }

    #[test]
    fn missing_fields_take_defaults() {
        let spec =
            PreprocessSpec::from_json(r#"{"normalisation":{"kind":"symmetric_unit"}}"#).unwrap();
        assert_eq!(spec, PreprocessSpec::preset("keras-inception").unwrap());
    }

    #[test]
    fn newer_versions_and_unknown_fields_are_refused_with_a_reason() {
        let newer = PreprocessSpec::from_json(r#"{"version":2,"crop":"lungs"}"#).unwrap_err();
        assert!(newer.to_string().contains("newer"), "{newer}");
        let unknown = PreprocessSpec::from_json(r#"{"crop":"lungs"}"#).unwrap_err();
        assert!(unknown.to_string().contains("crop"), "{unknown}");
    }

    #[test]
    fn invalid_values_are_refused() {
        let bad = [
            r#"{"channels":2}"#,
            r#"{"input_size":{"width":0,"height":299}}"#,
            r#"{"normalisation":{"kind":"mean_std","mean":[0.5],"std":[0.5]}}"#,
            r#"{"normalisation":{"kind":"mean_std","mean":[0,0,0],"std":[1,0,1]}}"#,
            r#"{"clahe":{"tiles_x":0}}"#,
            r#"{"clahe":{"clip_limit":-1}}"#,
        ];
        for json in bad {
            assert!(PreprocessSpec::from_json(json).is_err(), "{json}");
        }
    }

    #[test]
    fn normalisations_map_the_pixel_range_as_documented() {
        let ends = |n: Normalisation| {
            let (scale, offset) = n.scale_offset(0);
            (offset, scale + offset)
        };
        assert_eq!(ends(Normalisation::Unit), (0.0, 1.0));
        assert_eq!(ends(Normalisation::SymmetricUnit), (-1.0, 1.0));
        assert_eq!(ends(Normalisation::EfficientNetLite), (-127.0 / 128.0, 1.0));
        let (low, high) = ends(Normalisation::imagenet());
        assert!((low + 0.485 / 0.229).abs() < 1e-6 && (high - 0.515 / 0.229).abs() < 1e-6);
    }

    #[test]
    fn fingerprint_changes_with_the_spec() {
        let a = PreprocessSpec::default();
        let b = PreprocessSpec {
            resize: ResizeMode::Letterbox,
            ..a.clone()
        };
        assert_eq!(a.fingerprint(), PreprocessSpec::default().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fit_fingerprint(), b.fit_fingerprint());
    }

    #[test]
    fn lung_crop_is_optional_and_changes_the_fingerprints_only_when_set() {
        let plain = PreprocessSpec::default();
        assert!(!plain.to_json().contains("lung_crop"));
        let cropped = PreprocessSpec {
            lung_crop: Some(LungCropSpec {
                margin: 0.1,
                ..LungCropSpec::default()
            }),
            ..plain.clone()
        };
        assert!(cropped.to_json().contains(r#""lung_crop":{"margin":0.1}"#));
        assert_eq!(
            PreprocessSpec::from_json(&cropped.to_json()).unwrap(),
            cropped
        );
        assert_ne!(plain.fit_fingerprint(), cropped.fit_fingerprint());
        assert!(PreprocessSpec::from_json(r#"{"lung_crop":{"margin":0.1,"x":1}}"#).is_err());
        assert!(PreprocessSpec::from_json(r#"{"lung_crop":{"margin":-0.1}}"#).is_err());
    }

    #[test]
    fn fit_fingerprint_ignores_normalisation_and_channels() {
        let paper = PreprocessSpec::preset("paper").unwrap();
        let keras = PreprocessSpec {
            channels: 1,
            ..PreprocessSpec::preset("keras-inception").unwrap()
        };
        assert_ne!(paper.fingerprint(), keras.fingerprint());
        assert_eq!(paper.fit_fingerprint(), keras.fit_fingerprint());
    }
}

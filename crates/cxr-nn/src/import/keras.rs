//! Keras weight files: Keras 2 `.h5` (full model or weights only) and Keras 3 `.keras` zips,
//! read into one channels-last form keyed `layer/weight`, then placed into our networks.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::TensorData;
use hdf5_reader::Hdf5File;
use hdf5_reader::group::Group;
use serde_json::Value;

use super::require_complete;

/// A tensor as Keras stores it: row-major, channels-last.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// `layer/weight` in Keras 2 naming (`block1_conv1/kernel`, `conv2d_1/bias`,
/// `batch_normalization_1/moving_mean`) -> channels-last tensor.
pub type KerasWeights = BTreeMap<String, KerasTensor>;

#[derive(Debug, thiserror::Error)]
pub enum KerasError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a Keras file (neither a .keras zip nor HDF5)")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: bad .keras zip: {source}")]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("{path}: bad HDF5 data at {at}: {source}")]
    Hdf5 {
        path: PathBuf,
        at: String,
        source: hdf5_reader::error::Error,
    },
    #[error("{path}: bad model config: {problem}")]
    Config { path: PathBuf, problem: String },
    #[error(
        "{path}: layer `{layer}` ({class}) holds {count} variables, but its class is not one this \
         importer knows how to name (Conv2D, DepthwiseConv2D, SeparableConv2D, Dense, BatchNormalization)"
    )]
    UnknownLayerClass {
        path: PathBuf,
        layer: String,
        class: String,
        count: usize,
    },
    #[error(transparent)]
    Tfjs(#[from] super::tfjs::TfjsError),
    #[error("{source_name}: the weights do not fit {network}:\n{details}")]
    Mismatch {
        source_name: String,
        network: &'static str,
        details: String,
    },
    #[error("{path}: layer `{layer}` holds {found} variables where its config implies {expected}")]
    VariableCount {
        path: PathBuf,
        layer: String,
        expected: usize,
        found: usize,
    },
}

const HDF5_SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";
const ZIP_SIGNATURE: &[u8] = b"PK\x03\x04";

/// Reads a Keras weight file, telling the format by its first bytes, not its name.
pub fn read_keras_weights(path: &Path) -> Result<KerasWeights, KerasError> {
    let bytes = std::fs::read(path).map_err(|source| KerasError::Io {
        path: path.to_owned(),
        source,
    })?;
    if bytes.starts_with(ZIP_SIGNATURE) {
        read_keras3(path, &bytes)
    } else if bytes.starts_with(HDF5_SIGNATURE) {
        read_keras2(path, open_hdf5(path, bytes)?)
    } else {
        Err(KerasError::UnknownFormat {
            path: path.to_owned(),
        })
    }
}

/// Reads Keras (`.h5`, `.keras`) or TF.js (`model.json`, or nsfwjs' `.js` wrapper) weights,
/// which share Keras' layer names.
pub fn read_keras_or_tfjs(path: &Path) -> Result<KerasWeights, KerasError> {
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("json" | "js") => Ok(super::tfjs::read_tfjs_weights(path)?),
        _ => read_keras_weights(path),
    }
}

/// The layer part of a `layer/weight` key.
pub fn layer_of(key: &str) -> &str {
    key.split_once('/').map_or(key, |(layer, _)| layer)
}

/// The layers holding weights that `is_trunk_layer` rejects (a classifier head, say), sorted.
pub fn layers_outside(
    weights: &KerasWeights,
    is_trunk_layer: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut layers: Vec<String> = weights
        .keys()
        .map(|key| layer_of(key))
        .filter(|layer| !is_trunk_layer(layer))
        .map(str::to_owned)
        .collect();
    layers.dedup();
    layers
}

/// Fills a backbone trunk from a Keras-family file: every trunk layer must fit, and the
/// layers outside the trunk (returned) are left out on purpose, not by accident.
pub fn load_trunk<M: ModuleSnapshot>(
    module: &mut M,
    path: &Path,
    network: &'static str,
    units: impl FnOnce(&KerasWeights) -> Result<Vec<KerasUnit>, String>,
    is_trunk_layer: impl Fn(&str) -> bool,
) -> Result<Vec<String>, KerasError> {
    let source_name = path.display().to_string();
    let weights = read_keras_or_tfjs(path)?;
    let units = units(&weights).map_err(|details| KerasError::Mismatch {
        source_name: source_name.clone(),
        network,
        details,
    })?;
    let outside = |key: &str| !is_trunk_layer(layer_of(key));
    apply_keras_weights(module, &weights, &units, outside, &source_name, network)?;
    Ok(layers_outside(&weights, is_trunk_layer))
}

fn open_hdf5(path: &Path, bytes: Vec<u8>) -> Result<Hdf5File, KerasError> {
    Hdf5File::from_vec(bytes).map_err(|source| KerasError::Hdf5 {
        path: path.to_owned(),
        at: "/".into(),
        source,
    })
}

/// Keras 2 (`model.save('x.h5')` puts the layers under `model_weights/`; `save_weights` and the
/// official notop files put them at the root): the `layer_names` attribute lists the layer groups
/// and each layer's `weight_names` attribute names its datasets, e.g. `conv2d_1/kernel:0`.
fn read_keras2(path: &Path, file: Hdf5File) -> Result<KerasWeights, KerasError> {
    let h5 = Hdf5Context { path, file: &file };
    let root = h5.root()?;
    let layers_group = match root.group("model_weights") {
        Ok(group) => group,
        Err(_) => root,
    };
    let mut weights = KerasWeights::new();
    for layer in h5.string_list_attribute(&layers_group, "layer_names")? {
        let group = h5.child(&layers_group, &layer)?;
        for weight_name in h5.string_list_attribute(&group, "weight_names")? {
            let key = keras2_key(&weight_name);
            let tensor = h5.read_dataset_path(&group, &weight_name)?;
            weights.insert(key, tensor);
        }
    }
    Ok(weights)
}

/// `conv2d_1/kernel:0` (or `outer_model/conv2d_1/kernel:0`) -> `conv2d_1/kernel`.
fn keras2_key(weight_name: &str) -> String {
    let name = weight_name.split(':').next().unwrap_or(weight_name);
    let mut parts: Vec<&str> = name.rsplit('/').take(2).collect();
    parts.reverse();
    parts.join("/")
}

/// Keras 3: `config.json` describes the layers; `model.weights.h5` stores each layer's variables
/// as `layers/<class in snake case, numbered by creation order>/vars/<i>`.
fn read_keras3(path: &Path, bytes: &[u8]) -> Result<KerasWeights, KerasError> {
    let zip_error = |source| KerasError::Zip {
        path: path.to_owned(),
        source,
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_error)?;
    let config = read_zip_entry(path, &mut archive, "config.json")?;
    let config: Value = serde_json::from_slice(&config).map_err(|e| KerasError::Config {
        path: path.to_owned(),
        problem: e.to_string(),
    })?;
    let file = open_hdf5(
        path,
        read_zip_entry(path, &mut archive, "model.weights.h5")?,
    )?;
    let h5 = Hdf5Context { path, file: &file };
    let mut weights = KerasWeights::new();
    let layers_group = h5.child(&h5.root()?, "layers")?;
    walk_keras3_layers(
        &h5,
        model_layers(path, &config)?,
        &layers_group,
        &mut weights,
    )?;
    Ok(weights)
}

fn read_zip_entry(
    path: &Path,
    archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
) -> Result<Vec<u8>, KerasError> {
    let mut entry = archive.by_name(name).map_err(|source| KerasError::Zip {
        path: path.to_owned(),
        source,
    })?;
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|source| KerasError::Io {
            path: path.join(name),
            source,
        })?;
    Ok(bytes)
}

/// The `layers` list of a Functional/Sequential model config.
fn model_layers<'a>(path: &Path, model: &'a Value) -> Result<&'a [Value], KerasError> {
    model["config"]["layers"]
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| KerasError::Config {
            path: path.to_owned(),
            problem: format!("model `{}` has no layer list", model["config"]["name"]),
        })
}

fn walk_keras3_layers(
    h5: &Hdf5Context,
    layers: &[Value],
    group: &Group,
    weights: &mut KerasWeights,
) -> Result<(), KerasError> {
    let mut used_names: HashMap<String, usize> = HashMap::new();
    for layer in layers {
        let class = layer["class_name"].as_str().unwrap_or_default();
        let group_name = creation_order_name(&mut used_names, class);
        let Ok(layer_group) = group.group(&group_name) else {
            continue; // layers without variables get no group
        };
        if matches!(class, "Functional" | "Sequential" | "Model") {
            let nested = h5.child(&layer_group, "layers")?;
            walk_keras3_layers(h5, model_layers(h5.path, layer)?, &nested, weights)?;
            continue;
        }
        let Ok(vars) = layer_group.group("vars") else {
            continue;
        };
        let count = vars
            .datasets()
            .map_err(|source| h5.error(&group_name, source))?
            .len();
        if count == 0 {
            continue;
        }
        let layer_name = layer["config"]["name"].as_str().unwrap_or_default();
        let names = variable_names(class, &layer["config"]).ok_or_else(|| {
            KerasError::UnknownLayerClass {
                path: h5.path.to_owned(),
                layer: layer_name.to_owned(),
                class: class.to_owned(),
                count,
            }
        })?;
        if names.len() != count {
            return Err(KerasError::VariableCount {
                path: h5.path.to_owned(),
                layer: layer_name.to_owned(),
                expected: names.len(),
                found: count,
            });
        }
        for (index, name) in names.iter().enumerate() {
            let tensor = h5.read_dataset(&vars, &index.to_string())?;
            weights.insert(format!("{layer_name}/{name}"), tensor);
        }
    }
    Ok(())
}

/// Keras 3's saving names a container's children by class in snake case, numbering repeats:
/// `conv2d`, `conv2d_1`, ... in the order the layers appear.
fn creation_order_name(used_names: &mut HashMap<String, usize>, class: &str) -> String {
    let base = snake_case(class);
    match used_names.get_mut(&base) {
        Some(count) => {
            *count += 1;
            format!("{base}_{count}")
        }
        None => {
            used_names.insert(base.clone(), 0);
            base
        }
    }
}

/// Keras' `to_snake_case`: `SeparableConv2D` -> `separable_conv2d`, `BatchNormalization` ->
/// `batch_normalization`: an underscore before an upper-case letter that starts a lower-case run
/// or follows a lower-case letter.
fn snake_case(class: &str) -> String {
    let chars: Vec<char> = class
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let mut out = String::with_capacity(chars.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let previous = chars[i - 1];
            let starts_word = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if previous.is_ascii_lowercase() || (starts_word && previous != '_') {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The variables a Keras 3 layer saves, in order, named as Keras 2 and TF.js name them.
fn variable_names(class: &str, config: &Value) -> Option<Vec<&'static str>> {
    let flag = |key: &str| config[key].as_bool().unwrap_or(true);
    let bias = flag("use_bias").then_some("bias");
    let names: Vec<Option<&'static str>> = match class {
        "Conv2D" | "Dense" => vec![Some("kernel"), bias],
        "DepthwiseConv2D" => vec![Some("depthwise_kernel"), bias],
        "SeparableConv2D" => vec![Some("depthwise_kernel"), Some("pointwise_kernel"), bias],
        "BatchNormalization" => vec![
            flag("scale").then_some("gamma"),
            flag("center").then_some("beta"),
            Some("moving_mean"),
            Some("moving_variance"),
        ],
        _ => return None,
    };
    Some(names.into_iter().flatten().collect())
}

/// An open HDF5 file and the path it came from, for error messages.
struct Hdf5Context<'a> {
    path: &'a Path,
    file: &'a Hdf5File,
}

impl Hdf5Context<'_> {
    fn error(&self, at: &str, source: hdf5_reader::error::Error) -> KerasError {
        KerasError::Hdf5 {
            path: self.path.to_owned(),
            at: at.to_owned(),
            source,
        }
    }

    fn root(&self) -> Result<Group, KerasError> {
        self.file.root_group().map_err(|e| self.error("/", e))
    }

    fn child(&self, group: &Group, name: &str) -> Result<Group, KerasError> {
        group
            .group(name)
            .map_err(|e| self.error(&format!("{}/{name}", group.name()), e))
    }

    /// A dataset below `group`, `name` possibly holding `/`-separated subgroups.
    fn read_dataset_path(&self, group: &Group, name: &str) -> Result<KerasTensor, KerasError> {
        let (parents, leaf) = name.rsplit_once('/').unwrap_or(("", name));
        let mut parent = group.clone();
        for part in parents.split('/').filter(|p| !p.is_empty()) {
            parent = self.child(&parent, part)?;
        }
        self.read_dataset(&parent, leaf)
    }

    fn read_dataset(&self, group: &Group, name: &str) -> Result<KerasTensor, KerasError> {
        let at = format!("{}/{name}", group.name());
        let dataset = group.dataset(name).map_err(|e| self.error(&at, e))?;
        // `read_array` bounds its allocation by the file's size, whatever the header claims.
        let array = dataset
            .read_array::<f32>()
            .map_err(|e| self.error(&at, e))?;
        Ok(KerasTensor {
            shape: array.shape().to_vec(),
            values: array.iter().copied().collect(),
        })
    }

    /// A list-of-strings attribute, which Keras splits into `name0`, `name1`, ... when it is
    /// too large for one HDF5 attribute. An empty list is stored as an empty float array.
    fn string_list_attribute(&self, group: &Group, name: &str) -> Result<Vec<String>, KerasError> {
        let attributes = group
            .attributes()
            .map_err(|e| self.error(group.name(), e))?;
        let read = |attribute: &hdf5_reader::Attribute| -> Result<Vec<String>, KerasError> {
            if attribute.num_elements().unwrap_or(0) == 0 {
                return Ok(Vec::new());
            }
            attribute
                .read_strings()
                .map_err(|e| self.error(&format!("{}@{}", group.name(), attribute.name), e))
        };
        if let Some(attribute) = attributes.iter().find(|a| a.name == name) {
            return read(attribute);
        }
        let mut values = Vec::new();
        for chunk in 0.. {
            let chunk_name = format!("{name}{chunk}");
            let Some(attribute) = attributes.iter().find(|a| a.name == chunk_name) else {
                break;
            };
            values.extend(read(attribute)?);
        }
        Ok(values)
    }
}

/// Where one of our units takes its tensors from, by Keras layer name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KerasUnit {
    /// `Conv2D` + `BatchNormalization` into a `ConvBn` at `path`.
    ConvBn {
        path: String,
        conv: String,
        bn: String,
    },
    /// `SeparableConv2D` + `BatchNormalization` into a `SeparableConvBn` at `path`.
    SeparableConvBn {
        path: String,
        sepconv: String,
        bn: String,
    },
    /// `Dense` into a burn `Linear` at `path` (both store the kernel as [in, out]).
    Dense { path: String, layer: String },
}

impl KerasUnit {
    pub fn conv_bn(
        path: impl Into<String>,
        conv: impl Into<String>,
        bn: impl Into<String>,
    ) -> Self {
        Self::ConvBn {
            path: path.into(),
            conv: conv.into(),
            bn: bn.into(),
        }
    }
}

/// Fills `module` from Keras-named `weights`; every parameter must be found and every Keras
/// tensor used, except those of layers `ignorable` accepts (say, a head the trunk lacks).
pub fn apply_keras_weights<M: ModuleSnapshot>(
    module: &mut M,
    weights: &KerasWeights,
    units: &[KerasUnit],
    ignorable: impl Fn(&str) -> bool,
    source_name: &str,
    network: &'static str,
) -> Result<(), KerasError> {
    let mismatch = |details| KerasError::Mismatch {
        source_name: source_name.to_owned(),
        network,
        details,
    };
    let mut converter = Converter {
        weights,
        used: Vec::new(),
        missing: Vec::new(),
        tensors: Vec::new(),
    };
    for unit in units {
        converter.unit(unit);
    }
    let mut problems: Vec<String> = converter
        .missing
        .iter()
        .map(|name| format!("  missing from the file: {name}"))
        .collect();
    problems.extend(
        weights
            .keys()
            .filter(|name| !converter.used.contains(name) && !ignorable(name))
            .map(|name| format!("  not used by the network: {name}")),
    );
    if !problems.is_empty() {
        return Err(mismatch(problems.join("\n")));
    }
    let tensors = converter
        .tensors
        .into_iter()
        .map(|(name, data)| bridge::from_data(data, name, None))
        .collect();
    let result = module.apply(tensors, None, None, false);
    require_complete(&result, |_| false).map_err(mismatch)
}

/// Turns Keras tensors into burn-named, channels-first tensors, noting what it used and missed.
struct Converter<'a> {
    weights: &'a KerasWeights,
    used: Vec<&'a String>,
    missing: Vec<String>,
    tensors: Vec<(String, TensorData)>,
}

/// How a Keras tensor is laid out relative to burn's.
#[derive(Clone, Copy)]
enum Layout {
    /// Same order (biases, BatchNorm vectors, Dense kernels).
    Same,
    /// Conv2D / pointwise kernel HWIO -> OIHW.
    ConvKernel,
    /// Depthwise kernel [kh, kw, in, multiplier] -> [in * multiplier, 1, kh, kw].
    DepthwiseKernel,
}

impl<'a> Converter<'a> {
    fn unit(&mut self, unit: &KerasUnit) {
        match unit {
            KerasUnit::ConvBn { path, conv, bn } => {
                self.take(
                    &format!("{path}.conv.weight"),
                    conv,
                    "kernel",
                    Layout::ConvKernel,
                );
                self.batch_norm(path, bn);
            }
            KerasUnit::SeparableConvBn { path, sepconv, bn } => {
                let depthwise = format!("{path}.depthwise.weight");
                self.take(
                    &depthwise,
                    sepconv,
                    "depthwise_kernel",
                    Layout::DepthwiseKernel,
                );
                let pointwise = format!("{path}.pointwise.conv.weight");
                self.take(&pointwise, sepconv, "pointwise_kernel", Layout::ConvKernel);
                self.batch_norm(&format!("{path}.pointwise"), bn);
            }
            KerasUnit::Dense { path, layer } => {
                self.take(&format!("{path}.weight"), layer, "kernel", Layout::Same);
                self.take(&format!("{path}.bias"), layer, "bias", Layout::Same);
            }
        }
    }

    /// A BatchNorm at `{path}.bn`; Keras layers built with `scale=False` (Inception V3) or
    /// `center=False` store no gamma or beta, which then are 1 and 0.
    fn batch_norm(&mut self, path: &str, layer: &str) {
        let mean = self.get(layer, "moving_mean");
        let channels = mean.map_or(0, |t| t.values.len());
        for (ours, theirs, default) in [
            ("gamma", "gamma", Some(1.0)),
            ("beta", "beta", Some(0.0)),
            ("running_mean", "moving_mean", None),
            ("running_var", "moving_variance", None),
        ] {
            let name = format!("{path}.bn.{ours}");
            match (self.get(layer, theirs), default) {
                (None, Some(value)) if mean.is_some() => {
                    self.push(&name, vec![value; channels], vec![channels]);
                }
                _ => self.take(&name, layer, theirs, Layout::Same),
            }
        }
    }

    fn get(&self, layer: &str, weight: &str) -> Option<&'a KerasTensor> {
        self.weights.get(&format!("{layer}/{weight}"))
    }

    fn take(&mut self, ours: &str, layer: &str, weight: &str, layout: Layout) {
        let key = format!("{layer}/{weight}");
        let Some((name, tensor)) = self.weights.get_key_value(&key) else {
            self.missing.push(key);
            return;
        };
        self.used.push(name);
        let (values, shape) = match (layout, tensor.shape.as_slice()) {
            (Layout::ConvKernel, &[kh, kw, cin, cout]) => (
                permute4(&tensor.values, [kh, kw, cin, cout], [3, 2, 0, 1]),
                vec![cout, cin, kh, kw],
            ),
            (Layout::DepthwiseKernel, &[kh, kw, cin, mult]) => {
                // [kh, kw, cin * mult] -> [cin * mult, kh, kw]; channel c * mult + m as in burn.
                let values = permute4(&tensor.values, [kh, kw, cin * mult, 1], [2, 3, 0, 1]);
                (values, vec![cin * mult, 1, kh, kw])
            }
            (Layout::Same, _) => (tensor.values.clone(), tensor.shape.clone()),
            (_, shape) => {
                self.missing
                    .push(format!("{key} as a 4-d kernel (it has shape {shape:?})"));
                return;
            }
        };
        self.push(ours, values, shape);
    }

    fn push(&mut self, name: &str, values: Vec<f32>, shape: Vec<usize>) {
        self.tensors
            .push((name.to_owned(), TensorData::new(values, shape)));
    }
}

/// Reorders a row-major 4-d array: output axis `i` is input axis `order[i]`.
fn permute4(values: &[f32], shape: [usize; 4], order: [usize; 4]) -> Vec<f32> {
    let strides = [
        shape[1] * shape[2] * shape[3],
        shape[2] * shape[3],
        shape[3],
        1,
    ];
    let out_shape = order.map(|axis| shape[axis]);
    let out_strides = order.map(|axis| strides[axis]);
    let mut out = Vec::with_capacity(values.len());
    for a in 0..out_shape[0] {
        for b in 0..out_shape[1] {
            for c in 0..out_shape[2] {
                let base = a * out_strides[0] + b * out_strides[1] + c * out_strides[2];
                out.extend((0..out_shape[3]).map(|d| values[base + d * out_strides[3]]));
            }
        }
    }
    out
}

/// Keras' automatically named layers of one class (`conv2d_7`, `batch_normalization_7`) in
/// creation order: files from Keras 2 number them from 1, newer ones start with the bare name.
pub fn numbered_layers(weights: &KerasWeights, base: &str) -> Vec<String> {
    let mut layers: Vec<(usize, String)> = weights
        .keys()
        .map(|key| layer_of(key))
        .filter_map(|layer| {
            let number = match layer.strip_prefix(base)? {
                "" => 0,
                rest => rest.strip_prefix('_')?.parse().ok()?,
            };
            Some((number, layer.to_owned()))
        })
        .collect();
    layers.sort();
    layers.dedup();
    layers.into_iter().map(|(_, layer)| layer).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras3_names_layers_by_class_and_creation_order() {
        let mut used = HashMap::new();
        let names: Vec<String> = [
            "Conv2D",
            "BatchNormalization",
            "Conv2D",
            "SeparableConv2D",
            "Conv2D",
        ]
        .iter()
        .map(|class| creation_order_name(&mut used, class))
        .collect();
        assert_eq!(
            names,
            [
                "conv2d",
                "batch_normalization",
                "conv2d_1",
                "separable_conv2d",
                "conv2d_2"
            ]
        );
        assert_eq!(
            snake_case("GlobalAveragePooling2D"),
            "global_average_pooling2d"
        );
        assert_eq!(snake_case("DepthwiseConv2D"), "depthwise_conv2d");
    }

    #[test]
    fn keras2_weight_names_lose_scope_and_suffix() {
        assert_eq!(keras2_key("conv2d_1/kernel:0"), "conv2d_1/kernel");
        assert_eq!(
            keras2_key("xception/block1_conv1/kernel:0"),
            "block1_conv1/kernel"
        );
    }

    #[test]
    fn permute_moves_axes() {
        // shape [1, 2, 3, 1] -> order [3, 2, 0, 1] gives [1, 3, 1, 2]: a transpose of the 2x3.
        let values = [0., 1., 2., 3., 4., 5.];
        assert_eq!(
            permute4(&values, [1, 2, 3, 1], [3, 2, 0, 1]),
            vec![0., 3., 1., 4., 2., 5.]
        );
    }

    #[test]
    fn numbered_layers_sort_numerically_from_either_start() {
        let tensor = KerasTensor {
            shape: vec![1],
            values: vec![0.],
        };
        let weights: KerasWeights = [
            "conv2d_10/kernel",
            "conv2d_2/kernel",
            "conv2d/kernel",
            "conv2d_2/bias",
            "conv2d_transpose/kernel",
        ]
        .iter()
        .map(|name| (name.to_string(), tensor.clone()))
        .collect();
        assert_eq!(
            numbered_layers(&weights, "conv2d"),
            ["conv2d", "conv2d_2", "conv2d_10"]
        );
    }
}

//! Inception V3 (Szegedy et al. 2016) built in Keras' order, so that Keras layer indices keep their
//! meaning ("train from layer 249" = mixed9 + mixed10); loads Keras/TF.js and torchvision names.

use std::path::Path;

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};

use super::blocks::BasicConv;
use crate::import::keras::{KerasError, KerasUnit, KerasWeights, load_trunk, numbered_layers};

/// The stages in order, as Keras names the layer that closes each one.
pub const STAGES: [&str; 12] = [
    "stem", "mixed0", "mixed1", "mixed2", "mixed3", "mixed4", "mixed5", "mixed6", "mixed7",
    "mixed8", "mixed9", "mixed10",
];

/// Keras' layer indices (`model.layers[i]` of `keras.applications.InceptionV3(include_top=False)`,
/// index 0 the input) covered by each stage, first and last inclusive.
pub const KERAS_LAYER_RANGES: [(&str, usize, usize); 12] = [
    ("stem", 0, 17),
    ("mixed0", 18, 40),
    ("mixed1", 41, 63),
    ("mixed2", 64, 86),
    ("mixed3", 87, 100),
    ("mixed4", 101, 132),
    ("mixed5", 133, 164),
    ("mixed6", 165, 196),
    ("mixed7", 197, 228),
    ("mixed8", 229, 248),
    ("mixed9", 249, 279),
    ("mixed10", 280, 310),
];

/// The stages Keras trains when layers from `first_layer` on are unfrozen; a stage counts when
/// any of its layers is trainable (249 -> mixed9, mixed10).
pub fn stages_from_keras_layer(first_layer: usize) -> Vec<&'static str> {
    KERAS_LAYER_RANGES
        .iter()
        .filter(|(_, _, last)| *last >= first_layer)
        .map(|(stage, _, _)| *stage)
        .collect()
}

/// How the 3x3 average pools inside the Inception blocks treat their zero padding: Keras (and
/// TF.js) average over the real pixels only, torchvision divides by 9 everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolPadding {
    Keras,
    Torchvision,
}

/// Rebuilds a block with every `BasicConv` field folded and the pooling fields kept, so that
/// adding a branch cannot forget to fold it (the struct literal must name every field).
macro_rules! fold_fields {
    ($block:ident, $value:expr, [$($conv:ident),+], [$($keep:ident),*]) => {{
        let value = $value;
        $block {
            $($conv: value.$conv.fold_batchnorm(),)+
            $($keep: value.$keep,)*
        }
    }};
}

pub(super) fn avg_pool(padding: PoolPadding) -> AvgPool2d {
    match padding {
        PoolPadding::Keras => AvgPool2dConfig::new([3, 3])
            .with_strides([1, 1])
            .with_padding(PaddingConfig2d::Same)
            .with_count_include_pad(false),
        PoolPadding::Torchvision => AvgPool2dConfig::new([3, 3])
            .with_strides([1, 1])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_count_include_pad(true),
    }
    .init()
}

pub(super) fn max_pool() -> MaxPool2d {
    MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init()
}

/// 35x35 block (Keras mixed0-2, torchvision Mixed_5b-5d).
#[derive(Module, Debug)]
pub struct InceptionA {
    pub branch1x1: BasicConv,
    pub branch5x5_1: BasicConv,
    pub branch5x5_2: BasicConv,
    pub branch3x3dbl_1: BasicConv,
    pub branch3x3dbl_2: BasicConv,
    pub branch3x3dbl_3: BasicConv,
    pub pool: AvgPool2d,
    pub branch_pool: BasicConv,
}

impl InceptionA {
    fn fold_batchnorm(self) -> Self {
        fold_fields!(
            InceptionA,
            self,
            [
                branch1x1,
                branch5x5_1,
                branch5x5_2,
                branch3x3dbl_1,
                branch3x3dbl_2,
                branch3x3dbl_3,
                branch_pool
            ],
            [pool]
        )
    }

    fn new(input: usize, pool_features: usize, padding: PoolPadding, device: &Device) -> Self {
        Self {
            branch1x1: BasicConv::pointwise(input, 64, device),
            branch5x5_1: BasicConv::pointwise(input, 48, device),
            branch5x5_2: BasicConv::same(48, 64, [5, 5], device),
            branch3x3dbl_1: BasicConv::pointwise(input, 64, device),
            branch3x3dbl_2: BasicConv::same(64, 96, [3, 3], device),
            branch3x3dbl_3: BasicConv::same(96, 96, [3, 3], device),
            pool: avg_pool(padding),
            branch_pool: BasicConv::pointwise(input, pool_features, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b5 = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let b3 = self.branch3x3dbl_1.forward(x.clone());
        let b3 = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(b3));
        let bp = self
            .branch_pool
            .forward(super::kernels::pool2d(&self.pool, x));
        Tensor::cat(vec![b1, b5, b3, bp], 1)
    }
}

/// 35 -> 17 grid reduction (Keras mixed3, torchvision Mixed_6a).
#[derive(Module, Debug)]
pub struct InceptionB {
    pub branch3x3: BasicConv,
    pub branch3x3dbl_1: BasicConv,
    pub branch3x3dbl_2: BasicConv,
    pub branch3x3dbl_3: BasicConv,
    pub pool: MaxPool2d,
}

impl InceptionB {
    fn fold_batchnorm(self) -> Self {
        fold_fields!(
            InceptionB,
            self,
            [branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3],
            [pool]
        )
    }

    fn new(input: usize, device: &Device) -> Self {
        Self {
            branch3x3: BasicConv::reduce(input, 384, device),
            branch3x3dbl_1: BasicConv::pointwise(input, 64, device),
            branch3x3dbl_2: BasicConv::same(64, 96, [3, 3], device),
            branch3x3dbl_3: BasicConv::reduce(96, 96, device),
            pool: max_pool(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3.forward(x.clone());
        let bd = self.branch3x3dbl_1.forward(x.clone());
        let bd = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(bd));
        Tensor::cat(vec![b3, bd, super::kernels::pool2d(&self.pool, x)], 1)
    }
}

/// 17x17 block with factorised 7x7 convolutions (Keras mixed4-7, torchvision Mixed_6b-6e).
#[derive(Module, Debug)]
pub struct InceptionC {
    pub branch1x1: BasicConv,
    pub branch7x7_1: BasicConv,
    pub branch7x7_2: BasicConv,
    pub branch7x7_3: BasicConv,
    pub branch7x7dbl_1: BasicConv,
    pub branch7x7dbl_2: BasicConv,
    pub branch7x7dbl_3: BasicConv,
    pub branch7x7dbl_4: BasicConv,
    pub branch7x7dbl_5: BasicConv,
    pub pool: AvgPool2d,
    pub branch_pool: BasicConv,
}

impl InceptionC {
    fn fold_batchnorm(self) -> Self {
        fold_fields!(
            InceptionC,
            self,
            [
                branch1x1,
                branch7x7_1,
                branch7x7_2,
                branch7x7_3,
                branch7x7dbl_1,
                branch7x7dbl_2,
                branch7x7dbl_3,
                branch7x7dbl_4,
                branch7x7dbl_5,
                branch_pool
            ],
            [pool]
        )
    }

    fn new(input: usize, c7: usize, padding: PoolPadding, device: &Device) -> Self {
        Self {
            branch1x1: BasicConv::pointwise(input, 192, device),
            branch7x7_1: BasicConv::pointwise(input, c7, device),
            branch7x7_2: BasicConv::same(c7, c7, [1, 7], device),
            branch7x7_3: BasicConv::same(c7, 192, [7, 1], device),
            branch7x7dbl_1: BasicConv::pointwise(input, c7, device),
            branch7x7dbl_2: BasicConv::same(c7, c7, [7, 1], device),
            branch7x7dbl_3: BasicConv::same(c7, c7, [1, 7], device),
            branch7x7dbl_4: BasicConv::same(c7, c7, [7, 1], device),
            branch7x7dbl_5: BasicConv::same(c7, 192, [1, 7], device),
            pool: avg_pool(padding),
            branch_pool: BasicConv::pointwise(input, 192, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b7 = [&self.branch7x7_1, &self.branch7x7_2, &self.branch7x7_3]
            .iter()
            .fold(x.clone(), |h, conv| conv.forward(h));
        let bd = [
            &self.branch7x7dbl_1,
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ]
        .iter()
        .fold(x.clone(), |h, conv| conv.forward(h));
        let bp = self
            .branch_pool
            .forward(super::kernels::pool2d(&self.pool, x));
        Tensor::cat(vec![b1, b7, bd, bp], 1)
    }
}

/// 17 -> 8 grid reduction (Keras mixed8, torchvision Mixed_7a).
#[derive(Module, Debug)]
pub struct InceptionD {
    pub branch3x3_1: BasicConv,
    pub branch3x3_2: BasicConv,
    pub branch7x7x3_1: BasicConv,
    pub branch7x7x3_2: BasicConv,
    pub branch7x7x3_3: BasicConv,
    pub branch7x7x3_4: BasicConv,
    pub pool: MaxPool2d,
}

impl InceptionD {
    fn fold_batchnorm(self) -> Self {
        fold_fields!(
            InceptionD,
            self,
            [
                branch3x3_1,
                branch3x3_2,
                branch7x7x3_1,
                branch7x7x3_2,
                branch7x7x3_3,
                branch7x7x3_4
            ],
            [pool]
        )
    }

    fn new(input: usize, device: &Device) -> Self {
        Self {
            branch3x3_1: BasicConv::pointwise(input, 192, device),
            branch3x3_2: BasicConv::reduce(192, 320, device),
            branch7x7x3_1: BasicConv::pointwise(input, 192, device),
            branch7x7x3_2: BasicConv::same(192, 192, [1, 7], device),
            branch7x7x3_3: BasicConv::same(192, 192, [7, 1], device),
            branch7x7x3_4: BasicConv::reduce(192, 192, device),
            pool: max_pool(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone()));
        let b7 = [
            &self.branch7x7x3_1,
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ]
        .iter()
        .fold(x.clone(), |h, conv| conv.forward(h));
        Tensor::cat(vec![b3, b7, super::kernels::pool2d(&self.pool, x)], 1)
    }
}

/// 8x8 block with split 1x3/3x1 outputs (Keras mixed9-10, torchvision Mixed_7b-7c).
#[derive(Module, Debug)]
pub struct InceptionE {
    pub branch1x1: BasicConv,
    pub branch3x3_1: BasicConv,
    pub branch3x3_2a: BasicConv,
    pub branch3x3_2b: BasicConv,
    pub branch3x3dbl_1: BasicConv,
    pub branch3x3dbl_2: BasicConv,
    pub branch3x3dbl_3a: BasicConv,
    pub branch3x3dbl_3b: BasicConv,
    pub pool: AvgPool2d,
    pub branch_pool: BasicConv,
}

impl InceptionE {
    fn fold_batchnorm(self) -> Self {
        fold_fields!(
            InceptionE,
            self,
            [
                branch1x1,
                branch3x3_1,
                branch3x3_2a,
                branch3x3_2b,
                branch3x3dbl_1,
                branch3x3dbl_2,
                branch3x3dbl_3a,
                branch3x3dbl_3b,
                branch_pool
            ],
            [pool]
        )
    }

    fn new(input: usize, padding: PoolPadding, device: &Device) -> Self {
        Self {
            branch1x1: BasicConv::pointwise(input, 320, device),
            branch3x3_1: BasicConv::pointwise(input, 384, device),
            branch3x3_2a: BasicConv::same(384, 384, [1, 3], device),
            branch3x3_2b: BasicConv::same(384, 384, [3, 1], device),
            branch3x3dbl_1: BasicConv::pointwise(input, 448, device),
            branch3x3dbl_2: BasicConv::same(448, 384, [3, 3], device),
            branch3x3dbl_3a: BasicConv::same(384, 384, [1, 3], device),
            branch3x3dbl_3b: BasicConv::same(384, 384, [3, 1], device),
            pool: avg_pool(padding),
            branch_pool: BasicConv::pointwise(input, 192, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b3 = self.branch3x3_1.forward(x.clone());
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b3.clone()),
                self.branch3x3_2b.forward(b3),
            ],
            1,
        );
        let bd = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone()));
        let bd = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(bd.clone()),
                self.branch3x3dbl_3b.forward(bd),
            ],
            1,
        );
        let bp = self
            .branch_pool
            .forward(super::kernels::pool2d(&self.pool, x));
        Tensor::cat(vec![b1, b3, bd, bp], 1)
    }
}

/// The stem: five convolutions and two max pools, 299 -> 35 px.
#[derive(Module, Debug)]
pub struct Stem {
    pub conv2d_1a_3x3: BasicConv,
    pub conv2d_2a_3x3: BasicConv,
    pub conv2d_2b_3x3: BasicConv,
    pub pool1: MaxPool2d,
    pub conv2d_3b_1x1: BasicConv,
    pub conv2d_4a_3x3: BasicConv,
    pub pool2: MaxPool2d,
}

impl Stem {
    fn fold_batchnorm(self) -> Self {
        fold_fields!(
            Stem,
            self,
            [
                conv2d_1a_3x3,
                conv2d_2a_3x3,
                conv2d_2b_3x3,
                conv2d_3b_1x1,
                conv2d_4a_3x3
            ],
            [pool1, pool2]
        )
    }

    fn new(device: &Device) -> Self {
        Self {
            conv2d_1a_3x3: BasicConv::reduce(3, 32, device),
            conv2d_2a_3x3: BasicConv::valid(32, 32, [3, 3], device),
            conv2d_2b_3x3: BasicConv::same(32, 64, [3, 3], device),
            pool1: max_pool(),
            conv2d_3b_1x1: BasicConv::valid(64, 80, [1, 1], device),
            conv2d_4a_3x3: BasicConv::valid(80, 192, [3, 3], device),
            pool2: max_pool(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv2d_1a_3x3.forward(x);
        let x = self.conv2d_2b_3x3.forward(self.conv2d_2a_3x3.forward(x));
        let x = self
            .conv2d_3b_1x1
            .forward(super::kernels::pool2d(&self.pool1, x));
        super::kernels::pool2d(&self.pool2, self.conv2d_4a_3x3.forward(x))
    }
}

/// The Inception V3 feature trunk: 3 x 299 x 299 in, 2048 x 8 x 8 out (mixed10).
#[derive(Module, Debug)]
pub struct InceptionV3 {
    pub stem: Stem,
    pub mixed0: InceptionA,
    pub mixed1: InceptionA,
    pub mixed2: InceptionA,
    pub mixed3: InceptionB,
    pub mixed4: InceptionC,
    pub mixed5: InceptionC,
    pub mixed6: InceptionC,
    pub mixed7: InceptionC,
    pub mixed8: InceptionD,
    pub mixed9: InceptionE,
    pub mixed10: InceptionE,
}

/// Channels of mixed10, the trunk's output.
pub const FEATURE_CHANNELS: usize = 2048;

impl InceptionV3 {
    pub fn new(padding: PoolPadding, device: &Device) -> Self {
        Self {
            stem: Stem::new(device),
            mixed0: InceptionA::new(192, 32, padding, device),
            mixed1: InceptionA::new(256, 64, padding, device),
            mixed2: InceptionA::new(288, 64, padding, device),
            mixed3: InceptionB::new(288, device),
            mixed4: InceptionC::new(768, 128, padding, device),
            mixed5: InceptionC::new(768, 160, padding, device),
            mixed6: InceptionC::new(768, 160, padding, device),
            mixed7: InceptionC::new(768, 192, padding, device),
            mixed8: InceptionD::new(768, device),
            mixed9: InceptionE::new(1280, padding, device),
            mixed10: InceptionE::new(2048, padding, device),
        }
    }

    /// Merges every BatchNorm into its convolution, for inference.
    pub fn fold_batchnorm(self) -> Self {
        fold_fields!(
            InceptionV3,
            self,
            [
                stem, mixed0, mixed1, mixed2, mixed3, mixed4, mixed5, mixed6, mixed7, mixed8,
                mixed9, mixed10
            ],
            []
        )
    }

    /// Feature map of mixed10, `[batch, 2048, h, w]` (8 x 8 at 299 px).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_stages(x, 0..STAGES.len())
    }

    /// Runs the stages `range` (indices into [`STAGES`]) on `x`.
    pub fn forward_stages(&self, x: Tensor<4>, range: std::ops::Range<usize>) -> Tensor<4> {
        range.fold(x, |x, index| match index {
            0 => self.stem.forward(x),
            1 => self.mixed0.forward(x),
            2 => self.mixed1.forward(x),
            3 => self.mixed2.forward(x),
            4 => self.mixed3.forward(x),
            5 => self.mixed4.forward(x),
            6 => self.mixed5.forward(x),
            7 => self.mixed6.forward(x),
            8 => self.mixed7.forward(x),
            9 => self.mixed8.forward(x),
            10 => self.mixed9.forward(x),
            _ => self.mixed10.forward(x),
        })
    }
}

/// Each stage's convolutions in Keras' creation order (which numbers `conv2d_N`), with the
/// stage's torchvision name. The field names are torchvision's.
const CONVOLUTIONS: [(&str, &str, &[&str]); 12] = {
    const A: &[&str] = &[
        "branch1x1",
        "branch5x5_1",
        "branch5x5_2",
        "branch3x3dbl_1",
        "branch3x3dbl_2",
        "branch3x3dbl_3",
        "branch_pool",
    ];
    const C: &[&str] = &[
        "branch1x1",
        "branch7x7_1",
        "branch7x7_2",
        "branch7x7_3",
        "branch7x7dbl_1",
        "branch7x7dbl_2",
        "branch7x7dbl_3",
        "branch7x7dbl_4",
        "branch7x7dbl_5",
        "branch_pool",
    ];
    const E: &[&str] = &[
        "branch1x1",
        "branch3x3_1",
        "branch3x3_2a",
        "branch3x3_2b",
        "branch3x3dbl_1",
        "branch3x3dbl_2",
        "branch3x3dbl_3a",
        "branch3x3dbl_3b",
        "branch_pool",
    ];
    [
        (
            "stem",
            "",
            &[
                "conv2d_1a_3x3",
                "conv2d_2a_3x3",
                "conv2d_2b_3x3",
                "conv2d_3b_1x1",
                "conv2d_4a_3x3",
            ],
        ),
        ("mixed0", "Mixed_5b", A),
        ("mixed1", "Mixed_5c", A),
        ("mixed2", "Mixed_5d", A),
        (
            "mixed3",
            "Mixed_6a",
            &[
                "branch3x3",
                "branch3x3dbl_1",
                "branch3x3dbl_2",
                "branch3x3dbl_3",
            ],
        ),
        ("mixed4", "Mixed_6b", C),
        ("mixed5", "Mixed_6c", C),
        ("mixed6", "Mixed_6d", C),
        ("mixed7", "Mixed_6e", C),
        (
            "mixed8",
            "Mixed_7a",
            &[
                "branch3x3_1",
                "branch3x3_2",
                "branch7x7x3_1",
                "branch7x7x3_2",
                "branch7x7x3_3",
                "branch7x7x3_4",
            ],
        ),
        ("mixed9", "Mixed_7b", E),
        ("mixed10", "Mixed_7c", E),
    ]
};

/// Our path of every convolution unit, in Keras' creation order.
fn unit_paths() -> Vec<String> {
    CONVOLUTIONS
        .iter()
        .flat_map(|(stage, _, convs)| convs.iter().map(move |conv| format!("{stage}.{conv}.unit")))
        .collect()
}

/// Keras/TF.js names: the n-th `conv2d_*` and `batch_normalization_*` layers in creation
/// order are our n-th unit. `None` when the file does not hold exactly 94 of each.
pub fn keras_units(weights: &KerasWeights) -> Option<Vec<KerasUnit>> {
    let paths = unit_paths();
    let convs = numbered_layers(weights, "conv2d");
    let bns = numbered_layers(weights, "batch_normalization");
    (convs.len() == paths.len() && bns.len() == paths.len()).then(|| {
        paths
            .into_iter()
            .zip(convs.into_iter().zip(bns))
            .map(|(path, (conv, bn))| KerasUnit::conv_bn(path, conv, bn))
            .collect()
    })
}

/// torchvision's names (`Conv2d_1a_3x3.conv.`, `Mixed_5b.branch1x1.bn.`) as (their prefix,
/// our prefix) pairs; its auxiliary classifier (`AuxLogits.`) and `fc.` have no counterpart.
pub fn torch_prefixes() -> Vec<(String, String)> {
    CONVOLUTIONS
        .iter()
        .flat_map(|(stage, torch_stage, convs)| {
            convs.iter().map(move |conv| {
                let theirs = match *torch_stage {
                    "" => {
                        let mut name = conv.to_string();
                        name[..1].make_ascii_uppercase();
                        format!("{name}.")
                    }
                    block => format!("{block}.{conv}."),
                };
                (theirs, format!("{stage}.{conv}.unit."))
            })
        })
        .collect()
}

/// Inception V3 holds weights only in `conv2d_*` and `batch_normalization_*` layers.
fn is_trunk_layer(layer: &str) -> bool {
    layer.starts_with("conv2d") || layer.starts_with("batch_normalization")
}

/// The Keras or TF.js InceptionV3 trunk in `path` (`.h5`, `.keras`, `model.json`, nsfwjs' `.js`),
/// and the layers outside the trunk (a classifier head) that it left out.
pub fn load_keras(path: &Path, device: &Device) -> Result<(InceptionV3, Vec<String>), KerasError> {
    let mut net = InceptionV3::new(PoolPadding::Keras, device);
    let units = |weights: &KerasWeights| {
        keras_units(weights).ok_or_else(|| {
            "  the file does not hold the 94 unnamed convolutions and BatchNorms of InceptionV3"
                .to_string()
        })
    };
    let left_out = load_trunk(&mut net, path, "inception-v3", units, is_trunk_layer)?;
    Ok((net, left_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfreezing_from_keras_layer_249_trains_mixed9_and_mixed10() {
        assert_eq!(stages_from_keras_layer(249), ["mixed9", "mixed10"]);
        assert_eq!(stages_from_keras_layer(0).len(), STAGES.len());
        assert!(stages_from_keras_layer(311).is_empty());
    }

    #[test]
    fn keras_layer_ranges_tile_the_stages_in_order() {
        let mut next = 0;
        for ((stage, first, last), expected) in KERAS_LAYER_RANGES.iter().zip(STAGES) {
            assert_eq!((*stage, *first), (expected, next));
            next = last + 1;
        }
        assert_eq!(next, 311, "Keras' InceptionV3 without top has 311 layers");
    }

    #[test]
    fn torchvision_names_cover_all_94_units() {
        let prefixes = torch_prefixes();
        assert_eq!(prefixes.len(), 94);
        assert_eq!(
            prefixes[0],
            ("Conv2d_1a_3x3.".into(), "stem.conv2d_1a_3x3.unit.".into())
        );
        assert!(prefixes.contains(&(
            "Mixed_7c.branch3x3dbl_3b.".into(),
            "mixed10.branch3x3dbl_3b.unit.".into()
        )));
    }
}

//! Inception-ResNet-v2 (Szegedy et al. 2017) in Keras' layout and names: a stem, mixed_5b,
//! 10 x block35, mixed_6a, 20 x block17, mixed_7a, 10 x block8, conv_7b (1536 x 8 x 8 at 299 px).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2d, MaxPool2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::blocks::BasicConv;
use super::convolution::Activation;
use super::inception_v3::{PoolPadding, avg_pool, max_pool};

/// Channels of conv_7b, the trunk's output.
pub const FEATURE_CHANNELS: usize = 1536;

/// How many residual blocks of each kind, and the scale of their residual branch.
const BLOCK35: (usize, f64) = (10, 0.17);
const BLOCK17: (usize, f64) = (20, 0.1);
const BLOCK8: (usize, f64) = (10, 0.2);

fn chain(convs: &[BasicConv], x: Tensor<4>) -> Tensor<4> {
    convs.iter().fold(x, |x, conv| conv.forward(x))
}

fn fold(convs: Vec<BasicConv>) -> Vec<BasicConv> {
    convs.into_iter().map(BasicConv::fold_batchnorm).collect()
}

/// 299 px in, 192 x 35 x 35 out.
#[derive(Module, Debug)]
pub struct Stem {
    pub convs: Vec<BasicConv>,
    pub pool: MaxPool2d,
}

impl Stem {
    fn new(device: &Device) -> Self {
        Self {
            convs: vec![
                BasicConv::reduce(3, 32, device),
                BasicConv::valid(32, 32, [3, 3], device),
                BasicConv::same(32, 64, [3, 3], device),
                BasicConv::valid(64, 80, [1, 1], device),
                BasicConv::valid(80, 192, [3, 3], device),
            ],
            pool: max_pool(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = super::kernels::pool2d(&self.pool, chain(&self.convs[..3], x));
        super::kernels::pool2d(&self.pool, chain(&self.convs[3..], x))
    }
}

/// A multi-branch block: branches of convolutions (an optional pool first), concatenated,
/// plus a pooled pass-through branch in the grid reductions.
#[derive(Module, Debug)]
pub struct Branches {
    pub branches: Vec<Vec<BasicConv>>,
    /// mixed_5b's average-pooled branch: the pool before that branch's convolution.
    pub avg_pool_last: Option<AvgPool2d>,
    /// The grid reductions' max-pooled branch, concatenated last without convolution.
    pub max_pool_branch: Option<MaxPool2d>,
}

impl Branches {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let last = self.branches.len() - 1;
        let mut outputs: Vec<Tensor<4>> = self
            .branches
            .iter()
            .enumerate()
            .map(|(i, convs)| match (&self.avg_pool_last, i == last) {
                (Some(pool), true) => chain(convs, super::kernels::pool2d(pool, x.clone())),
                _ => chain(convs, x.clone()),
            })
            .collect();
        if let Some(pool) = &self.max_pool_branch {
            outputs.push(super::kernels::pool2d(pool, x));
        }
        Tensor::cat(outputs, 1)
    }

    fn fold_batchnorm(self) -> Self {
        Self {
            branches: self.branches.into_iter().map(fold).collect(),
            avg_pool_last: self.avg_pool_last,
            max_pool_branch: self.max_pool_branch,
        }
    }
}

/// A residual Inception block: `x + scale * up(branches(x))`, then ReLU (not after the last
/// block8, whose activation Keras leaves out).
#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub mixed: Branches,
    /// 1x1 convolution with bias and no BatchNorm, back to the input width.
    pub up: Conv2d,
    pub scale: f64,
    pub activate: bool,
}

impl ResidualBlock {
    fn new(
        input: usize,
        branches: Vec<Vec<BasicConv>>,
        mixed_channels: usize,
        scale: f64,
        activate: bool,
        device: &Device,
    ) -> Self {
        Self {
            mixed: Branches {
                branches,
                avg_pool_last: None,
                max_pool_branch: None,
            },
            up: Conv2dConfig::new([mixed_channels, input], [1, 1]).init(device),
            scale,
            activate,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let residual = super::macs::conv2d(
            &self.up,
            self.mixed.forward(x.clone()),
            Activation::Identity,
        ) * self.scale;
        let sum = x + residual;
        if self.activate { relu(sum) } else { sum }
    }

    fn fold_batchnorm(self) -> Self {
        Self {
            mixed: self.mixed.fold_batchnorm(),
            ..self
        }
    }
}

fn pointwise(input: usize, output: usize, device: &Device) -> BasicConv {
    BasicConv::pointwise(input, output, device)
}

fn same(input: usize, output: usize, kernel: [usize; 2], device: &Device) -> BasicConv {
    BasicConv::same(input, output, kernel, device)
}

fn block35(scale: f64, device: &Device) -> ResidualBlock {
    let branches = vec![
        vec![pointwise(320, 32, device)],
        vec![pointwise(320, 32, device), same(32, 32, [3, 3], device)],
        vec![
            pointwise(320, 32, device),
            same(32, 48, [3, 3], device),
            same(48, 64, [3, 3], device),
        ],
    ];
    ResidualBlock::new(320, branches, 128, scale, true, device)
}

fn block17(scale: f64, device: &Device) -> ResidualBlock {
    let branches = vec![
        vec![pointwise(1088, 192, device)],
        vec![
            pointwise(1088, 128, device),
            same(128, 160, [1, 7], device),
            same(160, 192, [7, 1], device),
        ],
    ];
    ResidualBlock::new(1088, branches, 384, scale, true, device)
}

fn block8(scale: f64, activate: bool, device: &Device) -> ResidualBlock {
    let branches = vec![
        vec![pointwise(2080, 192, device)],
        vec![
            pointwise(2080, 192, device),
            same(192, 224, [1, 3], device),
            same(224, 256, [3, 1], device),
        ],
    ];
    ResidualBlock::new(2080, branches, 448, scale, activate, device)
}

/// The Inception-ResNet-v2 feature trunk.
#[derive(Module, Debug)]
pub struct InceptionResNetV2 {
    pub stem: Stem,
    pub mixed_5b: Branches,
    pub block35: Vec<ResidualBlock>,
    pub mixed_6a: Branches,
    pub block17: Vec<ResidualBlock>,
    pub mixed_7a: Branches,
    pub block8: Vec<ResidualBlock>,
    pub conv_7b: BasicConv,
}

impl InceptionResNetV2 {
    pub fn new(device: &Device) -> Self {
        let mixed_5b = Branches {
            branches: vec![
                vec![pointwise(192, 96, device)],
                vec![pointwise(192, 48, device), same(48, 64, [5, 5], device)],
                vec![
                    pointwise(192, 64, device),
                    same(64, 96, [3, 3], device),
                    same(96, 96, [3, 3], device),
                ],
                vec![pointwise(192, 64, device)],
            ],
            avg_pool_last: Some(avg_pool(PoolPadding::Keras)),
            max_pool_branch: None,
        };
        let mixed_6a = Branches {
            branches: vec![
                vec![BasicConv::reduce(320, 384, device)],
                vec![
                    pointwise(320, 256, device),
                    same(256, 256, [3, 3], device),
                    BasicConv::reduce(256, 384, device),
                ],
            ],
            avg_pool_last: None,
            max_pool_branch: Some(max_pool()),
        };
        let mixed_7a = Branches {
            branches: vec![
                vec![
                    pointwise(1088, 256, device),
                    BasicConv::reduce(256, 384, device),
                ],
                vec![
                    pointwise(1088, 256, device),
                    BasicConv::reduce(256, 288, device),
                ],
                vec![
                    pointwise(1088, 256, device),
                    same(256, 288, [3, 3], device),
                    BasicConv::reduce(288, 320, device),
                ],
            ],
            avg_pool_last: None,
            max_pool_branch: Some(max_pool()),
        };
        let (count8, scale8) = BLOCK8;
        Self {
            stem: Stem::new(device),
            mixed_5b,
            block35: (0..BLOCK35.0).map(|_| block35(BLOCK35.1, device)).collect(),
            mixed_6a,
            block17: (0..BLOCK17.0).map(|_| block17(BLOCK17.1, device)).collect(),
            mixed_7a,
            block8: (0..count8)
                .map(|i| {
                    let last = i + 1 == count8;
                    block8(if last { 1.0 } else { scale8 }, !last, device)
                })
                .collect(),
            conv_7b: pointwise(2080, FEATURE_CHANNELS, device),
        }
    }

    pub fn num_stages(&self) -> usize {
        self.block35.len() + self.block17.len() + self.block8.len() + 5
    }

    /// Runs the stages `range` (indices into [`stage_names`]) on `x`.
    pub fn forward_stages(&self, x: Tensor<4>, range: std::ops::Range<usize>) -> Tensor<4> {
        let (n35, n17, n8) = (self.block35.len(), self.block17.len(), self.block8.len());
        range.fold(x, |x, index| match index {
            0 => self.stem.forward(x),
            1 => self.mixed_5b.forward(x),
            i if i < 2 + n35 => self.block35[i - 2].forward(x),
            i if i == 2 + n35 => self.mixed_6a.forward(x),
            i if i < 3 + n35 + n17 => self.block17[i - 3 - n35].forward(x),
            i if i == 3 + n35 + n17 => self.mixed_7a.forward(x),
            i if i < 4 + n35 + n17 + n8 => self.block8[i - 4 - n35 - n17].forward(x),
            _ => self.conv_7b.forward(x),
        })
    }

    pub fn fold_batchnorm(self) -> Self {
        let fold_blocks = |blocks: Vec<ResidualBlock>| {
            blocks
                .into_iter()
                .map(ResidualBlock::fold_batchnorm)
                .collect()
        };
        Self {
            stem: Stem {
                convs: fold(self.stem.convs),
                pool: self.stem.pool,
            },
            mixed_5b: self.mixed_5b.fold_batchnorm(),
            block35: fold_blocks(self.block35),
            mixed_6a: self.mixed_6a.fold_batchnorm(),
            block17: fold_blocks(self.block17),
            mixed_7a: self.mixed_7a.fold_batchnorm(),
            block8: fold_blocks(self.block8),
            conv_7b: self.conv_7b.fold_batchnorm(),
        }
    }
}

/// Stage names as Keras names the layer closing each: `stem`, `mixed_5b`, `block35_1` ...
/// `block35_10`, `mixed_6a`, `block17_1` ..., `mixed_7a`, `block8_1` ..., `conv_7b`.
pub fn stage_names() -> Vec<String> {
    let repeated =
        |name: &'static str, count: usize| (1..=count).map(move |i| format!("{name}_{i}"));
    std::iter::once("stem".to_string())
        .chain(std::iter::once("mixed_5b".to_string()))
        .chain(repeated("block35", BLOCK35.0))
        .chain(std::iter::once("mixed_6a".to_string()))
        .chain(repeated("block17", BLOCK17.0))
        .chain(std::iter::once("mixed_7a".to_string()))
        .chain(repeated("block8", BLOCK8.0))
        .chain(std::iter::once("conv_7b".to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;

    #[test]
    fn grid_sizes_follow_keras() {
        let device = inference_device();
        let net = InceptionResNetV2::new(&device);
        assert_eq!(stage_names().len(), net.num_stages());
        // A small input keeps the test fast; Keras' sizes at 299 px are 35, 17 and 8.
        let x = Tensor::<4>::zeros([1, 3, 139, 139], &device);
        let at = |stage: &str| stage_names().iter().position(|s| s == stage).unwrap_or(0) + 1;
        let mixed_5b = net.forward_stages(x, 0..at("mixed_5b"));
        assert_eq!(mixed_5b.dims(), [1, 320, 15, 15]);
        let mixed_7a = net.forward_stages(mixed_5b, at("mixed_5b")..at("mixed_7a"));
        assert_eq!(mixed_7a.dims(), [1, 2080, 3, 3]);
        let out = net.forward_stages(mixed_7a, at("mixed_7a")..net.num_stages());
        assert_eq!(out.dims(), [1, FEATURE_CHANNELS, 3, 3]);
    }
}

//! GoogLeNet (Inception v1, Szegedy et al. 2015) as torchvision builds it (BatchNorm after every
//! convolution, 3x3 where the paper has 5x5), without its auxiliary classifiers.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};

use super::blocks::BasicConv;

/// Channels of inception5b, the trunk's output.
pub const FEATURE_CHANNELS: usize = 1024;

/// torchvision's `Inception(in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)` arguments,
/// and the kernel of the stride-2 max pool that precedes the module, where there is one.
const MODULES: [(usize, [usize; 6], Option<usize>); 9] = [
    (192, [64, 96, 128, 16, 32, 32], None),
    (256, [128, 128, 192, 32, 96, 64], None),
    (480, [192, 96, 208, 16, 48, 64], Some(3)),
    (512, [160, 112, 224, 24, 64, 64], None),
    (512, [128, 128, 256, 24, 64, 64], None),
    (512, [112, 144, 288, 32, 64, 64], None),
    (528, [256, 160, 320, 32, 128, 128], None),
    (832, [256, 160, 320, 32, 128, 128], Some(2)),
    (832, [384, 192, 384, 48, 128, 128], None),
];

/// A max pool with torchvision's `ceil_mode=True`, which keeps the odd border row.
fn max_pool(kernel: usize, stride: usize, padding: usize) -> MaxPool2d {
    MaxPool2dConfig::new([kernel, kernel])
        .with_strides([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_ceil_mode(true)
        .init()
}

fn conv3x3(input: usize, output: usize, device: &Device) -> BasicConv {
    BasicConv::same(input, output, [3, 3], device)
}

/// conv1 (7x7/2), pool, conv2 (1x1), conv3 (3x3), pool: 224 px in, 192 x 28 x 28 out.
#[derive(Module, Debug)]
pub struct Stem {
    pub conv1: BasicConv,
    pub conv2: BasicConv,
    pub conv3: BasicConv,
    pub pool: MaxPool2d,
}

impl Stem {
    fn new(device: &Device) -> Self {
        Self {
            conv1: BasicConv::new(
                3,
                64,
                [7, 7],
                2,
                PaddingConfig2d::Explicit(3, 3, 3, 3),
                device,
            ),
            conv2: BasicConv::pointwise(64, 64, device),
            conv3: conv3x3(64, 192, device),
            pool: max_pool(3, 2, 0),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = super::kernels::pool2d(&self.pool, self.conv1.forward(x));
        let x = self.conv3.forward(self.conv2.forward(x));
        super::kernels::pool2d(&self.pool, x)
    }

    fn fold_batchnorm(self) -> Self {
        Self {
            conv1: self.conv1.fold_batchnorm(),
            conv2: self.conv2.fold_batchnorm(),
            conv3: self.conv3.fold_batchnorm(),
            pool: self.pool,
        }
    }
}

/// One Inception module: 1x1, 1x1 -> 3x3, 1x1 -> 3x3, and pool -> 1x1 branches, concatenated.
/// The two-convolution branches are lists so that their names follow torchvision's
/// (`branch2.0`, `branch2.1`).
#[derive(Module, Debug)]
pub struct Inception {
    pub branch1: BasicConv,
    pub branch2: Vec<BasicConv>,
    pub branch3: Vec<BasicConv>,
    pub branch4: BasicConv,
    pub branch4_pool: MaxPool2d,
    /// The stride-2 max pool that precedes the module, where there is one.
    pub downsample: Option<MaxPool2d>,
}

impl Inception {
    fn new(input: usize, widths: [usize; 6], downsample: Option<usize>, device: &Device) -> Self {
        let [ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj] = widths;
        Self {
            branch1: BasicConv::pointwise(input, ch1x1, device),
            branch2: vec![
                BasicConv::pointwise(input, ch3x3red, device),
                conv3x3(ch3x3red, ch3x3, device),
            ],
            branch3: vec![
                BasicConv::pointwise(input, ch5x5red, device),
                conv3x3(ch5x5red, ch5x5, device),
            ],
            branch4: BasicConv::pointwise(input, pool_proj, device),
            branch4_pool: max_pool(3, 1, 1),
            downsample: downsample.map(|kernel| max_pool(kernel, 2, 0)),
        }
    }

    fn output_channels(widths: [usize; 6]) -> usize {
        widths[0] + widths[2] + widths[4] + widths[5]
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.downsample {
            Some(pool) => super::kernels::pool2d(pool, x),
            None => x,
        };
        let chain = |convs: &[BasicConv], x: Tensor<4>| convs.iter().fold(x, |x, c| c.forward(x));
        Tensor::cat(
            vec![
                self.branch1.forward(x.clone()),
                chain(&self.branch2, x.clone()),
                chain(&self.branch3, x.clone()),
                self.branch4
                    .forward(super::kernels::pool2d(&self.branch4_pool, x)),
            ],
            1,
        )
    }

    fn fold_batchnorm(self) -> Self {
        let fold =
            |convs: Vec<BasicConv>| convs.into_iter().map(BasicConv::fold_batchnorm).collect();
        Self {
            branch1: self.branch1.fold_batchnorm(),
            branch2: fold(self.branch2),
            branch3: fold(self.branch3),
            branch4: self.branch4.fold_batchnorm(),
            branch4_pool: self.branch4_pool,
            downsample: self.downsample,
        }
    }
}

/// The GoogLeNet feature trunk: 3 x 224 x 224 in, 1024 x 7 x 7 out (inception5b).
#[derive(Module, Debug)]
pub struct GoogLeNet {
    pub stem: Stem,
    /// inception3a ... inception5b.
    pub modules: Vec<Inception>,
}

impl GoogLeNet {
    pub fn new(device: &Device) -> Self {
        debug_assert!(
            MODULES
                .windows(2)
                .all(|pair| Inception::output_channels(pair[0].1) == pair[1].0)
        );
        Self {
            stem: Stem::new(device),
            modules: MODULES
                .iter()
                .map(|&(input, widths, downsample)| {
                    Inception::new(input, widths, downsample, device)
                })
                .collect(),
        }
    }

    pub fn num_stages(&self) -> usize {
        self.modules.len() + 1
    }

    /// Runs the stages `range` (indices into [`stage_names`]) on `x`.
    pub fn forward_stages(&self, x: Tensor<4>, range: std::ops::Range<usize>) -> Tensor<4> {
        range.fold(x, |x, index| match index {
            0 => self.stem.forward(x),
            i => self.modules[i - 1].forward(x),
        })
    }

    pub fn fold_batchnorm(self) -> Self {
        Self {
            stem: self.stem.fold_batchnorm(),
            modules: self
                .modules
                .into_iter()
                .map(Inception::fold_batchnorm)
                .collect(),
        }
    }
}

/// Stage names: the stem, then torchvision's module names.
pub fn stage_names() -> Vec<String> {
    let modules = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"];
    std::iter::once("stem".to_string())
        .chain(modules.iter().map(|m| format!("inception{m}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;

    #[test]
    fn feature_map_is_1024_by_7_by_7_at_224_px() {
        let device = inference_device();
        let net = GoogLeNet::new(&device);
        let x = Tensor::<4>::zeros([1, 3, 224, 224], &device);
        let features = net.forward_stages(x, 0..net.num_stages());
        assert_eq!(features.dims(), [1, FEATURE_CHANNELS, 7, 7]);
        assert_eq!(stage_names().len(), net.num_stages());
    }
}

//! AlexNet (Krizhevsky et al. 2012) as torchvision builds it: five convolutions with ReLU and
//! three max pools. Only the convolutional trunk; the classifier head is cxr's own.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::tensor::{Device, Tensor};

use super::convolution::Activation;

/// Channels of conv5, the trunk's output.
pub const FEATURE_CHANNELS: usize = 256;

/// (input, output, kernel, stride, padding, max pool after) of conv1-conv5.
const CONVOLUTIONS: [(usize, usize, usize, usize, usize, bool); 5] = [
    (3, 64, 11, 4, 2, true),
    (64, 192, 5, 1, 2, true),
    (192, 384, 3, 1, 1, false),
    (384, 256, 3, 1, 1, false),
    (256, 256, 3, 1, 1, true),
];

/// One stage: convolution (with bias, no BatchNorm), ReLU, and the max pool where there is one.
#[derive(Module, Debug)]
pub struct ConvStage {
    pub conv: Conv2d,
    pub pool: Option<MaxPool2d>,
}

impl ConvStage {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = super::macs::conv2d(&self.conv, x, Activation::Relu);
        match &self.pool {
            Some(pool) => super::kernels::pool2d(pool, x),
            None => x,
        }
    }
}

/// The AlexNet feature trunk: 3 x 224 x 224 in, 256 x 6 x 6 out (conv5 after its pool).
#[derive(Module, Debug)]
pub struct AlexNet {
    /// conv1 ... conv5.
    pub stages: Vec<ConvStage>,
}

impl AlexNet {
    pub fn new(device: &Device) -> Self {
        let stages = CONVOLUTIONS
            .iter()
            .map(
                |&(input, output, kernel, stride, padding, pooled)| ConvStage {
                    conv: Conv2dConfig::new([input, output], [kernel, kernel])
                        .with_stride([stride, stride])
                        .with_padding(PaddingConfig2d::Explicit(
                            padding, padding, padding, padding,
                        ))
                        .init(device),
                    pool: pooled.then(|| MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init()),
                },
            )
            .collect();
        Self { stages }
    }

    pub fn num_stages(&self) -> usize {
        self.stages.len()
    }

    /// Runs the stages `range` (conv1 = 0) on `x`.
    pub fn forward_stages(&self, x: Tensor<4>, range: std::ops::Range<usize>) -> Tensor<4> {
        self.stages[range]
            .iter()
            .fold(x, |x, stage| stage.forward(x))
    }
}

/// Stage names: `conv1` ... `conv5`.
pub fn stage_names() -> Vec<String> {
    (1..=CONVOLUTIONS.len())
        .map(|n| format!("conv{n}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;

    #[test]
    fn feature_map_is_256_by_6_by_6_at_224_px() {
        let device = inference_device();
        let net = AlexNet::new(&device);
        let x = Tensor::<4>::zeros([1, 3, 224, 224], &device);
        let features = net.forward_stages(x, 0..net.num_stages());
        assert_eq!(features.dims(), [1, FEATURE_CHANNELS, 6, 6]);
        // torchvision's `features` part: 2,469,696 parameters.
        assert_eq!(net.num_params(), 2_469_696);
    }
}

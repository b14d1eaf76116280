//! The paper's classification head on a backbone's feature map:
//! global average pooling -> Dense 512 -> ReLU -> BatchNorm -> Dropout 0.5 -> Dense 1 (a logit).

use burn::module::Module;
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Initializer, Linear, LinearConfig, Relu,
};
use burn::tensor::{Device, Tensor};

/// The head's shape: what the model card stores to rebuild it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadConfig {
    /// Channels of the feature map it reads.
    pub in_channels: usize,
    /// Width of the hidden dense layer (512 in the paper).
    pub hidden: usize,
    /// Dropout rate before the last layer (0.5 in the paper).
    pub dropout: f64,
}

impl HeadConfig {
    /// The paper's head on `in_channels` features.
    pub fn paper(in_channels: usize) -> Self {
        Self {
            in_channels,
            hidden: 512,
            dropout: 0.5,
        }
    }

    /// Keras' defaults where they differ from burn's: Glorot-uniform kernels, zero biases,
    /// BatchNorm epsilon 1e-3 and running-average momentum 0.99 (burn counts it as 0.01).
    pub fn init(&self, device: &Device) -> Head {
        let dense = |inputs, outputs| {
            LinearConfig::new(inputs, outputs)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device)
        };
        let mut hidden = dense(self.in_channels, self.hidden);
        let mut output = dense(self.hidden, 1);
        for layer in [&mut hidden, &mut output] {
            layer.bias = layer.bias.take().map(|bias| bias.map(|b| b.zeros_like()));
        }
        Head {
            hidden,
            activation: Relu::new(),
            norm: BatchNormConfig::new(self.hidden)
                .with_epsilon(1e-3)
                .with_momentum(0.01)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            output,
        }
    }
}

#[derive(Module, Debug)]
pub struct Head {
    pub hidden: Linear,
    pub activation: Relu,
    pub norm: BatchNorm,
    pub dropout: Dropout,
    pub output: Linear,
}

impl Head {
    /// Feature map `[n, c, h, w]` to logits `[n, 1]`.
    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        let pooled = features.mean_dims(&[2, 3]).flatten(1, 3);
        let hidden = self.activation.forward(self.hidden.forward(pooled));
        self.output
            .forward(self.dropout.forward(self.norm.forward(hidden)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;
    use burn::tensor::Distribution;

    #[test]
    fn pooled_features_become_one_logit_per_image() {
        let device = inference_device();
        let head = HeadConfig::paper(16).init(&device);
        let features = Tensor::<4>::random([3, 16, 2, 2], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(head.forward(features.clone()).dims(), [3, 1]);
        // Pooling first: a 1x1 map of the channel means gives the same logits.
        let pooled = features.clone().mean_dims(&[2, 3]);
        let diff = (head.forward(features) - head.forward(pooled)).abs().max();
        assert!(diff.into_scalar::<f32>() < 1e-5);
    }

    #[test]
    fn biases_start_at_zero_like_keras() {
        let head = HeadConfig::paper(8).init(&inference_device());
        let bias = head.output.bias.as_ref().map(|b| b.val().abs().sum());
        assert_eq!(bias.map(|b| b.into_scalar::<f32>()), Some(0.0));
    }
}

//! The optimiser: RMSprop with Keras 2.2.4's semantics, built from burn's RmsProp.
//!
//! Keras 2.2.4 (the paper's era): `a = rho * a + (1 - rho) * g^2; p -= lr * g / (sqrt(a) + eps)`
//! with `a` starting at zero, no momentum, no centring. burn's RmsProp computes exactly this
//! with `alpha = rho`, `momentum = 0`, `epsilon = eps` (its first step starts from zero too).
//! tf.keras 2.x and Keras 3 differ only in putting `eps` inside the square root, which changes
//! nothing measurable at eps = 1e-7 unless gradients are ~1e-7.

use burn::optim::{ModuleOptimizer, RmsPropConfig};

use super::recipe::OptimizerRecipe;

/// A fresh optimiser (no accumulated state) for `recipe`.
pub fn rmsprop(recipe: &OptimizerRecipe) -> ModuleOptimizer {
    RmsPropConfig::new()
        .with_alpha(recipe.rho)
        .with_momentum(0.0)
        .with_epsilon(recipe.epsilon)
        .with_centered(false)
        .init()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::training_device;
    use burn::module::{Module, Param};
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::{Tensor, TensorData};

    /// Two steps on a 1x1 linear layer against the Keras 2.2.4 update written out by hand.
    #[test]
    fn steps_follow_keras_rmsprop() {
        let device = training_device();
        let recipe = OptimizerRecipe {
            learning_rate: 0.01,
            ..OptimizerRecipe::default()
        };
        let mut layer: Linear = LinearConfig::new(1, 1).with_bias(false).init(&device);
        layer.weight = Param::from_tensor(Tensor::from_data(TensorData::from([[1.0f32]]), &device));
        let mut optim = rmsprop(&recipe);
        let x = 2.0f64;
        let (mut w, mut a) = (1.0f64, 0.0f64);
        for _ in 0..2 {
            // loss = (w x)^2, so dloss/dw = 2 w x^2.
            let input = Tensor::<2>::from_data(TensorData::from([[x as f32]]), &device);
            let loss = layer.forward(input).powi_scalar(2).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &layer);
            layer = optim.step(recipe.learning_rate, layer, grads);

            let g = 2.0 * w * x * x;
            a = 0.9 * a + 0.1 * g * g;
            w -= 0.01 * g / (a.sqrt() + 1e-7);
        }
        let got = layer.weight.val().into_scalar::<f32>() as f64;
        assert!((got - w).abs() < 1e-6, "burn {got}, Keras {w}");
        assert!(layer.num_params() == 1);
    }
}

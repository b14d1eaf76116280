//! The optimiser: RMSprop as Keras defines it, with epsilon where either Keras generation puts it.
//!
//! Keras 2.2.4 (the paper's era): `a = rho * a + (1 - rho) * g^2; p -= lr * g / (sqrt(a) + eps)`
//! with `a` starting at zero, no momentum, no centring. tf.keras 2.x and Keras 3 take
//! `p -= lr * g / sqrt(a + eps)` instead: at eps = 1e-7 that damps every parameter whose
//! gradient is below ~1e-3 (most of a 2048 x 512 dense layer's), where Keras 2.2.4 moves each
//! by about `lr / sqrt(1 - rho)` whatever its gradient. `epsilon_in_sqrt` picks the latter.

use burn::optim::{
    CenteredState, LearningRate, ModuleOptimizer, Optimizer, RmsPropState, SquareAvgState,
};
use burn::tensor::{Device, Tensor};

use super::recipe::OptimizerRecipe;

/// A fresh optimiser (no accumulated state) for `recipe`.
pub fn rmsprop(recipe: &OptimizerRecipe) -> ModuleOptimizer {
    ModuleOptimizer::from(KerasRmsProp {
        rho: recipe.rho,
        epsilon: recipe.epsilon,
        epsilon_in_sqrt: recipe.epsilon_in_sqrt,
    })
}

/// RMSprop without momentum or centring. Its state is burn's `RmsPropState`, filled as burn's
/// own RmsProp fills it, so checkpoints written before this type existed still resume.
#[derive(Clone)]
struct KerasRmsProp {
    rho: f32,
    epsilon: f32,
    epsilon_in_sqrt: bool,
}

impl Optimizer for KerasRmsProp {
    type State<const D: usize> = RmsPropState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let fresh = grad.clone().square().mul_scalar(1.0 - self.rho);
        let square_avg = match state {
            Some(state) => state.square_avg.square_avg.mul_scalar(self.rho).add(fresh),
            None => fresh,
        };
        let denominator = if self.epsilon_in_sqrt {
            square_avg.clone().add_scalar(self.epsilon).sqrt()
        } else {
            square_avg.clone().sqrt().add_scalar(self.epsilon)
        };
        let delta = grad.div(denominator).mul_scalar(lr);
        let state = RmsPropState::new(
            SquareAvgState::new(square_avg.clone()),
            CenteredState::new(None, square_avg),
            None,
        );
        (tensor - delta, Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        RmsPropState::new(
            state.square_avg.to_device(device),
            state.centered.to_device(device),
            state.momentum.map(|momentum| momentum.to_device(device)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::training_device;
    use burn::module::{Module, Param};
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{GradientsParams, RmsPropConfig};
    use burn::tensor::TensorData;

    /// A 1x1 linear layer of weight `w` without bias.
    fn scalar_layer(w: f32) -> Linear {
        let device = training_device();
        let mut layer: Linear = LinearConfig::new(1, 1).with_bias(false).init(&device);
        layer.weight = Param::from_tensor(Tensor::from_data(TensorData::from([[w]]), &device));
        layer
    }

    /// One step on `loss = (w x)^2`.
    fn step(layer: Linear, x: f32, lr: f64, optim: &mut ModuleOptimizer) -> Linear {
        let input = Tensor::<2>::from_data(TensorData::from([[x]]), &layer.weight.device());
        let loss = layer.forward(input).powi_scalar(2).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &layer);
        optim.step(lr, layer, grads)
    }

    fn weight(layer: &Linear) -> f64 {
        layer.weight.val().into_scalar::<f32>() as f64
    }

    /// Two steps against both Keras updates written out by hand. The gradients (2 w x^2 with
    /// x = 2e-4, about 8e-8) are small enough for the placement of eps to matter.
    #[test]
    fn steps_follow_both_keras_rmsprops() {
        for epsilon_in_sqrt in [false, true] {
            let recipe = OptimizerRecipe {
                learning_rate: 0.01,
                epsilon_in_sqrt,
                ..OptimizerRecipe::default()
            };
            let (x, mut w, mut a) = (2e-4f64, 1.0f64, 0.0f64);
            let mut layer = scalar_layer(w as f32);
            let mut optim = rmsprop(&recipe);
            for _ in 0..2 {
                layer = step(layer, x as f32, recipe.learning_rate, &mut optim);
                let g = 2.0 * w * x * x;
                a = 0.9 * a + 0.1 * g * g;
                let denominator = match epsilon_in_sqrt {
                    false => a.sqrt() + 1e-7,
                    true => (a + 1e-7).sqrt(),
                };
                w -= 0.01 * g / denominator;
            }
            let got = weight(&layer);
            assert!(
                (got - w).abs() < 1e-6 * w.abs().max(1e-3),
                "epsilon_in_sqrt {epsilon_in_sqrt}: burn {got}, Keras {w}"
            );
            assert!(layer.num_params() == 1);
        }
        // The two placements must differ here, or the test above could not tell them apart.
        let moved = |epsilon_in_sqrt| {
            let recipe = OptimizerRecipe {
                learning_rate: 0.01,
                epsilon_in_sqrt,
                ..OptimizerRecipe::default()
            };
            1.0 - weight(&step(scalar_layer(1.0), 2e-4, 0.01, &mut rmsprop(&recipe)))
        };
        assert!(
            moved(false) > 5.0 * moved(true),
            "{} {}",
            moved(false),
            moved(true)
        );
    }

    /// The state is burn's RmsProp's, so an optimiser record saved by burn's RmsProp (as
    /// checkpoints before this type were) resumes into the same next step.
    #[test]
    fn resumes_from_burns_rmsprop_state() {
        let recipe = OptimizerRecipe::default();
        let mut burns = RmsPropConfig::new()
            .with_alpha(recipe.rho)
            .with_momentum(0.0)
            .with_epsilon(recipe.epsilon)
            .init();
        let mut ours = rmsprop(&recipe);
        // Clones share the parameter's id, by which optimiser records find their parameter.
        let start = scalar_layer(0.5);
        let (mut with_burns, mut with_ours) = (start.clone(), start);
        for x in [0.3f32, -0.7] {
            with_burns = step(with_burns, x, 0.05, &mut burns);
            with_ours = step(with_ours, x, 0.05, &mut ours);
        }
        assert_eq!(weight(&with_burns), weight(&with_ours));

        let mut resumed = rmsprop(&recipe).load_record(burns.to_record());
        let after_resume = step(with_ours.clone(), 1.1, 0.05, &mut resumed);
        let after_burns = step(with_burns, 1.1, 0.05, &mut burns);
        assert_eq!(weight(&after_resume), weight(&after_burns));
        assert_ne!(weight(&after_resume), weight(&with_ours));
    }
}

//! The training loss of the lung network: binary cross-entropy plus soft Dice, both on the
//! logits, so that boundary pixels (BCE) and whole-lung overlap (Dice) are both rewarded.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, sigmoid};

/// Keeps the soft Dice defined on masks without lung.
const DICE_SMOOTHING: f32 = 1.0;

/// Mean BCE over pixels plus mean (1 - soft Dice) over images; `logits` and `targets` are
/// `[n, 1, h, w]`, targets in [0, 1].
pub fn dice_bce_loss(logits: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
    let [n, _, _, _] = logits.dims();
    // -(y log s(x) + (1 - y) log s(-x)), stable for large |x|.
    let bce = -(targets.clone() * log_sigmoid(logits.clone())
        + (targets.ones_like() - targets.clone()) * log_sigmoid(-logits.clone()));
    let probabilities = sigmoid(logits).reshape([n as i32, -1]);
    let targets = targets.reshape([n as i32, -1]);
    let overlap = (probabilities.clone() * targets.clone()).sum_dim(1);
    let total = probabilities.sum_dim(1) + targets.sum_dim(1);
    let dice = (overlap * 2.0 + DICE_SMOOTHING) / (total + DICE_SMOOTHING);
    bce.mean() + (dice.ones_like() - dice).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;
    use burn::tensor::TensorData;

    fn tensor(values: &[f32]) -> Tensor<4> {
        let data = TensorData::new(values.to_vec(), [1, 1, 1, values.len()]);
        Tensor::from_data(data, &inference_device())
    }

    #[test]
    fn confident_right_answers_cost_almost_nothing_and_wrong_ones_a_lot() {
        let targets = tensor(&[1.0, 1.0, 0.0, 0.0]);
        let right = dice_bce_loss(tensor(&[20.0, 20.0, -20.0, -20.0]), targets.clone());
        let wrong = dice_bce_loss(tensor(&[-20.0, -20.0, 20.0, 20.0]), targets);
        let (right, wrong) = (right.into_scalar::<f32>(), wrong.into_scalar::<f32>());
        assert!(right < 1e-3, "{right}");
        // BCE 20 per pixel, plus 1 - soft Dice = 1 - (0 + 1) / (2 + 2 + 1) with the smoothing.
        assert!((wrong - 20.8).abs() < 1e-3, "{wrong}");
    }

    #[test]
    fn an_empty_target_predicted_empty_is_perfect() {
        let loss = dice_bce_loss(tensor(&[-30.0; 4]), tensor(&[0.0; 4]));
        assert!(loss.into_scalar::<f32>() < 1e-3);
    }
}

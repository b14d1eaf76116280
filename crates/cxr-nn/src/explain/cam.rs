//! Grad-CAM and Grad-CAM++ from a feature map and the head that turns it into a logit: the
//! gradient of the logit weighs the feature channels, their weighted sum is the heat map.

use burn::tensor::{Tensor, TensorData};
use cxr_core::image::GrayImage;
use serde::{Deserialize, Serialize};

use super::ExplainError;
use crate::device::training_device;

/// How channel weights are computed from the gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CamMethod {
    /// Selvaraju et al. 2017: each channel weighs its mean gradient.
    #[default]
    GradCam,
    /// Chattopadhay et al. 2018: pixel-wise weights from second and third powers of the
    /// gradient (the closed form for an exponential score), better with several findings.
    GradCamPlusPlus,
}

/// A heat map at the feature map's resolution, scaled to [0, 1], and the logit it explains.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassActivationMap {
    pub map: GrayImage,
    pub logit: f64,
}

/// The map of `head`'s logit over `features` (`[1, c, h, w]`, any device). `head` must hold
/// its parameters on the training device in inference mode (e.g. `head.valid().to_device(
/// &training_device())`), so that the gradient reaches the features but no weights change.
pub fn class_activation_map(
    features: Tensor<4>,
    head: impl FnOnce(Tensor<4>) -> Tensor<2>,
    method: CamMethod,
) -> Result<ClassActivationMap, ExplainError> {
    let [batch, channels, height, width] = features.dims();
    if batch != 1 {
        return Err(ExplainError::Tensor(format!(
            "expected one image, got {batch}"
        )));
    }
    let leaf = features
        .to_device(&training_device())
        .autodiff()
        .require_grad();
    let logits = head(leaf.clone());
    let gradients = logits.clone().sum().backward();
    let gradient = leaf.grad(&gradients).ok_or_else(|| {
        ExplainError::Tensor("the logit does not depend on the feature map".into())
    })?;
    let logit = to_vec(logits.into_data())?.first().copied().unwrap_or(0.0);
    let activations = to_vec(leaf.into_data())?;
    let gradient = to_vec(gradient.into_data())?;
    let plane = height * width;
    let mut heat = vec![0.0_f32; plane];
    for c in 0..channels {
        let a = &activations[c * plane..(c + 1) * plane];
        let g = &gradient[c * plane..(c + 1) * plane];
        let weight = match method {
            CamMethod::GradCam => g.iter().sum::<f32>() / plane as f32,
            CamMethod::GradCamPlusPlus => plus_plus_weight(a, g),
        };
        for (h, &value) in heat.iter_mut().zip(a) {
            *h += weight * value;
        }
    }
    // Only evidence for the finding counts (the ReLU of both papers); scale to [0, 1].
    let peak = heat.iter().copied().fold(0.0_f32, f32::max);
    for h in &mut heat {
        *h = if peak > 0.0 { h.max(0.0) / peak } else { 0.0 };
    }
    Ok(ClassActivationMap {
        map: GrayImage {
            width,
            height,
            pixels: heat,
        },
        logit: f64::from(logit),
    })
}

/// Grad-CAM++'s channel weight: `sum_ij alpha_ij relu(g_ij)` with
/// `alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3)` (0 where the denominator is).
fn plus_plus_weight(activations: &[f32], gradient: &[f32]) -> f32 {
    let activation_sum: f32 = activations.iter().sum();
    gradient
        .iter()
        .map(|&g| {
            let (g2, g3) = (g * g, g * g * g);
            let denominator = 2.0 * g2 + activation_sum * g3;
            let alpha = if denominator != 0.0 {
                g2 / denominator
            } else {
                0.0
            };
            alpha * g.max(0.0)
        })
        .sum()
}

fn to_vec(data: TensorData) -> Result<Vec<f32>, ExplainError> {
    data.try_to_vec::<f32>()
        .map_err(|error| ExplainError::Tensor(format!("{error:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;

    /// Two channels over a 2x2 map; the "head" is 3 * mean(channel 0) - mean(channel 1).
    fn features() -> Tensor<4> {
        let data = TensorData::new(
            vec![1.0_f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0],
            [1, 2, 2, 2],
        );
        Tensor::from_data(data, &inference_device())
    }

    fn head(features: Tensor<4>) -> Tensor<2> {
        let pooled = features.mean_dims(&[2, 3]).flatten::<2>(1, 3);
        let weights = Tensor::<2>::from_data(
            TensorData::new(vec![3.0_f32, -1.0], [2, 1]),
            &training_device(),
        );
        pooled.matmul(weights)
    }

    #[test]
    fn grad_cam_weighs_channels_by_their_mean_gradient() {
        let cam = class_activation_map(features(), head, CamMethod::GradCam).unwrap();
        // Channel weights 3/4 and -1/4: 0.75 at pixel 0, -0.5 at pixel 3 (cut to 0).
        assert_eq!(cam.map.pixels, vec![1.0, 0.0, 0.0, 0.0]);
        assert!((cam.logit - (3.0 * 0.25 - 0.5)).abs() < 1e-6);
    }

    #[test]
    fn grad_cam_plus_plus_ignores_negative_evidence() {
        let cam = class_activation_map(features(), head, CamMethod::GradCamPlusPlus).unwrap();
        assert_eq!(cam.map.pixels, vec![1.0, 0.0, 0.0, 0.0]);
    }
}

//! The one place that decides where tensors live and compute.
//! Default: burn's pure-Rust `flex` CPU backend; training wraps it for autodiff.

use burn::tensor::Device;

/// Device for inference: no autodiff graph is recorded for tensors created on it.
pub fn inference_device() -> Device {
    Device::flex()
}

/// Device for training: the inference device with automatic differentiation.
pub fn training_device() -> Device {
    inference_device().autodiff()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_training_device_records_gradients() {
        assert!(!inference_device().is_autodiff());
        assert!(training_device().is_autodiff());
    }
}

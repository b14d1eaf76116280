//! The one place that decides where tensors live and compute.
//! Default: burn's pure-Rust `flex` CPU backend; training wraps it for autodiff.

use std::sync::Mutex;

use burn::tensor::Device;

/// Device for inference: no autodiff graph is recorded for tensors created on it.
pub fn inference_device() -> Device {
    Device::flex()
}

/// Device for training: the inference device with automatic differentiation.
pub fn training_device() -> Device {
    inference_device().autodiff()
}

/// Held while the backend's random stream is seeded and drawn from.
static RANDOM_STREAM: Mutex<()> = Mutex::new(());

/// Runs `draw` (the initial weights of layers that have no pretrained ones: a trunk trained
/// from scratch, the lung model's decoder) on the backend's random stream seeded with `seed`.
/// That stream is one per process, not per device or thread; the lock keeps two seeded draws
/// apart, but a thread drawing without it (a throwaway initialisation before weights are
/// loaded, a test's random tensor) still moves the stream. What must not depend on the rest
/// of the process draws from its own generator instead: the head's initial weights, dropout
/// masks, augmentation and the order of images.
pub fn with_seed<T>(seed: u64, draw: impl FnOnce(&Device) -> T) -> T {
    let _held = RANDOM_STREAM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let device = inference_device();
    device.seed(seed);
    draw(&device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_training_device_records_gradients() {
        assert!(!inference_device().is_autodiff());
        assert!(training_device().is_autodiff());
    }

    #[test]
    fn the_same_seed_draws_the_same_weights() {
        let draw = |seed| {
            with_seed(seed, |device| {
                burn::tensor::Tensor::<1>::random([8], burn::tensor::Distribution::Default, device)
                    .into_data()
            })
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}

//! Counting a forward pass's multiply-accumulates (the "GFLOPs" of torchvision's model tables):
//! every backbone convolution runs through `conv2d`, which adds its work to a per-thread count.

use std::cell::Cell;

use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use super::convolution::Activation;

thread_local! {
    /// `Some(total)` while `count` runs on this thread.
    static COUNT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// `activation(conv.forward(x))` (by the kernel `convolution` picks), counted: each
/// output value costs `in_channels / groups x kernel area` multiply-accumulates (the bias add
/// is not counted, as in torchvision's tables).
pub fn conv2d(conv: &Conv2d, x: Tensor<4>, activation: Activation) -> Tensor<4> {
    let y = super::convolution::forward(conv, x, activation);
    COUNT.with(|count| {
        if let Some(total) = count.get() {
            let [_, inputs_per_group, kernel_h, kernel_w] = conv.weight.dims();
            let outputs: usize = y.dims().iter().product();
            count.set(Some(
                total + (outputs * inputs_per_group * kernel_h * kernel_w) as u64,
            ));
        }
    });
    y
}

/// Runs `work` and returns its result with the multiply-accumulates of the convolutions it ran
/// on this thread. Calls do not nest: an inner call's work is not added to the outer one's.
pub fn count<T>(work: impl FnOnce() -> T) -> (T, u64) {
    let outer = COUNT.with(|count| count.replace(Some(0)));
    let result = work();
    let total = COUNT.with(|count| count.replace(outer)).unwrap_or(0);
    (result, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::BackboneKind;
    use crate::device::inference_device;

    /// Multiply-accumulates of one image through `kind`'s feature trunk, in billions.
    fn giga_macs(kind: BackboneKind, side: usize) -> f64 {
        let device = inference_device();
        let net = kind.init(&device);
        let image = Tensor::<4>::zeros([1, 3, side, side], &device);
        let (_, macs) = count(|| net.features(image).into_data());
        macs as f64 / 1e9
    }

    #[test]
    fn trunk_work_matches_torchvisions_published_figures() {
        // torchvision's model tables ("GFLOPS", which are multiply-accumulates, classifier
        // included): MobileNetV2 0.30, AlexNet 0.71 (0.66 of it convolutions), GoogLeNet 1.50,
        // Inception V3 5.71 (at 299 px; the same network in Keras' layer order).
        let mobilenet = giga_macs(BackboneKind::MobileNetV2, 224);
        assert!((mobilenet - 0.30).abs() < 0.01, "{mobilenet}");
        let alexnet = giga_macs(BackboneKind::AlexNet, 224);
        assert!((alexnet - 0.655).abs() < 0.01, "{alexnet}");
        let googlenet = giga_macs(BackboneKind::GoogLeNet, 224);
        assert!((googlenet - 1.50).abs() < 0.02, "{googlenet}");
        let inception = giga_macs(BackboneKind::InceptionV3, 299);
        assert!((inception - 5.71).abs() < 0.02, "{inception}");
        // Nothing is counted outside `count`, and the count goes with the input size.
        assert_eq!(count(|| ()).1, 0);
        let large = giga_macs(BackboneKind::MobileNetV2, 448);
        assert!((large - 4.0 * mobilenet).abs() < 0.02, "{large}");
    }
}

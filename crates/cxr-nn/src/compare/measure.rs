//! What a backbone costs to run here: parameters of its classifier, multiply-accumulates and
//! inference images/s at its input size, and the peak resident memory while timing (`/proc`).

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::backbones::{BackboneKind, macs};
use crate::classifier::{Classifier, HeadConfig};
use crate::device::inference_device;

/// How inference speed is timed: `batches` forward passes of `batch` images after one
/// untimed warm-up pass.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeedConfig {
    pub batch: usize,
    pub batches: usize,
}

impl Default for SpeedConfig {
    fn default() -> Self {
        Self {
            batch: 8,
            batches: 4,
        }
    }
}

/// One backbone's measured costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// Parameters of the classifier as it runs for inference: the trunk with its BatchNorm
    /// folded into the convolutions, and the head (its BatchNorm's four vectors counted).
    pub parameters: usize,
    /// Multiply-accumulates of one image's pass through the trunk's convolutions, billions
    /// (what torchvision's tables call GFLOPS); absent in comparisons measured before it was.
    #[serde(default)]
    pub giga_macs: Option<f64>,
    pub input_size: usize,
    pub images_per_second: f64,
    pub timing: SpeedConfig,
    /// Peak resident memory of the whole process while timing, MiB (`VmHWM` after resetting it
    /// through `/proc/self/clear_refs`); `None` where the kernel does not offer that.
    pub peak_rss_mib: Option<f64>,
    /// Resident memory just before timing, MiB: the peak minus this is what inference added.
    pub baseline_rss_mib: Option<f64>,
}

/// Times `kind` with `head` at `input_size` on the inference device (weights are random:
/// speed and memory do not depend on their values).
pub fn measure(
    kind: BackboneKind,
    head: &HeadConfig,
    input_size: usize,
    timing: SpeedConfig,
) -> Costs {
    let device = inference_device();
    let model = Classifier::new(kind.init(&device).fold_batchnorm(), head, &device);
    let parameters = model.num_params();
    let batch = timing.batch.max(1);
    let images = Tensor::<4>::ones([batch, 3, input_size, input_size], &device);
    // Warm-up: first-call allocations and kernel selection are not what steady state costs.
    let (_, macs) = macs::count(|| model.forward(images.clone()).into_data());
    let baseline = reset_peak_rss();
    let started = Instant::now();
    for _ in 0..timing.batches.max(1) {
        let _ = model.forward(images.clone()).into_data();
    }
    let seconds = started.elapsed().as_secs_f64();
    Costs {
        parameters,
        giga_macs: Some(macs as f64 / batch as f64 / 1e9),
        input_size,
        images_per_second: (batch * timing.batches.max(1)) as f64 / seconds.max(1e-9),
        timing,
        // The kernel batches RSS accounting per CPU, so the high-water mark can read a little
        // below the RSS read just after resetting it; the peak is never below that start.
        peak_rss_mib: baseline
            .and_then(|base| status_kib("VmHWM:").map(|peak| peak.max(base)))
            .map(kib_to_mib),
        baseline_rss_mib: baseline.map(kib_to_mib),
    }
}

/// Resets the process's peak-RSS mark to its current RSS; returns that RSS in KiB.
fn reset_peak_rss() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    status_kib("VmRSS:")
}

/// A `kB` line of `/proc/self/status`.
fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_net_is_timed_and_its_parameters_counted() {
        let head = HeadConfig {
            hidden: 16,
            ..HeadConfig::paper(BackboneKind::AlexNet.spec().feature_channels)
        };
        let timing = SpeedConfig {
            batch: 2,
            batches: 2,
        };
        let costs = measure(BackboneKind::AlexNet, &head, 64, timing);
        // AlexNet's trunk (2,469,696) plus a 256 -> 16 (BatchNorm) -> 1 head.
        assert_eq!(
            costs.parameters,
            2_469_696 + 256 * 16 + 16 + 4 * 16 + 16 + 1
        );
        assert!(costs.images_per_second > 0.0 && costs.images_per_second.is_finite());
        // AlexNet at 64 px: conv1 gives 15x15, the rest 3x3 (see the torchvision layout).
        let giga_macs = costs.giga_macs.expect("counted");
        assert!(giga_macs > 0.0 && giga_macs < 0.1, "{giga_macs}");
        if let (Some(peak), Some(base)) = (costs.peak_rss_mib, costs.baseline_rss_mib) {
            // A 64 px AlexNet batch of two adds megabytes, not hundreds of them.
            assert!(
                peak >= base && peak < base + 256.0 && base > 1.0,
                "peak {peak} baseline {base}"
            );
        }
    }
}

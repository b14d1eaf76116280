//! EfficientNet-Lite0/1/2 as the `efficientnet_lite_pytorch` package builds them (TF-style
//! "same" padding, BatchNorm eps 1e-3, ReLU6, no squeeze-excite, stem and head not scaled).

use super::blocks::{ConvStyle, Padding};
use super::inverted_residual_net::{NetLayout, StageLayout};

/// EfficientNet-B0's blocks (`efficientnet_lite_builder.py`): kernel, stride, expansion,
/// output channels, repeats.
const BASE_STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
];

/// Channel counts are rounded to multiples of this.
const DEPTH_DIVISOR: usize = 8;

/// One member of the family: compound-scaling coefficients and native resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variant {
    pub width: f64,
    pub depth: f64,
    pub resolution: usize,
}

pub const LITE0: Variant = Variant {
    width: 1.0,
    depth: 1.0,
    resolution: 224,
};
pub const LITE1: Variant = Variant {
    width: 1.0,
    depth: 1.1,
    resolution: 240,
};
pub const LITE2: Variant = Variant {
    width: 1.1,
    depth: 1.2,
    resolution: 260,
};

/// `round_filters`: scale a channel count, round to the divisor, never lose more than 10 %.
fn round_channels(channels: usize, width: f64) -> usize {
    let scaled = channels as f64 * width;
    let divisor = DEPTH_DIVISOR as f64;
    let rounded =
        (((scaled + divisor / 2.0) as usize) / DEPTH_DIVISOR * DEPTH_DIVISOR).max(DEPTH_DIVISOR);
    if (rounded as f64) < 0.9 * scaled {
        rounded + DEPTH_DIVISOR
    } else {
        rounded
    }
}

pub fn layout(variant: Variant) -> NetLayout {
    let last = BASE_STAGES.len() - 1;
    let stages = BASE_STAGES
        .iter()
        .enumerate()
        .map(
            |(i, &(kernel, stride, expand_ratio, out_channels, repeats))| StageLayout {
                expand_ratio,
                out_channels: round_channels(out_channels, variant.width),
                // Lite keeps the first and last stage at one block ("fix_head_stem").
                repeats: if i == 0 || i == last {
                    repeats
                } else {
                    (variant.depth * repeats as f64).ceil() as usize
                },
                stride,
                kernel,
            },
        )
        .collect();
    NetLayout {
        style: ConvStyle {
            padding: Padding::TfSame,
            bn_epsilon: 1e-3,
        },
        stem_channels: 32,
        stages,
        head_channels: 1280,
        num_classes: 1000,
    }
}

/// (package prefix, our prefix) for every convolution, BatchNorm and the classifier.
/// The package numbers blocks flat (`_blocks.N`) and names layers `_expand_conv`/`_bn0`,
/// `_depthwise_conv`/`_bn1`, `_project_conv`/`_bn2`; stem and head are `_conv_stem`/`_bn0`
/// and `_conv_head`/`_bn1` at the top level.
pub fn torch_prefixes(variant: Variant) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = [
        ("_conv_stem.", "stem.conv."),
        ("_bn0.", "stem.bn."),
        ("_conv_head.", "head.conv."),
        ("_bn1.", "head.bn."),
        ("_fc.", "classifier."),
    ]
    .iter()
    .map(|(t, o)| (t.to_string(), o.to_string()))
    .collect();
    let mut flat = 0;
    for (s, stage) in layout(variant).stages.iter().enumerate() {
        for b in 0..stage.repeats {
            let layers = [
                ("_expand_conv.", "expand.conv."),
                ("_bn0.", "expand.bn."),
                ("_depthwise_conv.", "depthwise.conv."),
                ("_bn1.", "depthwise.bn."),
                ("_project_conv.", "project.conv."),
                ("_bn2.", "project.bn."),
            ];
            let skip_expand = usize::from(stage.expand_ratio == 1) * 2;
            pairs.extend(
                layers[skip_expand..]
                    .iter()
                    .map(|(t, o)| (format!("_blocks.{flat}.{t}"), format!("stages.{s}.{b}.{o}"))),
            );
            flat += 1;
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widths_and_depth(variant: Variant) -> (Vec<usize>, usize) {
        let layout = layout(variant);
        let widths = layout.stages.iter().map(|s| s.out_channels).collect();
        (widths, layout.stages.iter().map(|s| s.repeats).sum())
    }

    /// Block counts and widths as in the package's weight files (16, 21 and 21 blocks).
    #[test]
    fn scaling_matches_the_released_weights() {
        let base = vec![16, 24, 40, 80, 112, 192, 320];
        assert_eq!(widths_and_depth(LITE0), (base.clone(), 16));
        assert_eq!(widths_and_depth(LITE1), (base, 21));
        assert_eq!(
            widths_and_depth(LITE2),
            (vec![16, 24, 48, 88, 120, 208, 352], 21)
        );
    }

    #[test]
    fn first_block_has_no_expansion() {
        let prefixes = torch_prefixes(LITE0);
        assert!(!prefixes.iter().any(|(t, _)| t == "_blocks.0._expand_conv."));
        assert!(prefixes.contains(&("_blocks.15._bn2.".into(), "stages.6.0.project.bn.".into())));
    }
}

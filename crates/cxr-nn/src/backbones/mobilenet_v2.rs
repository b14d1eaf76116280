//! MobileNetV2 as torchvision builds it (width 1.0, 224 px, BatchNorm eps 1e-5), and how
//! torchvision's parameter names map onto ours.

use super::blocks::{ConvStyle, Padding};
use super::inverted_residual_net::{NetLayout, StageLayout};

/// torchvision's `inverted_residual_setting`: expansion t, channels c, repeats n, stride s.
const STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

pub fn layout() -> NetLayout {
    NetLayout {
        style: ConvStyle {
            padding: Padding::Symmetric,
            bn_epsilon: 1e-5,
        },
        stem_channels: 32,
        stages: STAGES
            .iter()
            .map(
                |&(expand_ratio, out_channels, repeats, stride)| StageLayout {
                    expand_ratio,
                    out_channels,
                    repeats,
                    stride,
                    kernel: 3,
                },
            )
            .collect(),
        head_channels: 1280,
        num_classes: 1000,
    }
}

/// (torchvision prefix, our prefix) for every convolution, BatchNorm and the classifier.
///
/// torchvision numbers its layers flat (`features.0` stem, `features.1..=17` blocks,
/// `features.18` head) and nests each block's layers in `conv`: an expanding block is
/// `conv.0` expand (conv `.0`, bn `.1`), `conv.1` depthwise, `conv.2` project conv, `conv.3`
/// project bn; the unexpanded first block lacks the expansion, so everything shifts down one.
pub fn torch_prefixes() -> Vec<(String, String)> {
    let layout = layout();
    let mut pairs = vec![
        ("features.0.0.".to_string(), "stem.conv.".to_string()),
        ("features.0.1.".to_string(), "stem.bn.".to_string()),
    ];
    let mut flat = 1;
    for (s, stage) in layout.stages.iter().enumerate() {
        for b in 0..stage.repeats {
            let torch = format!("features.{flat}.conv.");
            let ours = format!("stages.{s}.{b}.");
            let layers: &[(&str, &str)] = if stage.expand_ratio == 1 {
                &[
                    ("0.0.", "depthwise.conv."),
                    ("0.1.", "depthwise.bn."),
                    ("1.", "project.conv."),
                    ("2.", "project.bn."),
                ]
            } else {
                &[
                    ("0.0.", "expand.conv."),
                    ("0.1.", "expand.bn."),
                    ("1.0.", "depthwise.conv."),
                    ("1.1.", "depthwise.bn."),
                    ("2.", "project.conv."),
                    ("3.", "project.bn."),
                ]
            };
            pairs.extend(
                layers
                    .iter()
                    .map(|(t, o)| (format!("{torch}{t}"), format!("{ours}{o}"))),
            );
            flat += 1;
        }
    }
    pairs.push((format!("features.{flat}.0."), "head.conv.".to_string()));
    pairs.push((format!("features.{flat}.1."), "head.bn.".to_string()));
    pairs.push(("classifier.1.".to_string(), "classifier.".to_string()));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seventeen_blocks_then_the_head() {
        let blocks: usize = layout().stages.iter().map(|s| s.repeats).sum();
        assert_eq!(blocks, 17);
        let prefixes = torch_prefixes();
        assert!(prefixes.contains(&("features.18.1.".into(), "head.bn.".into())));
        assert!(prefixes.contains(&(
            "features.1.conv.1.".into(),
            "stages.0.0.project.conv.".into()
        )));
        assert!(prefixes.contains(&(
            "features.17.conv.3.".into(),
            "stages.6.0.project.bn.".into()
        )));
    }
}

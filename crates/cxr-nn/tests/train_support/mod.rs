//! Shared by the training tests (included with `#[path]`): a synthetic X-ray set whose
//! abnormal images carry a bright blob, random "pretrained" weights in a private cache, and
//! a tiny fast recipe.

use std::path::Path;

use cxr_nn::backbones::BackboneKind;
use cxr_nn::train::recipe::Recipe;
use cxr_nn::train::{CacheDirs, TrainRequest};

/// Writes `per_class` normal and `per_class` abnormal 96x96 PNGs into `root/{normal,tb}/`.
pub fn write_blob_dataset(root: &Path, per_class: usize) {
    write_class(root, "normal", per_class, |_, _, _| false);
    write_class(root, "tb", per_class, |x, y, i| {
        let centre = (30 + (i * 7) % 36) as f32;
        (x as f32 - centre).powi(2) + (y as f32 - 48.0).powi(2) < 150.0
    });
}

// Each test binary that includes this module uses only part of it.
#[allow(dead_code)]
/// The blob set plus `per_class` images in `root/age-related/` that carry a bright band
/// along the bottom instead of a blob: a third class.
pub fn write_three_class_dataset(root: &Path, per_class: usize) {
    write_blob_dataset(root, per_class);
    write_class(root, "age-related", per_class, |_, y, i| {
        (70 + (i as u32 * 3) % 10..84 + (i as u32 * 3) % 10).contains(&y)
    });
}

/// `per_class` textured 96x96 PNGs in `root/class/`, brighter where `lesion(x, y, i)`.
fn write_class(root: &Path, class: &str, per_class: usize, lesion: fn(u32, u32, usize) -> bool) {
    let dir = root.join(class);
    std::fs::create_dir_all(&dir).expect("class folder");
    for i in 0..per_class {
        let picture = image::GrayImage::from_fn(96, 96, |x, y| {
            let texture = ((x * 31 + y * 17 + i as u32 * 13) % 40) as u8;
            let bright = if lesion(x, y, i) { 140 } else { 0 };
            image::Luma([60u8 + texture + bright])
        });
        picture
            .save(dir.join(format!("{class}_{i:03}.png")))
            .expect("png");
    }
}

/// Caches under `dir`, with randomly initialised EfficientNet-Lite0 weights standing in for
/// the pretrained ones so that nothing is downloaded.
pub fn private_caches(dir: &Path) -> CacheDirs {
    let caches = CacheDirs {
        weights: dir.join("weights"),
        images: dir.join("images"),
    };
    std::fs::create_dir_all(&caches.weights).expect("weights dir");
    let kind = BackboneKind::EfficientNetLite0;
    let device = cxr_nn::device::inference_device();
    device.seed(11);
    let net = kind.init(&device);
    let path = caches.weights.join("efficientnet-lite0.safetensors");
    cxr_nn::import::internal::save(&net, kind, &path).expect("weights");
    caches
}

// Each test binary that includes this module uses only part of it.
#[allow(dead_code)]
/// A single run (no folds, no unlabelled images) of `recipe` on a fresh blob set of `per_class`
/// images per class in `dir/data`, into `dir/run`, with [`private_caches`] under `dir`.
pub fn blob_run(dir: &Path, per_class: usize, recipe: Recipe) -> (TrainRequest, CacheDirs) {
    let data = dir.join("data");
    write_blob_dataset(&data, per_class);
    let caches = private_caches(dir);
    let request = TrainRequest {
        data,
        out: dir.join("run"),
        recipe,
        folds: None,
        unlabelled: None,
    };
    (request, caches)
}

// Each test binary that includes this module uses only part of it.
#[allow(dead_code)]
/// Randomly initialised weights of `kind` in `caches`, as [`private_caches`] writes Lite0's.
pub fn add_random_weights(caches: &CacheDirs, kind: BackboneKind) {
    let device = cxr_nn::device::inference_device();
    device.seed(12);
    let path = caches.weights.join(format!("{}.safetensors", kind.name()));
    cxr_nn::import::internal::save(&kind.init(&device), kind, &path).expect("weights");
}

/// EfficientNet-Lite0 at 64 px, a few short epochs: seconds on two cores.
pub fn tiny_recipe(frozen_epochs: usize, fine_tune_epochs: usize) -> Recipe {
    let mut recipe = Recipe {
        backbone: "efficientnet-lite0".into(),
        batch_size: 8,
        val_fraction: 0.25,
        ..Recipe::default()
    };
    recipe.preprocess.input_size = Some(64);
    recipe.head.hidden = 16;
    recipe.frozen.epochs = frozen_epochs;
    recipe.fine_tune.epochs = fine_tune_epochs;
    recipe
}

//! The feature cache: what the frozen part of the trunk makes of each image (for a given
//! augmented view), computed once with BatchNorm folded and no autodiff, then reused by every
//! epoch that shows that view and by every cross-validation fold.
//!
//! When the whole trunk is frozen (phase 1) the cache keeps the pooled features, `[c, 1, 1]`
//! per image: the head starts with global average pooling, so this is exact and 49x smaller.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::{Device, Tensor};
use cxr_core::augment::AugmentConfig;
use cxr_core::preprocess::{PreprocessCache, PreprocessSpec};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::TrainError;
use super::loader::{Request, for_each_batch};
use crate::backbones::Backbone;

/// Which picture of each image: the plain one, or augmented view `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum View {
    Plain,
    Augmented(usize),
}

/// Frozen-trunk outputs of every image of a data set, per view, up to stage `boundary`.
pub struct FeatureCache {
    /// The trunk with BatchNorm folded, on the inference device.
    trunk: Backbone,
    boundary: usize,
    paths: Vec<PathBuf>,
    spec: PreprocessSpec,
    augment: AugmentConfig,
    seed: u64,
    batch_size: usize,
    views: BTreeMap<View, Tensor<4>>,
}

impl FeatureCache {
    /// A cache of `trunk`'s stages `0..boundary` (folded here) over the images at `paths`.
    pub fn new(
        trunk: Backbone,
        boundary: usize,
        paths: Vec<PathBuf>,
        spec: PreprocessSpec,
        augment: AugmentConfig,
        seed: u64,
    ) -> Self {
        Self {
            trunk: trunk.fold_batchnorm(),
            boundary,
            paths,
            spec,
            augment,
            seed,
            batch_size: 16,
            views: BTreeMap::new(),
        }
    }

    pub fn boundary(&self) -> usize {
        self.boundary
    }

    /// Outputs `[images, ...]` for `view`, computing them on first use.
    pub fn view(
        &mut self,
        view: View,
        images: &PreprocessCache,
        device: &Device,
        stop: &AtomicBool,
    ) -> Result<Tensor<4>, TrainError> {
        if let Some(cached) = self.views.get(&view) {
            return Ok(cached.clone());
        }
        let computed = self.compute(view, images, device, stop)?;
        self.views.insert(view, computed.clone());
        Ok(computed)
    }

    fn compute(
        &self,
        view: View,
        images: &PreprocessCache,
        device: &Device,
        stop: &AtomicBool,
    ) -> Result<Tensor<4>, TrainError> {
        let requests = self.requests(view);
        let progress = ProgressBar::new(requests.len() as u64).with_style(
            ProgressStyle::with_template(
                "{msg:>24} [{bar:30}] {pos}/{len} images, {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        progress.set_message(match view {
            View::Plain => "trunk features".to_string(),
            View::Augmented(n) => format!("trunk features, view {}", n + 1),
        });
        let pool = self.boundary >= self.trunk.num_stages();
        let mut parts = Vec::new();
        for_each_batch(
            requests,
            self.batch_size,
            &self.spec,
            images,
            device,
            |batch| {
                if stop.load(Ordering::Relaxed) {
                    return Err(TrainError::Interrupted);
                }
                let n = batch.dims()[0] as u64;
                let out = self.trunk.forward_stages(batch, 0..self.boundary);
                parts.push(if pool { out.mean_dims(&[2, 3]) } else { out });
                progress.inc(n);
                Ok(())
            },
        )?;
        progress.finish_and_clear();
        Ok(Tensor::cat(parts, 0))
    }

    /// The images in order, each with view `view`'s augmentation: view `n` draws from its own
    /// seeded stream, so it is the same picture in every run, fold and resumption.
    fn requests(&self, view: View) -> Vec<Request> {
        let mut rng = match view {
            View::Plain => None,
            View::Augmented(n) => Some(ChaCha8Rng::seed_from_u64(
                self.seed
                    ^ (self.boundary as u64) << 48
                    ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            )),
        };
        self.paths
            .iter()
            .map(|path| Request {
                path: path.clone(),
                augment: rng.as_mut().map(|rng| self.augment.sample(rng)),
            })
            .collect()
    }
}

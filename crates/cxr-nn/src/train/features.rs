//! The feature cache: what the frozen part of the trunk makes of each image (for a given
//! augmented view), computed once with BatchNorm folded and no autodiff, then reused by every
//! epoch that shows that view and by every cross-validation fold.
//!
//! Rows are kept at two depths. Phase 1 (trunk frozen) reads the pooled trunk features,
//! `[c, 1, 1]` per image: the head starts with global average pooling, so this is exact and
//! 49x smaller. Phase 2 reads the outputs at the first unfrozen stage; the cache keeps those
//! for the views phase 2 will show, as phase 1 computes them, so phase 2 only runs the
//! unfrozen stages. Rows are computed when first asked for: a run pays for the images it uses.

use std::collections::{BTreeMap, BTreeSet};
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

/// How far into the trunk a cached row goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Depth {
    /// The output of the last frozen stage of phase 2, the input of its first unfrozen one.
    Unfrozen,
    /// The whole trunk's output, pooled: phase 1's input.
    Pooled,
}

/// Computed rows `[1, ...]`, each with the index of its image.
type Rows = Vec<(usize, Tensor<4>)>;

/// Frozen-trunk outputs of the images of a data set, per view and depth.
pub struct FeatureCache {
    /// The trunk with BatchNorm folded, on the inference device.
    trunk: Backbone,
    /// The first stage that phase 2 trains.
    boundary: usize,
    paths: Vec<PathBuf>,
    spec: PreprocessSpec,
    augment: AugmentConfig,
    seed: u64,
    batch_size: usize,
    /// Views whose `Depth::Unfrozen` rows are kept when computing pooled ones.
    kept: BTreeSet<View>,
    /// Per view and depth, the computed rows `[1, ...]` by image index.
    rows: BTreeMap<(View, Depth), BTreeMap<usize, Tensor<4>>>,
}

impl FeatureCache {
    /// A cache of `trunk` (folded here) over the images at `paths`, whose phase 2 trains
    /// stages `boundary..` on views `kept`.
    pub fn new(
        trunk: Backbone,
        boundary: usize,
        kept: BTreeSet<View>,
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
            kept,
            rows: BTreeMap::new(),
        }
    }

    /// The first trunk stage that rows of `depth` have not been through.
    pub fn next_stage(&self, depth: Depth) -> usize {
        match depth {
            Depth::Unfrozen => self.boundary,
            Depth::Pooled => self.trunk.num_stages(),
        }
    }

    /// Computes the rows of images `indices` for `view` at `depth` that are not cached yet.
    pub fn fill(
        &mut self,
        view: View,
        depth: Depth,
        indices: &[usize],
        images: &PreprocessCache,
        device: &Device,
        stop: &AtomicBool,
    ) -> Result<(), TrainError> {
        let missing = self.missing(view, depth, indices);
        if missing.is_empty() {
            return Ok(());
        }
        let fresh = match depth {
            Depth::Unfrozen => missing,
            // Rows already through the frozen stages only need the rest of the trunk.
            Depth::Pooled => {
                let (started, fresh): (Vec<usize>, Vec<usize>) = missing
                    .iter()
                    .partition(|&&index| self.has(view, Depth::Unfrozen, index));
                let finished = self.finish(view, &started, stop)?;
                self.store(view, depth, finished);
                fresh
            }
        };
        let keep_halfway = depth == Depth::Pooled && self.kept.contains(&view);
        let (computed, halfway) =
            self.compute_from_images(view, depth, &fresh, (images, device, stop), keep_halfway)?;
        self.store(view, Depth::Unfrozen, halfway);
        self.store(view, depth, computed);
        Ok(())
    }

    /// Drops every row of `view` at `depth` (a view no later epoch shows).
    pub fn forget(&mut self, view: View, depth: Depth) {
        self.rows.remove(&(view, depth));
    }

    fn store(&mut self, view: View, depth: Depth, rows: Rows) {
        self.rows.entry((view, depth)).or_default().extend(rows);
    }

    /// Outputs `[indices.len(), ...]` of images `indices` for `view` at `depth`, in that
    /// order; every row must have been filled.
    pub fn rows(
        &self,
        view: View,
        depth: Depth,
        indices: &[usize],
    ) -> Result<Tensor<4>, TrainError> {
        let rows = indices
            .iter()
            .map(|index| {
                self.rows
                    .get(&(view, depth))
                    .and_then(|rows| rows.get(index))
                    .cloned()
                    .ok_or_else(|| {
                        TrainError::Data(format!(
                            "feature cache: image {index} of {view:?} at depth {depth:?} was never computed"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Tensor::cat(rows, 0))
    }

    fn has(&self, view: View, depth: Depth, index: usize) -> bool {
        self.rows
            .get(&(view, depth))
            .is_some_and(|rows| rows.contains_key(&index))
    }

    /// Images of `indices` without a row for `view` at `depth`, sorted and distinct.
    fn missing(&self, view: View, depth: Depth, indices: &[usize]) -> Vec<usize> {
        let missing: BTreeSet<usize> = indices
            .iter()
            .copied()
            .filter(|&index| !self.has(view, depth, index))
            .collect();
        missing.into_iter().collect()
    }

    /// Pooled rows of images `indices` from their cached `Depth::Unfrozen` rows.
    fn finish(&self, view: View, indices: &[usize], stop: &AtomicBool) -> Result<Rows, TrainError> {
        let mut rows = Vec::with_capacity(indices.len());
        for batch in indices.chunks(self.batch_size) {
            if stop.load(Ordering::Relaxed) {
                return Err(TrainError::Interrupted);
            }
            let started = self.rows(view, Depth::Unfrozen, batch)?;
            rows.extend(batch.iter().copied().zip(self.pooled_from(started)));
        }
        Ok(rows)
    }

    /// The rest of the trunk after the boundary, pooled, one row per image.
    fn pooled_from(&self, started: Tensor<4>) -> Vec<Tensor<4>> {
        self.trunk
            .forward_stages(started, self.boundary..self.trunk.num_stages())
            .mean_dims(&[2, 3])
            .split(1, 0)
    }

    /// Rows of images `indices` (sorted, distinct) for `view` at `depth`, from the images;
    /// with `keep_halfway`, also the `Depth::Unfrozen` rows met on the way to pooled ones.
    fn compute_from_images(
        &self,
        view: View,
        depth: Depth,
        indices: &[usize],
        (images, device, stop): (&PreprocessCache, &Device, &AtomicBool),
        keep_halfway: bool,
    ) -> Result<(Rows, Rows), TrainError> {
        let (mut rows, mut halfway) = (Vec::with_capacity(indices.len()), Vec::new());
        if indices.is_empty() {
            return Ok((rows, halfway));
        }
        let progress = ProgressBar::new(indices.len() as u64).with_style(
            ProgressStyle::with_template(
                "{msg:>24} [{bar:30}] {pos}/{len} images, {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        progress.set_message(match view {
            View::Plain => "trunk features".to_string(),
            View::Augmented(n) => format!("trunk features, view {}", n + 1),
        });
        let mut next = indices.iter().copied();
        for_each_batch(
            self.requests(view, indices),
            self.batch_size,
            &self.spec,
            images,
            device,
            |batch| {
                if stop.load(Ordering::Relaxed) {
                    return Err(TrainError::Interrupted);
                }
                let n = batch.dims()[0];
                let batch_indices: Vec<usize> = next.by_ref().take(n).collect();
                let started = self.trunk.forward_stages(batch, 0..self.boundary);
                match depth {
                    Depth::Unfrozen => {
                        rows.extend(batch_indices.into_iter().zip(started.split(1, 0)))
                    }
                    Depth::Pooled => {
                        if keep_halfway {
                            let kept = started.clone().split(1, 0);
                            halfway.extend(batch_indices.iter().copied().zip(kept));
                        }
                        rows.extend(batch_indices.into_iter().zip(self.pooled_from(started)));
                    }
                }
                progress.inc(n as u64);
                Ok(())
            },
        )?;
        progress.finish_and_clear();
        Ok((rows, halfway))
    }

    /// Images `indices` (sorted), each with view `view`'s augmentation. View `n` draws one
    /// stream over every image in order, so an image gets the same picture whichever subset
    /// or depth asks for it, in every run, fold and resumption.
    fn requests(&self, view: View, indices: &[usize]) -> Vec<Request> {
        let augments = match view {
            View::Plain => None,
            View::Augmented(n) => {
                // Seeded by the whole trunk's stage count, as phase 1's cache always was, so
                // phase 1 sees the pictures it always saw.
                let stages = self.trunk.num_stages() as u64;
                let mut rng = ChaCha8Rng::seed_from_u64(
                    self.seed ^ stages << 48 ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let last = indices.last().map_or(0, |&last| last + 1);
                Some(
                    (0..last)
                        .map(|_| self.augment.sample(&mut rng))
                        .collect::<Vec<_>>(),
                )
            }
        };
        indices
            .iter()
            .map(|&index| Request {
                path: self.paths[index].clone(),
                augment: augments.as_ref().map(|all| all[index]),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbones::BackboneKind;
    use crate::device::inference_device;
    use crate::test_support::max_abs_diff;
    use cxr_core::preprocess::InputSize;

    const BOUNDARY: usize = 3;

    /// Caches over six noisy 40 px gray images, through a random EfficientNet-Lite0 at 32 px.
    struct Fixture {
        _dir: tempfile::TempDir,
        paths: Vec<PathBuf>,
        spec: PreprocessSpec,
        trunk: Backbone,
        images: PreprocessCache,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("temp dir");
            let paths = (0..6u32)
                .map(|i| {
                    let path = dir.path().join(format!("{i}.png"));
                    image::GrayImage::from_fn(40, 40, |x, y| {
                        image::Luma([((x * 7 + y * 13 + i * 31) % 256) as u8])
                    })
                    .save(&path)
                    .expect("png");
                    path
                })
                .collect();
            let spec = PreprocessSpec {
                input_size: InputSize {
                    width: 32,
                    height: 32,
                },
                ..PreprocessSpec::default()
            };
            let device = inference_device();
            device.seed(5);
            let images = PreprocessCache::new(dir.path().join("cache")).expect("cache");
            Self {
                paths,
                spec,
                trunk: BackboneKind::EfficientNetLite0.init(&device),
                images,
                _dir: dir,
            }
        }

        /// A cache that keeps `kept` halfway.
        fn cache(&self, kept: &[View]) -> FeatureCache {
            FeatureCache::new(
                self.trunk.clone(),
                BOUNDARY,
                kept.iter().copied().collect(),
                self.paths.clone(),
                self.spec.clone(),
                AugmentConfig::default(),
                9,
            )
        }

        fn fill(&self, cache: &mut FeatureCache, view: View, depth: Depth, indices: &[usize]) {
            let stop = AtomicBool::new(false);
            cache
                .fill(
                    view,
                    depth,
                    indices,
                    &self.images,
                    &inference_device(),
                    &stop,
                )
                .expect("fill");
        }
    }

    #[test]
    fn rows_are_computed_on_demand_and_do_not_depend_on_who_asked_first() {
        let fixture = Fixture::new();
        let view = View::Augmented(1);
        let mut subset = fixture.cache(&[]);
        fixture.fill(&mut subset, view, Depth::Unfrozen, &[4, 1]);
        let err = subset
            .rows(view, Depth::Unfrozen, &[1, 2])
            .expect_err("image 2 was not asked for");
        assert!(err.to_string().contains("image 2"), "{err}");
        let err = subset
            .rows(View::Plain, Depth::Unfrozen, &[1])
            .expect_err("another view");
        assert!(err.to_string().contains("Plain"), "{err}");
        let asked = subset
            .rows(view, Depth::Unfrozen, &[1, 4, 1])
            .expect("rows");
        assert_eq!(asked.dims()[0], 3);
        assert!(asked.dims()[2] > 1, "a mid-trunk row keeps the feature map");

        let mut whole = fixture.cache(&[]);
        let all: Vec<usize> = (0..6).collect();
        fixture.fill(&mut whole, view, Depth::Unfrozen, &all);
        let expected = whole.rows(view, Depth::Unfrozen, &[1, 4, 1]).expect("rows");
        assert!(max_abs_diff(asked, expected) < 1e-5);

        // Views differ from each other and from the plain picture.
        fixture.fill(&mut whole, View::Plain, Depth::Unfrozen, &[1]);
        fixture.fill(&mut whole, View::Augmented(2), Depth::Unfrozen, &[1]);
        let row = |view| whole.rows(view, Depth::Unfrozen, &[1]).expect("rows");
        assert!(max_abs_diff(row(View::Plain), row(view)) > 0.0);
        assert!(max_abs_diff(row(View::Augmented(2)), row(view)) > 0.0);
    }

    #[test]
    fn pooled_rows_keep_the_halfway_rows_of_kept_views_only() {
        let fixture = Fixture::new();
        let (kept, other) = (View::Augmented(0), View::Augmented(1));
        let mut cache = fixture.cache(&[kept]);
        for view in [kept, other] {
            fixture.fill(&mut cache, view, Depth::Pooled, &[0, 2]);
        }
        let pooled = cache.rows(kept, Depth::Pooled, &[2, 0]).expect("rows");
        assert_eq!(pooled.dims()[1..], [1280, 1, 1]);
        assert!(cache.rows(kept, Depth::Unfrozen, &[0, 2]).is_ok());
        assert!(cache.rows(other, Depth::Unfrozen, &[0]).is_err());

        // Pooling from the kept halfway rows gives what the whole trunk gives.
        let mut halfway_first = fixture.cache(&[]);
        fixture.fill(&mut halfway_first, kept, Depth::Unfrozen, &[0]);
        fixture.fill(&mut halfway_first, kept, Depth::Pooled, &[0, 2]);
        let from_halfway = halfway_first
            .rows(kept, Depth::Pooled, &[2, 0])
            .expect("rows");
        assert!(max_abs_diff(from_halfway, pooled) < 1e-5);
    }

    #[test]
    fn pooled_rows_do_not_depend_on_which_rows_were_cached_before() {
        let fixture = Fixture::new();
        let all: Vec<usize> = (0..6).collect();
        let asked = [1, 3, 4];
        // What a fold finds when an earlier fold scored every image halfway (one batch).
        let mut after_scoring = fixture.cache(&[]);
        fixture.fill(&mut after_scoring, View::Plain, Depth::Unfrozen, &all);
        fixture.fill(&mut after_scoring, View::Plain, Depth::Pooled, &asked);
        // What a fresh process finds: nothing.
        let mut fresh = fixture.cache(&[]);
        fixture.fill(&mut fresh, View::Plain, Depth::Pooled, &asked);
        let rows = |cache: &FeatureCache| {
            cache
                .rows(View::Plain, Depth::Pooled, &asked)
                .expect("rows")
        };
        assert_eq!(rows(&after_scoring).into_data(), rows(&fresh).into_data());
    }

    #[test]
    fn a_forgotten_view_is_dropped_at_that_depth_only_and_comes_back_the_same() {
        let fixture = Fixture::new();
        let (gone, other) = (View::Augmented(3), View::Plain);
        let mut cache = fixture.cache(&[]);
        for view in [gone, other] {
            fixture.fill(&mut cache, view, Depth::Unfrozen, &[0, 4]);
        }
        fixture.fill(&mut cache, gone, Depth::Pooled, &[0]);
        let before = cache.rows(gone, Depth::Unfrozen, &[4, 0]).expect("rows");
        cache.forget(gone, Depth::Unfrozen);
        let err = cache
            .rows(gone, Depth::Unfrozen, &[0])
            .expect_err("forgotten");
        assert!(err.to_string().contains("never computed"), "{err}");
        assert!(cache.rows(gone, Depth::Pooled, &[0]).is_ok());
        assert!(cache.rows(other, Depth::Unfrozen, &[0, 4]).is_ok());
        // Recomputed on demand: the same picture, as every fold and resumption needs.
        fixture.fill(&mut cache, gone, Depth::Unfrozen, &[0, 4]);
        let again = cache.rows(gone, Depth::Unfrozen, &[4, 0]).expect("rows");
        assert!(max_abs_diff(before, again) < 1e-6);
    }

    #[test]
    fn a_stop_request_is_honoured_before_the_next_batch() {
        let fixture = Fixture::new();
        let mut cache = fixture.cache(&[View::Plain]);
        let err = cache
            .fill(
                View::Plain,
                Depth::Pooled,
                &[0, 5],
                &fixture.images,
                &inference_device(),
                &AtomicBool::new(true),
            )
            .expect_err("stop asked");
        assert!(matches!(err, TrainError::Interrupted), "{err}");
        assert!(cache.rows(View::Plain, Depth::Pooled, &[0]).is_err());
    }
}

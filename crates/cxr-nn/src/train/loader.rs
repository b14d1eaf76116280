//! Image loading for training: fitted images from the disk cache, augmentation and
//! normalisation through cxr-core's one preprocessing path, on a background thread so that
//! it overlaps the network's work on the previous batch.

use std::path::PathBuf;
use std::sync::mpsc;

use burn::tensor::{Device, Tensor};
use cxr_core::DecodeLimits;
use cxr_core::augment::AugmentParams;
use cxr_core::preprocess::{ChwTensor, PreprocessCache, PreprocessSpec, to_tensor};
use rayon::prelude::*;

use super::TrainError;
use crate::batch::batch_tensor;

/// One image to load, with the augmentation to apply (none for validation).
pub struct Request {
    pub path: PathBuf,
    pub augment: Option<AugmentParams>,
}

/// Batches that the loader thread keeps ready ahead of the consumer.
const PREFETCH: usize = 2;

/// Loads `requests` in order, `batch_size` at a time, on a background thread, and hands each
/// batch as an `[n, c, h, w]` tensor on `device` to `consume`. Stops at the first error.
pub fn for_each_batch(
    requests: Vec<Request>,
    batch_size: usize,
    spec: &PreprocessSpec,
    cache: &PreprocessCache,
    device: &Device,
    mut consume: impl FnMut(Tensor<4>) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let limits = DecodeLimits::default();
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<Result<Vec<ChwTensor>, TrainError>>(PREFETCH);
        scope.spawn(move || {
            for chunk in requests.chunks(batch_size.max(1)) {
                // A batch's images side by side (in order): a cold cache decodes, fits and
                // finds the lungs of each, and the augmentation warps and blurs each.
                // Collected whole, then checked in order: the error reported is the batch's
                // first failing file, not whichever thread failed first.
                let batch = chunk
                    .par_iter()
                    .map(|request| {
                        let fitted = cache.get_or_compute(&request.path, spec, &limits)?;
                        Ok(to_tensor(&fitted, spec, request.augment.as_ref())?)
                    })
                    .collect::<Vec<Result<ChwTensor, TrainError>>>()
                    .into_iter()
                    .collect::<Result<Vec<_>, TrainError>>();
                let failed = batch.is_err();
                // The consumer hung up (it failed or was interrupted): nothing left to do.
                if sender.send(batch).is_err() || failed {
                    break;
                }
            }
        });
        for batch in receiver {
            consume(batch_tensor(batch?, device))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::inference_device;

    #[test]
    fn batches_arrive_in_order_and_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = PreprocessSpec {
            input_size: cxr_core::preprocess::InputSize {
                width: 8,
                height: 8,
            },
            ..PreprocessSpec::default()
        };
        let mut requests = Vec::new();
        for i in 0..5u8 {
            let path = dir.path().join(format!("{i}.png"));
            image::GrayImage::from_pixel(16, 16, image::Luma([i * 50]))
                .save(&path)
                .expect("png");
            requests.push(Request {
                path,
                augment: None,
            });
        }
        let cache = PreprocessCache::new(dir.path().join("cache")).expect("cache");
        let mut means = Vec::new();
        for_each_batch(requests, 2, &spec, &cache, &inference_device(), |batch| {
            means.extend(
                batch
                    .mean_dims(&[1, 2, 3])
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap_or_default(),
            );
            Ok(())
        })
        .expect("load");
        let expected: Vec<f32> = (0..5).map(|i| (i * 50) as f32 / 255.0).collect();
        assert_eq!(means.len(), 5);
        for (got, want) in means.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-3, "{means:?}");
        }

        let missing = vec![Request {
            path: dir.path().join("missing.png"),
            augment: None,
        }];
        let err = for_each_batch(missing, 2, &spec, &cache, &inference_device(), |_| Ok(()))
            .expect_err("missing file");
        assert!(err.to_string().contains("missing.png"), "{err}");

        // Two bad files in one batch, the first slow to fail (a large PNG cut short, read row
        // by row up to the cut), the second at once (missing): the first is named all the same.
        let noise: Vec<u8> = (0..3000u32 * 3000)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        let cut_short = dir.path().join("cut-short.png");
        image::GrayImage::from_raw(3000, 3000, noise)
            .expect("pixels")
            .save(&cut_short)
            .expect("png");
        let bytes = std::fs::read(&cut_short).expect("read");
        std::fs::write(&cut_short, &bytes[..bytes.len() * 3 / 4]).expect("cut");
        for _ in 0..5 {
            let two_bad = ["cut-short.png", "missing-too.png"]
                .into_iter()
                .map(|name| Request {
                    path: dir.path().join(name),
                    augment: None,
                })
                .collect();
            let err = for_each_batch(two_bad, 2, &spec, &cache, &inference_device(), |_| Ok(()))
                .expect_err("bad files");
            assert!(err.to_string().contains("cut-short.png"), "{err}");
        }
    }
}

//! Research tool: globally pooled features after every stage of a pretrained trunk, for each
//! PNG of a folder, plain (view 0) and in VIEWS - 1 augmented views (the recipe's
//! preprocessing and augmentation), as raw f32 for offline probes (bench/head_probe.py).
//!
//! Usage: stage_features [--maps] RECIPE IMAGES_DIR OUT_DIR VIEWS BACKBONE...
//! Writes OUT_DIR/names.txt (the images, sorted), OUT_DIR/<backbone>.channels (channels per
//! stage) and OUT_DIR/<backbone>_v<view>.f32 (one row per image, stages side by side). With
//! `--maps`, also the last stage's output before pooling, for probes of other poolings
//! (bench/pooling_probe.py): OUT_DIR/<backbone>_maps_v<view>.f16 (one `[c, h, w]` row per
//! image, half precision) and OUT_DIR/<backbone>.map_shape (`c h w`).

use std::io::Write;
use std::path::PathBuf;

use burn::tensor::Tensor;
use cxr_core::DecodeLimits;
use cxr_core::preprocess::{PreprocessCache, to_tensor};
use cxr_nn::backbones::BackboneKind;
use cxr_nn::batch::batch_tensor;
use cxr_nn::device::inference_device;
use cxr_nn::train::preprocess_spec;
use cxr_nn::train::recipe::Recipe;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let maps = args.first().is_some_and(|arg| arg == "--maps");
    if maps {
        args.remove(0);
    }
    if args.len() < 5 {
        return Err(
            "usage: stage_features [--maps] RECIPE IMAGES_DIR OUT_DIR VIEWS BACKBONE...".into(),
        );
    }
    let recipe = Recipe::from_file(std::path::Path::new(&args[0]))?;
    let images_dir = PathBuf::from(&args[1]);
    let out = PathBuf::from(&args[2]);
    let views: usize = args[3].parse()?;
    std::fs::create_dir_all(&out)?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&images_dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "png"))
        .collect();
    paths.sort();
    let names: Vec<String> = paths
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    std::fs::write(out.join("names.txt"), names.join("\n"))?;
    let device = inference_device();
    let weights = cxr_nn::weights::cache_dir()?;
    let cache = PreprocessCache::new(weights.join("fitted-images"))?;
    let limits = DecodeLimits::default();
    for name in &args[4..] {
        let kind = BackboneKind::from_name(name)?;
        let trunk = cxr_nn::weights::pretrained(kind, &weights, &device)?.fold_batchnorm();
        // Training's spec; a lung-crop recipe is refused by the cache (no lung model here).
        let spec = preprocess_spec(kind, &recipe)?;
        let stages = trunk.num_stages();
        for view in 0..views {
            let mut rng = ChaCha8Rng::seed_from_u64(1000 + view as u64);
            let augments: Vec<_> = paths
                .iter()
                .map(|_| recipe.augment.sample(&mut rng))
                .collect();
            let mut file = std::fs::File::create(out.join(format!("{name}_v{view}.f32")))?;
            let mut map_file = maps
                .then(|| std::fs::File::create(out.join(format!("{name}_maps_v{view}.f16"))))
                .transpose()?;
            let mut channels = Vec::new();
            for (chunk, augment) in paths.chunks(16).zip(augments.chunks(16)) {
                let batch = chunk
                    .iter()
                    .zip(augment)
                    .map(|(path, params)| {
                        let fitted = cache.get_or_compute(path, &spec, &limits)?;
                        Ok(to_tensor(&fitted, &spec, (view > 0).then_some(params))?)
                    })
                    .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
                let n = batch.len();
                let mut x = batch_tensor(batch, &device);
                let mut pooled: Vec<Tensor<2>> = Vec::new();
                for stage in 0..stages {
                    x = trunk.forward_stages(x, stage..stage + 1);
                    if let Some(map_file) = map_file.as_mut().filter(|_| stage + 1 == stages) {
                        let [_, c, h, w] = x.dims();
                        std::fs::write(
                            out.join(format!("{name}.map_shape")),
                            format!("{c} {h} {w}"),
                        )?;
                        let values = x.clone().into_data();
                        let bytes: Vec<u8> = values
                            .iter::<f32>()
                            .flat_map(|v| half::f16::from_f32(v).to_le_bytes())
                            .collect();
                        map_file.write_all(&bytes)?;
                    }
                    pooled.push(x.clone().mean_dims(&[2, 3]).reshape([n as i32, -1]));
                }
                channels = pooled.iter().map(|p| p.dims()[1]).collect();
                let rows: Vec<f32> = Tensor::cat(pooled, 1).into_data().iter::<f32>().collect();
                let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
                file.write_all(&bytes)?;
            }
            std::fs::write(
                out.join(format!("{name}.channels")),
                channels
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            )?;
            eprintln!("{name} view {view} done");
        }
    }
    Ok(())
}

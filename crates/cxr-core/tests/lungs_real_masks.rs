//! Lung cleanup, checks and cropping on the Shenzhen reference masks: cleanup repairs damaged
//! masks, the checks accept real lungs, and the crop holds both lungs of the X-ray.

use std::path::{Path, PathBuf};

use cxr_core::decode::{DecodeLimits, decode_file};
use cxr_core::lungs::{
    BoundingBox, CheckLimits, CleanupParams, LungCropSpec, LungMask, LungZones, Overlap, Zone,
    check, clean, crop_to_lungs,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/shenzhen");

/// Every 24th masked image of the Shenzhen set (21 of 484): variety at a few seconds of test.
fn sample_masks() -> Option<Vec<(PathBuf, PathBuf)>> {
    let masks = Path::new(DATA).join("masks");
    let Ok(entries) = std::fs::read_dir(&masks) else {
        eprintln!("skipped: no Shenzhen masks at {}", masks.display());
        return None;
    };
    let mut masks: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    masks.sort();
    Some(
        masks
            .into_iter()
            .step_by(24)
            .map(|mask| {
                let name = mask
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .replace("_mask", "");
                (Path::new(DATA).join("images").join(name), mask)
            })
            .collect(),
    )
}

fn read_mask(path: &Path) -> LungMask {
    let image = decode_file(path, &DecodeLimits::default()).unwrap().image;
    LungMask::from_threshold(&image, 0.5)
}

#[test]
fn real_lung_masks_pass_the_checks() {
    let Some(pairs) = sample_masks() else { return };
    let limits = CheckLimits::default();
    let mut fractions = Vec::new();
    for (_, mask_path) in &pairs {
        // The reference masks carry a few stray pixels; cleanup is what every mask goes through.
        let mask = clean(&read_mask(mask_path).to_image(), &CleanupParams::default());
        let result = check(&mask, &limits);
        assert!(
            result.passed(),
            "{}: {}",
            mask_path.display(),
            result.summary()
        );
        fractions.push(result.area_fraction);
    }
    fractions.sort_by(f64::total_cmp);
    eprintln!(
        "lung area fraction over {} masks: min {:.3}, median {:.3}, max {:.3}",
        fractions.len(),
        fractions[0],
        fractions[fractions.len() / 2],
        fractions[fractions.len() - 1]
    );
}

#[test]
fn cleanup_repairs_specks_holes_and_ragged_edges() {
    let Some(pairs) = sample_masks() else { return };
    for (_, mask_path) in pairs.iter().take(4) {
        let reference = read_mask(mask_path);
        let mut damaged = reference.to_image();
        let (width, height) = (damaged.width, damaged.height);
        // Specks outside the lungs, holes inside, and notches along every row's edge.
        for (i, pixel) in damaged.pixels.iter_mut().enumerate() {
            let (x, y) = (i % width, i / width);
            let speck = x % 97 == 3 && y % 89 == 5;
            let hole = x % 41 < 3 && y % 37 < 3;
            if speck {
                *pixel = 1.0;
            } else if hole {
                *pixel = 0.0;
            }
        }
        for y in (0..height).step_by(7) {
            for x in 0..width {
                damaged.pixels[y * width + x] *= 0.4;
            }
        }
        let before =
            Overlap::between(&LungMask::from_threshold(&damaged, 0.5), &reference).unwrap();
        let cleaned = clean(&damaged, &CleanupParams::default());
        let after = Overlap::between(&cleaned, &reference).unwrap();
        assert!(after.dice > 0.99, "{}: {after:?}", mask_path.display());
        assert!(after.dice > before.dice, "{before:?} -> {after:?}");
    }
}

#[test]
fn the_crop_holds_both_lungs_and_zones_cover_them() {
    let Some(pairs) = sample_masks() else { return };
    let (image_path, mask_path) = &pairs[0];
    let image = decode_file(image_path, &DecodeLimits::default())
        .unwrap()
        .image;
    let mask = clean(&read_mask(mask_path).to_image(), &CleanupParams::default());
    let result = check(&mask, &CheckLimits::default());
    let outcome = crop_to_lungs(&image, &mask, &result, &LungCropSpec::default());
    let region = outcome.region.expect("real lungs pass the checks");
    let lungs = BoundingBox::of(&mask).unwrap();
    assert!(region.x <= lungs.x && region.y <= lungs.y);
    assert!(region.x + region.width >= lungs.x + lungs.width);
    assert!(region.y + region.height >= lungs.y + lungs.height);
    assert!(region.width < image.width || region.height < image.height);
    assert_eq!(
        (outcome.image.width, outcome.image.height),
        (region.width, region.height)
    );

    let zones = LungZones::of(&mask);
    for zone in Zone::ALL {
        let area = zones.mask_of(zone).area();
        assert!(area > mask.area() / 20, "{} has {area} pixels", zone.name());
    }
}

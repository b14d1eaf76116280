//! The quality gate on real X-rays: Shenzhen images pass as they are (under 1 % called
//! inverted) and 95 % are flagged once inverted; prints the statistics behind the thresholds.

mod dataset_support;

use cxr_core::quality::{QualityConfig, QualityFlag, QualityReport, check_quality};
use cxr_core::{DecodeLimits, DecodedImage, decode_file};
use dataset_support::shenzhen;

/// Minimum, 1st percentile, median and maximum of `statistic` over `reports`.
fn spread(reports: &[QualityReport], statistic: fn(&QualityReport) -> f64) -> [f64; 4] {
    let mut values: Vec<f64> = reports.iter().map(statistic).collect();
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    [at(0.0), at(0.01), at(0.5), at(1.0)]
}

#[test]
fn shenzhen_images_pass_and_their_inversions_are_flagged() {
    let Some(root) = shenzhen() else { return };
    let config = QualityConfig::default();
    let mut paths: Vec<_> = std::fs::read_dir(root.join("images"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    let (mut plain, mut inverted) = (Vec::new(), Vec::new());
    for path in &paths {
        let decoded = decode_file(path, &DecodeLimits::default()).unwrap();
        plain.push(check_quality(&decoded, &config));
        let mut negative: DecodedImage = decoded;
        negative.image.pixels.iter_mut().for_each(|p| *p = 1.0 - *p);
        inverted.push(check_quality(&negative, &config));
    }
    let band = |r: &QualityReport| r.band_contrast;
    let mirror = |r: &QualityReport| r.mirror_correlation;
    println!(
        "{} images (min, 1 %, median, max): band contrast {:.3?} (inverted {:.3?}), \
         mirror correlation {:.3?}, std dev {:.3?}",
        paths.len(),
        spread(&plain, band),
        spread(&inverted, band),
        spread(&plain, mirror),
        spread(&plain, |r| r.std_dev),
    );
    let wrongly_flagged = |flag: Option<QualityFlag>| {
        plain
            .iter()
            .filter(|report| match flag {
                Some(flag) => report.flags.contains(&flag),
                None => report
                    .flags
                    .iter()
                    .any(|&f| f != QualityFlag::LikelyInverted),
            })
            .count()
    };
    let upright_inverted = wrongly_flagged(Some(QualityFlag::LikelyInverted));
    let caught = inverted
        .iter()
        .filter(|report| report.flags.contains(&QualityFlag::LikelyInverted))
        .count();
    println!(
        "flagged inverted: {caught} of {n} inverted copies, {upright_inverted} of {n} originals",
        n = paths.len()
    );
    assert_eq!(wrongly_flagged(None), 0, "upright X-rays flagged otherwise");
    assert!(upright_inverted as f64 <= 0.01 * paths.len() as f64);
    assert!(caught as f64 >= 0.95 * paths.len() as f64);
}

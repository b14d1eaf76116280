//! PNG and JPEG decoding: every PNG layout becomes gray in [0, 1] with the right values,
//! JPEG gray and colour decode, and real Shenzhen images come out as 512x512 8-bit.

mod decode_support;

use cxr_core::{DecodeLimits, Photometric, SourceFormat, decode_file};
use decode_support::{assert_close, decode, jpeg, png, ramp, shenzhen_images};
use image::ExtendedColorType;

#[test]
fn png_gray8_decodes_exactly() {
    let samples = ramp(300, 20);
    let decoded = decode(&png(300, 20, ExtendedColorType::L8, &samples)).unwrap();
    assert_eq!((decoded.image.width, decoded.image.height), (300, 20));
    for (pixel, sample) in decoded.image.pixels.iter().zip(&samples) {
        assert_eq!(*pixel, f32::from(*sample) / 255.0);
    }
    let info = decoded.info;
    assert_eq!(info.format, SourceFormat::Png);
    assert_eq!(info.bit_depth, 8);
    assert_eq!(info.photometric, Photometric::Monochrome2);
    assert_eq!((info.original_width, info.original_height), (300, 20));
    assert_eq!((info.pixel_spacing_mm, info.view_position), (None, None));
}

#[test]
fn png_gray16_round_trips() {
    let values: Vec<u16> = (0..64 * 32).map(|i| (i * 31) as u16).collect();
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    let decoded = decode(&png(64, 32, ExtendedColorType::L16, &bytes)).unwrap();
    assert_eq!(decoded.info.bit_depth, 16);
    for (pixel, value) in decoded.image.pixels.iter().zip(&values) {
        assert_eq!((pixel * 65535.0).round() as u16, *value);
    }
}

#[test]
fn png_alpha_is_dropped() {
    let gray_alpha: Vec<u8> = ramp(32, 32).iter().flat_map(|&v| [v, 17]).collect();
    let decoded = decode(&png(32, 32, ExtendedColorType::La8, &gray_alpha)).unwrap();
    assert_eq!(decoded.info.photometric, Photometric::Monochrome2);
    assert_eq!(decoded.image.pixels[5], 5.0 / 255.0);
}

#[test]
fn png_colour_becomes_luma() {
    // every pixel (R, G, B) = (200, 100, 50); with alpha for the RGBA variant
    let rgb: Vec<u8> = [200u8, 100, 50].repeat(32 * 32);
    let rgba: Vec<u8> = [200u8, 100, 50, 0].repeat(32 * 32);
    let luma = (0.299 * 200.0 + 0.587 * 100.0 + 0.114 * 50.0) / 255.0;
    for (color, samples) in [
        (ExtendedColorType::Rgb8, &rgb),
        (ExtendedColorType::Rgba8, &rgba),
    ] {
        let decoded = decode(&png(32, 32, color, samples)).unwrap();
        assert_eq!(decoded.info.photometric, Photometric::Rgb);
        assert!(
            decoded
                .image
                .pixels
                .iter()
                .all(|&p| (p - luma).abs() < 1e-5)
        );
    }
}

#[test]
fn jpeg_gray_and_colour_decode() {
    let gray = decode(&jpeg(40, 24, ExtendedColorType::L8, &[128; 40 * 24])).unwrap();
    assert_eq!(gray.info.format, SourceFormat::Jpeg);
    assert_eq!(gray.info.photometric, Photometric::Monochrome2);
    assert_eq!((gray.image.width, gray.image.height), (40, 24));
    assert_close(gray.image.pixels[100], 128.0 / 255.0, 2.0 / 255.0);

    let colour = decode(&jpeg(
        40,
        24,
        ExtendedColorType::Rgb8,
        &[90u8, 90, 90].repeat(40 * 24),
    ))
    .unwrap();
    assert_eq!(colour.info.photometric, Photometric::Rgb);
    assert_close(colour.image.pixels[100], 90.0 / 255.0, 3.0 / 255.0);
}

#[test]
fn format_comes_from_content_not_extension() {
    let dir = tempfile::tempdir().unwrap();
    let misnamed = dir.path().join("scan.jpg");
    std::fs::write(&misnamed, png(16, 16, ExtendedColorType::L8, &[7; 256])).unwrap();
    let decoded = decode_file(&misnamed, &DecodeLimits::default()).unwrap();
    assert_eq!(decoded.info.format, SourceFormat::Png);
}

#[test]
fn shenzhen_png_is_512_square_8_bit() {
    let Some(images) = shenzhen_images() else {
        return;
    };
    let path = images.join("CHNCXR_0001_0.png");
    let decoded = decode_file(&path, &DecodeLimits::default()).unwrap();
    assert_eq!((decoded.image.width, decoded.image.height), (512, 512));
    assert_eq!(decoded.info.bit_depth, 8);
    assert_eq!(decoded.info.photometric, Photometric::Monochrome2);
    let (low, high) = decoded.image.min_max().unwrap();
    assert!(
        low >= 0.0 && high <= 1.0 && high - low > 0.5,
        "range {low}..{high}"
    );
}

/// Every Shenzhen image decodes as the data README describes (562 files; a few seconds).
/// Run: cargo test --release -p cxr-core --test decode_raster -- --ignored
#[test]
#[ignore = "decodes the whole real data set"]
fn every_shenzhen_png_decodes() {
    let Some(images) = shenzhen_images() else {
        return;
    };
    let limits = DecodeLimits::default();
    let started = std::time::Instant::now();
    let mut count = 0;
    for entry in std::fs::read_dir(&images).unwrap() {
        let path = entry.unwrap().path();
        let decoded = decode_file(&path, &limits).unwrap();
        assert_eq!(
            (decoded.image.width, decoded.image.height),
            (512, 512),
            "{path:?}"
        );
        assert_eq!(decoded.info.bit_depth, 8, "{path:?}");
        assert!(!decoded.image.is_constant(), "{path:?}");
        count += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{count} images in {seconds:.2} s ({:.2} ms each)",
        1e3 * seconds / count as f64
    );
    assert!(count >= 562);
}

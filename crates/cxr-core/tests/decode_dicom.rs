//! DICOM decoding of files made by the project's writer: photometric inversion, bit depths,
//! rescale, window (linear and sigmoid), VOI LUT, compressed syntaxes, multi-frame, metadata.

mod decode_support;

use cxr_core::decode::dicom_writer::{
    DicomEncoding, DicomImage, Samples, VoiLutFunction, VoiLutTable, Window,
};
use cxr_core::{DecodeLimits, DecodedImage, GrayImage, Photometric, SourceFormat, decode_file};
use decode_support::{assert_close, decode, shenzhen_images};
use dicom_dictionary_std::uids;
use dicom_transfer_syntax_registry::entries::{
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};

const SIDE: u16 = 32;
const PIXELS: usize = SIDE as usize * SIDE as usize;

fn decoded(image: &DicomImage) -> DecodedImage {
    decode(&image.to_bytes().unwrap()).unwrap()
}

/// The Transfer Syntax UID a file declares, to be sure a test exercises the codec it names.
fn transfer_syntax(bytes: &[u8]) -> String {
    let object = dicom_object::OpenFileOptions::new()
        .from_reader(&bytes[128..])
        .unwrap();
    object
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string()
}

/// Stored values 0, 1, 2, ... wrapping at `modulo`.
fn ramp_u16(modulo: usize) -> Vec<u16> {
    (0..PIXELS).map(|i| (i % modulo) as u16).collect()
}

/// The PS3.3 C.11.2.1.2.1 linear window, for checking results independently.
fn linear_window(x: f64, center: f64, width: f64) -> f32 {
    let y = ((x - (center - 0.5)) / (width - 1.0) + 0.5).clamp(0.0, 1.0);
    y as f32
}

#[test]
fn monochrome2_8_bit_without_window_is_stretched_min_max() {
    let samples: Vec<u8> = (0..PIXELS).map(|i| 10 + (i % 64) as u8).collect();
    let image = decoded(&DicomImage::new(SIDE, SIDE, Samples::U8(samples.clone())));
    assert_eq!(image.info.format, SourceFormat::Dicom);
    assert_eq!(image.info.photometric, Photometric::Monochrome2);
    assert_eq!(image.info.bit_depth, 8);
    assert_eq!((image.image.width, image.image.height), (32, 32));
    for (pixel, sample) in image.image.pixels.iter().zip(&samples) {
        assert_close(*pixel, f32::from(sample - 10) / 63.0, 1e-6);
    }
}

#[test]
fn monochrome1_is_inverted() {
    let samples: Vec<u8> = (0..PIXELS).map(|i| (i % 64) as u8).collect();
    let mut writer = DicomImage::new(SIDE, SIDE, Samples::U8(samples.clone()));
    writer.photometric = Photometric::Monochrome1;
    let image = decoded(&writer);
    assert_eq!(image.info.photometric, Photometric::Monochrome1);
    for (pixel, sample) in image.image.pixels.iter().zip(&samples) {
        assert_close(*pixel, 1.0 - f32::from(*sample) / 63.0, 1e-6);
    }
}

#[test]
fn twelve_bit_window_ignores_bits_above_bits_stored() {
    let values = ramp_u16(4096);
    // bits 12-15 hold junk (old overlay planes); Bits Stored says to ignore them
    let with_junk = values.iter().map(|v| v | 0xA000).collect();
    let mut writer = DicomImage::new(SIDE, SIDE, Samples::U16(with_junk));
    writer.bits_stored = 12;
    writer.window = Some(Window {
        center: 300.0,
        width: 401.0,
        function: VoiLutFunction::Linear,
    });
    let image = decoded(&writer);
    assert_eq!(image.info.bit_depth, 12);
    for (pixel, value) in image.image.pixels.iter().zip(&values) {
        assert_close(*pixel, linear_window(f64::from(*value), 300.0, 401.0), 1e-6);
    }
}

#[test]
fn signed_16_bit_with_rescale_and_lung_window() {
    let stored: Vec<i16> = (0..PIXELS as i32).map(|i| (i * 3 - 1500) as i16).collect();
    let mut writer = DicomImage::new(SIDE, SIDE, Samples::I16(stored.clone()));
    writer.rescale = Some((2.0, -1024.0));
    writer.window = Some(Window {
        center: -600.0,
        width: 1500.0,
        function: VoiLutFunction::Linear,
    });
    let image = decoded(&writer);
    for (pixel, s) in image.image.pixels.iter().zip(&stored) {
        let modality = 2.0 * f64::from(*s) - 1024.0;
        assert_close(*pixel, linear_window(modality, -600.0, 1500.0), 1e-6);
    }
}

#[test]
fn negative_rescale_slope_reverses_min_max() {
    let mut writer = DicomImage::new(SIDE, SIDE, Samples::U16(ramp_u16(1000)));
    writer.rescale = Some((-1.0, 0.0));
    let image = decoded(&writer);
    assert_eq!(image.image.pixels[0], 1.0);
    assert_eq!(image.image.pixels[999], 0.0);
}

#[test]
fn sigmoid_window_function() {
    let mut writer = DicomImage::new(SIDE, SIDE, Samples::U16(ramp_u16(1024)));
    writer.window = Some(Window {
        center: 512.0,
        width: 256.0,
        function: VoiLutFunction::Sigmoid,
    });
    let image = decoded(&writer);
    for x in [0usize, 400, 512, 700, 1023] {
        let expected = 1.0 / (1.0 + (-4.0 * (x as f64 - 512.0) / 256.0).exp());
        assert_close(image.image.pixels[x], expected as f32, 1e-6);
    }
}

#[test]
fn voi_lut_sequence_takes_precedence_over_window() {
    let mut writer = DicomImage::new(SIDE, SIDE, Samples::U16(ramp_u16(256)));
    writer.bits_stored = 8;
    writer.window = Some(Window {
        center: 128.0,
        width: 256.0,
        function: VoiLutFunction::Linear,
    });
    // a descending table: LUT entry i = 4095 - 16 i, 12-bit entries; values below 16 clamp
    writer.voi_lut = Some(VoiLutTable {
        first_mapped: 16,
        bits: 12,
        entries: (0..240).map(|i| 4095 - 16 * i).collect(),
    });
    let image = decoded(&writer);
    assert_eq!(image.image.pixels[3], 1.0);
    for x in [16usize, 100, 255] {
        let expected = f32::from(4095 - 16 * (x as u16 - 16)) / 4095.0;
        assert_close(image.image.pixels[x], expected, 1e-6);
    }
}

#[test]
fn pixel_spacing_and_view_position_are_reported() {
    let mut writer = DicomImage::new(SIDE, SIDE, Samples::U8(vec![9; PIXELS]));
    writer.pixel_spacing_mm = Some((0.143, 0.139));
    writer.view_position = Some("PA".to_string());
    let info = decoded(&writer).info;
    assert_eq!(info.pixel_spacing_mm, Some((0.143, 0.139)));
    assert_eq!(info.view_position.as_deref(), Some("PA"));
}

#[test]
fn multi_frame_decodes_the_first_frame() {
    let mut frames = ramp_u16(PIXELS);
    frames.extend(std::iter::repeat_n(7, 2 * PIXELS));
    for encoding in [
        DicomEncoding::ExplicitVrLittleEndian,
        DicomEncoding::RleLossless,
    ] {
        let mut writer = DicomImage::new(SIDE, SIDE, Samples::U16(frames.clone()));
        writer.encoding = encoding;
        let image = decoded(&writer);
        assert_eq!(image.image.pixels.len(), PIXELS, "{encoding:?}");
        assert_eq!(image.image.pixels[0], 0.0, "{encoding:?}");
        assert_eq!(image.image.pixels[PIXELS - 1], 1.0, "{encoding:?}");
    }
}

#[test]
fn lossless_syntaxes_decode_identically() {
    let mut writer = DicomImage::new(SIDE, SIDE, Samples::U16(ramp_u16(3000)));
    writer.bits_stored = 12;
    let reference = decoded(&writer).image;
    for (encoding, uid) in [
        (
            DicomEncoding::ImplicitVrLittleEndian,
            uids::IMPLICIT_VR_LITTLE_ENDIAN,
        ),
        (
            DicomEncoding::DeflatedExplicitVrLittleEndian,
            uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        ),
        (DicomEncoding::RleLossless, uids::RLE_LOSSLESS),
    ] {
        writer.encoding = encoding;
        let bytes = writer.to_bytes().unwrap();
        assert_eq!(transfer_syntax(&bytes), uid);
        assert_eq!(decode(&bytes).unwrap().image, reference, "{encoding:?}");
    }
}

#[test]
fn jpeg_baseline_decodes_close_to_the_original() {
    let gray = GrayImage::new(
        64,
        64,
        (0..64 * 64)
            .map(|i| (i % 64 + i / 64) as f32 / 126.0)
            .collect(),
    )
    .unwrap();
    let mut writer = DicomImage::from_gray(&gray, 8).unwrap();
    writer.encoding = DicomEncoding::JpegBaseline { quality: 95 };
    let bytes = writer.to_bytes().unwrap();
    assert_eq!(transfer_syntax(&bytes), uids::JPEG_BASELINE8_BIT);
    let image = decode(&bytes).unwrap().image;
    let mean_error: f32 = image
        .pixels
        .iter()
        .zip(&gray.pixels)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / gray.pixels.len() as f32;
    assert!(mean_error < 2.0 / 255.0, "mean error {mean_error}");
}

#[test]
fn files_without_preamble_or_meta_group_decode() {
    let writer = DicomImage::new(SIDE, SIDE, Samples::U16(ramp_u16(500)));
    let bytes = writer.to_bytes().unwrap();
    let reference = decode(&bytes).unwrap().image;
    assert_eq!(decode(&bytes[128..]).unwrap().image, reference);

    let object = dicom_object::OpenFileOptions::new()
        .from_reader(&bytes[128..])
        .unwrap();
    for syntax in [
        EXPLICIT_VR_LITTLE_ENDIAN.erased(),
        IMPLICIT_VR_LITTLE_ENDIAN.erased(),
    ] {
        let mut bare = Vec::new();
        object.write_dataset_with_ts(&mut bare, &syntax).unwrap();
        assert_eq!(decode(&bare).unwrap().image, reference, "{}", syntax.name());
    }
}

#[test]
fn shenzhen_png_survives_a_12_bit_monochrome1_dicom_round_trip() {
    let Some(images) = shenzhen_images() else {
        return;
    };
    let limits = DecodeLimits::default();
    let png = decode_file(&images.join("CHNCXR_0002_0.png"), &limits).unwrap();
    let mut writer = DicomImage::from_gray(&png.image, 12).unwrap();
    // store inverted, as MONOCHROME1 devices do; the decoder must invert it back
    if let Samples::U16(values) = &mut writer.samples {
        values.iter_mut().for_each(|v| *v = 4095 - *v);
    }
    writer.photometric = Photometric::Monochrome1;
    writer.window = Some(Window {
        center: 2048.0,
        width: 4096.0,
        function: VoiLutFunction::LinearExact,
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("CHNCXR_0002_0.dcm");
    writer.write_file(&path).unwrap();
    let dicom = decode_file(&path, &limits).unwrap();
    assert_eq!(dicom.info.bit_depth, 12);
    for (a, b) in dicom.image.pixels.iter().zip(&png.image.pixels) {
        assert_close(*a, *b, 1e-3);
    }
}

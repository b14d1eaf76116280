//! Bad input never panics: each kind of broken, hostile or odd file gives a `DecodeError`
//! that names the file and says what is wrong.

mod decode_support;

use std::path::Path;

use cxr_core::decode::dicom_writer::{DicomImage, Samples};
use cxr_core::{DecodeError, DecodeErrorKind, DecodeLimits, SourceFormat, decode_file};
use decode_support::{decode, jpeg, png, ramp};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use image::ExtendedColorType;

/// Writes `bytes` to a file named `name`, decodes it, and returns the error, checking on the
/// way that its message starts with the file's path.
fn decode_error_of(name: &str, bytes: &[u8]) -> DecodeErrorKind {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let error = decode_file(&path, &DecodeLimits::default()).unwrap_err();
    assert_names_file(&error, &path);
    error.kind
}

fn assert_names_file(error: &DecodeError, path: &Path) {
    assert_eq!(error.path, path);
    let message = error.to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
}

fn shenzhen_like_png() -> Vec<u8> {
    png(256, 256, ExtendedColorType::L8, &ramp(256, 256))
}

fn dicom_16x16() -> Vec<u8> {
    DicomImage::new(16, 16, Samples::U16(vec![1000; 256]))
        .to_bytes()
        .unwrap()
}

/// The 16 x 16 DICOM after `edit`, written back out with its preamble.
fn edited_dicom(edit: impl FnOnce(&mut dicom_object::DefaultDicomObject)) -> Vec<u8> {
    let mut object = dicom_object::OpenFileOptions::new()
        .from_reader(&dicom_16x16()[128..])
        .unwrap();
    edit(&mut object);
    let mut bytes = Vec::new();
    object.write_all(&mut bytes).unwrap();
    bytes
}

#[test]
fn zero_byte_file() {
    assert!(matches!(
        decode_error_of("empty.png", b""),
        DecodeErrorKind::Empty
    ));
}

#[test]
fn non_image_bytes() {
    let kind = decode_error_of("notes.png", b"patient list, not an image\n");
    assert!(matches!(kind, DecodeErrorKind::UnknownFormat), "{kind}");
}

#[test]
fn truncated_png() {
    let bytes = shenzhen_like_png();
    for cut in [12, 40, bytes.len() / 2, bytes.len() - 13] {
        let kind = decode_error_of("cut.png", &bytes[..cut]);
        assert!(
            matches!(
                kind,
                DecodeErrorKind::Truncated {
                    format: SourceFormat::Png,
                    ..
                }
            ),
            "cut at {cut}: {kind}"
        );
    }
}

#[test]
fn corrupt_png_body() {
    let mut bytes = shenzhen_like_png();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 64].fill(0xAB);
    let kind = decode_error_of("garbled.png", &bytes);
    assert!(
        matches!(
            kind,
            DecodeErrorKind::Corrupt {
                format: SourceFormat::Png,
                ..
            }
        ),
        "{kind}"
    );
}

#[test]
fn truncated_jpeg() {
    let bytes = jpeg(256, 256, ExtendedColorType::L8, &ramp(256, 256));
    for cut in [3, 100, bytes.len() / 2, bytes.len() - 2] {
        let kind = decode_error_of("cut.jpg", &bytes[..cut]);
        assert!(
            matches!(
                kind,
                DecodeErrorKind::Truncated {
                    format: SourceFormat::Jpeg,
                    ..
                }
            ),
            "cut at {cut}: {kind}"
        );
    }
}

#[test]
fn truncated_dicom() {
    let bytes = dicom_16x16();
    for cut in [132, 200, bytes.len() - 100, bytes.len() - 1] {
        let kind = decode_error_of("cut.dcm", &bytes[..cut]);
        assert!(
            matches!(
                kind,
                DecodeErrorKind::Truncated {
                    format: SourceFormat::Dicom,
                    ..
                }
            ),
            "cut at {cut}: {kind}"
        );
    }
}

#[test]
fn dicom_without_pixel_data() {
    let bytes = edited_dicom(|object| {
        object.remove_element(tags::PIXEL_DATA);
    });
    let kind = decode_error_of("no-pixels.dcm", &bytes);
    assert!(matches!(kind, DecodeErrorKind::NoPixelData), "{kind}");
}

/// A PNG whose header claims 100000 x 100000 pixels (40 GB as f32) over a tiny body.
fn png_bomb() -> Vec<u8> {
    let mut bytes = shenzhen_like_png();
    // IHDR data starts after the 8-byte signature, 4-byte length and 4-byte type
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &byte| {
        (0..8).fold(crc ^ u32::from(byte), |c, _| {
            if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            }
        })
    })
}

#[test]
fn decompression_bombs_are_refused_from_the_header() {
    let kind = decode_error_of("bomb.png", &png_bomb());
    assert!(
        matches!(
            kind,
            DecodeErrorKind::TooLarge {
                width: 100_000,
                height: 100_000,
                ..
            }
        ),
        "{kind}"
    );

    // JPEG: patch the frame header (SOF0: FF C0, length, precision, height, width)
    let mut bytes = jpeg(64, 64, ExtendedColorType::L8, &ramp(64, 64));
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bytes[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
    let kind = decode_error_of("bomb.jpg", &bytes);
    assert!(matches!(kind, DecodeErrorKind::TooLarge { .. }), "{kind}");

    let bytes = edited_dicom(|object| {
        for tag in [tags::ROWS, tags::COLUMNS] {
            object.put_element(DataElement::new(
                tag,
                VR::US,
                PrimitiveValue::from(65_535u16),
            ));
        }
    });
    let kind = decode_error_of("bomb.dcm", &bytes);
    assert!(matches!(kind, DecodeErrorKind::TooLarge { .. }), "{kind}");
}

#[test]
fn files_above_the_size_limit_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.png");
    std::fs::write(&path, shenzhen_like_png()).unwrap();
    let limits = DecodeLimits {
        max_file_bytes: 100,
        ..DecodeLimits::default()
    };
    let error = decode_file(&path, &limits).unwrap_err();
    assert!(matches!(
        error.kind,
        DecodeErrorKind::FileTooLarge { limit: 100, .. }
    ));
}

#[test]
fn tiny_images_are_too_small() {
    let kind = decode_error_of("dot.png", &png(1, 1, ExtendedColorType::L8, &[0]));
    assert!(
        matches!(
            kind,
            DecodeErrorKind::TooSmall {
                width: 1,
                height: 1,
                min_side: 16
            }
        ),
        "{kind}"
    );
}

#[test]
fn constant_images_decode_and_are_flagged() {
    let decoded = decode(&png(32, 32, ExtendedColorType::L8, &[0; 1024])).unwrap();
    assert!(decoded.image.is_constant());
    let flat_dicom = decode(&dicom_16x16()).unwrap();
    assert!(flat_dicom.image.is_constant());
    let varied = decode(&shenzhen_like_png()).unwrap();
    assert!(!varied.image.is_constant());
}

#[test]
fn directories_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let error = decode_file(dir.path(), &DecodeLimits::default()).unwrap_err();
    assert!(matches!(error.kind, DecodeErrorKind::NotAFile), "{error}");
    assert_names_file(&error, dir.path());

    let missing = dir.path().join("missing.png");
    let error = decode_file(&missing, &DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(&error.kind, DecodeErrorKind::Io(e) if e.kind() == std::io::ErrorKind::NotFound),
        "{error}"
    );
    assert_names_file(&error, &missing);
}

#[test]
fn unreadable_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.png");
    std::fs::write(&path, shenzhen_like_png()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&path).is_ok() {
        eprintln!("skipped: running as root, so file permissions do not stop reading");
        return;
    }
    let error = decode_file(&path, &DecodeLimits::default()).unwrap_err();
    assert!(
        matches!(&error.kind, DecodeErrorKind::Io(e) if e.kind() == std::io::ErrorKind::PermissionDenied),
        "{error}"
    );
    assert_names_file(&error, &path);
}

#[test]
fn paths_with_spaces_and_non_ascii() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("Röntgen Aufnahmen 胸部");
    std::fs::create_dir(&folder).unwrap();
    let good = folder.join("patient 1 – PA view.png");
    std::fs::write(&good, shenzhen_like_png()).unwrap();
    assert!(decode_file(&good, &DecodeLimits::default()).is_ok());

    let bad = folder.join("élève 2.dcm");
    std::fs::write(&bad, &dicom_16x16()[..300]).unwrap();
    let error = decode_file(&bad, &DecodeLimits::default()).unwrap_err();
    assert_names_file(&error, &bad);
    assert!(error.to_string().contains("élève 2.dcm"));
}

#[test]
fn undecodable_transfer_syntax_is_named() {
    // JPEG 2000 needs a C library this build leaves out; relabel the native pixels as such
    let bytes = edited_dicom(|object| {
        object.meta_mut().transfer_syntax = "1.2.840.10008.1.2.4.90\0".to_string();
        object.meta_mut().update_information_group_length();
    });
    let kind = decode_error_of("j2k.dcm", &bytes);
    assert!(
        matches!(&kind, DecodeErrorKind::UnsupportedTransferSyntax { uid, .. } if uid == "1.2.840.10008.1.2.4.90"),
        "{kind}"
    );
}

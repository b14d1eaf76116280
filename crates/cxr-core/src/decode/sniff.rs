//! Recognises PNG, JPEG and DICOM by their leading bytes, never by file extension
//! (hospital exports often have none, or a wrong one).

use crate::image::SourceFormat;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_SIGNATURE: &[u8] = &[0xFF, 0xD8, 0xFF];
const DICOM_MAGIC: &[u8] = b"DICM";
const DICOM_PREAMBLE_LEN: usize = 128;

/// How a DICOM byte stream begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DicomLayout {
    /// The standard file: 128-byte preamble, "DICM", file meta group, data set.
    Preamble,
    /// "DICM" and the file meta group without the preamble.
    NoPreamble,
    /// A bare data set (old ACR-NEMA style export): no preamble, no file meta group.
    BareDataset { explicit_vr: bool },
}

/// The container format found in a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Container {
    Png,
    Jpeg,
    Dicom(DicomLayout),
}

impl Container {
    pub(super) fn format(self) -> SourceFormat {
        match self {
            Self::Png => SourceFormat::Png,
            Self::Jpeg => SourceFormat::Jpeg,
            Self::Dicom(_) => SourceFormat::Dicom,
        }
    }
}

/// Identifies the container; `None` when the bytes start like none of the supported formats.
pub(super) fn sniff(bytes: &[u8]) -> Option<Container> {
    if bytes.starts_with(PNG_SIGNATURE) {
        Some(Container::Png)
    } else if bytes.starts_with(JPEG_SIGNATURE) {
        Some(Container::Jpeg)
    } else if bytes.get(DICOM_PREAMBLE_LEN..DICOM_PREAMBLE_LEN + 4) == Some(DICOM_MAGIC) {
        Some(Container::Dicom(DicomLayout::Preamble))
    } else if bytes.starts_with(DICOM_MAGIC) {
        Some(Container::Dicom(DicomLayout::NoPreamble))
    } else {
        bare_dataset(bytes).map(Container::Dicom)
    }
}

/// A bare data set almost always opens with an element of group 0008 (identification),
/// little endian, with a small element number; the next two bytes tell explicit from implicit VR.
fn bare_dataset(bytes: &[u8]) -> Option<DicomLayout> {
    let head = bytes.get(..8)?;
    let group = u16::from_le_bytes([head[0], head[1]]);
    let element = u16::from_le_bytes([head[2], head[3]]);
    if group != 0x0008 || element > 0x00FF {
        return None;
    }
    let explicit_vr = head[4].is_ascii_uppercase() && head[5].is_ascii_uppercase();
    Some(DicomLayout::BareDataset { explicit_vr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_signature() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(Container::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0]), Some(Container::Jpeg));

        let mut dicom = vec![0u8; 132];
        dicom[128..].copy_from_slice(b"DICM");
        assert_eq!(sniff(&dicom), Some(Container::Dicom(DicomLayout::Preamble)));
        assert_eq!(
            sniff(b"DICM\x02\x00\x00\x00"),
            Some(Container::Dicom(DicomLayout::NoPreamble))
        );
    }

    #[test]
    fn recognises_bare_datasets() {
        // (0008,0005) Specific Character Set, explicit VR "CS"
        assert_eq!(
            sniff(b"\x08\x00\x05\x00CS\x0a\x00"),
            Some(Container::Dicom(DicomLayout::BareDataset {
                explicit_vr: true
            }))
        );
        // (0008,0016) SOP Class UID, implicit VR: a 4-byte length follows
        assert_eq!(
            sniff(b"\x08\x00\x16\x00\x1a\x00\x00\x00"),
            Some(Container::Dicom(DicomLayout::BareDataset {
                explicit_vr: false
            }))
        );
    }

    #[test]
    fn rejects_other_bytes() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"GIF89a........"), None);
        assert_eq!(sniff(b"%PDF-1.7\n"), None);
        assert_eq!(sniff(&[0x89, b'P', b'N']), None);
    }
}

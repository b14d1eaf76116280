//! Keras weight files written by real Keras (tools/reference/keras): a `.keras` zip, a Keras 2
//! full-model `.h5` and a weights-only `.h5` of one tiny model must read to the same tensors.

use std::path::{Path, PathBuf};

use cxr_nn::import::keras::{KerasError, read_keras_weights};
use safetensors::SafeTensors;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras")
        .join(name)
}

#[test]
fn all_three_keras_formats_read_to_the_reference_tensors() {
    let expected_bytes = std::fs::read(fixture("tiny_expected.safetensors")).unwrap();
    let expected = SafeTensors::deserialize(&expected_bytes).unwrap();
    for file in ["tiny.keras", "tiny_keras2.h5", "tiny_keras2_weights.h5"] {
        let weights = read_keras_weights(&fixture(file)).unwrap();
        let mut names: Vec<&String> = weights.keys().collect();
        names.sort();
        let mut expected_names = expected.names();
        expected_names.sort();
        assert_eq!(names, expected_names, "{file}");
        for (name, tensor) in &weights {
            let view = expected.tensor(name).unwrap();
            assert_eq!(tensor.shape, view.shape(), "{file}: {name}");
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            assert_eq!(tensor.values, values, "{file}: {name}");
        }
    }
}

#[test]
fn a_file_that_is_not_keras_is_refused_by_name() {
    let err = read_keras_weights(&fixture("tiny_expected.safetensors")).unwrap_err();
    assert!(matches!(err, KerasError::UnknownFormat { .. }));
    assert!(
        err.to_string().contains("tiny_expected.safetensors"),
        "{err}"
    );
}

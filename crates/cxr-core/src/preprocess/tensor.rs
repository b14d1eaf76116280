//! The network input: a channels-first f32 buffer, made from a fitted gray image by the
//! spec's normalisation, with the gray plane replicated into each channel.

use crate::image::GrayImage;

use super::spec::PreprocessSpec;

/// One image as the network takes it: `data[c * height * width + y * width + x]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChwTensor {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl ChwTensor {
    /// `[channels, height, width]`, the order of `data`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// Channel `c` as a row-major plane.
    pub fn plane(&self, c: usize) -> &[f32] {
        let len = self.height * self.width;
        &self.data[c * len..(c + 1) * len]
    }
}

/// Normalises `image` (already at the spec's input size) into a tensor of `spec.channels`.
pub(crate) fn normalise(image: &GrayImage, spec: &PreprocessSpec) -> ChwTensor {
    let mut data = Vec::with_capacity(spec.channels * image.pixels.len());
    for c in 0..spec.channels {
        let (scale, offset) = spec.normalisation.scale_offset(c);
        data.extend(image.pixels.iter().map(|&p| p * scale + offset));
    }
    ChwTensor {
        channels: spec.channels,
        height: image.height,
        width: image.width,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::spec::Normalisation;

    #[test]
    fn gray_is_replicated_and_normalised_per_channel() {
        let image = GrayImage::new(2, 1, vec![0.0, 1.0]).unwrap();
        let spec = PreprocessSpec {
            input_size: crate::preprocess::InputSize {
                width: 2,
                height: 1,
            },
            normalisation: Normalisation::MeanStd {
                mean: vec![0.5, 0.0, 1.0],
                std: vec![0.5, 1.0, 2.0],
            },
            ..PreprocessSpec::default()
        };
        let tensor = normalise(&image, &spec);
        assert_eq!(tensor.shape(), [3, 1, 2]);
        assert_eq!(tensor.plane(0), &[-1.0, 1.0]);
        assert_eq!(tensor.plane(1), &[0.0, 1.0]);
        assert_eq!(tensor.plane(2), &[-0.5, 0.0]);
    }

    #[test]
    fn one_channel_gives_one_plane() {
        let image = GrayImage::filled(4, 3, 0.5);
        let spec = PreprocessSpec {
            channels: 1,
            normalisation: Normalisation::SymmetricUnit,
            ..PreprocessSpec::default()
        };
        let tensor = normalise(&image, &spec);
        assert_eq!(tensor.shape(), [1, 3, 4]);
        assert!(tensor.data.iter().all(|&v| v == 0.0));
    }
}

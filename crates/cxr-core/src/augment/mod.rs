//! Training-time augmentation with Keras ImageDataGenerator semantics (rotation, shift, zoom,
//! nearest fill, optional flip) plus brightness/contrast/gamma jitter and blur/noise; seeded
//! and reproducible.
//!
//! Two steps, so that a caller controls the randomness: [`AugmentConfig::sample`] draws the
//! parameters for one image from a seeded RNG, [`AugmentParams::apply`] applies them. The
//! geometry is in fractions of the image size, so the same parameters do the same thing to an
//! image before or after resizing. The preprocessing path applies them to the image already
//! fitted to the network's input size, as Keras did in the paper (see `crate::preprocess`).

mod affine;
mod intensity;
mod sharpness;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::image::GrayImage;

/// What to do with positions that fall outside the image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum FillMode {
    /// Repeat the border pixel (Keras' default).
    Nearest,
    /// A constant gray value in [0, 1].
    Constant { value: f32 },
}

/// Ranges to draw augmentation parameters from. Defaults are the paper's
/// ImageDataGenerator(rotation_range=10, width_shift_range=0.1, height_shift_range=0.1,
/// zoom_range=0.1), with flip and intensity jitter off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Rotation drawn uniformly from [-r, r] degrees.
    pub rotation_degrees: f32,
    /// Horizontal shift drawn from [-s, s] times the width.
    pub width_shift: f32,
    /// Vertical shift drawn from [-s, s] times the height.
    pub height_shift: f32,
    /// Zoom factors for each axis drawn independently from [1 - z, 1 + z] (Keras' sense:
    /// above 1 zooms out).
    pub zoom: f32,
    /// Mirror left-right with probability 1/2 (off for chest X-rays: the heart is on the left).
    pub horizontal_flip: bool,
    pub fill: FillMode,
    /// Added to every pixel: drawn from [-b, b].
    pub brightness: f32,
    /// Deviation from the mean scaled by a factor drawn from [1 - c, 1 + c].
    pub contrast: f32,
    /// Pixels raised to a power drawn from [1 - g, 1 + g].
    pub gamma: f32,
    /// Gaussian blur whose standard deviation is drawn from [0, b] times the shorter side
    /// (0.01 is 2.2 px at 224 px): a softer detector or a stronger downscale at another site.
    pub blur: f32,
    /// Additive Gaussian noise whose standard deviation (gray levels, 0..1) is drawn from
    /// [0, n]: a noisier detector or a lower dose.
    pub noise: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            rotation_degrees: 10.0,
            width_shift: 0.1,
            height_shift: 0.1,
            zoom: 0.1,
            horizontal_flip: false,
            fill: FillMode::Nearest,
            brightness: 0.0,
            contrast: 0.0,
            gamma: 0.0,
            blur: 0.0,
            noise: 0.0,
        }
    }
}

/// A configuration whose values cannot be sampled sensibly.
#[derive(Debug, thiserror::Error)]
#[error("invalid augmentation config: {0}")]
pub struct AugmentConfigError(String);

/// The drawn parameters for one image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentParams {
    /// Positive turns the content clockwise as displayed.
    pub rotation_degrees: f32,
    /// How far the content moves right, as a fraction of the width.
    pub shift_x: f32,
    /// How far the content moves down, as a fraction of the height.
    pub shift_y: f32,
    /// Sampling scale across the width (above 1 shrinks the content).
    pub zoom_x: f32,
    /// Sampling scale down the height.
    pub zoom_y: f32,
    pub flip: bool,
    pub fill: FillMode,
    pub brightness: f32,
    pub contrast: f32,
    pub gamma: f32,
    /// Blur standard deviation as a fraction of the shorter side; 0 for none.
    #[serde(default)]
    pub blur: f32,
    /// Noise standard deviation in gray levels; 0 for none.
    #[serde(default)]
    pub noise: f32,
    /// Seeds the noise pattern, so that the same parameters give the same picture.
    #[serde(default)]
    pub noise_seed: u64,
}

impl AugmentConfig {
    /// The paper's augmentation (the default).
    pub fn paper() -> Self {
        Self::default()
    }

    /// No augmentation: every sample is the identity.
    pub fn none() -> Self {
        Self {
            rotation_degrees: 0.0,
            width_shift: 0.0,
            height_shift: 0.0,
            zoom: 0.0,
            ..Self::default()
        }
    }

    /// Checks every range; `sample` never panics, but out-of-range values make no sense.
    pub fn validate(&self) -> Result<(), AugmentConfigError> {
        let ranges = [
            ("rotation_degrees", self.rotation_degrees, 180.0),
            ("width_shift", self.width_shift, 1.0),
            ("height_shift", self.height_shift, 1.0),
            ("zoom", self.zoom, 1.0),
            ("brightness", self.brightness, 1.0),
            ("contrast", self.contrast, 1.0),
            ("gamma", self.gamma, 1.0),
            ("blur", self.blur, 0.1),
            ("noise", self.noise, 0.5),
        ];
        for (name, value, below) in ranges {
            if !(0.0..below).contains(&value) {
                return Err(AugmentConfigError(format!(
                    "{name} must be in [0, {below}), not {value}"
                )));
            }
        }
        if let FillMode::Constant { value } = self.fill
            && !(0.0..=1.0).contains(&value)
        {
            return Err(AugmentConfigError(format!(
                "fill value must be in [0, 1], not {value}"
            )));
        }
        Ok(())
    }

    /// Draws one image's parameters. The Keras and intensity draws are always taken, so
    /// turning one of them on or off leaves the others' draws unchanged; blur and noise draw
    /// only when they are on, so that a config without them draws the same stream as before
    /// they existed (recipes keep reproducing their models).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> AugmentParams {
        let mut around =
            |centre: f32, spread: f32| centre + spread * (2.0 * rng.random::<f32>() - 1.0);
        let rotation_degrees = around(0.0, self.rotation_degrees);
        let shift_x = around(0.0, self.width_shift);
        let shift_y = around(0.0, self.height_shift);
        let zoom_x = around(1.0, self.zoom);
        let zoom_y = around(1.0, self.zoom);
        let flip = around(0.0, 1.0) < 0.0 && self.horizontal_flip;
        let brightness = around(0.0, self.brightness);
        let contrast = around(1.0, self.contrast);
        let gamma = around(1.0, self.gamma);
        let blur = match self.blur > 0.0 {
            true => self.blur * rng.random::<f32>(),
            false => 0.0,
        };
        let (noise, noise_seed) = match self.noise > 0.0 {
            true => (self.noise * rng.random::<f32>(), rng.random::<u64>()),
            false => (0.0, 0),
        };
        AugmentParams {
            rotation_degrees,
            shift_x,
            shift_y,
            zoom_x,
            zoom_y,
            flip,
            fill: self.fill,
            brightness,
            contrast,
            gamma,
            blur,
            noise,
            noise_seed,
        }
    }
}

impl AugmentParams {
    /// Parameters that change nothing.
    pub fn identity() -> Self {
        Self {
            rotation_degrees: 0.0,
            shift_x: 0.0,
            shift_y: 0.0,
            zoom_x: 1.0,
            zoom_y: 1.0,
            flip: false,
            fill: FillMode::Nearest,
            brightness: 0.0,
            contrast: 1.0,
            gamma: 1.0,
            blur: 0.0,
            noise: 0.0,
            noise_seed: 0,
        }
    }

    /// The same warp and flip without the intensity jitter, blur and noise: what to apply to
    /// a label map (a lung mask) so that it stays aligned with the image these parameters
    /// augment.
    pub fn geometric(&self) -> Self {
        Self {
            brightness: 0.0,
            contrast: 1.0,
            gamma: 1.0,
            blur: 0.0,
            noise: 0.0,
            noise_seed: 0,
            ..*self
        }
    }

    /// The augmented image: affine warp, then flip (Keras' order), then intensity jitter,
    /// then blur, then noise (the detector's blur comes before its noise).
    pub fn apply(&self, image: &GrayImage) -> GrayImage {
        let moves = self.rotation_degrees != 0.0
            || self.shift_x != 0.0
            || self.shift_y != 0.0
            || self.zoom_x != 1.0
            || self.zoom_y != 1.0;
        let mut out = if moves && !image.pixels.is_empty() {
            affine::warp(image, self)
        } else {
            image.clone()
        };
        if self.flip {
            for row in out.pixels.chunks_exact_mut(out.width.max(1)) {
                row.reverse();
            }
        }
        if self.brightness != 0.0 || self.contrast != 1.0 || self.gamma != 1.0 {
            intensity::jitter(&mut out, self);
        }
        if self.blur > 0.0 {
            let sigma = self.blur * out.width.min(out.height) as f32;
            out = sharpness::blur(&out, sigma);
        }
        if self.noise > 0.0 {
            sharpness::add_noise(&mut out, self.noise, self.noise_seed);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn textured(width: usize, height: usize) -> GrayImage {
        let pixels = (0..width * height)
            .map(|i| ((i * 31) % 97) as f32 / 96.0)
            .collect();
        GrayImage::new(width, height, pixels).unwrap()
    }

    #[test]
    fn same_seed_same_output_and_different_seeds_differ() {
        let config = AugmentConfig {
            brightness: 0.1,
            contrast: 0.1,
            gamma: 0.2,
            horizontal_flip: true,
            ..AugmentConfig::paper()
        };
        let image = textured(64, 48);
        let run = |seed: u64| {
            config
                .sample(&mut ChaCha8Rng::seed_from_u64(seed))
                .apply(&image)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn samples_stay_inside_the_configured_ranges() {
        let config = AugmentConfig::paper();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let samples: Vec<AugmentParams> = (0..2000).map(|_| config.sample(&mut rng)).collect();
        let spans = |f: fn(&AugmentParams) -> f32| {
            samples
                .iter()
                .map(f)
                .fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        let (lo, hi) = spans(|p| p.rotation_degrees);
        assert!(lo >= -10.0 && hi <= 10.0 && lo < -9.5 && hi > 9.5);
        let (lo, hi) = spans(|p| p.shift_x);
        assert!(lo >= -0.1 && hi <= 0.1 && lo < -0.09 && hi > 0.09);
        let (lo, hi) = spans(|p| p.zoom_y);
        assert!(lo >= 0.9 && hi <= 1.1 && lo < 0.91 && hi > 1.09);
        // Zoom is drawn per axis, independently.
        assert!(samples.iter().any(|p| (p.zoom_x - p.zoom_y).abs() > 0.05));
        assert!(
            samples
                .iter()
                .all(|p| !p.flip && p.brightness == 0.0 && p.gamma == 1.0)
        );
    }

    #[test]
    fn the_none_config_is_the_identity() {
        let image = textured(40, 30);
        let params = AugmentConfig::none().sample(&mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(params, AugmentParams::identity());
        assert_eq!(params.apply(&image), image);
    }

    #[test]
    fn enabling_jitter_leaves_the_geometric_draws_alone() {
        let with_jitter = AugmentConfig {
            brightness: 0.2,
            ..AugmentConfig::paper()
        };
        let plain = AugmentConfig::paper().sample(&mut ChaCha8Rng::seed_from_u64(5));
        let jittered = with_jitter.sample(&mut ChaCha8Rng::seed_from_u64(5));
        assert_eq!(
            (plain.rotation_degrees, plain.zoom_x),
            (jittered.rotation_degrees, jittered.zoom_x)
        );
        assert_ne!(jittered.brightness, 0.0);
    }

    #[test]
    fn without_blur_and_noise_each_sample_takes_the_nine_draws_it_always_took() {
        // Recipes from before blur and noise existed must draw the same augmentation stream.
        let config = AugmentConfig {
            gamma: 0.2,
            ..AugmentConfig::paper()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let _first = config.sample(&mut rng);
        let second = config.sample(&mut rng);
        let mut skipping = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..9 {
            let _: f32 = skipping.random();
        }
        assert_eq!(config.sample(&mut skipping), second);
    }

    #[test]
    fn blur_and_noise_are_drawn_in_their_ranges_and_leave_the_other_draws_alone() {
        let config = AugmentConfig {
            blur: 0.01,
            noise: 0.03,
            ..AugmentConfig::paper()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let samples: Vec<AugmentParams> = (0..500).map(|_| config.sample(&mut rng)).collect();
        assert!(samples.iter().all(|p| (0.0..=0.01).contains(&p.blur)));
        assert!(samples.iter().all(|p| (0.0..=0.03).contains(&p.noise)));
        assert!(samples.iter().any(|p| p.blur > 0.009) && samples.iter().any(|p| p.blur < 0.001));
        assert!(samples.iter().any(|p| p.noise > 0.027));
        let seeds: std::collections::HashSet<u64> = samples.iter().map(|p| p.noise_seed).collect();
        assert_eq!(seeds.len(), samples.len());
        let plain = AugmentConfig::paper().sample(&mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(
            AugmentParams {
                blur: 0.0,
                noise: 0.0,
                noise_seed: 0,
                ..samples[0]
            },
            plain
        );
    }

    #[test]
    fn blur_and_noise_change_the_picture_reproducibly_and_are_not_geometric() {
        let image = textured(48, 40);
        let params = AugmentParams {
            blur: 0.02,
            noise: 0.05,
            noise_seed: 7,
            ..AugmentParams::identity()
        };
        let augmented = params.apply(&image);
        assert_eq!(augmented, params.apply(&image));
        assert_ne!(augmented, image);
        let blurred = AugmentParams {
            blur: 0.02,
            ..AugmentParams::identity()
        }
        .apply(&image);
        // Blur flattens the texture: less spread around the mean.
        let spread = |img: &GrayImage| {
            let n = img.pixels.len() as f32;
            let mean = img.pixels.iter().sum::<f32>() / n;
            img.pixels.iter().map(|p| (p - mean).powi(2)).sum::<f32>() / n
        };
        assert!(spread(&blurred) < 0.5 * spread(&image));
        assert_eq!(params.geometric(), AugmentParams::identity().geometric());
        assert_eq!(params.geometric().apply(&image), image);
    }

    #[test]
    fn geometric_params_keep_the_warp_and_drop_the_jitter() {
        let config = AugmentConfig {
            brightness: 0.2,
            gamma: 0.3,
            ..AugmentConfig::paper()
        };
        let params = config.sample(&mut ChaCha8Rng::seed_from_u64(9));
        let geometric = params.geometric();
        assert_eq!(geometric.rotation_degrees, params.rotation_degrees);
        assert_eq!((geometric.brightness, geometric.gamma), (0.0, 1.0));
        let image = textured(32, 32);
        let warp_only = AugmentParams {
            rotation_degrees: params.rotation_degrees,
            shift_x: params.shift_x,
            shift_y: params.shift_y,
            zoom_x: params.zoom_x,
            zoom_y: params.zoom_y,
            ..AugmentParams::identity()
        };
        assert_eq!(geometric.apply(&image), warp_only.apply(&image));
    }

    #[test]
    fn flip_mirrors_rows() {
        let image = GrayImage::new(3, 2, vec![0.0, 0.5, 1.0, 0.1, 0.2, 0.3]).unwrap();
        let params = AugmentParams {
            flip: true,
            ..AugmentParams::identity()
        };
        assert_eq!(
            params.apply(&image).pixels,
            vec![1.0, 0.5, 0.0, 0.3, 0.2, 0.1]
        );
    }

    #[test]
    fn out_of_range_configs_are_refused() {
        assert!(AugmentConfig::paper().validate().is_ok());
        for bad in [
            AugmentConfig {
                zoom: 1.0,
                ..AugmentConfig::paper()
            },
            AugmentConfig {
                rotation_degrees: -1.0,
                ..AugmentConfig::paper()
            },
            AugmentConfig {
                gamma: f32::NAN,
                ..AugmentConfig::paper()
            },
            AugmentConfig {
                fill: FillMode::Constant { value: 2.0 },
                ..AugmentConfig::paper()
            },
            AugmentConfig {
                blur: 0.2,
                ..AugmentConfig::paper()
            },
            AugmentConfig {
                noise: -0.01,
                ..AugmentConfig::paper()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_json_fills_missing_fields_with_the_paper_defaults() {
        let config: AugmentConfig = serde_json::from_str(r#"{"brightness":0.1}"#).unwrap();
        assert_eq!(
            config,
            AugmentConfig {
                brightness: 0.1,
                ..AugmentConfig::paper()
            }
        );
    }
}

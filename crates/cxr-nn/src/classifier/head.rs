//! The paper's classification head on a backbone's feature map:
//! global average pooling -> Dense 512 -> ReLU -> BatchNorm -> Dropout 0.5 -> Dense 1 (a logit),
//! or Dense C (a softmax over classes) whose refer classes' log-odds is the screening logit.
//! With no hidden layer it is a linear head: pooling -> standardisation -> Dense.

use burn::module::{Module, Param, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, Relu};
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use cxr_core::dataset::ClassNames;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::batch::index_tensor;

/// What the last layer gives.
#[derive(Debug, Clone, PartialEq)]
pub enum HeadOutputs {
    /// One logit, read through a sigmoid (the paper).
    Binary,
    /// One logit per class, read through a softmax. A screening refers the classes `refer`.
    Softmax { classes: usize, refer: Vec<usize> },
}

impl HeadOutputs {
    /// Width of the last dense layer.
    pub fn width(&self) -> usize {
        match self {
            HeadOutputs::Binary => 1,
            HeadOutputs::Softmax { classes, .. } => *classes,
        }
    }

    /// A softmax over the classes `names`, referring the ones they refer.
    pub fn softmax(names: &ClassNames) -> Self {
        HeadOutputs::Softmax {
            classes: names.len(),
            refer: (0..names.len()).filter(|&c| names.refers(c)).collect(),
        }
    }
}

/// The head's shape: what the model card stores to rebuild it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadConfig {
    /// Channels of the feature map it reads.
    pub in_channels: usize,
    /// Width of the hidden dense layer (512 in the paper); 0 for a linear head, which
    /// standardises the pooled features instead (see [`Standardize`]).
    pub hidden: usize,
    /// Dropout rate before the last layer (0.5 in the paper).
    pub dropout: f64,
    pub outputs: HeadOutputs,
}

impl HeadConfig {
    /// The paper's head on `in_channels` features.
    pub fn paper(in_channels: usize) -> Self {
        Self {
            in_channels,
            hidden: 512,
            dropout: 0.5,
            outputs: HeadOutputs::Binary,
        }
    }

    /// [`HeadConfig::init_seeded`] with seed 0: for a head whose weights are loaded next, or
    /// do not matter. Training seeds its heads with the recipe's seed.
    pub fn init(&self, device: &Device) -> Head {
        self.init_seeded(0, device)
    }

    /// Keras' defaults where they differ from burn's: Glorot-uniform kernels, zero biases,
    /// BatchNorm epsilon 1e-3 and running-average momentum 0.99 (burn counts it as 0.01).
    /// The kernels come from a generator seeded with `seed`, not from the backend's
    /// process-wide stream, so that the same seed gives the same head whatever else the
    /// process draws.
    pub fn init_seeded(&self, seed: u64, device: &Device) -> Head {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut dense = |inputs: usize, outputs: usize| {
            let mut layer = LinearConfig::new(inputs, outputs)
                .with_initializer(Initializer::Zeros)
                .init(device);
            let limit = (6.0 / (inputs + outputs) as f64).sqrt();
            let kernel: Vec<f32> = (0..inputs * outputs)
                .map(|_| rng.random_range(-limit..limit) as f32)
                .collect();
            layer.weight = Param::from_tensor(Tensor::from_data(
                TensorData::new(kernel, [inputs, outputs]),
                device,
            ));
            layer
        };
        let linear = self.hidden == 0;
        let hidden = (!linear).then(|| dense(self.in_channels, self.hidden));
        let output_inputs = if linear {
            self.in_channels
        } else {
            self.hidden
        };
        let output = dense(output_inputs, self.outputs.width());
        Head {
            standardize: linear.then(|| Standardize::identity(self.in_channels, device)),
            hidden,
            activation: Relu::new(),
            norm: (!linear).then(|| {
                BatchNormConfig::new(self.hidden)
                    .with_epsilon(1e-3)
                    .with_momentum(0.01)
                    .init(device)
            }),
            dropout: self.dropout,
            output,
            outputs: self.outputs.clone(),
        }
    }
}

#[derive(Module, Debug)]
pub struct Head {
    /// A linear head's fixed centring and scaling of the pooled features; `None` in the
    /// paper's head, whose hidden BatchNorm does that work.
    pub standardize: Option<Standardize>,
    /// The paper's hidden layer (Dense -> ReLU -> BatchNorm); `None` in a linear head.
    pub hidden: Option<Linear>,
    pub activation: Relu,
    pub norm: Option<BatchNorm>,
    /// Dropout rate of the output layer's inputs in training (see
    /// [`Head::class_logits_training`]).
    #[module(skip)]
    pub dropout: f64,
    pub output: Linear,
    #[module(skip)]
    pub outputs: HeadOutputs,
}

impl Head {
    /// Feature map `[n, c, h, w]` to the screening logit `[n, 1]`: the log-odds that an image
    /// belongs to a class the screening refers. Grad-CAM and the thresholds read this.
    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        self.screening_logit(self.class_logits(features))
    }

    /// Feature map to one logit per class `[n, classes]`, whose softmax is the class
    /// probabilities. The binary head's logit `z` becomes `[0, z]`: the same probabilities and
    /// the same cross-entropy as the sigmoid of `z`.
    pub fn class_logits(&self, features: Tensor<4>) -> Tensor<2> {
        self.output_logits(self.hidden_units(features))
    }

    /// [`Head::class_logits`] as training computes it: each hidden unit dropped with the
    /// head's rate and the rest scaled up to keep the sum (Keras' dropout). The masks come
    /// from `rng`, not from the backend's process-wide stream, so that a training run draws
    /// the same masks whatever else the process does and wherever it resumes.
    pub fn class_logits_training(&self, features: Tensor<4>, rng: &mut impl Rng) -> Tensor<2> {
        let hidden = self.hidden_units(features);
        let [n, width] = hidden.dims();
        let hidden = if self.dropout > 0.0 {
            let mask = TensorData::new(dropout_mask(n * width, self.dropout, rng), [n, width]);
            let device = hidden.device();
            hidden * Tensor::from_data(mask, &device)
        } else {
            hidden
        };
        self.output_logits(hidden)
    }

    /// What the output layer reads: the pooled features through the hidden layer, its ReLU
    /// and its BatchNorm `[n, hidden]`, or (linear head) standardised `[n, channels]`.
    fn hidden_units(&self, features: Tensor<4>) -> Tensor<2> {
        let pooled = features.mean_dims(&[2, 3]).flatten(1, 3);
        let pooled = match &self.standardize {
            Some(standardize) => standardize.forward(pooled),
            None => pooled,
        };
        match (&self.hidden, &self.norm) {
            (Some(hidden), Some(norm)) => norm.forward(self.before_norm(hidden, pooled)),
            _ => pooled,
        }
    }

    /// The hidden layer and its ReLU on pooled features: what the BatchNorm normalises.
    fn before_norm(&self, hidden: &Linear, pooled: Tensor<2>) -> Tensor<2> {
        self.activation.forward(dense(hidden, pooled))
    }

    /// What the hidden BatchNorm reads for a feature map `[n, hidden]`; `None` in a linear
    /// head, which has none.
    pub fn activations_before_norm(&self, features: Tensor<4>) -> Option<Tensor<2>> {
        let hidden = self.hidden.as_ref().filter(|_| self.norm.is_some())?;
        Some(self.before_norm(hidden, features.mean_dims(&[2, 3]).flatten(1, 3)))
    }

    /// The head with its hidden BatchNorm's running statistics set to the mean and the
    /// (population) variance of `activations` `[n, hidden]` (from
    /// [`Head::activations_before_norm`]); a linear head is returned as it is.
    pub fn with_norm_statistics(mut self, activations: Tensor<2>) -> Result<Self, String> {
        let Some(norm) = self.norm.as_mut() else {
            return Ok(self);
        };
        if activations.dims()[0] == 0 {
            return Err("no activations to take BatchNorm statistics from".into());
        }
        // The column statistics `Standardize::fitted` takes, on the BatchNorm's own device.
        let (variance, mean) = activations
            .to_device(&norm.gamma.val().device())
            .var_mean_bias(0);
        norm.running_mean = RunningState::new(mean.flatten(0, 1));
        norm.running_var = RunningState::new(variance.flatten(0, 1));
        Ok(self)
    }

    /// Sum of the squared weights of the dense kernels (not biases, not BatchNorm): the L2
    /// penalty that training adds to the loss, times the recipe's `weight_decay`.
    pub fn kernel_squares(&self) -> Tensor<1> {
        let squares = |layer: &Linear| layer.weight.val().powf_scalar(2.0).sum();
        match &self.hidden {
            Some(hidden) => squares(hidden) + squares(&self.output),
            None => squares(&self.output),
        }
    }

    /// Sets a linear head's standardisation to the per-channel mean and spread of `pooled`
    /// `[n, channels]` (the training images' features); the paper's head is left as it is.
    pub fn fit_standardization(&mut self, pooled: Tensor<2>) {
        if let Some(standardize) = &mut self.standardize {
            *standardize = Standardize::fitted(pooled);
        }
    }

    fn output_logits(&self, hidden: Tensor<2>) -> Tensor<2> {
        let logits = dense(&self.output, hidden);
        match &self.outputs {
            HeadOutputs::Binary => Tensor::cat(vec![logits.zeros_like(), logits], 1),
            HeadOutputs::Softmax { .. } => logits,
        }
    }

    /// Class logits `[n, classes]` to the screening logit `[n, 1]`: log-sum-exp over the
    /// refer classes minus log-sum-exp over the rest.
    pub fn screening_logit(&self, class_logits: Tensor<2>) -> Tensor<2> {
        let (referred, others): (Vec<usize>, Vec<usize>) = match &self.outputs {
            HeadOutputs::Binary => (vec![1], vec![0]),
            HeadOutputs::Softmax { classes, refer } => {
                (0..*classes).partition(|class| refer.contains(class))
            }
        };
        let columns = |indices: Vec<usize>| {
            let device = class_logits.device();
            class_logits
                .clone()
                .select(1, index_tensor(&indices, &device))
        };
        log_sum_exp(columns(referred)) - log_sum_exp(columns(others))
    }
}

impl Head {
    /// The same head with its hidden matrix in whole numbers from -127 to 127, so that a model
    /// file can store it in 8 bits. Each hidden unit's column is divided by its own scale
    /// (its largest weight over 127) and the scale moves into the unit's bias and BatchNorm:
    /// ReLU passes a positive factor through, and BatchNorm's gamma times it and running mean
    /// over it undo it exactly. Only the rounding of each weight (at most half a step, 1/254 of
    /// its column's largest) moves the scores; a head already so written comes back unchanged,
    /// and a linear head (no hidden layer) as it is.
    pub fn with_integer_hidden(mut self) -> Result<Self, String> {
        let (Some(hidden), Some(norm)) = (self.hidden.as_mut(), self.norm.as_mut()) else {
            return Ok(self);
        };
        let device = hidden.weight.val().device();
        let [inputs, units] = hidden.weight.val().dims();
        let weight = floats(hidden.weight.val())?;
        let mut scales = vec![1.0f32; units];
        for (unit, scale) in scales.iter_mut().enumerate() {
            let largest = (0..inputs)
                .map(|row| weight[row * units + unit].abs())
                .fold(0.0f32, f32::max);
            if largest > 0.0 {
                *scale = largest / 127.0;
            }
        }
        let integers: Vec<f32> = weight
            .iter()
            .enumerate()
            // `+ 0.0` makes a rounded -0 the 0 that a byte holds.
            .map(|(i, w)| (w / scales[i % units]).round() + 0.0)
            .collect();
        let per_unit = |tensor: Tensor<1>, op: fn(f32, f32) -> f32| {
            let values: Vec<f32> = floats(tensor)?
                .iter()
                .zip(&scales)
                .map(|(v, s)| op(*v, *s))
                .collect();
            Ok::<_, String>(Tensor::<1>::from_data(
                TensorData::new(values, [units]),
                &device,
            ))
        };
        hidden.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(integers, [inputs, units]),
            &device,
        ));
        if let Some(bias) = hidden.bias.take() {
            hidden.bias = Some(Param::from_tensor(per_unit(bias.val(), |b, s| b / s)?));
        }
        norm.gamma = Param::from_tensor(per_unit(norm.gamma.val(), |g, s| g * s)?);
        norm.running_mean = RunningState::new(per_unit(norm.running_mean.value(), |m, s| m / s)?);
        Ok(self)
    }
}

/// An f32 tensor's values, flat.
fn floats<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>, String> {
    tensor
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|err| format!("{err:?}"))
}

/// `layer` on rows `[n, k]`, giving each row the same bits whatever its batch mates.
/// The matrix product takes another summation order for a single row (a matrix-vector
/// kernel) than for two or more, so a lone image scored slightly differently from the same
/// image in a batch; a lone row is scored as a pair of itself instead (the head is tiny).
fn dense(layer: &Linear, rows: Tensor<2>) -> Tensor<2> {
    match rows.dims()[0] {
        1 => {
            let pair = layer.forward(Tensor::cat(vec![rows.clone(), rows], 0));
            let width = pair.dims()[1];
            pair.slice([0..1, 0..width])
        }
        _ => layer.forward(rows),
    }
}

/// Fixed per-channel `(x - mean) * scale` on pooled features: what makes one L2 penalty and
/// one learning rate suit every channel of a linear head. Set from the training images'
/// features, never trained (gradients stop here), stored in the model file with the head.
#[derive(Module, Debug)]
pub struct Standardize {
    pub mean: Param<Tensor<1>>,
    /// One over the standard deviation.
    pub scale: Param<Tensor<1>>,
}

impl Standardize {
    /// Leaves features as they are, until [`Standardize::fitted`] replaces it.
    fn identity(channels: usize, device: &Device) -> Self {
        Self {
            mean: Param::from_tensor(Tensor::zeros([channels], device)),
            scale: Param::from_tensor(Tensor::ones([channels], device)),
        }
    }

    /// Centring and scaling that give each column of `pooled` `[n, channels]` mean 0 and
    /// standard deviation 1; a constant column is only centred.
    pub fn fitted(pooled: Tensor<2>) -> Self {
        let (variance, mean) = pooled.var_mean_bias(0);
        let spread = variance.sqrt();
        // Constant up to rounding (relative to its size, as scikit-learn judges it): such a
        // channel is 0 after centring, and dividing by its rounding noise would amplify it.
        let constant = spread.clone().lower_equal(mean.clone().abs() * 1e-5);
        let scale = spread.mask_fill(constant, 1.0).recip();
        Self {
            mean: Param::from_tensor(mean.flatten(0, 1)),
            scale: Param::from_tensor(scale.flatten(0, 1)),
        }
    }

    fn forward(&self, pooled: Tensor<2>) -> Tensor<2> {
        let mean = self.mean.val().detach().unsqueeze_dim(0);
        let scale = self.scale.val().detach().unsqueeze_dim(0);
        (pooled - mean) * scale
    }
}

/// `count` multipliers: 0 with probability `rate`, else `1 / (1 - rate)`.
fn dropout_mask(count: usize, rate: f64, rng: &mut impl Rng) -> Vec<f32> {
    let kept = (1.0 / (1.0 - rate)) as f32;
    (0..count)
        .map(|_| if rng.random_bool(rate) { 0.0 } else { kept })
        .collect()
}

/// A head's probabilities for a batch of images: of being referred, and of each class.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    pub screening: Vec<f64>,
    /// One row per image, one column per class.
    pub classes: Vec<Vec<f64>>,
}

impl Scores {
    /// Appends another batch's scores.
    pub fn extend(&mut self, other: Scores) {
        self.screening.extend(other.screening);
        self.classes.extend(other.classes);
    }
}

impl Head {
    /// Class logits `[n, classes]` from [`Head::class_logits`] to probabilities.
    pub fn scores(&self, class_logits: Tensor<2>) -> Result<Scores, String> {
        let screening = sigmoid(self.screening_logit(class_logits.clone()));
        Ok(Scores {
            screening: rows(screening)?.into_iter().map(|row| row[0]).collect(),
            classes: rows(softmax(class_logits, 1))?,
        })
    }
}

/// A `[n, k]` tensor as `n` rows.
pub fn rows(values: Tensor<2>) -> Result<Vec<Vec<f64>>, String> {
    let [_, width] = values.dims();
    Ok(floats(values)?
        .chunks(width.max(1))
        .map(|row| row.iter().map(|&v| f64::from(v)).collect())
        .collect())
}

/// `log(sum(exp(x)))` over each row `[n, k]` to `[n, 1]`, shifted by the row maximum so that
/// nothing overflows; one column gives that column back exactly.
pub fn log_sum_exp(x: Tensor<2>) -> Tensor<2> {
    let max = x.clone().max_dim(1);
    max.clone() + (x - max).exp().sum_dim(1).log()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{inference_device, training_device};
    use burn::tensor::Distribution;

    #[test]
    fn pooled_features_become_one_logit_per_image() {
        let device = inference_device();
        let head = HeadConfig::paper(16).init(&device);
        let features = Tensor::<4>::random([3, 16, 2, 2], Distribution::Normal(0.0, 1.0), &device);
        assert_eq!(head.forward(features.clone()).dims(), [3, 1]);
        // Pooling first: a 1x1 map of the channel means gives the same logits.
        let pooled = features.clone().mean_dims(&[2, 3]);
        let diff = (head.forward(features) - head.forward(pooled)).abs().max();
        assert!(diff.into_scalar::<f32>() < 1e-5);
    }

    #[test]
    fn the_screening_logit_is_the_log_odds_of_the_refer_classes() {
        let device = inference_device();
        let features = Tensor::<4>::random([4, 16, 2, 2], Distribution::Normal(0.0, 1.0), &device);
        // Binary: the class logits are [0, z] and the screening logit is z itself.
        let binary = HeadConfig::paper(16).init(&device);
        let class_logits = binary.class_logits(features.clone());
        assert_eq!(class_logits.dims(), [4, 2]);
        let z = binary.forward(features.clone());
        let second = class_logits.clone().slice([0..4, 1..2]);
        assert_eq!((z - second).abs().max().into_scalar::<f32>(), 0.0);
        // Softmax over three classes referring classes 1 and 2: sigmoid of the screening logit
        // is their total probability.
        let config = HeadConfig {
            outputs: HeadOutputs::Softmax {
                classes: 3,
                refer: vec![1, 2],
            },
            ..HeadConfig::paper(16)
        };
        let head = config.init(&device);
        let logits = head.class_logits(features.clone());
        assert_eq!(logits.dims(), [4, 3]);
        let probabilities = softmax(logits, 1);
        let referred = probabilities.slice([0..4, 1..3]).sum_dim(1);
        let screening = sigmoid(head.forward(features));
        let diff = (referred - screening).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn an_images_scores_do_not_depend_on_its_batch_mates() {
        let device = inference_device();
        // As wide as EfficientNet-Lite0's features: a short sum may come out the same anyway.
        let head = HeadConfig::paper(1280).init(&device);
        let one = Tensor::<4>::random([1, 1280, 2, 2], Distribution::Normal(0.0, 1.0), &device);
        let alone = head.class_logits(one.clone()).into_data();
        for mates in [1, 2, 31] {
            let others = Tensor::<4>::random([mates, 1280, 2, 2], Distribution::Default, &device);
            let batch = head.class_logits(Tensor::cat(vec![others, one.clone()], 0));
            let last = batch.slice([mates..mates + 1, 0..2]).into_data();
            // Bit for bit: the server batches whichever requests are waiting together.
            assert_eq!(alone, last, "{mates} batch mates");
        }
    }

    /// A paper head on `channels` features whose bias and BatchNorm are far from their
    /// initial values, as after training, so that a scale folded wrongly shows.
    fn trained_looking_head(channels: usize, device: &Device) -> Head {
        let mut head = HeadConfig::paper(channels).init_seeded(7, device);
        let hidden = head.hidden.as_mut().expect("hidden layer");
        let units = hidden.weight.val().dims()[1];
        let random = |low: f64, high: f64| {
            Tensor::<1>::random([units], Distribution::Uniform(low, high), device)
        };
        hidden.bias = Some(Param::from_tensor(random(-0.5, 0.5)));
        let norm = head.norm.as_mut().expect("batchnorm");
        norm.gamma = Param::from_tensor(random(0.5, 2.0));
        norm.beta = Param::from_tensor(random(-1.0, 1.0));
        norm.running_mean = RunningState::new(random(0.0, 1.0));
        norm.running_var = RunningState::new(random(0.1, 2.0));
        head
    }

    #[test]
    fn an_integer_hidden_matrix_keeps_the_scores_and_is_written_once() {
        let device = inference_device();
        let head = trained_looking_head(1280, &device);
        let features =
            Tensor::<4>::random([8, 1280, 1, 1], Distribution::Normal(0.5, 1.0), &device);
        let before = sigmoid(head.forward(features.clone()));
        let integer = head.clone().with_integer_hidden().expect("quantise");

        let weights =
            |head: &Head| floats(head.hidden.as_ref().expect("hidden").weight.val()).expect("f32");
        let whole = weights(&integer);
        assert!(whole.iter().all(|w| w.fract() == 0.0 && w.abs() <= 127.0));
        // Each unit's largest weight becomes 127: all of a byte's range is used.
        for unit in 0..512 {
            let largest = (0..1280)
                .map(|row| whole[row * 512 + unit].abs())
                .fold(0.0, f32::max);
            assert_eq!(largest, 127.0, "unit {unit}");
        }
        // The folding is exact: the head with each weight rounded to its unit's grid in
        // place (whole number times the unit's scale) gives the same probabilities.
        let mut rounded = head.clone();
        let original = weights(&head);
        let scales: Vec<f32> = (0..512)
            .map(|unit| {
                let largest = (0..1280).map(|row| original[row * 512 + unit].abs());
                largest.fold(0.0, f32::max) / 127.0
            })
            .collect();
        let on_grid: Vec<f32> = whole
            .iter()
            .enumerate()
            .map(|(i, w)| w * scales[i % 512])
            .collect();
        rounded.hidden.as_mut().expect("hidden").weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(on_grid, [1280, 512]),
            &device,
        ));
        let after = sigmoid(integer.forward(features.clone()));
        let rounded = sigmoid(rounded.forward(features.clone()));
        let fold_error = (after.clone() - rounded).abs().max().into_scalar::<f32>();
        assert!(
            fold_error < 1e-5,
            "the folded scales moved probabilities by {fold_error}"
        );
        // And the rounding moves them a little.
        let moved = (after.clone() - before).abs().max().into_scalar::<f32>();
        assert!(moved < 1e-2, "probabilities moved by {moved}");

        // Written again, nothing changes: re-saving a loaded file rounds nothing.
        let again = integer
            .clone()
            .with_integer_hidden()
            .expect("quantise again");
        assert_eq!(weights(&again), whole);
        let vector = |t: Tensor<1>| floats(t).expect("f32");
        let norms = |head: &Head| {
            let norm = head.norm.as_ref().expect("batchnorm");
            (vector(norm.gamma.val()), vector(norm.running_mean.value()))
        };
        assert_eq!(norms(&again), norms(&integer));
        let again_scores = sigmoid(again.forward(features));
        assert_eq!(again_scores.into_data(), after.into_data());
    }

    #[test]
    fn statistics_taken_from_a_batch_normalise_that_batch_exactly() {
        let device = inference_device();
        let head = HeadConfig::paper(32).init_seeded(3, &device);
        let features = Tensor::<4>::random([40, 32, 2, 2], Distribution::Normal(0.5, 1.0), &device);
        let activations = head
            .activations_before_norm(features.clone())
            .expect("the paper's head has a hidden BatchNorm");
        assert_eq!(activations.dims(), [40, 512]);
        let column = |values: &[f32], unit: usize| -> (f64, f64) {
            let column: Vec<f64> = values
                .iter()
                .skip(unit)
                .step_by(512)
                .map(|&v| v as f64)
                .collect();
            let mean = column.iter().sum::<f64>() / 40.0;
            let variance = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 40.0;
            (mean, variance)
        };
        let inputs = floats(activations.clone()).expect("f32");
        // Fresh statistics (mean 0, variance 1) leave the units where ReLU put them.
        let stale = floats(head.hidden_units(features.clone())).expect("f32");
        let refreshed = head
            .clone()
            .with_norm_statistics(activations)
            .expect("statistics");
        let units = floats(refreshed.hidden_units(features)).expect("f32");
        assert_ne!(stale, units);
        // gamma 1 and beta 0: every unit that fires comes out with mean 0 and variance
        // var / (var + eps) (BatchNorm's epsilon 1e-3).
        let mut fired = 0;
        for unit in 0..512 {
            let (_, input_variance) = column(&inputs, unit);
            let (mean, variance) = column(&units, unit);
            assert!(mean.abs() < 1e-4, "unit {unit}: mean {mean}");
            let expected = input_variance / (input_variance + 1e-3);
            assert!(
                (variance - expected).abs() < 1e-3 * expected + 1e-6,
                "unit {unit}: {variance} {expected}"
            );
            fired += usize::from(input_variance > 0.0);
        }
        assert!(fired > 400, "{fired} of 512 units fired");
        let empty = Tensor::<2>::zeros([0, 512], &device);
        assert!(head.with_norm_statistics(empty).is_err());
    }

    #[test]
    fn a_linear_head_has_no_hidden_matrix_to_write_in_integers() {
        let device = inference_device();
        let linear = HeadConfig {
            hidden: 0,
            ..HeadConfig::paper(16)
        }
        .init(&device);
        let features = Tensor::<4>::random([3, 16, 1, 1], Distribution::Normal(0.0, 1.0), &device);
        let before = linear.forward(features.clone()).into_data();
        let after = linear.with_integer_hidden().expect("as it is");
        assert_eq!(after.forward(features.clone()).into_data(), before);
        // Nor a BatchNorm whose statistics could be refreshed.
        assert!(after.activations_before_norm(features.clone()).is_none());
        let same = after
            .with_norm_statistics(Tensor::<2>::ones([3, 16], &device))
            .expect("as it is");
        assert_eq!(same.forward(features).into_data(), before);
    }

    #[test]
    fn training_drops_hidden_units_with_masks_from_the_given_generator() {
        let mask = dropout_mask(20_000, 0.5, &mut ChaCha8Rng::seed_from_u64(1));
        assert!(mask.iter().all(|&m| m == 0.0 || m == 2.0));
        let dropped = mask.iter().filter(|&&m| m == 0.0).count() as f64 / 20_000.0;
        assert!((dropped - 0.5).abs() < 0.02, "{dropped}");

        let device = training_device();
        let head = HeadConfig::paper(64).init(&device).train();
        let features = Tensor::<4>::random([8, 64, 1, 1], Distribution::Normal(0.0, 1.0), &device);
        let logits = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            head.class_logits_training(features.clone(), &mut rng)
                .into_data()
        };
        assert_eq!(logits(7), logits(7));
        assert_ne!(logits(7), logits(8));
        // Without dropout, training's logits are the plain ones (BatchNorm on batch figures
        // in both, on the training device).
        let undropped = Head {
            dropout: 0.0,
            ..head.clone()
        };
        let plain = undropped.class_logits(features.clone()).into_data();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let training = undropped
            .class_logits_training(features, &mut rng)
            .into_data();
        assert_eq!(plain, training);
    }

    #[test]
    fn log_sum_exp_does_not_overflow() {
        let device = inference_device();
        let x = Tensor::<2>::from_data(TensorData::new(vec![1000.0f32, 1000.0], [1, 2]), &device);
        let value = log_sum_exp(x).into_scalar::<f32>();
        assert!((value - (1000.0 + 2f32.ln())).abs() < 1e-3, "{value}");
    }

    #[test]
    fn the_initial_kernels_are_glorot_uniform_and_follow_the_seed() {
        let device = inference_device();
        let kernel = |seed| {
            HeadConfig::paper(96)
                .init_seeded(seed, &device)
                .hidden
                .expect("the paper's head")
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        let first = kernel(1);
        assert_eq!(first, kernel(1));
        assert_ne!(first, kernel(2));
        let limit = (6.0f32 / (96 + 512) as f32).sqrt();
        assert!(first.iter().all(|w| w.abs() <= limit));
        // Uniform on [-limit, limit]: mean 0, standard deviation limit / sqrt(3).
        let n = first.len() as f32;
        let mean = first.iter().sum::<f32>() / n;
        let sd = (first.iter().map(|w| (w - mean).powi(2)).sum::<f32>() / n).sqrt();
        assert!(mean.abs() < 0.01 * limit, "{mean}");
        assert!((sd / (limit / 3f32.sqrt()) - 1.0).abs() < 0.02, "{sd}");
    }

    #[test]
    fn biases_start_at_zero_like_keras() {
        let head = HeadConfig::paper(8).init(&inference_device());
        let bias = head.output.bias.as_ref().map(|b| b.val().abs().sum());
        assert_eq!(bias.map(|b| b.into_scalar::<f32>()), Some(0.0));
    }

    #[test]
    fn a_linear_head_standardises_its_features_and_trains_only_its_output_layer() {
        let device = training_device();
        let config = HeadConfig {
            hidden: 0,
            dropout: 0.0,
            ..HeadConfig::paper(3)
        };
        let mut head = config.init(&device).train();
        assert!(head.hidden.is_none() && head.norm.is_none());
        // Channels of very different scales, one constant.
        let pooled = Tensor::<2>::from_data(
            TensorData::new(
                vec![1.0f32, 100.0, 7.0, 3.0, 300.0, 7.0, 5.0, 500.0, 7.0],
                [3, 3],
            ),
            &device,
        );
        head.fit_standardization(pooled.clone());
        let standardized = head.hidden_units(pooled.clone().reshape([3, 3, 1, 1]));
        let values = standardized
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        let spread = (2.0f32 / 3.0).sqrt();
        let expected = [
            -1.0 / spread,
            -1.0 / spread,
            0.0,
            0.0,
            0.0,
            0.0,
            1.0 / spread,
            1.0 / spread,
            0.0,
        ];
        for (got, want) in values.iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{values:?}");
        }

        let logits = head.class_logits(pooled.reshape([3, 3, 1, 1]));
        let loss = logits.sum() + head.kernel_squares();
        let grads = loss.backward();
        let standardize = head
            .standardize
            .as_ref()
            .expect("a linear head standardises");
        assert!(standardize.mean.grad(&grads).is_none());
        assert!(standardize.scale.grad(&grads).is_none());
        assert!(head.output.weight.grad(&grads).is_some());

        let kernel: Vec<f32> = head
            .output
            .weight
            .val()
            .into_data()
            .try_to_vec()
            .expect("f32");
        let squares = head.kernel_squares().into_scalar::<f32>();
        let want: f32 = kernel.iter().map(|w| w * w).sum();
        assert!((squares - want).abs() < 1e-6, "{squares} vs {want}");
    }
}

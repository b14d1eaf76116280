//! Learning-rate schedule: Keras' ReduceLROnPlateau (cooldown 0) on the recipe's monitored
//! figure, validation accuracy as in the paper by default, or a cosine decay over each phase;
//! its state is plain data for checkpoints.

use serde::{Deserialize, Serialize};

use super::recipe::{Monitor, ScheduleKind, ScheduleRecipe};

/// The learning rate of epoch `epoch` (from 0) of a phase of `epochs` that starts at `start`:
/// the plateau schedule's current rate, or the cosine's value at that epoch. The cosine is a
/// function of the epoch alone, so a resumed run takes it up where it stopped.
pub fn learning_rate(
    recipe: &ScheduleRecipe,
    plateau: &Plateau,
    start: f64,
    epoch: usize,
    epochs: usize,
) -> f64 {
    match recipe.kind {
        ScheduleKind::Plateau => plateau.learning_rate,
        ScheduleKind::Cosine => {
            let floor = recipe.min_learning_rate.min(start);
            let progress = epoch as f64 / epochs.max(1) as f64;
            floor + (start - floor) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
        }
    }
}

/// The schedule's state between epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plateau {
    pub learning_rate: f64,
    /// Best value of the monitored figure seen in this phase.
    pub best: Option<f64>,
    /// Epochs since `best` last improved by more than `min_delta`.
    pub wait: usize,
}

impl Plateau {
    pub fn new(learning_rate: f64) -> Self {
        Self {
            learning_rate,
            best: None,
            wait: 0,
        }
    }

    /// Records an epoch's value of the monitored figure (`None`: undefined, which counts as no
    /// improvement) and returns the learning rate for the next epoch. With no figure
    /// watched (`monitor = "none"`) the rate never changes.
    pub fn observe(&mut self, value: Option<f64>, recipe: &ScheduleRecipe) -> f64 {
        if recipe.monitor == Monitor::None {
            return self.learning_rate;
        }
        let improved = value.filter(|&value| {
            self.best
                .is_none_or(|best| recipe.monitor.improves(value, best, recipe.min_delta))
        });
        if let Some(value) = improved {
            self.best = Some(value);
            self.wait = 0;
        } else {
            self.wait += 1;
            if self.wait >= recipe.patience && self.learning_rate > recipe.min_learning_rate {
                self.learning_rate =
                    (self.learning_rate * recipe.factor).max(recipe.min_learning_rate);
                self.wait = 0;
            }
        }
        self.learning_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::recipe::Monitor;

    #[test]
    fn the_rate_drops_tenfold_after_three_flat_epochs() {
        let recipe = ScheduleRecipe::default();
        let mut plateau = Plateau::new(1e-4);
        let rates: Vec<f64> = [0.80, 0.85, 0.85, 0.84, 0.85, 0.85, 0.90, 0.90]
            .iter()
            .map(|&acc| plateau.observe(Some(acc), &recipe))
            .collect();
        let expected = [1e-4, 1e-4, 1e-4, 1e-4, 1e-5, 1e-5, 1e-5, 1e-5];
        for (rate, want) in rates.iter().zip(expected) {
            assert!((rate - want).abs() < 1e-12, "{rates:?}");
        }
        assert_eq!(plateau.best, Some(0.90));
    }

    #[test]
    fn the_cosine_falls_from_the_start_to_the_floor_whatever_the_figure_does() {
        let recipe = ScheduleRecipe {
            kind: ScheduleKind::Cosine,
            min_learning_rate: 1e-6,
            ..ScheduleRecipe::default()
        };
        let mut plateau = Plateau::new(1e-4);
        let rates: Vec<f64> = (0..4)
            .map(|epoch| {
                // Flat figures would cut a plateau schedule's rate; the cosine ignores them.
                plateau.observe(Some(0.5), &recipe);
                learning_rate(&recipe, &plateau, 1e-4, epoch, 4)
            })
            .collect();
        let half = 1e-6 + (1e-4 - 1e-6) / 2.0;
        let expected = [1e-4, 1e-6 + (1e-4 - 1e-6) * 0.853_553_390_593_273_8, half];
        for (rate, want) in rates.iter().zip(expected) {
            assert!((rate - want).abs() < 1e-12, "{rates:?}");
        }
        assert!(rates[3] < half && rates[3] > 1e-6, "{rates:?}");
        let plain = ScheduleRecipe::default();
        assert_eq!(
            learning_rate(&plain, &plateau, 1e-4, 3, 4),
            plateau.learning_rate
        );
    }

    #[test]
    fn watching_nothing_keeps_the_rate() {
        let recipe = ScheduleRecipe {
            monitor: Monitor::None,
            patience: 1,
            ..ScheduleRecipe::default()
        };
        let mut plateau = Plateau::new(1e-3);
        for _ in 0..5 {
            assert_eq!(plateau.observe(None, &recipe), 1e-3);
        }
    }

    #[test]
    fn the_rate_never_falls_below_the_floor() {
        let recipe = ScheduleRecipe {
            patience: 1,
            min_learning_rate: 5e-5,
            ..ScheduleRecipe::default()
        };
        let mut plateau = Plateau::new(1e-4);
        for _ in 0..5 {
            plateau.observe(Some(0.5), &recipe);
        }
        assert_eq!(plateau.learning_rate, 5e-5);
    }

    #[test]
    fn a_falling_loss_is_progress_and_a_rising_one_is_not() {
        let recipe = ScheduleRecipe {
            monitor: Monitor::ValLoss,
            patience: 2,
            ..ScheduleRecipe::default()
        };
        let mut plateau = Plateau::new(1e-3);
        // Falling for four epochs: no drop (accuracy's mode "max" would drop after two).
        for loss in [0.7, 0.6, 0.5, 0.4] {
            assert_eq!(plateau.observe(Some(loss), &recipe), 1e-3);
        }
        assert_eq!(plateau.best, Some(0.4));
        assert_eq!(plateau.observe(Some(0.45), &recipe), 1e-3);
        let dropped = plateau.observe(Some(0.41), &recipe);
        assert!((dropped - 1e-4).abs() < 1e-15, "{dropped}");
    }

    #[test]
    fn an_undefined_figure_counts_as_no_improvement() {
        let recipe = ScheduleRecipe {
            monitor: Monitor::ValAuc,
            patience: 2,
            ..ScheduleRecipe::default()
        };
        let mut plateau = Plateau::new(1e-3);
        plateau.observe(None, &recipe);
        assert_eq!((plateau.best, plateau.wait), (None, 1));
        plateau.observe(Some(0.8), &recipe);
        assert_eq!((plateau.best, plateau.wait), (Some(0.8), 0));
        plateau.observe(None, &recipe);
        let rate = plateau.observe(None, &recipe);
        assert!((rate - 1e-4).abs() < 1e-15, "{rate}");
    }
}

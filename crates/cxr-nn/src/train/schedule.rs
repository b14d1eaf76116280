//! Learning-rate schedule: Keras' ReduceLROnPlateau on validation accuracy (mode max,
//! cooldown 0), as the paper used it; its state is plain data so checkpoints can keep it.

use serde::{Deserialize, Serialize};

use super::recipe::ScheduleRecipe;

/// The schedule's state between epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plateau {
    pub learning_rate: f64,
    /// Best validation accuracy seen in this phase.
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

    /// Records an epoch's validation accuracy and returns the learning rate for the next one.
    pub fn observe(&mut self, accuracy: f64, recipe: &ScheduleRecipe) -> f64 {
        let improved = self
            .best
            .is_none_or(|best| accuracy - recipe.min_delta > best);
        if improved {
            self.best = Some(accuracy);
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

    #[test]
    fn the_rate_drops_tenfold_after_three_flat_epochs() {
        let recipe = ScheduleRecipe::default();
        let mut plateau = Plateau::new(1e-4);
        let rates: Vec<f64> = [0.80, 0.85, 0.85, 0.84, 0.85, 0.85, 0.90, 0.90]
            .iter()
            .map(|&acc| plateau.observe(acc, &recipe))
            .collect();
        let expected = [1e-4, 1e-4, 1e-4, 1e-4, 1e-5, 1e-5, 1e-5, 1e-5];
        for (rate, want) in rates.iter().zip(expected) {
            assert!((rate - want).abs() < 1e-12, "{rates:?}");
        }
        assert_eq!(plateau.best, Some(0.90));
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
            plateau.observe(0.5, &recipe);
        }
        assert_eq!(plateau.learning_rate, 5e-5);
    }
}

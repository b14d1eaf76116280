//! Lung zones: each lung cut into upper, middle and lower thirds of its height, so that a heat
//! map or a finding can be reported as "right upper zone" as radiologists do.

use serde::{Deserialize, Serialize};

use super::LungMask;
use super::components::components;

/// The patient's side. On a frontal (PA) X-ray the patient's right lung is on the image's left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Right,
    Left,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Upper,
    Middle,
    Lower,
}

/// One of the six zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Zone {
    pub side: Side,
    pub level: Level,
}

impl Zone {
    pub const ALL: [Zone; 6] = [
        Zone::new(Side::Right, Level::Upper),
        Zone::new(Side::Right, Level::Middle),
        Zone::new(Side::Right, Level::Lower),
        Zone::new(Side::Left, Level::Upper),
        Zone::new(Side::Left, Level::Middle),
        Zone::new(Side::Left, Level::Lower),
    ];

    pub const fn new(side: Side, level: Level) -> Self {
        Self { side, level }
    }

    /// E.g. "right upper".
    pub fn name(&self) -> String {
        let side = match self.side {
            Side::Right => "right",
            Side::Left => "left",
        };
        let level = match self.level {
            Level::Upper => "upper",
            Level::Middle => "middle",
            Level::Lower => "lower",
        };
        format!("{side} {level}")
    }
}

/// The zone of every lung pixel of a (cleaned) mask.
#[derive(Debug, Clone, PartialEq)]
pub struct LungZones {
    pub width: usize,
    pub height: usize,
    zones: Vec<Option<Zone>>,
}

impl LungZones {
    /// Splits each of the (at most two) largest regions of `mask` into thirds of its own
    /// height; a region is the patient's right lung when its centre is on the image's left.
    pub fn of(mask: &LungMask) -> Self {
        let mut zones = vec![None; mask.pixels.len()];
        for region in components(mask, true).into_iter().take(2) {
            let side = if region.centroid_x(mask.width) < mask.width as f64 / 2.0 {
                Side::Right
            } else {
                Side::Left
            };
            let rows = region.pixels.iter().map(|&i| i / mask.width);
            let top = rows.clone().min().unwrap_or(0);
            let bottom = rows.max().unwrap_or(0);
            let height = (bottom - top + 1) as f64;
            for &index in &region.pixels {
                let third = (3.0 * (index / mask.width - top) as f64 / height) as usize;
                let level = [Level::Upper, Level::Middle, Level::Lower][third.min(2)];
                zones[index] = Some(Zone::new(side, level));
            }
        }
        Self {
            width: mask.width,
            height: mask.height,
            zones,
        }
    }

    /// The zone at pixel (x, y); `None` outside the lungs or the image.
    pub fn zone_at(&self, x: usize, y: usize) -> Option<Zone> {
        if x >= self.width || y >= self.height {
            return None;
        }
        self.zones[y * self.width + x]
    }

    /// The pixels of `zone`, as a mask.
    pub fn mask_of(&self, zone: Zone) -> LungMask {
        LungMask {
            width: self.width,
            height: self.height,
            pixels: self.zones.iter().map(|z| *z == Some(zone)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lungs::components::tests::mask_from;

    #[test]
    fn each_lung_is_cut_into_thirds_and_sides_follow_the_radiological_convention() {
        let mask = mask_from(&[
            "..........", //
            ".##.......", //
            ".##....##.", //
            ".##....##.", //
            ".##....##.", //
            ".##.......", //
            ".##.......", //
            "..........",
        ]);
        let zones = LungZones::of(&mask);
        let right = |level| Some(Zone::new(Side::Right, level));
        assert_eq!(zones.zone_at(1, 1), right(Level::Upper));
        assert_eq!(zones.zone_at(2, 3), right(Level::Middle));
        assert_eq!(zones.zone_at(1, 6), right(Level::Lower));
        assert_eq!(
            zones.zone_at(7, 2),
            Some(Zone::new(Side::Left, Level::Upper))
        );
        assert_eq!(
            zones.zone_at(8, 4),
            Some(Zone::new(Side::Left, Level::Lower))
        );
        assert_eq!(zones.zone_at(0, 0), None);
        assert_eq!(zones.zone_at(99, 0), None);
        let total: usize = Zone::ALL.iter().map(|&z| zones.mask_of(z).area()).sum();
        assert_eq!(total, mask.area());
        assert_eq!(Zone::new(Side::Left, Level::Middle).name(), "left middle");
    }
}

//! Connected regions of a binary mask (8-connected), found by a flood fill: what cleanup keeps
//! or fills and what the checks count.

use super::LungMask;

/// One connected region.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Indices (`y * width + x`) of its pixels.
    pub pixels: Vec<usize>,
    /// Whether it touches the image border.
    pub touches_border: bool,
}

impl Component {
    pub fn area(&self) -> usize {
        self.pixels.len()
    }

    /// Mean x of its pixels.
    pub fn centroid_x(&self, width: usize) -> f64 {
        let sum: usize = self.pixels.iter().map(|&i| i % width).sum();
        sum as f64 / self.pixels.len().max(1) as f64
    }
}

/// The 8-connected regions of pixels equal to `value`, largest first.
pub fn components(mask: &LungMask, value: bool) -> Vec<Component> {
    let (width, height) = (mask.width, mask.height);
    let mut seen = vec![false; mask.pixels.len()];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.pixels.len() {
        if seen[start] || mask.pixels[start] != value {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut component = Component {
            pixels: Vec::new(),
            touches_border: false,
        };
        while let Some(index) = stack.pop() {
            component.pixels.push(index);
            let (x, y) = (index % width, index / width);
            component.touches_border |= x == 0 || y == 0 || x + 1 == width || y + 1 == height;
            for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    let neighbour = ny * width + nx;
                    if !seen[neighbour] && mask.pixels[neighbour] == value {
                        seen[neighbour] = true;
                        stack.push(neighbour);
                    }
                }
            }
        }
        found.push(component);
    }
    found.sort_by_key(|component| std::cmp::Reverse(component.area()));
    found
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn mask_from(rows: &[&str]) -> LungMask {
        LungMask {
            width: rows[0].len(),
            height: rows.len(),
            pixels: rows
                .iter()
                .flat_map(|row| row.bytes().map(|b| b == b'#'))
                .collect(),
        }
    }

    #[test]
    fn regions_are_found_largest_first_with_diagonals_connected() {
        let mask = mask_from(&[
            "##...", //
            "##..#", //
            "...#.", //
            ".....",
        ]);
        let found = components(&mask, true);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].area(), 4);
        assert_eq!(found[1].area(), 2, "the diagonal pair is one region");
        assert!(found[0].touches_border);
    }

    #[test]
    fn background_regions_know_whether_they_touch_the_border() {
        let mask = mask_from(&[
            ".....", //
            ".###.", //
            ".#.#.", //
            ".###.",
        ]);
        let holes: Vec<_> = components(&mask, false)
            .into_iter()
            .filter(|c| !c.touches_border)
            .collect();
        assert_eq!(holes.len(), 1);
        assert_eq!(holes[0].pixels, vec![2 * 5 + 2]);
    }
}

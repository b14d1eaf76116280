//! Binary morphology on lung masks: dilation, erosion and closing with a square window, each
//! in two one-dimensional passes over running counts, so the cost does not grow with the radius.

use super::LungMask;

/// Dilation then erosion: closes gaps and notches narrower than `2 * radius + 1` pixels
/// without moving the outline elsewhere. Works on a copy padded with background, so that
/// lung near the image border is neither grown into the border nor eroded by it.
pub fn close(mask: &LungMask, radius: usize) -> LungMask {
    if radius == 0 {
        return mask.clone();
    }
    let padded = pad(mask, radius);
    let closed = erode(&dilate(&padded, radius), radius);
    let width = mask.width;
    let pixels = (0..mask.height)
        .flat_map(|y| {
            let start = (y + radius) * closed.width + radius;
            closed.pixels[start..start + width].iter().copied()
        })
        .collect();
    LungMask {
        width,
        height: mask.height,
        pixels,
    }
}

/// `mask` inside a frame of `radius` background pixels.
fn pad(mask: &LungMask, radius: usize) -> LungMask {
    let width = mask.width + 2 * radius;
    let mut pixels = vec![false; width * (mask.height + 2 * radius)];
    for (y, row) in mask.pixels.chunks_exact(mask.width.max(1)).enumerate() {
        let start = (y + radius) * width + radius;
        pixels[start..start + mask.width].copy_from_slice(row);
    }
    LungMask {
        width,
        height: mask.height + 2 * radius,
        pixels,
    }
}

/// A pixel becomes lung when any pixel within `radius` (Chebyshev distance) is lung.
pub fn dilate(mask: &LungMask, radius: usize) -> LungMask {
    filter(mask, radius, |count, _| count > 0)
}

/// A pixel stays lung when every pixel within `radius` inside the image is lung.
pub fn erode(mask: &LungMask, radius: usize) -> LungMask {
    filter(mask, radius, |count, window| count == window)
}

/// Applies `keep(count of lung pixels, pixels in window)` along rows, then along columns.
fn filter(mask: &LungMask, radius: usize, keep: impl Fn(usize, usize) -> bool) -> LungMask {
    let (width, height) = (mask.width, mask.height);
    let mut rows = vec![false; mask.pixels.len()];
    for y in 0..height {
        let line: Vec<bool> = mask.pixels[y * width..(y + 1) * width].to_vec();
        let out = filter_line(&line, radius, &keep);
        rows[y * width..(y + 1) * width].copy_from_slice(&out);
    }
    let mut pixels = vec![false; mask.pixels.len()];
    for x in 0..width {
        let line: Vec<bool> = (0..height).map(|y| rows[y * width + x]).collect();
        for (y, value) in filter_line(&line, radius, &keep).into_iter().enumerate() {
            pixels[y * width + x] = value;
        }
    }
    LungMask {
        width,
        height,
        pixels,
    }
}

fn filter_line(line: &[bool], radius: usize, keep: &impl Fn(usize, usize) -> bool) -> Vec<bool> {
    let mut prefix = Vec::with_capacity(line.len() + 1);
    prefix.push(0usize);
    for &value in line {
        prefix.push(prefix[prefix.len() - 1] + usize::from(value));
    }
    (0..line.len())
        .map(|i| {
            let (start, end) = (i.saturating_sub(radius), (i + radius + 1).min(line.len()));
            keep(prefix[end] - prefix[start], end - start)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lungs::components::tests::mask_from;

    #[test]
    fn closing_bridges_a_narrow_gap_and_keeps_the_outline() {
        let mask = mask_from(&[
            "........", //
            ".###.##.", //
            ".###.##.", //
            ".###.##.", //
            "........",
        ]);
        let closed = close(&mask, 1);
        let expected = mask_from(&[
            "........", //
            ".######.", //
            ".######.", //
            ".######.", //
            "........",
        ]);
        assert_eq!(closed, expected);
    }

    #[test]
    fn dilation_and_erosion_grow_and_shrink_by_the_radius() {
        let mask = mask_from(&[
            ".....", //
            ".....", //
            "..#..", //
            ".....", //
            ".....",
        ]);
        let grown = dilate(&mask, 1);
        assert_eq!(grown.area(), 9);
        assert_eq!(erode(&grown, 1), mask);
    }

    #[test]
    fn closing_neither_grows_nor_erodes_lung_at_the_border() {
        let mask = mask_from(&[
            "##......", //
            "##......", //
            "........",
        ]);
        assert_eq!(close(&mask, 1), mask);
    }

    #[test]
    fn the_image_border_does_not_erode_the_mask() {
        let full = mask_from(&["####", "####"]);
        assert_eq!(erode(&full, 1), full);
    }
}

//! Antialiased resampling of gray images: Pillow's BILINEAR, a triangle filter whose support
//! widens with the reduction factor, done as two separable passes with precomputed weights.

use rayon::prelude::*;

use crate::image::GrayImage;

/// Below this many multiply-adds a pass runs on one thread: splitting costs more than it saves.
const PARALLEL_WORK: usize = 4_000_000;

/// Resizes `image` to `width` x `height`. Both sizes must be non-zero, and so must the image's.
pub(crate) fn resize(image: &GrayImage, width: usize, height: usize) -> GrayImage {
    // Vertical first: that pass adds whole rows (contiguous, vectorises), and on a downscale it
    // leaves the scalar horizontal pass only `height` rows to do.
    let rows_done = if height == image.height {
        image.pixels.clone()
    } else {
        resize_columns(&image.pixels, image.width, image.height, height)
    };
    resize_width(rows_done, image.width, width, height)
}

/// The horizontal pass of [`resize`]: `rows` rows of `in_width` samples, already at the
/// output height, brought to `width`.
fn resize_width(rows: Vec<f32>, in_width: usize, width: usize, height: usize) -> GrayImage {
    let pixels = if width == in_width {
        rows
    } else {
        resize_rows(&rows, in_width, width, height)
    };
    GrayImage {
        width,
        height,
        pixels,
    }
}

/// [`resize`] fed one input row at a time, top to bottom, so that a decoder can hand rows over
/// without the whole image being held. Each output row adds its input rows in the order
/// [`resize_columns`] adds them, skipping the same zero weights, so the result is bit-identical
/// to [`resize`] on the whole image (the vertical pass runs on the caller's thread).
pub(crate) struct StreamedResize {
    /// `None` when the height does not change.
    taps: Option<Taps>,
    in_width: usize,
    in_height: usize,
    width: usize,
    height: usize,
    /// `in_width` x `height`: the vertical pass, filled as rows arrive.
    rows_done: Vec<f32>,
    rows_pushed: usize,
    /// The first output row whose window has not been passed yet.
    first_open: usize,
}

impl StreamedResize {
    /// A resize of an `in_width` x `in_height` image to `width` x `height` (all non-zero).
    pub(crate) fn new(in_width: usize, in_height: usize, width: usize, height: usize) -> Self {
        Self {
            taps: (height != in_height).then(|| Taps::new(in_height, height)),
            in_width,
            in_height,
            width,
            height,
            rows_done: vec![0.0; in_width * height],
            rows_pushed: 0,
            first_open: 0,
        }
    }

    /// Adds the next input row (`in_width` samples). Rows past `in_height` are ignored.
    pub(crate) fn push_row(&mut self, row: &[f32]) {
        let y = self.rows_pushed;
        if y >= self.in_height || row.len() != self.in_width {
            return;
        }
        self.rows_pushed += 1;
        let width = self.in_width;
        let Some(taps) = &self.taps else {
            self.rows_done[y * width..(y + 1) * width].copy_from_slice(row);
            return;
        };
        // Windows start at non-decreasing inputs, so the output rows that read input `y` are
        // a run starting at the first one whose window has not ended before `y`.
        while self.first_open < self.height && taps.start[self.first_open] + taps.taps <= y {
            self.first_open += 1;
        }
        for out in self.first_open..self.height {
            let (first, weights) = taps.of(out);
            if first > y {
                break;
            }
            let w = weights[y - first];
            if w == 0.0 {
                continue;
            }
            let out_row = &mut self.rows_done[out * width..(out + 1) * width];
            for (o, &i) in out_row.iter_mut().zip(row) {
                *o += w * i;
            }
        }
    }

    /// The resized image; `None` unless exactly `in_height` rows were pushed.
    pub(crate) fn finish(self) -> Option<GrayImage> {
        (self.rows_pushed == self.in_height)
            .then(|| resize_width(self.rows_done, self.in_width, self.width, self.height))
    }
}

/// For each output sample, the first input sample it reads and its weights (Pillow's
/// `precompute_coeffs` for the bilinear filter, normalised to sum to 1). Every output reads a
/// window of exactly `taps` inputs inside the image (windows at the edges are shifted inwards
/// and padded with zero weights), so the inner loops have a fixed length.
struct Taps {
    start: Vec<usize>,
    /// `taps` weights per output sample.
    weights: Vec<f32>,
    taps: usize,
}

impl Taps {
    fn new(in_len: usize, out_len: usize) -> Self {
        let scale = in_len as f64 / out_len as f64;
        let filter_scale = scale.max(1.0);
        let support = filter_scale; // the triangle's support is 1 input pixel, widened on reduction
        // Non-zero weights span at most 2 * ceil(support) + 1 inputs, and never more than exist.
        let taps = ((support.ceil() as usize) * 2 + 1).min(in_len);
        let mut start = Vec::with_capacity(out_len);
        let mut weights = vec![0.0f32; out_len * taps];
        for (out, window) in weights.chunks_exact_mut(taps).enumerate() {
            let centre = (out as f64 + 0.5) * scale;
            let first = ((centre - support + 0.5).floor().max(0.0)) as usize;
            let end = ((centre + support + 0.5).floor() as usize).min(in_len);
            let window_start = first.min(in_len - taps);
            let slots = &mut window[first - window_start..];
            let mut total = 0.0f64;
            for (slot, x) in slots.iter_mut().zip(first..end) {
                let distance = (x as f64 - centre + 0.5) / filter_scale;
                let w = (1.0 - distance.abs()).max(0.0);
                total += w;
                *slot = w as f32;
            }
            if total > 0.0 {
                for slot in slots.iter_mut() {
                    *slot = (f64::from(*slot) / total) as f32;
                }
            }
            start.push(window_start);
        }
        Self {
            start,
            weights,
            taps,
        }
    }

    /// First input index and the `taps` weights of output sample `out`.
    #[inline]
    fn of(&self, out: usize) -> (usize, &[f32]) {
        (
            self.start[out],
            &self.weights[out * self.taps..(out + 1) * self.taps],
        )
    }
}

/// Resamples every column from `in_height` to `out_height` samples.
fn resize_columns(pixels: &[f32], width: usize, in_height: usize, out_height: usize) -> Vec<f32> {
    let taps = Taps::new(in_height, out_height);
    let mut out = vec![0.0f32; width * out_height];
    let fill_row = |(y, out_row): (usize, &mut [f32])| {
        let (first, weights) = taps.of(y);
        for (k, &w) in weights.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            let in_row = &pixels[(first + k) * width..(first + k + 1) * width];
            for (o, &i) in out_row.iter_mut().zip(in_row) {
                *o += w * i;
            }
        }
    };
    if width * out_height * taps.taps >= PARALLEL_WORK {
        out.par_chunks_exact_mut(width)
            .enumerate()
            .for_each(fill_row);
    } else {
        out.chunks_exact_mut(width).enumerate().for_each(fill_row);
    }
    out
}

/// Resamples each of `rows` rows from `in_width` to `out_width` samples.
fn resize_rows(pixels: &[f32], in_width: usize, out_width: usize, rows: usize) -> Vec<f32> {
    let taps = Taps::new(in_width, out_width);
    // A window length known at compile time lets the dot products unroll: about twice as fast
    // for the common small windows (5 taps for 512 -> 299).
    match taps.taps {
        3 => resize_rows_with::<3>(pixels, in_width, out_width, rows, &taps),
        5 => resize_rows_with::<5>(pixels, in_width, out_width, rows, &taps),
        7 => resize_rows_with::<7>(pixels, in_width, out_width, rows, &taps),
        _ => resize_rows_with::<0>(pixels, in_width, out_width, rows, &taps),
    }
}

/// [`resize_rows`] for windows of `TAPS` inputs, or of `taps.taps` when `TAPS` is 0.
fn resize_rows_with<const TAPS: usize>(
    pixels: &[f32],
    in_width: usize,
    out_width: usize,
    rows: usize,
    taps: &Taps,
) -> Vec<f32> {
    let len = if TAPS == 0 { taps.taps } else { TAPS };
    let mut out = vec![0.0f32; out_width * rows];
    let fill_row = |(in_row, out_row): (&[f32], &mut [f32])| {
        for (x, o) in out_row.iter_mut().enumerate() {
            let (first, weights) = taps.of(x);
            let window = &in_row[first..first + len];
            *o = weights[..len].iter().zip(window).map(|(w, p)| w * p).sum();
        }
    };
    if out_width * rows * len >= PARALLEL_WORK {
        pixels
            .par_chunks_exact(in_width)
            .zip(out.par_chunks_exact_mut(out_width))
            .for_each(fill_row);
    } else {
        pixels
            .chunks_exact(in_width)
            .zip(out.chunks_exact_mut(out_width))
            .for_each(fill_row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(width: usize, height: usize) -> GrayImage {
        let pixels = (0..width * height)
            .map(|i| ((i % width) + (i / width)) as f32 / (width + height) as f32)
            .collect();
        GrayImage::new(width, height, pixels).unwrap()
    }

    #[test]
    fn weights_sum_to_one_and_stay_inside_the_input() {
        for (in_len, out_len) in [(512, 299), (3000, 299), (299, 512), (7, 3), (1, 5), (5, 1)] {
            let taps = Taps::new(in_len, out_len);
            for out in 0..out_len {
                let (first, weights) = taps.of(out);
                assert_eq!(weights.len(), taps.taps);
                assert!(first + weights.len() <= in_len);
                let sum: f32 = weights.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-5,
                    "{in_len}->{out_len} at {out}: {sum}"
                );
            }
        }
    }

    #[test]
    fn halving_matches_pillow_coefficients() {
        // Pillow, 4 -> 2 bilinear: support 2 inputs; output 0 is centred at 1.0 and reads
        // x = 0, 1, 2 with triangle weights 0.75, 0.75, 0.25 (sum 1.75); output 1 mirrors it.
        // Both windows are 4 long here (the whole input), output 1's shifted to start at 0.
        let taps = Taps::new(4, 2);
        assert_eq!(taps.of(0), (0, &[3.0 / 7.0, 3.0 / 7.0, 1.0 / 7.0, 0.0][..]));
        assert_eq!(taps.of(1), (0, &[0.0, 1.0 / 7.0, 3.0 / 7.0, 3.0 / 7.0][..]));
    }

    #[test]
    fn constant_images_stay_constant() {
        let image = GrayImage::filled(640, 480, 0.25);
        for (w, h) in [(299, 299), (1000, 50), (640, 480), (1, 1)] {
            let out = resize(&image, w, h);
            assert_eq!((out.width, out.height, out.pixels.len()), (w, h, w * h));
            assert!(out.pixels.iter().all(|&p| (p - 0.25).abs() < 1e-6));
        }
    }

    #[test]
    fn same_size_is_identity() {
        let image = ramp(37, 23);
        assert_eq!(resize(&image, 37, 23), image);
    }

    #[test]
    fn downscaling_averages_fine_detail_away() {
        // A one-pixel checkerboard must become flat gray, not aliased stripes.
        let pixels = (0..200 * 200)
            .map(|i| ((i % 200 + i / 200) % 2) as f32)
            .collect();
        let board = GrayImage::new(200, 200, pixels).unwrap();
        let out = resize(&board, 57, 57);
        // Borders renormalise truncated kernels, so look inside.
        for y in 2..55 {
            for x in 2..55 {
                assert!((out.get(x, y) - 0.5).abs() < 0.02, "{}", out.get(x, y));
            }
        }
    }

    #[test]
    fn linear_ramps_are_preserved_away_from_the_borders() {
        let image = ramp(300, 300);
        let out = resize(&image, 100, 100);
        // Output pixel x samples input position (x + 0.5) * 3 - 0.5 on each axis.
        let expected = |x: usize, y: usize| {
            ((x as f32 + 0.5) * 3.0 - 0.5 + (y as f32 + 0.5) * 3.0 - 0.5) / 600.0
        };
        for (x, y) in [(10, 10), (50, 20), (90, 90)] {
            assert!((out.get(x, y) - expected(x, y)).abs() < 1e-4);
        }
    }

    #[test]
    fn separable_passes_match_a_direct_two_dimensional_sum() {
        // Large enough for the vertical pass to run in parallel.
        let image = ramp(3000, 1400);
        let out = resize(&image, 299, 299);
        let (along_x, along_y) = (Taps::new(3000, 299), Taps::new(1400, 299));
        for (x, y) in [(0, 0), (150, 37), (298, 298), (10, 280)] {
            let (fx, wx) = along_x.of(x);
            let (fy, wy) = along_y.of(y);
            let mut direct = 0.0f64;
            for (j, &v) in wy.iter().enumerate() {
                for (i, &u) in wx.iter().enumerate() {
                    direct += f64::from(u * v * image.get(fx + i, fy + j));
                }
            }
            assert!(
                (f64::from(out.get(x, y)) - direct).abs() < 1e-5,
                "({x},{y})"
            );
        }
    }

    #[test]
    fn streamed_rows_give_the_same_bits_as_the_whole_image() {
        // Down, up, same height, one output row; the 3000 px case runs the parallel pass.
        for (width, height, to_width, to_height) in [
            (300, 200, 299, 299),
            (3000, 1400, 299, 299),
            (50, 40, 120, 90),
            (64, 64, 64, 30),
            (64, 30, 20, 30),
            (7, 300, 3, 1),
        ] {
            let pixels = (0..width * height)
                .map(|i| ((i * 7919) % 1013) as f32 / 1012.0)
                .collect();
            let image = GrayImage::new(width, height, pixels).unwrap();
            let mut streamed = StreamedResize::new(width, height, to_width, to_height);
            for row in image.pixels.chunks_exact(width) {
                streamed.push_row(row);
            }
            let streamed = streamed.finish().unwrap();
            let whole = resize(&image, to_width, to_height);
            assert_eq!(
                (streamed.width, streamed.height),
                (whole.width, whole.height)
            );
            let bits = |image: &GrayImage| -> Vec<u32> {
                image.pixels.iter().map(|p| p.to_bits()).collect()
            };
            assert!(
                bits(&streamed) == bits(&whole),
                "{width}x{height} -> {to_width}x{to_height}"
            );
        }
        let mut short = StreamedResize::new(10, 10, 5, 5);
        short.push_row(&[0.5; 10]);
        assert!(short.finish().is_none());
    }
}

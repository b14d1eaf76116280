//! Unfiltered rows of 8- and 16-bit PNGs without palette or transparency chunk: the `png` crate
//! parses and checks the chunks and inflates the data, and the rows are unfiltered here.
//!
//! Unfiltering is a serial chain along each row (every byte depends on the one to its left),
//! so rows of one- and two-byte pixels (8- and 16-bit gray, 8-bit gray and alpha) are
//! unfiltered as a wavefront of several rows, row `j` one pixel behind row `j - 1`: the rows'
//! chains then overlap instead of running one after the other. Results are the PNG
//! specification's, byte for byte (tests compare with the `png` crate's own reader).

use png::{BitDepth, ColorType, Decoded, StreamingDecoder, UnfilterRegion, chunk};

/// Rows unfiltered together: the 16 bytes of an SSE2 register hold eight 16-bit lanes, one
/// byte of eight 8-bit rows or two bytes of four 16-bit rows (unfiltered as two halves).
const BATCH: usize = 8;
/// Decompressed bytes asked for per decoder call, at most.
const GROWTH: usize = 64 * 1024;
/// Consumed rows are dropped from the front of the buffer once they take this much.
const SHIFT_AFTER: usize = 256 * 1024;
/// Decoder calls in a row that may make no progress before the stream is given up.
const STALLS: usize = 16;

const PAETH: u8 = 4;

/// Rows of one image, top to bottom. Every method returns `None` on anything unexpected; the
/// caller then decodes the file through the `png` crate's reader, which names the error.
pub(super) struct RawRows<'a> {
    input: &'a [u8],
    position: usize,
    decoder: StreamingDecoder,
    /// Decompressed, still filtered data; `region` says which part the inflater may touch.
    data: Vec<u8>,
    region: UnfilterRegion,
    /// Offset in `data` of the next filtered row (its filter type byte).
    row_start: usize,
    /// Bytes of the image data not decompressed yet.
    frame_left: u64,
    /// Rows not unfiltered yet.
    rows_left: usize,
    /// The image data chunks have ended.
    flushed: bool,
    /// Bytes per row, without the filter type byte.
    line: usize,
    /// Bytes per pixel (the distance of "left" in the filters).
    bpp: usize,
    /// `BATCH + 1` rows: slot 0 the last row of the previous batch, then this batch's rows.
    out: Vec<u8>,
    batch_len: usize,
    batch_next: usize,
}

/// What the header says about the image.
pub(super) struct Header {
    pub width: usize,
    pub height: usize,
    pub color: ColorType,
    pub depth: BitDepth,
}

impl<'a> RawRows<'a> {
    /// Reads the chunks up to the image data. `None` for interlaced, animated, palette and
    /// low-bit-depth images, images with a tRNS chunk, and anything the decoder refuses.
    pub(super) fn open(input: &'a [u8]) -> Option<(Self, Header)> {
        let mut decoder = StreamingDecoder::new();
        // As the `image` crate reads PNGs (text chunks are parsed, so bad ones fail here too).
        decoder.set_ignore_text_chunk(false);
        let mut position = 0;
        let mut stalls = 0;
        loop {
            let (consumed, event) = decoder.update(input.get(position..)?, None).ok()?;
            position += consumed;
            match event {
                Decoded::ChunkBegin(_, chunk::IDAT) => break,
                Decoded::ChunkBegin(_, chunk::fdAT) | Decoded::ChunkComplete(chunk::IEND) => {
                    return None;
                }
                _ if consumed == 0 => {
                    stalls += 1;
                    if stalls > STALLS || position == input.len() {
                        return None;
                    }
                }
                _ => stalls = 0,
            }
        }
        let info = decoder.info()?;
        let channels = match info.color_type {
            ColorType::Grayscale => 1,
            ColorType::GrayscaleAlpha => 2,
            ColorType::Rgb => 3,
            ColorType::Rgba => 4,
            ColorType::Indexed => return None,
        };
        let sample_bytes = match info.bit_depth {
            BitDepth::Eight => 1,
            BitDepth::Sixteen => 2,
            _ => return None,
        };
        if info.interlaced || info.trns.is_some() || info.animation_control.is_some() {
            return None;
        }
        let (width, height) = (info.width as usize, info.height as usize);
        let bpp = channels * sample_bytes;
        let line = width.checked_mul(bpp)?;
        let frame = (line as u64 + 1).checked_mul(height as u64)?;
        let header = Header {
            width,
            height,
            color: info.color_type,
            depth: info.bit_depth,
        };
        let rows = Self {
            input,
            position,
            decoder,
            data: Vec::new(),
            region: UnfilterRegion::default(),
            row_start: 0,
            frame_left: frame,
            rows_left: height,
            flushed: false,
            line,
            bpp,
            out: vec![0; line.checked_mul(BATCH + 1)?],
            batch_len: 0,
            batch_next: 0,
        };
        Some((rows, header))
    }

    /// The next row's bytes (samples big endian, as PNG stores them).
    pub(super) fn next_row(&mut self) -> Option<&[u8]> {
        if self.batch_next == self.batch_len {
            self.next_batch()?;
        }
        let slot = 1 + self.batch_next;
        self.batch_next += 1;
        Some(&self.out[slot * self.line..(slot + 1) * self.line])
    }

    /// After the last row: skips the rest of the image data, as the `png` crate's reader does
    /// after a frame, so that a stream broken after its last row fails here too.
    pub(super) fn finish(&mut self) -> Option<()> {
        if self.rows_left != 0 || self.batch_next != self.batch_len {
            return None;
        }
        let mut stalls = 0;
        while !self.flushed {
            let (consumed, event) = self
                .decoder
                .update(self.input.get(self.position..)?, None)
                .ok()?;
            self.position += consumed;
            match event {
                Decoded::ImageDataFlushed => self.flushed = true,
                _ if consumed == 0 => {
                    stalls += 1;
                    if stalls > STALLS || self.position == self.input.len() {
                        return None;
                    }
                }
                _ => stalls = 0,
            }
        }
        Some(())
    }

    /// Decompresses more image data: one decoder call.
    fn fill(&mut self) -> Option<()> {
        if self.flushed || self.position >= self.input.len() {
            return None;
        }
        // Drop consumed rows (the inflater's look-back window lies after `available`, which
        // never passes unconsumed data here, so only bytes before both may go).
        let discard = self.row_start.min(self.region.available);
        if discard >= SHIFT_AFTER {
            self.data.copy_within(discard..self.region.filled, 0);
            self.data.truncate(self.region.filled - discard);
            self.row_start -= discard;
            self.region.available -= discard;
            self.region.filled -= discard;
        }
        // Never room past the end of the image data, as the `png` crate's reader sizes it.
        let room = (GROWTH as u64).min(self.frame_left) as usize;
        let wanted = self.region.filled + room;
        if self.data.len() < wanted {
            self.data.resize(wanted, 0);
        }
        let before = self.region.filled;
        let (consumed, event) = self
            .decoder
            .update(
                &self.input[self.position..],
                Some(&mut self.region.as_buf(&mut self.data)),
            )
            .ok()?;
        self.position += consumed;
        let produced = self.region.filled.checked_sub(before)?;
        self.frame_left = self.frame_left.checked_sub(produced as u64)?;
        if matches!(event, Decoded::ImageDataFlushed) {
            self.flushed = true;
        } else if consumed == 0 && produced == 0 {
            return None;
        }
        Some(())
    }

    /// Unfilters the next rows (up to [`BATCH`]) into `out`.
    fn next_batch(&mut self) -> Option<()> {
        let rows = self.rows_left.min(BATCH);
        if rows == 0 {
            return None;
        }
        let row_len = self.line + 1;
        let needed = rows * row_len;
        // Each call consumes input or produces data, or fails: this ends.
        while self.region.filled - self.row_start < needed {
            self.fill()?;
        }
        let line = self.line;
        if self.batch_len > 0 {
            let last = self.batch_len * line;
            self.out.copy_within(last..last + line, 0);
        }
        let src = &self.data[self.row_start..self.row_start + needed];
        if src.chunks_exact(row_len).any(|row| row[0] > PAETH) {
            return None;
        }
        if rows == BATCH {
            unfilter_batch(self.bpp, src, &mut self.out, line);
        } else {
            for (j, row) in src.chunks_exact(row_len).enumerate() {
                let (above, below) = self.out.split_at_mut((j + 1) * line);
                let prev = &above[j * line..];
                unfilter_row(row[0], self.bpp, &row[1..], prev, &mut below[..line]);
            }
        }
        self.row_start += needed;
        self.rows_left -= rows;
        self.batch_len = rows;
        self.batch_next = 0;
        Some(())
    }
}

/// The Paeth predictor of the PNG specification (ties go to `a`, then `b`).
#[inline(always)]
fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let (a16, b16, c16) = (i16::from(a), i16::from(b), i16::from(c));
    let pa = (b16 - c16).abs();
    let pb = (a16 - c16).abs();
    let pc = (a16 + b16 - 2 * c16).abs();
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// Unfilters one row (`filter` 0 to 4) from `src` into `dst`, given the row above.
fn unfilter_row(filter: u8, bpp: usize, src: &[u8], prev: &[u8], dst: &mut [u8]) {
    match bpp {
        1 => unfilter_row_with::<1>(filter, src, prev, dst),
        2 => unfilter_row_with::<2>(filter, src, prev, dst),
        3 => unfilter_row_with::<3>(filter, src, prev, dst),
        4 => unfilter_row_with::<4>(filter, src, prev, dst),
        6 => unfilter_row_with::<6>(filter, src, prev, dst),
        _ => unfilter_row_with::<8>(filter, src, prev, dst),
    }
}

/// [`unfilter_row`] for `BPP` bytes per pixel; the left pixel is carried in registers.
fn unfilter_row_with<const BPP: usize>(filter: u8, src: &[u8], prev: &[u8], dst: &mut [u8]) {
    if filter == 0 {
        dst.copy_from_slice(src);
        return;
    }
    let pixels = dst
        .as_chunks_mut::<BPP>()
        .0
        .iter_mut()
        .zip(src.as_chunks::<BPP>().0)
        .zip(prev.as_chunks::<BPP>().0);
    let mut left = [0u8; BPP];
    let mut up_left = [0u8; BPP];
    match filter {
        1 => {
            for ((d, s), _) in pixels {
                for k in 0..BPP {
                    left[k] = s[k].wrapping_add(left[k]);
                }
                *d = left;
            }
        }
        2 => {
            for ((d, s), p) in pixels {
                for k in 0..BPP {
                    d[k] = s[k].wrapping_add(p[k]);
                }
            }
        }
        3 => {
            for ((d, s), p) in pixels {
                for k in 0..BPP {
                    let average = (u16::from(left[k]) + u16::from(p[k])) >> 1;
                    left[k] = s[k].wrapping_add(average as u8);
                }
                *d = left;
            }
        }
        _ => {
            for ((d, s), p) in pixels {
                for k in 0..BPP {
                    left[k] = s[k].wrapping_add(paeth(left[k], p[k], up_left[k]));
                }
                up_left = *p;
                *d = left;
            }
        }
    }
}

/// Unfilters a full batch of rows with `bpp` bytes per pixel, `src` holding each row with its
/// filter type byte (all checked to be 0 to 4), into slots 1..=BATCH of `out`, whose slot 0
/// holds the row above. One- and two-byte pixels go through the wavefront on x86-64; wider
/// ones row by row (they already give each row's chain several independent bytes).
fn unfilter_batch(bpp: usize, src: &[u8], out: &mut [u8], line: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let pixels = line / bpp.max(1);
        // SAFETY (both blocks): the function's one target feature, SSE2, is part of the x86-64
        // baseline, so every x86-64 processor has it.
        if bpp == 1 && pixels >= 2 * BATCH {
            unsafe { wavefront::<1, BATCH>(src, out, line) };
            return;
        }
        if bpp == 2 && pixels >= BATCH {
            let half = BATCH / 2;
            let (first, second) = src.split_at(half * (line + 1));
            unsafe {
                wavefront::<2, 4>(first, &mut out[..(half + 1) * line], line);
                wavefront::<2, 4>(second, &mut out[half * line..], line);
            }
            return;
        }
    }
    for (j, row) in src.chunks_exact(line + 1).enumerate() {
        let (above, below) = out.split_at_mut((j + 1) * line);
        unfilter_row(
            row[0],
            bpp,
            &row[1..],
            &above[j * line..],
            &mut below[..line],
        );
    }
}

/// `ROWS` rows of `BPP`-byte pixels (`ROWS * BPP` = 8) unfiltered together from `src` into
/// slots 1..=ROWS of `out` (slot 0: the row above), pixel `t - j` of row `j` at step `t`: its
/// neighbours above were made by row `j - 1` one and two steps before, so they are still in
/// the SSE2 registers that hold every row's last two pixels (lane `j * BPP + k` is byte `k` of
/// row `j`'s pixel, as a 16-bit integer). The first and last `ROWS - 1` steps, where some rows
/// have not started or have ended, go pixel by pixel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn wavefront<const BPP: usize, const ROWS: usize>(src: &[u8], out: &mut [u8], line: usize) {
    use std::arch::x86_64::*;
    const { assert!((BPP == 1 || BPP == 2) && ROWS * BPP == 8) };
    let pixels = line / BPP;
    let row_len = line + 1;
    let filters: [u8; ROWS] = std::array::from_fn(|j| src[j * row_len]);
    let rows: [&[u8]; ROWS] = std::array::from_fn(|j| &src[j * row_len + 1..(j + 1) * row_len]);

    // Steps 0 to ROWS - 2: the rows start one after another.
    for t in 0..ROWS - 1 {
        for j in 0..=t {
            unfilter_pixel::<BPP>(filters[j], rows[j], out, line, j, t - j);
        }
    }
    let from_lanes = |l: [i16; 8]| _mm_set_epi16(l[7], l[6], l[5], l[4], l[3], l[2], l[1], l[0]);
    // A pixel's bytes as the low 16-bit lanes of a register.
    let word = |bytes: &[u8]| -> i64 {
        (0..BPP).fold(0, |word, k| word | i64::from(bytes[k]) << (16 * k))
    };
    // Each row's pixel ROWS - 2 - j (`left`) and ROWS - 3 - j (`before`), zero left of the
    // row: the state after step ROWS - 2.
    let state = |back: usize| {
        from_lanes(std::array::from_fn(|l| {
            let (j, k) = (l / BPP, l % BPP);
            match (ROWS - 1 - back).checked_sub(j + 1) {
                Some(x) => i16::from(out[(j + 1) * line + x * BPP + k]),
                _ => 0,
            }
        }))
    };
    let mut left = state(0);
    let mut before = state(1);
    // All ones in the lanes of the rows with each filter.
    let lanes_of = |filter: u8| {
        from_lanes(std::array::from_fn(|l| {
            -i16::from(filters[l / BPP] == filter)
        }))
    };
    let (sub, up, average, paeth) = (lanes_of(1), lanes_of(2), lanes_of(3), lanes_of(4));
    let low_bytes = _mm_set1_epi16(0xFF);
    let zero = _mm_setzero_si128();
    // Moves every row's lanes to the next row's.
    let down = |v: __m128i| {
        if BPP == 1 {
            _mm_slli_si128::<2>(v)
        } else {
            _mm_slli_si128::<4>(v)
        }
    };

    let (prev, produced) = out.split_at_mut(line);
    let mut outs: [&mut [u8]; ROWS] = {
        let mut chunks = produced.chunks_exact_mut(line);
        std::array::from_fn(|_| chunks.next().unwrap_or_default())
    };
    for t in ROWS - 1..pixels {
        // Row j's filtered bytes of pixel t - j, each widened to 16 bits.
        let mut packed = 0u64;
        for (j, row) in rows.iter().enumerate() {
            let at = (t - j) * BPP;
            for k in 0..BPP {
                packed |= u64::from(row[at + k]) << (8 * (j * BPP + k));
            }
        }
        let raw = _mm_unpacklo_epi8(_mm_cvtsi64_si128(packed as i64), zero);
        // Above row j is row j - 1, one row's lanes down; above row 0 is the row before the
        // batch.
        let above = _mm_or_si128(down(left), _mm_cvtsi64_si128(word(&prev[t * BPP..])));
        let above_left = _mm_or_si128(
            down(before),
            _mm_cvtsi64_si128(word(&prev[(t - 1) * BPP..])),
        );
        let (a, b, c) = (left, above, above_left);
        // Paeth in the form of stb_image (the same choices as the specification's).
        let threshold = _mm_sub_epi16(_mm_add_epi16(_mm_add_epi16(c, c), c), _mm_add_epi16(a, b));
        let (low, high) = (_mm_min_epi16(a, b), _mm_max_epi16(a, b));
        let high_above = _mm_cmpgt_epi16(high, threshold);
        let t0 = _mm_or_si128(
            _mm_and_si128(high_above, c),
            _mm_andnot_si128(high_above, low),
        );
        let threshold_above = _mm_cmpgt_epi16(threshold, low);
        let paeth_value = _mm_or_si128(
            _mm_and_si128(threshold_above, t0),
            _mm_andnot_si128(threshold_above, high),
        );
        let mean = _mm_srli_epi16::<1>(_mm_add_epi16(a, b));
        let predicted = _mm_or_si128(
            _mm_or_si128(_mm_and_si128(sub, a), _mm_and_si128(up, b)),
            _mm_or_si128(
                _mm_and_si128(average, mean),
                _mm_and_si128(paeth, paeth_value),
            ),
        );
        let next = _mm_and_si128(_mm_add_epi16(raw, predicted), low_bytes);
        let bytes = (_mm_cvtsi128_si64(_mm_packus_epi16(next, next)) as u64).to_le_bytes();
        for (j, out_row) in outs.iter_mut().enumerate() {
            let at = (t - j) * BPP;
            out_row[at..at + BPP].copy_from_slice(&bytes[j * BPP..(j + 1) * BPP]);
        }
        before = left;
        left = next;
    }
    // Steps pixels to pixels + ROWS - 2: the rows end one after another.
    for t in pixels..pixels + ROWS - 1 {
        for j in t + 1 - pixels..ROWS {
            unfilter_pixel::<BPP>(filters[j], rows[j], out, line, j, t - j);
        }
    }
}

/// Unfilters pixel `x` of row `j` (slot `j + 1` of `out`, below slot `j`), from memory.
fn unfilter_pixel<const BPP: usize>(
    filter: u8,
    row: &[u8],
    out: &mut [u8],
    line: usize,
    j: usize,
    x: usize,
) {
    let at = x * BPP;
    for k in 0..BPP {
        let i = at + k;
        let a = if x > 0 {
            out[(j + 1) * line + i - BPP]
        } else {
            0
        };
        let b = out[j * line + i];
        let c = if x > 0 { out[j * line + i - BPP] } else { 0 };
        let predicted = match filter {
            0 => 0,
            1 => a,
            2 => b,
            3 => ((u16::from(a) + u16::from(b)) >> 1) as u8,
            _ => paeth(a, b, c),
        };
        out[(j + 1) * line + i] = row[i].wrapping_add(predicted);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn crc32(data: &[u8]) -> u32 {
        !data.iter().fold(!0u32, |crc, &byte| {
            (0..8).fold(crc ^ u32::from(byte), |c, _| {
                if c & 1 == 1 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                }
            })
        })
    }

    fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        let crc = crc32(&png[start..]);
        png.extend_from_slice(&crc.to_be_bytes());
    }

    /// A PNG whose image data is exactly `filtered` (rows with their filter type bytes),
    /// in stored (uncompressed) deflate blocks, the zlib stream cut into IDAT chunks of
    /// `idat` bytes: full control over every row's filter and bytes.
    fn png_of_rows(
        width: u32,
        height: u32,
        color: u8,
        depth: u8,
        filtered: &[u8],
        idat: usize,
    ) -> Vec<u8> {
        let mut zlib = vec![0x78, 0x01];
        let blocks: Vec<&[u8]> = filtered.chunks(65_535).collect();
        for (i, block) in blocks.iter().enumerate() {
            zlib.push(u8::from(i + 1 == blocks.len()));
            let len = block.len() as u16;
            zlib.extend_from_slice(&len.to_le_bytes());
            zlib.extend_from_slice(&(!len).to_le_bytes());
            zlib.extend_from_slice(block);
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in filtered {
            a = (a + u32::from(byte)) % 65_521;
            b = (b + a) % 65_521;
        }
        zlib.extend_from_slice(&(b << 16 | a).to_be_bytes());

        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut header = Vec::new();
        header.extend_from_slice(&width.to_be_bytes());
        header.extend_from_slice(&height.to_be_bytes());
        header.extend_from_slice(&[depth, color, 0, 0, 0]);
        chunk(&mut png, b"IHDR", &header);
        chunk(&mut png, b"tEXt", b"Comment\0rows for a test");
        for part in zlib.chunks(idat) {
            chunk(&mut png, b"IDAT", part);
        }
        chunk(&mut png, b"IEND", &[]);
        png
    }

    /// The `png` crate's own decoding of the whole image.
    fn reference(png_bytes: &[u8]) -> Option<Vec<u8>> {
        let mut reader = png::Decoder::new(Cursor::new(png_bytes)).read_info().ok()?;
        let mut buffer = vec![0; reader.output_buffer_size()?];
        reader.next_frame(&mut buffer).ok()?;
        Some(buffer)
    }

    fn streamed(png_bytes: &[u8]) -> Option<Vec<u8>> {
        let (mut rows, header) = RawRows::open(png_bytes)?;
        let mut pixels = Vec::new();
        for _ in 0..header.height {
            pixels.extend_from_slice(rows.next_row()?);
        }
        rows.finish()?;
        Some(pixels)
    }

    /// Random filtered rows: each row a random filter type (or `filter`), random bytes.
    fn random_rows(
        rng: &mut ChaCha8Rng,
        line: usize,
        height: usize,
        filter: Option<u8>,
    ) -> Vec<u8> {
        let mut filtered = Vec::with_capacity((line + 1) * height);
        for _ in 0..height {
            filtered.push(filter.unwrap_or_else(|| rng.random_range(0..=PAETH)));
            filtered.extend((0..line).map(|_| rng.random::<u8>()));
        }
        filtered
    }

    #[test]
    fn rows_unfilter_as_the_png_crate_unfilters_them() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // (colour type, bit depth, bytes per pixel): gray, gray-alpha, RGB, RGBA; 8 and 16 bits.
        let layouts = [
            (0, 16, 2),
            (0, 8, 1),
            (4, 8, 2),
            (4, 16, 4),
            (2, 8, 3),
            (2, 16, 6),
            (6, 8, 4),
            (6, 16, 8),
        ];
        for (color, depth, bpp) in layouts {
            for width in [1usize, 3, 7, 8, 9, 40, 301] {
                for height in [1usize, 3, 4, 5, 8, 9, 17, 24] {
                    for filter in [None, Some(PAETH), Some(3)] {
                        let filtered = random_rows(&mut rng, width * bpp, height, filter);
                        let idat = [5, 999, 1 << 20][rng.random_range(0..3)];
                        let png_bytes =
                            png_of_rows(width as u32, height as u32, color, depth, &filtered, idat);
                        let expected =
                            reference(&png_bytes).expect("the png crate decodes the test image");
                        assert_eq!(
                            streamed(&png_bytes).as_deref(),
                            Some(&expected[..]),
                            "colour {color}, {depth} bits, {width} x {height}, filter {filter:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_large_16_bit_image_with_mixed_filters_matches() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let (width, height) = (1031usize, 203usize);
        let filtered = random_rows(&mut rng, width * 2, height, None);
        let png_bytes = png_of_rows(width as u32, height as u32, 0, 16, &filtered, 8192);
        assert_eq!(streamed(&png_bytes), reference(&png_bytes));
    }

    #[test]
    fn broken_image_data_is_refused_not_guessed() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (width, height) = (12usize, 9usize);
        let mut filtered = random_rows(&mut rng, width * 2, height, None);
        let good = png_of_rows(width as u32, height as u32, 0, 16, &filtered, 64);
        assert!(streamed(&good).is_some());
        // An unknown filter type in the sixth row.
        filtered[5 * (width * 2 + 1)] = 5;
        let bad_filter = png_of_rows(width as u32, height as u32, 0, 16, &filtered, 64);
        assert_eq!(streamed(&bad_filter), None);
        assert_eq!(reference(&bad_filter), None);
        // Image data one row short.
        filtered[5 * (width * 2 + 1)] = 0;
        let short = png_of_rows(
            width as u32,
            height as u32,
            0,
            16,
            &filtered[..8 * (width * 2 + 1)],
            64,
        );
        assert_eq!(streamed(&short), None);
        assert_eq!(reference(&short), None);
        // The file cut inside the image data.
        assert_eq!(streamed(&good[..good.len() / 2]), None);
        // A bad chunk checksum.
        let mut bad_crc = good.clone();
        let last_idat_crc = bad_crc.len() - 12 - 1;
        bad_crc[last_idat_crc] ^= 1;
        assert_eq!(streamed(&bad_crc), None);
        assert_eq!(reference(&bad_crc), None);
    }

    #[test]
    fn palette_low_depth_transparent_and_interlaced_images_are_left_to_the_reader() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let rows = random_rows(&mut rng, 4, 4, Some(0));
        // 4-bit gray, and 8-bit palette (no PLTE, so refused either way).
        assert!(RawRows::open(&png_of_rows(8, 4, 0, 4, &rows, 100)).is_none());
        assert!(RawRows::open(&png_of_rows(4, 4, 3, 8, &rows, 100)).is_none());
        let mut interlaced = png_of_rows(4, 4, 0, 8, &rows, 100);
        interlaced[8 + 8 + 12] = 1; // IHDR's interlace byte
        let crc = crc32(&interlaced[12..12 + 4 + 13]);
        interlaced[12 + 4 + 13..12 + 4 + 13 + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(RawRows::open(&interlaced).is_none());
    }
}

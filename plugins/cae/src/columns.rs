//! The column matrices of the network's convolutions: which image value
//! each entry reads. Every convolution here, forward or backward, is one
//! product of a weight matrix by a column matrix whose rows are image planes
//! shifted by a few pixels, with zeros where the shift reads outside the
//! image. The f32 products get it written out (im2col); the bf16 products
//! read it in place, packing straight from the image (matmul.rs), so no
//! column buffer is written and read back.
//!
//! A chunk's image is `planes` planes of `samples` images of h x w, each
//! plane [samples, h, w]; a column is a position s * h * w + y * w + x.

use crate::matmul::Line;
use std::ops::Range;

/// The rows of a column matrix, for images of one size: row r reads plane
/// `rows[r].0` shifted by `shifts[rows[r].1]` (dy, dx): entry (r, column at
/// (s, y, x)) is pixel (y + dy, x + dx) of image s in that plane, 0 outside.
/// Built once per layer, then laid over each chunk's image ([`Taps::over`]).
pub struct Taps {
    size: [usize; 2],
    shifts: Vec<[isize; 2]>,
    rows: Vec<(usize, usize)>,
    /// Per shift, per 16 columns of up to `samples` images, which of them
    /// read inside their image; empty when h * w is not a multiple of 16 (a
    /// run of 16 columns would cross from one image into the next).
    masks: Vec<u16>,
    samples: usize,
}

impl Taps {
    /// The k x k window (k odd) of a stride-1 convolution with padding k /
    /// 2 over `channels` planes: row (ch * k + ki) * k + kj reads plane ch
    /// shifted by (ki - k / 2, kj - k / 2), im2col's order.
    pub fn window(channels: usize, k: usize, size: [usize; 2], samples: usize, in_place: bool) -> Taps {
        let pad = (k / 2) as isize;
        let shifts = (0..k * k).map(|t| [(t / k) as isize - pad, (t % k) as isize - pad]).collect();
        let rows = (0..channels).flat_map(|ch| (0..k * k).map(move |t| (ch, t))).collect();
        Taps::new(shifts, rows, size, samples, in_place)
    }

    /// Rows reading `rows` (plane, index into `shifts`), over chunks of at
    /// most `samples` images of `size`; with the masks the bf16 packer
    /// needs to read them in place only when `in_place` (f32 products never
    /// do, and an eval pass builds taps per group of cubes).
    pub fn new(shifts: Vec<[isize; 2]>, rows: Vec<(usize, usize)>, [h, w]: [usize; 2], samples: usize, in_place: bool) -> Taps {
        assert!(rows.iter().all(|&(_, s)| s < shifts.len()), "columns: a row with no shift");
        let hw = h * w;
        let mut masks = Vec::new();
        if in_place && hw.is_multiple_of(16) {
            masks.reserve(shifts.len() * samples * hw / 16);
            for &[dy, dx] in &shifts {
                let (ys, xs) = (inside(dy, h), inside(dx, w));
                let mut plane = vec![0u16; hw / 16];
                for y in ys {
                    for x in xs.clone() {
                        let q = y * w + x;
                        plane[q / 16] |= 1 << (q % 16);
                    }
                }
                (0..samples).for_each(|_| masks.extend_from_slice(&plane));
            }
        }
        Taps { size: [h, w], shifts, rows, masks, samples }
    }

    /// Rows of the matrix.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// The adjoint of [`Columns::write`] (col2im): adds every entry of
    /// `col` (this matrix over `samples` images per plane, row-major) onto
    /// the image value it reads; entries that read outside add nothing. Each
    /// row's entries outside are zeroed in `col` (which the caller no longer
    /// needs) so that the row adds as one shifted run.
    pub fn add_back(&self, col: &mut [f32], samples: usize, image: &mut [f32]) {
        let ([h, w], len) = (self.size, samples * self.size[0] * self.size[1]);
        for (r, &(plane, s)) in self.rows.iter().enumerate() {
            let [dy, dx] = self.shifts[s];
            let src = &mut col[r * len..][..len];
            zero_outside([dy, dx], [h, w], src);
            let (run, from) = shifted_run(dy * w as isize + dx, len);
            let dst = &mut image[plane * len..][..len];
            dst[from..from + run.len()].iter_mut().zip(&src[run]).for_each(|(d, v)| *d += v);
        }
    }

    /// The matrix over a chunk's image of `samples` images per plane.
    pub fn over<'a>(&'a self, image: &'a [f32], samples: usize) -> Columns<'a> {
        let cols = samples * self.size[0] * self.size[1];
        assert!(samples <= self.samples, "columns: a chunk of {samples} images, taps built for {}", self.samples);
        let planes = self.rows.iter().map(|&(p, _)| p + 1).max().unwrap_or(0);
        assert!(image.len() >= planes * cols, "columns: an image smaller than its planes");
        Columns { image, taps: self, cols }
    }
}

/// The positions of a plane `len` long whose position shifted by `offset`
/// lies inside the plane too, and the shifted position of the first.
fn shifted_run(offset: isize, len: usize) -> (Range<usize>, usize) {
    let lo = (-offset).clamp(0, len as isize) as usize;
    let hi = (len as isize - offset).clamp(lo as isize, len as isize) as usize;
    (lo..hi, (lo as isize + offset) as usize)
}

/// The output rows (or columns) `lo..hi` of an image `size` long that,
/// shifted by `d`, read inside it.
fn inside(d: isize, size: usize) -> Range<usize> {
    let size = size as isize;
    ((-d).clamp(0, size) as usize)..((size - d).clamp(0, size) as usize)
}

/// A column matrix ([`Taps`]) over one chunk's image.
pub struct Columns<'a> {
    image: &'a [f32],
    taps: &'a Taps,
    cols: usize,
}

impl Columns<'_> {
    /// Rows and columns.
    pub fn shape(&self) -> [usize; 2] {
        [self.taps.rows(), self.cols]
    }

    /// Whether the bf16 packer can read it in place (see [`Taps::masks`]).
    pub fn in_place(&self) -> bool {
        !self.taps.masks.is_empty()
    }

    /// Writes the matrix out, row-major, into `out` (im2col). Each row is
    /// its plane shifted by one offset, copied as one run across all
    /// samples; only the positions that read outside their own image are
    /// zeroed afterwards (row by row, the runs are a few dozen values and the
    /// calls cost more than the copies: docs/benchmarks.md, "im2col in one
    /// run per tap").
    pub fn write(&self, out: &mut [f32]) {
        let ([h, w], len) = (self.taps.size, self.cols);
        for (r, &(plane, s)) in self.taps.rows.iter().enumerate() {
            let [dy, dx] = self.taps.shifts[s];
            let src = &self.image[plane * len..][..len];
            let dst = &mut out[r * len..][..len];
            let (run, from) = shifted_run(dy * w as isize + dx, len);
            dst[run.clone()].copy_from_slice(&src[from..from + run.len()]);
            dst[..run.start].fill(0.0);
            dst[run.end..].fill(0.0);
            zero_outside([dy, dx], [h, w], dst);
        }
    }

    /// Row `r` as the bf16 packer reads it (only when [`in_place`](Self::in_place)).
    #[inline]
    pub(crate) fn line(&self, r: usize) -> Line {
        let Some(&(plane, s)) = self.taps.rows.get(r) else {
            return Line { base: std::ptr::null(), masks: std::ptr::null(), all: 0 };
        };
        let [dy, dx] = self.taps.shifts[s];
        let offset = (plane * self.cols) as isize + dy * self.taps.size[1] as isize + dx;
        let per_shift = self.taps.samples * self.taps.size[0] * self.taps.size[1] / 16;
        Line { base: self.image.as_ptr().wrapping_offset(offset), masks: self.taps.masks[s * per_shift..].as_ptr(), all: 0 }
    }
}

/// Zeroes, in `values` (a row of a chunk's column matrix, [samples, h, w]),
/// every position that shifted by (dy, dx) reads outside its own image:
/// whole image rows above and below, and a few columns at the ends of the
/// rows between. Those column runs are written in place: as `fill` calls,
/// one or two values each, the calls cost more than the copy itself
/// (docs/benchmarks.md, "Border zeros written in place").
fn zero_outside([dy, dx]: [isize; 2], [h, w]: [usize; 2], values: &mut [f32]) {
    let (ys, xs) = (inside(dy, h), inside(dx, w));
    for image in values.chunks_exact_mut(h * w) {
        if ys.is_empty() || xs.is_empty() {
            image.fill(0.0);
            continue;
        }
        image[..ys.start * w].fill(0.0);
        image[ys.end * w..].fill(0.0);
        if xs.start > 0 || xs.end < w {
            for row in image[ys.start * w..ys.end * w].chunks_exact_mut(w) {
                zero_short(&mut row[..xs.start]);
                zero_short(&mut row[xs.end..]);
            }
        }
    }
}

/// Zeroes a run of a value or two without a call: `fill` becomes a
/// `memset` call whatever the length.
fn zero_short(run: &mut [f32]) {
    match run {
        [] => {}
        [v] => *v = 0.0,
        _ => run.fill(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry by the definition: pixel (y + dy, x + dx), 0 outside.
    fn by_definition(taps: &Taps, image: &[f32], samples: usize) -> Vec<f32> {
        let [h, w] = taps.size;
        let cols = samples * h * w;
        let mut out = Vec::new();
        for &(plane, s) in &taps.rows {
            let [dy, dx] = taps.shifts[s];
            for c in 0..cols {
                let (n, y, x) = (c / (h * w), (c % (h * w)) / w, c % w);
                let (sy, sx) = (y as isize + dy, x as isize + dx);
                let inside = (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                out.push(if inside { image[plane * cols + n * h * w + sy as usize * w + sx as usize] } else { 0.0 });
            }
        }
        out
    }

    #[test]
    fn written_columns_and_masks_follow_the_definition() {
        // Every image size the network has, sizes smaller than the window,
        // a 5 x 5 window and the transposed convolutions' one-sided shifts.
        let up = vec![[0, 0], [0, -1], [-1, 0], [-1, -1], [1, 1]];
        let cases = [
            (Taps::window(2, 3, [32, 32], 3, true), 3),
            (Taps::window(3, 3, [4, 4], 5, true), 4),
            (Taps::window(2, 3, [5, 3], 2, true), 2),
            (Taps::window(2, 3, [1, 1], 2, true), 2),
            (Taps::window(1, 5, [3, 6], 2, true), 2),
            (Taps::new(up.clone(), vec![(1, 0), (0, 4), (2, 1), (1, 3), (0, 2)], [8, 8], 2, true), 2),
            (Taps::new(up, vec![(0, 1), (0, 2), (0, 3)], [2, 8], 3, true), 1),
        ];
        for (taps, samples) in cases {
            let [h, w] = taps.size;
            let planes = taps.rows.iter().map(|r| r.0 + 1).max().unwrap();
            let image: Vec<f32> = (0..planes * samples * h * w).map(|i| i as f32 + 1.0).collect();
            let columns = taps.over(&image, samples);
            let want = by_definition(&taps, &image, samples);
            let mut got = vec![f32::NAN; want.len()];
            columns.write(&mut got);
            assert_eq!(got, want, "{h} x {w}, {} rows", taps.rows());
            // add_back is write's adjoint: <write(x), c> == <x, add_back(c)>.
            let col: Vec<f32> = (0..want.len()).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
            let mut back = vec![0f32; image.len()];
            taps.add_back(&mut col.clone(), samples, &mut back);
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>();
            assert_eq!(dot(&got, &col), dot(&image, &back), "{h} x {w}: add_back");
            assert_eq!(columns.in_place(), (h * w) % 16 == 0);
            assert!(!Taps::new(taps.shifts.clone(), taps.rows.clone(), [h, w], samples, false).over(&image, samples).in_place());
            if columns.in_place() {
                // A mask bit is set exactly where the entry reads inside (every pixel is nonzero).
                for r in 0..taps.rows() {
                    let line = columns.line(r);
                    for c in 0..columns.cols {
                        // SAFETY: masks cover `samples` images of every shift.
                        let bit = unsafe { *line.masks.add(c / 16) } >> (c % 16) & 1 == 1;
                        assert_eq!(bit, want[r * columns.cols + c] != 0.0, "{h} x {w}: row {r} column {c}");
                    }
                }
            }
        }
    }
}

//! f32 products with a column matrix ([`Columns`]) read in place, on
//! AVX-512: what the bf16 products do on AMX, in f32. `gemm` packs both of
//! its operands itself, so a column matrix had to be written out for it
//! first (im2col: 9 times the image for a 3 x 3 window, its border zeros
//! written too) and read back by its packing; here each line of the column
//! matrix is loaded straight from its image plane, with the mask of the
//! positions that read inside the image.
//!
//! The two forms the kernels use:
//! - [`weights_by_columns`]: dst (m x n, row-major) = a (m x k) x columns (k
//!   x n): a convolution's output or input gradient. 8 rows by 48 columns
//!   of dst per pass, 24 registers of sums; each column value is loaded
//!   once per 8 rows and each weight broadcast from a packed copy of a.
//! - [`rows_by_lines`]: dst (m x n) = a (m x k, rows side by side) x
//!   columns^T (n lines k long): a weight gradient, whose sums run along a
//!   chunk's positions. 4 rows by 4 lines per pass, 16 registers of 16
//!   partial sums each, added across at the end of each span of positions
//!   (4 by 6 left the general registers short: the sums went to the stack).

use super::{Line, Mat};
use crate::columns::Columns;
use std::arch::x86_64::*;

/// Lanes of a register.
const LANES: usize = 16;
/// Rows of dst, and registers of 16 columns, per pass of [`weights_by_columns`].
const ROWS: usize = 8;
const VECTORS: usize = 3;
/// Rows of a, and lines, per pass of [`rows_by_lines`].
const A_ROWS: usize = 4;
const LINES: usize = 4;
/// Positions per span of [`rows_by_lines`]: 4 rows of a (16 KB) stay in L1
/// while every line meets them.
const SPAN: usize = 1024;

/// Whether this CPU runs these products.
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// dst (row-major m x n) = a (m x k) x `b` (k x n, its rows read in place).
///
/// # Safety
/// AVX-512F available; `dst` holds m x n values; `a` covers m x k; `b` has
/// k rows and n columns, a multiple of 16, readable in place.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn weights_by_columns(m: usize, n: usize, k: usize, dst: &mut [f32], a: Mat<'_>, b: &Columns<'_>) {
    assert!(n.is_multiple_of(LANES), "columns read in place: {n} columns, not whole registers");
    let lines: Vec<Line> = (0..k).map(|p| b.line(p)).collect();
    // a in blocks of ROWS rows, each block's values for one p side by side
    // (zeros past m): the ROWS weights a column value meets, in one line.
    let blocks = m.div_ceil(ROWS);
    let mut packed = vec![0f32; blocks * k * ROWS];
    for i in 0..m {
        for p in 0..k {
            packed[(i / ROWS * k + p) * ROWS + i % ROWS] = a.data[i * a.rs + p * a.cs];
        }
    }
    let out = dst.as_mut_ptr();
    for j in (0..n).step_by(LANES * VECTORS) {
        let vectors = (n - j) / LANES;
        for t in 0..blocks {
            let weights = packed.as_ptr().add(t * k * ROWS);
            let rows = ROWS.min(m - t * ROWS);
            let at = out.add(t * ROWS * n + j);
            match vectors {
                1 => block::<1>(&lines, j, weights, at, n, rows),
                2 => block::<2>(&lines, j, weights, at, n, rows),
                _ => block::<VECTORS>(&lines, j, weights, at, n, rows),
            }
        }
    }
}

/// ROWS x (16 V) values of dst from column `j`: the sums over every line
/// of the packed weights by the line's values, to `out` (rows `ld` apart),
/// the first `rows` rows.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn block<const V: usize>(lines: &[Line], j: usize, weights: *const f32, out: *mut f32, ld: usize, rows: usize) {
    let mut sums = [[_mm512_setzero_ps(); V]; ROWS];
    for (p, line) in lines.iter().enumerate() {
        let mut values = [_mm512_setzero_ps(); V];
        for (q, value) in values.iter_mut().enumerate() {
            let c = j + q * LANES;
            *value = _mm512_maskz_loadu_ps(*line.masks.add(c / LANES), line.base.wrapping_add(c));
        }
        let w = weights.add(p * ROWS);
        for (r, row) in sums.iter_mut().enumerate() {
            let weight = _mm512_set1_ps(*w.add(r));
            for (sum, value) in row.iter_mut().zip(&values) {
                *sum = _mm512_fmadd_ps(weight, *value, *sum);
            }
        }
    }
    for (r, row) in sums.iter().enumerate().take(rows) {
        for (q, sum) in row.iter().enumerate() {
            _mm512_storeu_ps(out.add(r * ld + q * LANES), *sum);
        }
    }
}

/// Whether [`rows_by_lines`] beats `gemm` over written columns for sums
/// `k` long. At 512 positions (8 x 8 images, 8 to a chunk) `gemm` ran
/// 145-171 GFLOP/s against 103 here, the sums across registers at the end
/// of each pass weighing on passes that short; from 2,048 on this ran
/// 110-136 against 65-128 (one core of the Xeon of docs/benchmarks.md).
pub fn lines_pay(k: usize) -> bool {
    k >= 2048
}

/// dst (m x n, element (r, c) at `dst[r * rs + c * cs]`) = a (m x k, rows
/// side by side) x `b`^T (`b`: n rows of k, read in place).
///
/// # Safety
/// AVX-512F available; `dst` holds every (r, c) of m x n at those strides;
/// `a` covers m x k with `a.cs` = 1; `b` has n rows and k columns, a
/// multiple of 16, readable in place.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn rows_by_lines(m: usize, n: usize, k: usize, dst: &mut [f32], [rs, cs]: [usize; 2], a: Mat<'_>, b: &Columns<'_>) {
    assert!(k.is_multiple_of(LANES), "columns read in place: {k} positions, not whole registers");
    let lines: Vec<Line> = (0..n).map(|j| b.line(j)).collect();
    let mut sums = vec![0f32; m * n];
    for p in (0..k).step_by(SPAN) {
        let len = SPAN.min(k - p);
        for i in (0..m).step_by(A_ROWS) {
            // A pass past the last row or line repeats the last one, and its
            // sums are dropped.
            let rows: [*const f32; A_ROWS] = std::array::from_fn(|r| a.data.as_ptr().add((i + r).min(m - 1) * a.rs + p));
            for j in (0..n).step_by(LINES) {
                let line = |l: usize| lines[(j + l).min(n - 1)];
                let bases = std::array::from_fn(|l| line(l).base.wrapping_add(p));
                let masks = std::array::from_fn(|l| line(l).masks.add(p / LANES));
                let tile = dots(rows, bases, masks, len);
                for (r, values) in tile.iter().enumerate().take(m - i) {
                    for (l, v) in values.iter().enumerate().take(n - j) {
                        sums[(i + r) * n + j + l] += v;
                    }
                }
            }
        }
    }
    for (r, row) in sums.chunks_exact(n).enumerate() {
        for (c, v) in row.iter().enumerate() {
            dst[r * rs + c * cs] = *v;
        }
    }
}

/// The dot products of 4 rows with 4 lines over `len` positions (a
/// multiple of 16), each line a base and its masks per 16 positions, all
/// from the same position.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn dots(rows: [*const f32; A_ROWS], bases: [*const f32; LINES], masks: [*const u16; LINES], len: usize) -> [[f32; LINES]; A_ROWS] {
    let mut sums = [[_mm512_setzero_ps(); LINES]; A_ROWS];
    for q in (0..len).step_by(LANES) {
        let mut values = [_mm512_setzero_ps(); LINES];
        for l in 0..LINES {
            values[l] = _mm512_maskz_loadu_ps(*masks[l].add(q / LANES), bases[l].wrapping_add(q));
        }
        for r in 0..A_ROWS {
            let x = _mm512_loadu_ps(rows[r].add(q));
            for l in 0..LINES {
                sums[r][l] = _mm512_fmadd_ps(x, values[l], sums[r][l]);
            }
        }
    }
    let mut totals = [[0f32; LINES]; A_ROWS];
    for r in 0..A_ROWS {
        for l in 0..LINES {
            totals[r][l] = _mm512_reduce_add_ps(sums[r][l]);
        }
    }
    totals
}

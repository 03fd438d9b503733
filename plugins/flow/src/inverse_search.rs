//! DIS step 1: align a grid of small patches of the first image with the
//! second by inverse-compositional Gauss-Newton on mean-normalized SSD,
//! starting from the coarser level's flow and from the neighbours'
//! displacements (spatial propagation).

use crate::image::{FlowField, GrayImage};
use crate::level::Level;
use rayon::prelude::*;

/// Patch rows searched together; propagation runs within a stripe, stripes
/// run in parallel. Fixed, so results do not depend on the thread count.
const STRIPE_ROWS: usize = 8;

/// Top-left corners of patches along one axis: every `stride` pixels, plus
/// one flush with the far border so that every pixel is covered.
pub fn patch_origins(len: usize, patch: usize, stride: usize) -> Vec<usize> {
    let last = len - patch;
    let mut origins: Vec<usize> = (0..=last).step_by(stride).collect();
    if origins.last() != Some(&last) {
        origins.push(last);
    }
    origins
}

/// Displacements of the patch grid, row-major over (ys, xs).
pub struct PatchFlow {
    pub xs: Vec<usize>,
    pub ys: Vec<usize>,
    pub uv: Vec<(f32, f32)>,
}

/// What a pass over a patch's residuals d = warped second image - template
/// adds up: the two sums of the mean-normalized SSD, or the two of a
/// Gauss-Newton step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Products {
    /// (sum of d, sum of d^2).
    Residual,
    /// (sum of gx d, sum of gy d), with the template's centred gradients.
    Gradient,
}

/// Computes a patch's [`Products`] at a displacement. Every implementation
/// adds in the same order: each column of the patch into its own lane, row
/// after row, and the lanes left to right at the end; so they agree to
/// the bit, and the row loops need no sequential reduction.
trait Sums: Copy + Send + Sync {
    /// The patch side this computes for.
    fn side(self) -> usize;
    /// The sums of `t` against `i1` displaced by `uv`.
    fn sums(self, t: &Template, i1: &GrayImage, uv: (f32, f32), products: Products) -> (f32, f32);
}

/// Portable sums over patches of side `S::get()`.
#[derive(Clone, Copy)]
struct Portable<S: Side>(S);

/// The side of a patch: a constant for the presets' sizes, so that the row
/// loops unroll, or any size known only at run time.
trait Side: Copy + Send + Sync {
    fn get(self) -> usize;
}

#[derive(Clone, Copy)]
struct Fixed<const P: usize>;

impl<const P: usize> Side for Fixed<P> {
    fn get(self) -> usize {
        P
    }
}

#[derive(Clone, Copy)]
struct AnySide(usize);

impl Side for AnySide {
    fn get(self) -> usize {
        self.0
    }
}

/// Where a displacement puts a patch in the second image: the whole-pixel
/// corner, the sub-pixel fractions (one for the whole patch: a
/// translation), and whether every tap lies inside the image.
struct Placement {
    x: isize,
    y: isize,
    ax: f32,
    ay: f32,
    inside: bool,
}

impl Placement {
    fn new(t: &Template, i1: &GrayImage, size: usize, (u, v): (f32, f32)) -> Placement {
        let (fx, fy) = (t.x as f32 + u, t.y as f32 + v);
        let (bx, by) = (fx.floor(), fy.floor());
        let (x, y) = (bx as isize, by as isize);
        let inside = x >= 0 && y >= 0 && x as usize + size < i1.width && y as usize + size < i1.height;
        Placement { x, y, ax: fx - bx, ay: fy - by, inside }
    }
}

/// `n` zeroed values: on the stack for the usual patch sides, else on the heap.
fn scratch<'a, T: Copy + Default>(stack: &'a mut [T; 16], heap: &'a mut Vec<T>, n: usize) -> &'a mut [T] {
    if n <= stack.len() {
        &mut stack[..n]
    } else {
        heap.resize(n, T::default());
        heap
    }
}

impl<S: Side> Sums for Portable<S> {
    fn side(self) -> usize {
        self.0.get()
    }

    fn sums(self, t: &Template, i1: &GrayImage, uv: (f32, f32), products: Products) -> (f32, f32) {
        let size = self.side();
        let at = Placement::new(t, i1, size, uv);
        let (ax, ay) = (at.ax, at.ay);
        let clamp_x = |i: isize| i.clamp(0, i1.width as isize - 1) as usize;
        let clamp_y = |i: isize| i.clamp(0, i1.height as isize - 1) as usize;
        let (mut lane_stack, mut lane_heap) = ([(0.0f32, 0.0f32); 16], Vec::new());
        let lanes = scratch(&mut lane_stack, &mut lane_heap, size);
        let (mut row_stack, mut row_heap) = ([0.0f32; 16], Vec::new());
        let warped = scratch(&mut row_stack, &mut row_heap, size);
        for r in 0..size {
            if at.inside {
                // Common case: no clamping, straight row slices.
                let (x, y) = (at.x as usize, at.y as usize);
                let top = &i1.data[(y + r) * i1.width + x..][..size + 1];
                let bottom = &i1.data[(y + r + 1) * i1.width + x..][..size + 1];
                for (c, w) in warped.iter_mut().enumerate() {
                    let t = top[c] + ax * (top[c + 1] - top[c]);
                    let b = bottom[c] + ax * (bottom[c + 1] - bottom[c]);
                    *w = t + ay * (b - t);
                }
            } else {
                let (row0, row1) = (clamp_y(at.y + r as isize) * i1.width, clamp_y(at.y + r as isize + 1) * i1.width);
                for (c, w) in warped.iter_mut().enumerate() {
                    let (c0, c1) = (clamp_x(at.x + c as isize), clamp_x(at.x + c as isize + 1));
                    let top = i1.data[row0 + c0] + ax * (i1.data[row0 + c1] - i1.data[row0 + c0]);
                    let bottom = i1.data[row1 + c0] + ax * (i1.data[row1 + c1] - i1.data[row1 + c0]);
                    *w = top + ay * (bottom - top);
                }
            }
            let template = &t.values[r * size..][..size];
            match products {
                Products::Residual => {
                    for ((lane, w), v) in lanes.iter_mut().zip(warped.iter()).zip(template) {
                        let d = w - v;
                        *lane = (lane.0 + d, lane.1 + d * d);
                    }
                }
                Products::Gradient => {
                    let (gx, gy) = (&t.gx[r * size..][..size], &t.gy[r * size..][..size]);
                    for ((lane, w), (v, (gx, gy))) in lanes.iter_mut().zip(warped.iter()).zip(template.iter().zip(gx.iter().zip(gy))) {
                        let d = w - v;
                        *lane = (lane.0 + gx * d, lane.1 + gy * d);
                    }
                }
            }
        }
        lanes.iter().fold((0.0, 0.0), |(a, b), lane| (a + lane.0, b + lane.1))
    }
}

/// Patches of side 8 on AVX: a patch row is one 8-float register. The
/// operations are the portable ones, one for one (Rust never fuses a
/// multiply and an add on its own, and neither does this), so the results
/// are the same to the bit; patches that reach past the border take the
/// portable path.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx8;

#[cfg(target_arch = "x86_64")]
impl Avx8 {
    /// `Some` on a CPU with AVX.
    fn detect() -> Option<Avx8> {
        std::is_x86_feature_detected!("avx").then_some(Avx8)
    }

    #[target_feature(enable = "avx")]
    fn sums_inside(t: &Template, i1: &GrayImage, at: &Placement, products: Products) -> (f32, f32) {
        use std::arch::x86_64::*;
        let (ax, ay) = (_mm256_set1_ps(at.ax), _mm256_set1_ps(at.ay));
        let (mut first, mut second) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (x, y) = (at.x as usize, at.y as usize);
        let row = |r: usize| &i1.data[(y + r) * i1.width + x..][..9];
        let lanes = |values: &[f32], r: usize| {
            let eight: &[f32; 8] = values[r * 8..][..8].try_into().expect("8 values");
            // SAFETY: an 8-float array is 32 readable bytes.
            unsafe { _mm256_loadu_ps(eight.as_ptr()) }
        };
        let interpolate = |taps: &[f32], a: __m256| {
            let (left, right): (&[f32; 8], &[f32; 8]) = (taps[..8].try_into().expect("8 taps"), taps[1..9].try_into().expect("8 taps"));
            // SAFETY: two 8-float arrays.
            let (left, right) = unsafe { (_mm256_loadu_ps(left.as_ptr()), _mm256_loadu_ps(right.as_ptr())) };
            _mm256_add_ps(left, _mm256_mul_ps(a, _mm256_sub_ps(right, left)))
        };
        for r in 0..8 {
            let top = interpolate(row(r), ax);
            let bottom = interpolate(row(r + 1), ax);
            let d = _mm256_sub_ps(_mm256_add_ps(top, _mm256_mul_ps(ay, _mm256_sub_ps(bottom, top))), lanes(&t.values, r));
            match products {
                Products::Residual => {
                    first = _mm256_add_ps(first, d);
                    second = _mm256_add_ps(second, _mm256_mul_ps(d, d));
                }
                Products::Gradient => {
                    first = _mm256_add_ps(first, _mm256_mul_ps(lanes(&t.gx, r), d));
                    second = _mm256_add_ps(second, _mm256_mul_ps(lanes(&t.gy, r), d));
                }
            }
        }
        let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
        // SAFETY: two 8-float arrays to write.
        unsafe {
            _mm256_storeu_ps(a.as_mut_ptr(), first);
            _mm256_storeu_ps(b.as_mut_ptr(), second);
        }
        a.iter().zip(&b).fold((0.0, 0.0), |(sa, sb), (la, lb)| (sa + la, sb + lb))
    }
}

#[cfg(target_arch = "x86_64")]
impl Sums for Avx8 {
    fn side(self) -> usize {
        8
    }

    fn sums(self, t: &Template, i1: &GrayImage, uv: (f32, f32), products: Products) -> (f32, f32) {
        let at = Placement::new(t, i1, 8, uv);
        if !at.inside {
            return Portable(Fixed::<8>).sums(t, i1, uv, products);
        }
        // SAFETY: `Avx8` exists only where `detect` found AVX.
        unsafe { Avx8::sums_inside(t, i1, &at, products) }
    }
}

/// A patch of the first image with what Gauss-Newton needs precomputed.
struct Template {
    x: usize,
    y: usize,
    values: Vec<f32>,
    /// Mean-centred gradients (centring them makes the step ignore a
    /// brightness offset between the images).
    gx: Vec<f32>,
    gy: Vec<f32>,
    /// Inverse of the 2x2 Gauss-Newton Hessian.
    inv: [f32; 3],
}

impl Template {
    fn new(level: &Level, x: usize, y: usize, size: usize) -> Template {
        let n = size * size;
        let (mut values, mut gx, mut gy) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for r in y..y + size {
            let row = r * level.i0.width;
            values.extend_from_slice(&level.i0.data[row + x..row + x + size]);
            gx.extend_from_slice(&level.gx[row + x..row + x + size]);
            gy.extend_from_slice(&level.gy[row + x..row + x + size]);
        }
        let (mx, my) = (gx.iter().sum::<f32>() / n as f32, gy.iter().sum::<f32>() / n as f32);
        gx.iter_mut().for_each(|g| *g -= mx);
        gy.iter_mut().for_each(|g| *g -= my);
        let (mut hxx, mut hxy, mut hyy) = (0.0f32, 0.0f32, 0.0f32);
        for (a, b) in gx.iter().zip(&gy) {
            hxx += a * a;
            hxy += a * b;
            hyy += b * b;
        }
        // A small ridge keeps flat or one-dimensional patches from exploding.
        let ridge = 1e-3 * (hxx + hyy) + 1e-6;
        let (hxx, hyy) = (hxx + ridge, hyy + ridge);
        let det = hxx * hyy - hxy * hxy;
        let inv = [hyy / det, -hxy / det, hxx / det];
        Template { x, y, values, gx, gy, inv }
    }

    /// Mean-normalized SSD between the template and the warped second image.
    fn cost(&self, kernel: impl Sums, i1: &GrayImage, uv: (f32, f32)) -> f32 {
        let (sum, sq) = kernel.sums(self, i1, uv, Products::Residual);
        sq - sum * sum / self.values.len() as f32
    }

    fn descend(&self, kernel: impl Sums, i1: &GrayImage, start: (f32, f32), search: &Search) -> (f32, f32) {
        let (mut u, mut v) = start;
        for _ in 0..search.iterations_per_pass {
            let (bx, by) = kernel.sums(self, i1, (u, v), Products::Gradient);
            let du = self.inv[0] * bx + self.inv[1] * by;
            let dv = self.inv[1] * bx + self.inv[2] * by;
            u -= du;
            v -= dv;
            if du * du + dv * dv < 1e-4 {
                break;
            }
        }
        let moved = ((u - start.0).powi(2) + (v - start.1).powi(2)).sqrt();
        // Gauss-Newton diverged, slid along an edge (aperture problem) or got
        // worse than where it started: keep the start.
        if !moved.is_finite() || moved > search.max_move || self.cost(kernel, i1, (u, v)) > self.cost(kernel, i1, start) {
            start
        } else {
            (u, v)
        }
    }
}

/// Settings of one inverse search.
pub struct Search {
    pub patch: usize,
    pub stride: usize,
    pub iterations_per_pass: usize,
    pub propagate: bool,
    /// Farthest a patch may move from its starting displacement, in pixels
    /// of the level.
    pub max_move: f32,
}

/// Runs inverse search on one pyramid level, starting from `init` (the
/// dense flow of the coarser level, already at this level's size).
pub fn inverse_search(level: &Level, init: &FlowField, search: &Search) -> PatchFlow {
    let (patch, stride) = (search.patch, search.stride);
    let (w, h) = (level.i0.width, level.i0.height);
    let xs = patch_origins(w, patch, stride);
    let ys = patch_origins(h, patch, stride);
    let half = patch / 2;
    let mut uv: Vec<(f32, f32)> =
        ys.iter().flat_map(|&y| xs.iter().map(move |&x| (x, y))).map(|(x, y)| init.at(x + half, y + half)).collect();
    let grid = (xs.as_slice(), ys.as_slice());
    match patch {
        #[cfg(target_arch = "x86_64")]
        8 if Avx8::detect().is_some() => search_stripes(Avx8, level, search, grid, &mut uv),
        8 => search_stripes(Portable(Fixed::<8>), level, search, grid, &mut uv),
        12 => search_stripes(Portable(Fixed::<12>), level, search, grid, &mut uv),
        _ => search_stripes(Portable(AnySide(patch)), level, search, grid, &mut uv),
    }
    PatchFlow { xs, ys, uv }
}

/// Searches the patch grid (origins `xs` by `ys`) stripe by stripe of
/// `STRIPE_ROWS` patch rows, the stripes in parallel; `uv` holds the
/// displacements, in and out.
fn search_stripes(kernel: impl Sums, level: &Level, search: &Search, (xs, ys): (&[usize], &[usize]), uv: &mut [(f32, f32)]) {
    let cols = xs.len();
    uv.par_chunks_mut(STRIPE_ROWS * cols).enumerate().for_each(|(stripe, flows)| {
        let rows = flows.len() / cols;
        let ys = &ys[stripe * STRIPE_ROWS..];
        let templates: Vec<Template> =
            (0..rows).flat_map(|r| xs.iter().map(move |&x| (x, ys[r]))).map(|(x, y)| Template::new(level, x, y, kernel.side())).collect();
        let passes = if search.propagate { 2 } else { 1 };
        for pass in 0..passes {
            let order: Box<dyn Iterator<Item = usize>> =
                if pass == 0 { Box::new(0..flows.len()) } else { Box::new((0..flows.len()).rev()) };
            for i in order {
                let (r, c) = (i / cols, i % cols);
                let t = &templates[i];
                let mut best = flows[i];
                if search.propagate {
                    let mut best_cost = t.cost(kernel, level.i1, best);
                    let neighbours = if pass == 0 {
                        [(c > 0).then(|| i - 1), (r > 0).then(|| i - cols)]
                    } else {
                        [(c + 1 < cols).then(|| i + 1), (r + 1 < rows).then(|| i + cols)]
                    };
                    for n in neighbours.into_iter().flatten() {
                        let cost = t.cost(kernel, level.i1, flows[n]);
                        if cost < best_cost {
                            best_cost = cost;
                            best = flows[n];
                        }
                    }
                }
                flows[i] = t.descend(kernel, level.i1, best, search);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured level: the second image is the first shifted by a
    /// fraction of a pixel and brightened a little.
    fn images(w: usize, h: usize) -> (GrayImage, GrayImage, Vec<f32>, Vec<f32>) {
        let texture = |x: f32, y: f32| 128.0 + 60.0 * (0.31 * x).sin() * (0.23 * y).cos() + 30.0 * (0.07 * x * y).sin();
        let first: Vec<f32> = (0..w * h).map(|i| texture((i % w) as f32, (i / w) as f32)).collect();
        let second: Vec<f32> = (0..w * h).map(|i| texture((i % w) as f32 - 1.3, (i / w) as f32 + 0.6) + 4.0).collect();
        let (gx, gy) = (first.iter().map(|v| v * 0.01).collect(), first.iter().map(|v| v * -0.02).collect());
        (GrayImage::new(w, h, first), GrayImage::new(w, h, second), gx, gy)
    }

    fn bits((a, b): (f32, f32)) -> (u32, u32) {
        (a.to_bits(), b.to_bits())
    }

    /// Every kernel adds in one order, so the AVX rows, the constant-side
    /// and the any-side portable loops give the same sums to the bit, inside
    /// the image and where the patch reaches past its border.
    #[test]
    fn every_sums_kernel_gives_the_same_bits() {
        let (i0, i1, gx, gy) = images(40, 30);
        let level = Level { i0: &i0, i1: &i1, gx: &gx, gy: &gy };
        let displacements = [(0.0, 0.0), (1.3, -0.6), (-2.75, 3.125), (-5.5, -4.2), (30.0, 20.0), (0.49, 0.51)];
        for (x, y) in [(0, 0), (8, 4), (16, 12), (31, 21), (24, 0)] {
            let t = Template::new(&level, x, y, 8);
            for uv in displacements {
                for products in [Products::Residual, Products::Gradient] {
                    let fixed = bits(Portable(Fixed::<8>).sums(&t, &i1, uv, products));
                    assert_eq!(bits(Portable(AnySide(8)).sums(&t, &i1, uv, products)), fixed, "any side at ({x}, {y}) by {uv:?}");
                    #[cfg(target_arch = "x86_64")]
                    if let Some(avx) = Avx8::detect() {
                        assert_eq!(bits(avx.sums(&t, &i1, uv, products)), fixed, "AVX at ({x}, {y}) by {uv:?}");
                    }
                }
            }
        }
    }

    /// The search moves a patch to the shift between the images, whichever
    /// kernel runs it.
    #[test]
    fn descent_finds_the_shift_with_every_kernel() {
        let (i0, i1, _, _) = images(48, 40);
        let (gx, gy) = crate::level::sobel(&i0);
        let level = Level { i0: &i0, i1: &i1, gx: &gx, gy: &gy };
        let search = Search { patch: 8, stride: 4, iterations_per_pass: 40, propagate: false, max_move: 4.0 };
        let t = Template::new(&level, 20, 16, 8);
        let found = t.descend(Portable(Fixed::<8>), &i1, (0.0, 0.0), &search);
        assert!((found.0 - 1.3).abs() < 0.1 && (found.1 + 0.6).abs() < 0.1, "{found:?}");
        assert_eq!(bits(t.descend(Portable(AnySide(8)), &i1, (0.0, 0.0), &search)), bits(found));
        #[cfg(target_arch = "x86_64")]
        if let Some(avx) = Avx8::detect() {
            assert_eq!(bits(t.descend(avx, &i1, (0.0, 0.0), &search)), bits(found));
        }
    }
}

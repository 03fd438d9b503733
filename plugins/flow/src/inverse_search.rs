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

/// A patch of the first image with what Gauss-Newton needs precomputed.
struct Template {
    x: usize,
    y: usize,
    size: usize,
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
        Template { x, y, size, values, gx, gy, inv }
    }

    /// Fills `out` with the second image warped by (u, v) over this patch.
    /// A translation has one sub-pixel fraction for the whole patch.
    fn warp(&self, i1: &GrayImage, u: f32, v: f32, out: &mut [f32]) {
        let size = self.size;
        let (fx0, fy0) = (self.x as f32 + u, self.y as f32 + v);
        let (bx, by) = (fx0.floor(), fy0.floor());
        let (ax, ay) = (fx0 - bx, fy0 - by);
        let (bx, by) = (bx as isize, by as isize);
        let inside = bx >= 0 && by >= 0 && bx as usize + size < i1.width && by as usize + size < i1.height;
        if inside {
            // Common case: no clamping, straight row slices.
            let (bx, by) = (bx as usize, by as usize);
            for (r, dst) in out.chunks_exact_mut(size).enumerate() {
                let top = &i1.data[(by + r) * i1.width + bx..][..size + 1];
                let bottom = &i1.data[(by + r + 1) * i1.width + bx..][..size + 1];
                for c in 0..size {
                    let t = top[c] + ax * (top[c + 1] - top[c]);
                    let b = bottom[c] + ax * (bottom[c + 1] - bottom[c]);
                    dst[c] = t + ay * (b - t);
                }
            }
            return;
        }
        let clamp_x = |i: isize| i.clamp(0, i1.width as isize - 1) as usize;
        let clamp_y = |i: isize| i.clamp(0, i1.height as isize - 1) as usize;
        for r in 0..size {
            let row0 = clamp_y(by + r as isize) * i1.width;
            let row1 = clamp_y(by + r as isize + 1) * i1.width;
            for c in 0..size {
                let (c0, c1) = (clamp_x(bx + c as isize), clamp_x(bx + c as isize + 1));
                let top = i1.data[row0 + c0] + ax * (i1.data[row0 + c1] - i1.data[row0 + c0]);
                let bottom = i1.data[row1 + c0] + ax * (i1.data[row1 + c1] - i1.data[row1 + c0]);
                out[r * size + c] = top + ay * (bottom - top);
            }
        }
    }

    /// Mean-normalized SSD between the template and the warped second image.
    fn cost(&self, i1: &GrayImage, (u, v): (f32, f32), scratch: &mut [f32]) -> f32 {
        self.warp(i1, u, v, scratch);
        let n = self.values.len() as f32;
        let (mut sum, mut sq) = (0.0f32, 0.0f32);
        for (w, t) in scratch.iter().zip(&self.values) {
            let d = w - t;
            sum += d;
            sq += d * d;
        }
        sq - sum * sum / n
    }

    fn descend(&self, i1: &GrayImage, start: (f32, f32), search: &Search, scratch: &mut [f32]) -> (f32, f32) {
        let (mut u, mut v) = start;
        for _ in 0..search.iterations_per_pass {
            self.warp(i1, u, v, scratch);
            let (mut bx, mut by) = (0.0f32, 0.0f32);
            for (((w, t), gx), gy) in scratch.iter().zip(&self.values).zip(&self.gx).zip(&self.gy) {
                let d = w - t;
                bx += gx * d;
                by += gy * d;
            }
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
        if !moved.is_finite() || moved > search.max_move || self.cost(i1, (u, v), scratch) > self.cost(i1, start, scratch) {
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
    let (patch, stride, propagate) = (search.patch, search.stride, search.propagate);
    let (w, h) = (level.i0.width, level.i0.height);
    let xs = patch_origins(w, patch, stride);
    let ys = patch_origins(h, patch, stride);
    let half = patch / 2;
    let mut uv: Vec<(f32, f32)> =
        ys.iter().flat_map(|&y| xs.iter().map(move |&x| (x, y))).map(|(x, y)| init.at(x + half, y + half)).collect();
    let passes = if propagate { 2 } else { 1 };
    uv.par_chunks_mut(STRIPE_ROWS * xs.len()).enumerate().for_each(|(stripe, flows)| {
        let rows = flows.len() / xs.len();
        let (xs, ys) = (&xs, &ys);
        let templates: Vec<Template> = (0..rows)
            .flat_map(|r| xs.iter().map(move |&x| (x, ys[stripe * STRIPE_ROWS + r])))
            .map(|(x, y)| Template::new(level, x, y, patch))
            .collect();
        let mut scratch = vec![0.0f32; patch * patch];
        let cols = xs.len();
        for pass in 0..passes {
            let order: Box<dyn Iterator<Item = usize>> =
                if pass == 0 { Box::new(0..flows.len()) } else { Box::new((0..flows.len()).rev()) };
            for i in order {
                let (r, c) = (i / cols, i % cols);
                let t = &templates[i];
                let mut best = flows[i];
                if propagate {
                    let mut best_cost = t.cost(level.i1, best, &mut scratch);
                    let neighbours = if pass == 0 {
                        [(c > 0).then(|| i - 1), (r > 0).then(|| i - cols)]
                    } else {
                        [(c + 1 < cols).then(|| i + 1), (r + 1 < rows).then(|| i + cols)]
                    };
                    for n in neighbours.into_iter().flatten() {
                        let cost = t.cost(level.i1, flows[n], &mut scratch);
                        if cost < best_cost {
                            best_cost = cost;
                            best = flows[n];
                        }
                    }
                }
                flows[i] = t.descend(level.i1, best, search, &mut scratch);
            }
        }
    });
    PatchFlow { xs, ys, uv }
}

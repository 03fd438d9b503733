//! DIS step 3 (optional): variational refinement of the dense field, as in
//! DIS/DeepFlow: brightness and gradient constancy with robust (Charbonnier)
//! penalties and DeepFlow's data normalization, plus robust smoothness,
//! linearized once around the current flow and solved for the increment by
//! lagged fixed-point iterations of successive over-relaxation.

use crate::image::{FlowField, GrayImage};
use crate::level::Level;
use crate::params::VariationalParams;
use rayon::prelude::*;

/// Keeps DeepFlow's normalization finite on flat regions (intensities 0..1).
const ZETA2: f32 = 0.1 * 0.1;
/// Charbonnier epsilon.
const EPS2: f32 = 0.001 * 0.001;

/// Derivatives of the linearized data terms at every pixel.
struct DataTerms {
    ix: Vec<f32>,
    iy: Vec<f32>,
    iz: Vec<f32>,
    ixx: Vec<f32>,
    ixy: Vec<f32>,
    iyy: Vec<f32>,
    ixz: Vec<f32>,
    iyz: Vec<f32>,
    /// 0 where the flow points outside the second image (no data there).
    valid: Vec<f32>,
}

fn central_dx(img: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        for x in 0..w {
            let (l, r) = (x.saturating_sub(1), (x + 1).min(w - 1));
            out[y * w + x] = (img[y * w + r] - img[y * w + l]) * 0.5;
        }
    }
    out
}

fn central_dy(img: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        let (u, d) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            out[y * w + x] = (img[d * w + x] - img[u * w + x]) * 0.5;
        }
    }
    out
}

impl DataTerms {
    fn new(i0: &GrayImage, i1: &GrayImage, flow: &FlowField) -> DataTerms {
        let (w, h) = (i0.width, i0.height);
        let scale = 1.0 / 255.0;
        let a: Vec<f32> = i0.data.iter().map(|v| v * scale).collect();
        let mut b = vec![0.0f32; w * h];
        let mut valid = vec![1.0f32; w * h];
        b.par_chunks_mut(w).zip(valid.par_chunks_mut(w)).enumerate().for_each(|(y, (b_row, valid_row))| {
            for x in 0..w {
                let (u, v) = flow.at(x, y);
                let (sx, sy) = (x as f32 + u, y as f32 + v);
                b_row[x] = i1.sample(sx, sy) * scale;
                if sx < 0.0 || sy < 0.0 || sx > (w - 1) as f32 || sy > (h - 1) as f32 {
                    valid_row[x] = 0.0;
                }
            }
        });
        let (ax, ay, bx, by) = (central_dx(&a, w, h), central_dy(&a, w, h), central_dx(&b, w, h), central_dy(&b, w, h));
        let ix: Vec<f32> = ax.iter().zip(&bx).map(|(p, q)| 0.5 * (p + q)).collect();
        let iy: Vec<f32> = ay.iter().zip(&by).map(|(p, q)| 0.5 * (p + q)).collect();
        DataTerms {
            iz: b.iter().zip(&a).map(|(p, q)| p - q).collect(),
            ixz: bx.iter().zip(&ax).map(|(p, q)| p - q).collect(),
            iyz: by.iter().zip(&ay).map(|(p, q)| p - q).collect(),
            ixx: central_dx(&ix, w, h),
            ixy: central_dy(&ix, w, h),
            iyy: central_dy(&iy, w, h),
            ix,
            iy,
            valid,
        }
    }

    /// The 2x2 system (a11, a12, a22, b1, b2) of the data terms at pixel
    /// `i` for the current increment (du, dv).
    fn system(&self, i: usize, du: f32, dv: f32, p: &VariationalParams) -> [f32; 5] {
        let (ix, iy, iz) = (self.ix[i], self.iy[i], self.iz[i]);
        let (ixx, ixy, iyy, ixz, iyz) = (self.ixx[i], self.ixy[i], self.iyy[i], self.ixz[i], self.iyz[i]);
        let nb = 1.0 / (ix * ix + iy * iy + ZETA2);
        let r = iz + ix * du + iy * dv;
        let wb = self.valid[i] * p.delta * nb / (nb * r * r + EPS2).sqrt();
        let (nx, ny) = (1.0 / (ixx * ixx + ixy * ixy + ZETA2), 1.0 / (ixy * ixy + iyy * iyy + ZETA2));
        let (rx, ry) = (ixz + ixx * du + ixy * dv, iyz + ixy * du + iyy * dv);
        let wg = self.valid[i] * p.gamma / (nx * rx * rx + ny * ry * ry + EPS2).sqrt();
        let (gx, gy) = (wg * nx, wg * ny);
        [
            wb * ix * ix + gx * ixx * ixx + gy * ixy * ixy,
            wb * ix * iy + gx * ixx * ixy + gy * ixy * iyy,
            wb * iy * iy + gx * ixy * ixy + gy * iyy * iyy,
            -(wb * ix * iz + gx * ixx * ixz + gy * ixy * iyz),
            -(wb * iy * iz + gx * ixy * ixz + gy * iyy * iyz),
        ]
    }
}

/// Robust smoothness weight of each pixel's right and lower edge (0 where
/// there is no neighbour).
fn smoothness_weights(u: &[f32], v: &[f32], w: usize, h: usize, alpha: f32) -> (Vec<f32>, Vec<f32>) {
    let mut right = vec![0.0f32; w * h];
    let mut down = vec![0.0f32; w * h];
    right.par_chunks_mut(w).zip(down.par_chunks_mut(w)).enumerate().for_each(|(y, (r_row, d_row))| {
        for x in 0..w {
            let i = y * w + x;
            let (r, d) = (if x + 1 < w { i + 1 } else { i }, if y + 1 < h { i + w } else { i });
            let g = (u[r] - u[i]).powi(2) + (u[d] - u[i]).powi(2) + (v[r] - v[i]).powi(2) + (v[d] - v[i]).powi(2);
            let weight = alpha / (g + EPS2).sqrt();
            r_row[x] = if x + 1 < w { weight } else { 0.0 };
            d_row[x] = if y + 1 < h { weight } else { 0.0 };
        }
    });
    (right, down)
}

/// One pixel's linear system for the increment, with the smoothness
/// neighbours folded in: `du = (c1 + sum_n s_n du_n - a12 dv) / d11`, likewise dv.
#[derive(Clone, Copy, Default)]
struct PixelSystem {
    /// Edge weights to the left, right, upper and lower neighbour.
    s: [f32; 4],
    a12: f32,
    d11: f32,
    d22: f32,
    c1: f32,
    c2: f32,
}

/// Refines `flow` in place; does nothing when `params.iterations` is 0.
pub fn refine(level: &Level, flow: &mut FlowField, params: &VariationalParams) {
    if params.iterations == 0 {
        return;
    }
    let (w, h) = (flow.width, flow.height);
    let data = DataTerms::new(&level.i0, &level.i1, flow);
    let u0: Vec<f32> = flow.data.iter().step_by(2).copied().collect();
    let v0: Vec<f32> = flow.data.iter().skip(1).step_by(2).copied().collect();
    let (mut du, mut dv) = (vec![0.0f32; w * h], vec![0.0f32; w * h]);
    let mut systems = vec![PixelSystem::default(); w * h];
    let mut updates = vec![(0.0f32, 0.0f32); w * h];
    // Neighbour indices, clamped at the border (where their weight is 0).
    let neighbours = |x: usize, y: usize| {
        let i = y * w + x;
        [if x > 0 { i - 1 } else { i }, if x + 1 < w { i + 1 } else { i }, if y > 0 { i - w } else { i }, if y + 1 < h { i + w } else { i }]
    };
    for _ in 0..params.iterations {
        let u: Vec<f32> = u0.iter().zip(&du).map(|(a, b)| a + b).collect();
        let v: Vec<f32> = v0.iter().zip(&dv).map(|(a, b)| a + b).collect();
        let (right, down) = smoothness_weights(&u, &v, w, h, params.alpha);
        systems.par_iter_mut().enumerate().for_each(|(i, sys)| {
            let [a11, a12, a22, b1, b2] = data.system(i, du[i], dv[i], params);
            let n = neighbours(i % w, i / w);
            let s = [if n[0] != i { right[n[0]] } else { 0.0 }, right[i], if n[2] != i { down[n[2]] } else { 0.0 }, down[i]];
            let sum: f32 = s.iter().sum();
            let (mut c1, mut c2) = (b1, b2);
            for (k, &j) in n.iter().enumerate() {
                c1 += s[k] * (u0[j] - u0[i]);
                c2 += s[k] * (v0[j] - v0[i]);
            }
            *sys = PixelSystem { s, a12, d11: a11 + sum, d22: a22 + sum, c1, c2 };
        });
        for _ in 0..params.sor_iterations {
            // Red-black order: pixels of one colour only read neighbours of
            // the other, so each half-sweep can run row-parallel.
            for colour in 0..2 {
                updates.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
                    for x in ((y + colour) % 2..w).step_by(2) {
                        let i = y * w + x;
                        let sys = &systems[i];
                        let (mut su, mut sv) = (sys.c1, sys.c2);
                        for (k, j) in neighbours(x, y).into_iter().enumerate() {
                            su += sys.s[k] * du[j];
                            sv += sys.s[k] * dv[j];
                        }
                        let du_i = du[i] + params.omega * ((su - sys.a12 * dv[i]) / sys.d11 - du[i]);
                        let dv_i = dv[i] + params.omega * ((sv - sys.a12 * du_i) / sys.d22 - dv[i]);
                        row[x] = (du_i, dv_i);
                    }
                });
                du.par_chunks_mut(w).zip(dv.par_chunks_mut(w)).zip(updates.par_chunks(w)).enumerate().for_each(
                    |(y, ((du_row, dv_row), row))| {
                        for x in ((y + colour) % 2..w).step_by(2) {
                            (du_row[x], dv_row[x]) = row[x];
                        }
                    },
                );
            }
        }
    }
    for (i, uv) in flow.data.chunks_exact_mut(2).enumerate() {
        uv[0] = u0[i] + du[i];
        uv[1] = v0[i] + dv[i];
    }
}

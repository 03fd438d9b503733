//! DIS step 3 (optional): variational refinement of the dense field, as in
//! DIS/DeepFlow: brightness and gradient constancy with robust (Charbonnier)
//! penalties and DeepFlow's data normalization, plus robust smoothness,
//! linearized once around the current flow and solved for the increment by
//! lagged fixed-point iterations of successive over-relaxation.

use crate::image::{FlowField, GrayImage};
use crate::level::Level;
use crate::params::VariationalParams;
use crate::rows::min_rows;
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
    /// DeepFlow's normalizations of the brightness term and of the two
    /// gradient terms.
    nb: Vec<f32>,
    nx: Vec<f32>,
    ny: Vec<f32>,
    /// `delta * nb` and `gamma`, 0 where the flow points outside the second
    /// image (no data there).
    brightness_weight: Vec<f32>,
    gradient_weight: Vec<f32>,
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
    fn new(i0: &GrayImage, i1: &GrayImage, flow: &FlowField, p: &VariationalParams) -> DataTerms {
        let (w, h) = (i0.width, i0.height);
        let scale = 1.0 / 255.0;
        let a: Vec<f32> = i0.data.iter().map(|v| v * scale).collect();
        let mut b = vec![0.0f32; w * h];
        let mut valid = vec![1.0f32; w * h];
        b.par_chunks_mut(w).zip(valid.par_chunks_mut(w)).enumerate().with_min_len(min_rows(w)).for_each(|(y, (b_row, valid_row))| {
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
        let (ixx, ixy, iyy) = (central_dx(&ix, w, h), central_dy(&ix, w, h), central_dy(&iy, w, h));
        // The parts of the system that do not change with the increment.
        let nb: Vec<f32> = ix.iter().zip(&iy).map(|(x, y)| 1.0 / (x * x + y * y + ZETA2)).collect();
        let nx = ixx.iter().zip(&ixy).map(|(xx, xy)| 1.0 / (xx * xx + xy * xy + ZETA2)).collect();
        let ny = ixy.iter().zip(&iyy).map(|(xy, yy)| 1.0 / (xy * xy + yy * yy + ZETA2)).collect();
        DataTerms {
            iz: b.iter().zip(&a).map(|(p, q)| p - q).collect(),
            ixz: bx.iter().zip(&ax).map(|(p, q)| p - q).collect(),
            iyz: by.iter().zip(&ay).map(|(p, q)| p - q).collect(),
            brightness_weight: valid.iter().zip(&nb).map(|(valid, nb)| valid * p.delta * nb).collect(),
            gradient_weight: valid.iter().map(|valid| valid * p.gamma).collect(),
            nb,
            nx,
            ny,
            ixx,
            ixy,
            iyy,
            ix,
            iy,
        }
    }

    /// The 2x2 system (a11, a12, a22, b1, b2) of the data terms at pixel
    /// `i` for the current increment (du, dv).
    fn system(&self, i: usize, du: f32, dv: f32) -> [f32; 5] {
        let (ix, iy, iz) = (self.ix[i], self.iy[i], self.iz[i]);
        let (ixx, ixy, iyy, ixz, iyz) = (self.ixx[i], self.ixy[i], self.iyy[i], self.ixz[i], self.iyz[i]);
        let (nb, nx, ny) = (self.nb[i], self.nx[i], self.ny[i]);
        let r = iz + ix * du + iy * dv;
        let wb = self.brightness_weight[i] / (nb * r * r + EPS2).sqrt();
        let (rx, ry) = (ixz + ixx * du + ixy * dv, iyz + ixy * du + iyy * dv);
        let wg = self.gradient_weight[i] / (nx * rx * rx + ny * ry * ry + EPS2).sqrt();
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
    right.par_chunks_mut(w).zip(down.par_chunks_mut(w)).enumerate().with_min_len(min_rows(w)).for_each(|(y, (r_row, d_row))| {
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

/// Pixels stored by checkerboard colour ((x + y) % 2), each row of a
/// colour packed and padded by one slot at each end. A red-black sweep
/// updates one colour from the other: the pixels it writes are contiguous,
/// its four neighbours are four contiguous runs of the other colour (the
/// pads stand in for neighbours outside the image, whose weight is 0), and
/// a colour's rows can be updated in parallel while the other is read.
#[derive(Clone, Copy)]
struct Checkerboard {
    w: usize,
    h: usize,
    /// Slots per row of one colour: ceil(w / 2) pixels and two pads.
    stride: usize,
}

impl Checkerboard {
    fn new(w: usize, h: usize) -> Checkerboard {
        Checkerboard { w, h, stride: w.div_ceil(2) + 2 }
    }

    /// Zeroed storage for one colour.
    fn plane(&self) -> Vec<f32> {
        vec![0.0; self.stride * self.h]
    }

    /// Column offset of colour `colour`'s first pixel in row `y`, and how
    /// many of its pixels the row has.
    fn row(&self, colour: usize, y: usize) -> (usize, usize) {
        let offset = (y + colour) % 2;
        (offset, (self.w - offset).div_ceil(2))
    }

    /// Natural (row-major) layout of a field stored as `colours`.
    fn gather(&self, colours: &[Vec<f32>; 2], out: &mut [f32]) {
        for (y, row) in out.chunks_exact_mut(self.w).enumerate() {
            for (x, value) in row.iter_mut().enumerate() {
                *value = colours[(x + y) % 2][y * self.stride + 1 + x / 2];
            }
        }
    }
}

/// Each pixel's linear system for the increment, with the smoothness
/// neighbours folded in: `du = (c1 + sum_n s_n du_n - a12 dv) / d11`,
/// likewise dv; one colour of the board, one array per coefficient.
struct Systems {
    /// Edge weights to the left, right, upper and lower neighbour.
    s: [Vec<f32>; 4],
    a12: Vec<f32>,
    inv_d11: Vec<f32>,
    inv_d22: Vec<f32>,
    c1: Vec<f32>,
    c2: Vec<f32>,
}

impl Systems {
    fn new(board: &Checkerboard) -> Systems {
        let plane = || board.plane();
        Systems { s: [plane(), plane(), plane(), plane()], a12: plane(), inv_d11: plane(), inv_d22: plane(), c1: plane(), c2: plane() }
    }
}

/// Refines `flow` in place; does nothing when `params.iterations` is 0.
pub fn refine(level: &Level, flow: &mut FlowField, params: &VariationalParams) {
    if params.iterations == 0 {
        return;
    }
    let (w, h) = (flow.width, flow.height);
    let board = Checkerboard::new(w, h);
    let data = DataTerms::new(level.i0, level.i1, flow, params);
    let u0: Vec<f32> = flow.data.iter().step_by(2).copied().collect();
    let v0: Vec<f32> = flow.data.iter().skip(1).step_by(2).copied().collect();
    let mut du = [board.plane(), board.plane()];
    let mut dv = [board.plane(), board.plane()];
    let mut systems = [Systems::new(&board), Systems::new(&board)];
    let (mut u, mut v) = (vec![0.0f32; w * h], vec![0.0f32; w * h]);
    for _ in 0..params.iterations {
        board.gather(&du, &mut u);
        board.gather(&dv, &mut v);
        u.iter_mut().zip(&u0).for_each(|(d, a)| *d += a);
        v.iter_mut().zip(&v0).for_each(|(d, a)| *d += a);
        let (right, down) = smoothness_weights(&u, &v, w, h, params.alpha);
        for (colour, sys) in systems.iter_mut().enumerate() {
            build_systems(&board, colour, sys, &data, (&du[colour], &dv[colour]), (&u0, &v0), (&right, &down));
        }
        for _ in 0..params.sor_iterations {
            for (colour, sys) in systems.iter().enumerate() {
                sweep(&board, colour, sys, (&mut du, &mut dv), params.omega);
            }
        }
    }
    board.gather(&du, &mut u);
    board.gather(&dv, &mut v);
    for (i, uv) in flow.data.chunks_exact_mut(2).enumerate() {
        uv[0] = u0[i] + u[i];
        uv[1] = v0[i] + v[i];
    }
}

/// The systems of one colour's pixels at the current increment.
fn build_systems(
    board: &Checkerboard,
    colour: usize,
    sys: &mut Systems,
    data: &DataTerms,
    (du, dv): (&[f32], &[f32]),
    (u0, v0): (&[f32], &[f32]),
    (right, down): (&[f32], &[f32]),
) {
    let (w, h, stride) = (board.w, board.h, board.stride);
    let [s_left, s_right, s_up, s_down] = &mut sys.s;
    let rows = s_left
        .par_chunks_mut(stride)
        .zip(s_right.par_chunks_mut(stride))
        .zip(s_up.par_chunks_mut(stride))
        .zip(s_down.par_chunks_mut(stride))
        .zip(sys.a12.par_chunks_mut(stride))
        .zip(sys.inv_d11.par_chunks_mut(stride))
        .zip(sys.inv_d22.par_chunks_mut(stride))
        .zip(sys.c1.par_chunks_mut(stride).zip(sys.c2.par_chunks_mut(stride)));
    rows.enumerate().with_min_len(min_rows(w)).for_each(|(y, (((((((sl, sr), su), sd), a12_row), inv11), inv22), (c1_row, c2_row)))| {
        let (offset, count) = board.row(colour, y);
        for k in 0..count {
            let (x, slot) = (2 * k + offset, 1 + k);
            let i = y * w + x;
            let [a11, a12, a22, b1, b2] = data.system(i, du[y * stride + slot], dv[y * stride + slot]);
            // Neighbour indices, clamped at the border (where their weight is 0).
            let n = [
                if x > 0 { i - 1 } else { i },
                if x + 1 < w { i + 1 } else { i },
                if y > 0 { i - w } else { i },
                if y + 1 < h { i + w } else { i },
            ];
            let s = [if x > 0 { right[i - 1] } else { 0.0 }, right[i], if y > 0 { down[i - w] } else { 0.0 }, down[i]];
            let (mut c1, mut c2) = (b1, b2);
            for (k, &j) in n.iter().enumerate() {
                c1 += s[k] * (u0[j] - u0[i]);
                c2 += s[k] * (v0[j] - v0[i]);
            }
            let sum: f32 = s.iter().sum();
            (sl[slot], sr[slot], su[slot], sd[slot]) = (s[0], s[1], s[2], s[3]);
            (a12_row[slot], inv11[slot], inv22[slot], c1_row[slot], c2_row[slot]) = (a12, 1.0 / (a11 + sum), 1.0 / (a22 + sum), c1, c2);
        }
    });
}

/// One over-relaxed Gauss-Seidel half-sweep: every pixel of `colour` from
/// its neighbours, which are all of the other colour.
fn sweep(board: &Checkerboard, colour: usize, sys: &Systems, (du, dv): (&mut [Vec<f32>; 2], &mut [Vec<f32>; 2]), omega: f32) {
    let ([red_u, black_u], [red_v, black_v]) = (du, dv);
    let ((du, dv), other) = if colour == 0 { ((red_u, red_v), (&*black_u, &*black_v)) } else { ((black_u, black_v), (&*red_u, &*red_v)) };
    let (h, stride) = (board.h, board.stride);
    du.par_chunks_mut(stride).zip(dv.par_chunks_mut(stride)).enumerate().with_min_len(min_rows(board.w)).for_each(
        |(y, (du_row, dv_row))| {
            let (offset, count) = board.row(colour, y);
            // Runs of `count` slots: this row's own, and its left, right, upper
            // and lower neighbours' in the other colour. A pixel in an even
            // column has its left neighbour one slot before its own.
            let slots = |row: usize, start: usize| row * stride + start..row * stride + start + count;
            let own = slots(y, 1);
            let neighbours = [slots(y, offset), slots(y, offset + 1), slots(y.saturating_sub(1), 1), slots((y + 1).min(h - 1), 1)];
            let [lu, ru, au, bu] = neighbours.clone().map(|r| &other.0[r]);
            let [lv, rv, av, bv] = neighbours.map(|r| &other.1[r]);
            let [sl, sr, sa, sb] = [0, 1, 2, 3].map(|n| &sys.s[n][own.clone()]);
            let (a12, inv_d11, inv_d22) = (&sys.a12[own.clone()], &sys.inv_d11[own.clone()], &sys.inv_d22[own.clone()]);
            let (c1, c2) = (&sys.c1[own.clone()], &sys.c2[own]);
            let (du_row, dv_row) = (&mut du_row[1..1 + count], &mut dv_row[1..1 + count]);
            for k in 0..count {
                let su = c1[k] + sl[k] * lu[k] + sr[k] * ru[k] + sa[k] * au[k] + sb[k] * bu[k];
                let sv = c2[k] + sl[k] * lv[k] + sr[k] * rv[k] + sa[k] * av[k] + sb[k] * bv[k];
                let (old_u, old_v) = (du_row[k], dv_row[k]);
                let new_u = old_u + omega * ((su - a12[k] * old_v) * inv_d11[k] - old_u);
                dv_row[k] = old_v + omega * ((sv - a12[k] * new_u) * inv_d22[k] - old_v);
                du_row[k] = new_u;
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in [lo, hi) from a fixed linear congruential sequence.
    fn values(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                lo + (hi - lo) * ((state >> 40) as f32 / (1u64 << 24) as f32)
            })
            .collect()
    }

    /// Half-sweeps on the checkerboard give what red-black SOR on the
    /// row-major field gives, for odd and even sizes (the pads and the
    /// shifted neighbour runs are where an index error would hide).
    #[test]
    fn checkerboard_sweeps_match_row_major_red_black_sor() {
        for (w, h) in [(5, 3), (6, 4), (1, 4), (7, 1), (2, 2)] {
            let n = w * h;
            let mut right = values(n, 1, 0.1, 2.0);
            let mut down = values(n, 2, 0.1, 2.0);
            for y in 0..h {
                right[y * w + w - 1] = 0.0;
            }
            down[(h - 1) * w..].fill(0.0);
            let (a12, c1, c2) = (values(n, 3, -0.5, 0.5), values(n, 4, -1.0, 1.0), values(n, 5, -1.0, 1.0));
            let weights = |i: usize| {
                let (x, y) = (i % w, i / w);
                [if x > 0 { right[i - 1] } else { 0.0 }, right[i], if y > 0 { down[i - w] } else { 0.0 }, down[i]]
            };
            let d11: Vec<f32> = (0..n).map(|i| 1.0 + weights(i).iter().sum::<f32>()).collect();
            let d22: Vec<f32> = d11.iter().map(|d| d + 0.5).collect();
            let (mut du, mut dv) = (values(n, 6, -1.0, 1.0), values(n, 7, -1.0, 1.0));

            let board = Checkerboard::new(w, h);
            let mut systems = [Systems::new(&board), Systems::new(&board)];
            let (mut split_u, mut split_v) = ([board.plane(), board.plane()], [board.plane(), board.plane()]);
            for i in 0..n {
                let (x, y) = (i % w, i / w);
                let (colour, slot) = ((x + y) % 2, y * board.stride + 1 + x / 2);
                let sys = &mut systems[colour];
                for (k, s) in weights(i).into_iter().enumerate() {
                    sys.s[k][slot] = s;
                }
                (sys.a12[slot], sys.inv_d11[slot], sys.inv_d22[slot], sys.c1[slot], sys.c2[slot]) =
                    (a12[i], 1.0 / d11[i], 1.0 / d22[i], c1[i], c2[i]);
                (split_u[colour][slot], split_v[colour][slot]) = (du[i], dv[i]);
            }

            let omega = 1.6;
            for _ in 0..3 {
                for (colour, sys) in systems.iter().enumerate() {
                    for i in (0..n).filter(|i| (i % w + i / w) % 2 == colour) {
                        let (x, y) = (i % w, i / w);
                        let neighbours =
                            [(x > 0).then(|| i - 1), (x + 1 < w).then(|| i + 1), (y > 0).then(|| i - w), (y + 1 < h).then(|| i + w)];
                        let (mut su, mut sv) = (c1[i], c2[i]);
                        for (s, j) in weights(i).into_iter().zip(neighbours) {
                            if let Some(j) = j {
                                su += s * du[j];
                                sv += s * dv[j];
                            }
                        }
                        du[i] += omega * ((su - a12[i] * dv[i]) / d11[i] - du[i]);
                        dv[i] += omega * ((sv - a12[i] * du[i]) / d22[i] - dv[i]);
                    }
                    sweep(&board, colour, sys, (&mut split_u, &mut split_v), omega);
                }
            }
            let (mut u, mut v) = (vec![0.0; n], vec![0.0; n]);
            board.gather(&split_u, &mut u);
            board.gather(&split_v, &mut v);
            for i in 0..n {
                assert!(
                    (u[i] - du[i]).abs() < 1e-4 && (v[i] - dv[i]).abs() < 1e-4,
                    "{w}x{h}, pixel {i}: ({}, {}) against ({}, {})",
                    u[i],
                    v[i],
                    du[i],
                    dv[i]
                );
            }
        }
    }
}

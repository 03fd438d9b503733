//! DIS step 3 (optional): variational refinement of the dense field, as in
//! DIS/DeepFlow: brightness and gradient constancy with robust (Charbonnier)
//! penalties and DeepFlow's data normalization, plus robust smoothness,
//! linearized once around the current flow and solved for the increment by
//! lagged fixed-point iterations of successive over-relaxation.
//!
//! Everything per pixel runs on a checkerboard layout (see
//! [`Checkerboard`]), so that each pass reads and writes contiguous runs.

use crate::image::{FlowField, GrayImage};
use crate::level::Level;
use crate::params::VariationalParams;
use crate::rows::min_rows;
use rayon::prelude::*;
use std::ops::Range;

/// Keeps DeepFlow's normalization finite on flat regions (intensities 0..1).
const ZETA2: f32 = 0.1 * 0.1;
/// Charbonnier epsilon.
const EPS2: f32 = 0.001 * 0.001;

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

/// A field on the checkerboard: one plane per colour.
type Planes = [Vec<f32>; 2];

impl Checkerboard {
    fn new(w: usize, h: usize) -> Checkerboard {
        Checkerboard { w, h, stride: w.div_ceil(2) + 2 }
    }

    /// Zeroed storage for one colour.
    fn plane(&self) -> Vec<f32> {
        vec![0.0; self.stride * self.h]
    }

    fn planes(&self) -> Planes {
        [self.plane(), self.plane()]
    }

    /// Column offset of colour `colour`'s first pixel in row `y`, and how
    /// many of its pixels the row has.
    fn row(&self, colour: usize, y: usize) -> (usize, usize) {
        let offset = (y + colour) % 2;
        (offset, (self.w - offset).div_ceil(2))
    }

    /// The slots of row `y` of `colour`'s pixels, and of their left, right,
    /// upper and lower neighbours in the other colour. A pixel in an even
    /// column has its left neighbour one slot before its own slot, in an odd
    /// one at it. The border rows' upper or lower runs are the row's own
    /// (their weight is 0); a row's first left and last right neighbour may
    /// be a pad or a pixel of the row that is not a neighbour (weight 0).
    fn runs(&self, colour: usize, y: usize) -> (Range<usize>, [Range<usize>; 4]) {
        let (offset, count) = self.row(colour, y);
        let run = |row: usize, start: usize| row * self.stride + start..row * self.stride + start + count;
        (run(y, 1), [run(y, offset), run(y, offset + 1), run(y.saturating_sub(1), 1), run((y + 1).min(self.h - 1), 1)])
    }

    /// A row-major field on the checkerboard. Row by row, each row split
    /// into its even and odd columns (no division per pixel, and the split
    /// vectorizes).
    fn scatter(&self, natural: &[f32]) -> Planes {
        let mut colours = self.planes();
        let (w, evens, odds) = (self.w, self.w.div_ceil(2), self.w / 2);
        for (y, row) in natural.chunks_exact(w.max(1)).enumerate() {
            let at = y * self.stride + 1;
            // Column 2t of either colour's pixels goes to slot 1 + t.
            let [first, second] = &mut colours;
            let (even_plane, odd_plane) = if y % 2 == 0 { (first, second) } else { (second, first) };
            let (even, odd) = (&mut even_plane[at..at + evens], &mut odd_plane[at..at + odds]);
            for ((pair, e), o) in row.chunks_exact(2).zip(even.iter_mut()).zip(odd.iter_mut()) {
                *e = pair[0];
                *o = pair[1];
            }
            if w % 2 == 1 {
                even[evens - 1] = row[w - 1];
            }
        }
        colours
    }

    /// Row-major layout of a field stored as `colours` (the inverse of `scatter`).
    fn gather(&self, colours: &Planes, out: &mut [f32]) {
        let (w, evens, odds) = (self.w, self.w.div_ceil(2), self.w / 2);
        for (y, row) in out.chunks_exact_mut(w.max(1)).enumerate() {
            let at = y * self.stride + 1;
            let (even_plane, odd_plane) = if y % 2 == 0 { (&colours[0], &colours[1]) } else { (&colours[1], &colours[0]) };
            let (even, odd) = (&even_plane[at..at + evens], &odd_plane[at..at + odds]);
            for ((pair, e), o) in row.chunks_exact_mut(2).zip(even).zip(odd) {
                pair[0] = *e;
                pair[1] = *o;
            }
            if w % 2 == 1 {
                row[w - 1] = even[evens - 1];
            }
        }
    }
}

/// Derivatives of the linearized data terms, and the parts of each pixel's
/// system that do not change with the increment, for one colour's pixels.
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

/// Central differences along rows, one-sided at the ends (the border
/// pixel repeated).
fn central_dx(img: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; w * h];
    if w < 2 {
        return out;
    }
    for (row, out_row) in img.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
        out_row[0] = (row[1] - row[0]) * 0.5;
        out_row[1..w - 1].iter_mut().zip(row[2..].iter().zip(&row[..w - 2])).for_each(|(o, (r, l))| *o = (r - l) * 0.5);
        out_row[w - 1] = (row[w - 1] - row[w - 2]) * 0.5;
    }
    out
}

/// Central differences along columns, one-sided at the ends.
fn central_dy(img: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; w * h];
    for (y, out_row) in out.chunks_exact_mut(w.max(1)).enumerate() {
        let (up, down) = (&img[y.saturating_sub(1) * w..][..w], &img[(y + 1).min(h - 1) * w..][..w]);
        out_row.iter_mut().zip(down.iter().zip(up)).for_each(|(o, (d, u))| *o = (d - u) * 0.5);
    }
    out
}

impl DataTerms {
    /// Both colours' terms for the first image and the second warped by `flow`.
    fn new(i0: &GrayImage, i1: &GrayImage, flow: &FlowField, p: &VariationalParams, board: &Checkerboard) -> [DataTerms; 2] {
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
        let nb: Vec<f32> = ix.iter().zip(&iy).map(|(x, y)| 1.0 / (x * x + y * y + ZETA2)).collect();
        let nx: Vec<f32> = ixx.iter().zip(&ixy).map(|(xx, xy)| 1.0 / (xx * xx + xy * xy + ZETA2)).collect();
        let ny: Vec<f32> = ixy.iter().zip(&iyy).map(|(xy, yy)| 1.0 / (xy * xy + yy * yy + ZETA2)).collect();
        let iz: Vec<f32> = b.iter().zip(&a).map(|(p, q)| p - q).collect();
        let ixz: Vec<f32> = bx.iter().zip(&ax).map(|(p, q)| p - q).collect();
        let iyz: Vec<f32> = by.iter().zip(&ay).map(|(p, q)| p - q).collect();
        let brightness_weight: Vec<f32> = valid.iter().zip(&nb).map(|(valid, nb)| valid * p.delta * nb).collect();
        let gradient_weight: Vec<f32> = valid.iter().map(|valid| valid * p.gamma).collect();
        let mut fields = [ix, iy, iz, ixx, ixy, iyy, ixz, iyz, nb, nx, ny, brightness_weight, gradient_weight].map(|f| board.scatter(&f));
        [0, 1].map(|colour| {
            let [ix, iy, iz, ixx, ixy, iyy, ixz, iyz, nb, nx, ny, brightness_weight, gradient_weight] =
                fields.each_mut().map(|planes| std::mem::take(&mut planes[colour]));
            DataTerms { ix, iy, iz, ixx, ixy, iyy, ixz, iyz, nb, nx, ny, brightness_weight, gradient_weight }
        })
    }
}

/// Robust smoothness weight of each pixel's right and lower edge (0 where
/// there is no neighbour), for the flow (u, v).
fn smoothness_weights(board: &Checkerboard, (u, v): (&Planes, &Planes), alpha: f32) -> (Planes, Planes) {
    let (w, h, stride) = (board.w, board.h, board.stride);
    let (mut right, mut down) = (board.planes(), board.planes());
    for (colour, (right, down)) in right.iter_mut().zip(&mut down).enumerate() {
        let other = 1 - colour;
        right.par_chunks_mut(stride).zip(down.par_chunks_mut(stride)).enumerate().with_min_len(min_rows(w)).for_each(
            |(y, (right_row, down_row))| {
                let (offset, count) = board.row(colour, y);
                let (own, [_, r, _, d]) = board.runs(colour, y);
                // The last row has no lower neighbour: its own values stand
                // in (differences of 0), and its lower weights are 0.
                let last_row = y + 1 == h;
                let (down_colour, d) = if last_row { (colour, own.clone()) } else { (other, d) };
                let (u_own, u_right, u_down) = (&u[colour][own.clone()], &u[other][r.clone()], &u[down_colour][d.clone()]);
                let (v_own, v_right, v_down) = (&v[colour][own], &v[other][r], &v[down_colour][d]);
                let edge = |(ur, ud, vr, vd): (f32, f32, f32, f32)| alpha / (ur * ur + ud * ud + vr * vr + vd * vd + EPS2).sqrt();
                let (right_row, down_row) = (&mut right_row[1..1 + count], &mut down_row[1..1 + count]);
                for k in 0..count {
                    let weight = edge((u_right[k] - u_own[k], u_down[k] - u_own[k], v_right[k] - v_own[k], v_down[k] - v_own[k]));
                    right_row[k] = weight;
                    down_row[k] = if last_row { 0.0 } else { weight };
                }
                // A pixel in the last column has no right neighbour.
                if count > 0 && 2 * (count - 1) + offset == w - 1 {
                    let k = count - 1;
                    let weight = edge((0.0, u_down[k] - u_own[k], 0.0, v_down[k] - v_own[k]));
                    right_row[k] = 0.0;
                    down_row[k] = if last_row { 0.0 } else { weight };
                }
            },
        );
    }
    (right, down)
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
    let terms = DataTerms::new(level.i0, level.i1, flow, params, &board);
    let u0: Vec<f32> = flow.data.iter().step_by(2).copied().collect();
    let v0: Vec<f32> = flow.data.iter().skip(1).step_by(2).copied().collect();
    let start = (board.scatter(&u0), board.scatter(&v0));
    let (mut du, mut dv) = (board.planes(), board.planes());
    let (mut u, mut v) = (board.planes(), board.planes());
    let mut systems = [Systems::new(&board), Systems::new(&board)];
    for _ in 0..params.iterations {
        for colour in 0..2 {
            for (flow, (start, increment)) in [(&mut u, (&start.0, &du)), (&mut v, (&start.1, &dv))] {
                flow[colour].iter_mut().zip(&start[colour]).zip(&increment[colour]).for_each(|((f, s), d)| *f = d + s);
            }
        }
        let weights = smoothness_weights(&board, (&u, &v), params.alpha);
        for (colour, (sys, terms)) in systems.iter_mut().zip(&terms).enumerate() {
            build_systems(&board, colour, sys, terms, (&du[colour], &dv[colour]), (&start.0, &start.1), (&weights.0, &weights.1));
        }
        for _ in 0..params.sor_iterations {
            for (colour, sys) in systems.iter().enumerate() {
                sweep(&board, colour, sys, (&mut du, &mut dv), params.omega);
            }
        }
    }
    let (mut du_rows, mut dv_rows) = (vec![0.0f32; w * h], vec![0.0f32; w * h]);
    board.gather(&du, &mut du_rows);
    board.gather(&dv, &mut dv_rows);
    for (i, uv) in flow.data.chunks_exact_mut(2).enumerate() {
        uv[0] = u0[i] + du_rows[i];
        uv[1] = v0[i] + dv_rows[i];
    }
}

/// The systems of one colour's pixels at the current increment `(du, dv)`
/// (that colour's planes), around the start flow `(u0, v0)`, with the
/// smoothness weights of every pixel's `(right, down)` edge.
fn build_systems(
    board: &Checkerboard,
    colour: usize,
    sys: &mut Systems,
    t: &DataTerms,
    (du, dv): (&[f32], &[f32]),
    (u0, v0): (&Planes, &Planes),
    (right, down): (&Planes, &Planes),
) {
    let (w, stride) = (board.w, board.stride);
    let other = 1 - colour;
    let no_edges = vec![0.0f32; stride];
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
        let (_, count) = board.row(colour, y);
        let (own, [l, r, a, b]) = board.runs(colour, y);
        // A pixel's left (upper) edge is its left (upper) neighbour's right
        // (lower) edge; the first row has no upper edges.
        let edges = [
            &right[other][l.clone()],
            &right[colour][own.clone()],
            if y > 0 { &down[other][a.clone()] } else { &no_edges[..count] },
            &down[colour][own.clone()],
        ];
        let start_u = [&u0[other][l.clone()], &u0[other][r.clone()], &u0[other][a.clone()], &u0[other][b.clone()]];
        let start_v = [&v0[other][l], &v0[other][r], &v0[other][a], &v0[other][b]];
        let (u0_own, v0_own) = (&u0[colour][own.clone()], &v0[colour][own.clone()]);
        let terms =
            [&t.ix, &t.iy, &t.iz, &t.ixx, &t.ixy, &t.iyy, &t.ixz, &t.iyz, &t.nb, &t.nx, &t.ny, &t.brightness_weight, &t.gradient_weight]
                .map(|plane| &plane[own.clone()]);
        let (du, dv) = (&du[own.clone()], &dv[own.clone()]);
        let mut outputs = [sl, sr, su, sd, a12_row, inv11, inv22, c1_row, c2_row].map(|row| &mut row[1..1 + count]);
        // Blocks of pixels computed into a local array and then copied out:
        // with ~30 input runs and 9 output rows the compiler cannot rule
        // out overlaps cheaply, and would not vectorize the loop otherwise.
        let mut block = [[0.0f32; SYSTEM_BLOCK]; 9];
        for first in (0..count).step_by(SYSTEM_BLOCK) {
            let pixels = first..(first + SYSTEM_BLOCK).min(count);
            let inputs = SystemInputs {
                du: &du[pixels.clone()],
                dv: &dv[pixels.clone()],
                terms: terms.map(|r| &r[pixels.clone()]),
                edges: edges.map(|r| &r[pixels.clone()]),
                start: (&u0_own[pixels.clone()], &v0_own[pixels.clone()]),
                neighbours: (start_u.map(|r| &r[pixels.clone()]), start_v.map(|r| &r[pixels.clone()])),
            };
            block_systems(&inputs, &mut block);
            for (row, values) in outputs.iter_mut().zip(&block) {
                row[pixels.clone()].copy_from_slice(&values[..pixels.len()]);
            }
        }
    });
}

/// Pixels whose systems are computed together in [`block_systems`].
const SYSTEM_BLOCK: usize = 64;

/// Runs of up to [`SYSTEM_BLOCK`] pixels' inputs, all of one length.
struct SystemInputs<'a> {
    /// The current increment.
    du: &'a [f32],
    dv: &'a [f32],
    /// ix, iy, iz, ixx, ixy, iyy, ixz, iyz, nb, nx, ny and the two weights
    /// (the fields of [`DataTerms`], in order).
    terms: [&'a [f32]; 13],
    /// Left, right, upper and lower edge weights.
    edges: [&'a [f32]; 4],
    /// The start flow (u0, v0) at the pixels and at their four neighbours.
    start: (&'a [f32], &'a [f32]),
    neighbours: ([&'a [f32]; 4], [&'a [f32]; 4]),
}

/// The systems of a block of pixels, one row of `out` per coefficient:
/// the four edge weights, a12, 1 / d11, 1 / d22, c1 and c2.
fn block_systems(inputs: &SystemInputs<'_>, out: &mut [[f32; SYSTEM_BLOCK]; 9]) {
    let n = inputs.du.len().min(SYSTEM_BLOCK);
    let (du, dv) = (&inputs.du[..n], &inputs.dv[..n]);
    let [ix, iy, iz, ixx, ixy, iyy, ixz, iyz, nb, nx, ny, bw, gw] = inputs.terms.map(|r| &r[..n]);
    let [e_left, e_right, e_up, e_down] = inputs.edges.map(|r| &r[..n]);
    let (u0, v0) = (&inputs.start.0[..n], &inputs.start.1[..n]);
    let [u_left, u_right, u_up, u_down] = inputs.neighbours.0.map(|r| &r[..n]);
    let [v_left, v_right, v_up, v_down] = inputs.neighbours.1.map(|r| &r[..n]);
    let [sl, sr, su, sd, a12_out, inv11, inv22, c1_out, c2_out] = out;
    for k in 0..n {
        let (du, dv) = (du[k], dv[k]);
        let r = iz[k] + ix[k] * du + iy[k] * dv;
        let wb = bw[k] / (nb[k] * r * r + EPS2).sqrt();
        let (rx, ry) = (ixz[k] + ixx[k] * du + ixy[k] * dv, iyz[k] + ixy[k] * du + iyy[k] * dv);
        let wg = gw[k] / (nx[k] * rx * rx + ny[k] * ry * ry + EPS2).sqrt();
        let (gx, gy) = (wg * nx[k], wg * ny[k]);
        let a11 = wb * ix[k] * ix[k] + gx * ixx[k] * ixx[k] + gy * ixy[k] * ixy[k];
        let a12 = wb * ix[k] * iy[k] + gx * ixx[k] * ixy[k] + gy * ixy[k] * iyy[k];
        let a22 = wb * iy[k] * iy[k] + gx * ixy[k] * ixy[k] + gy * iyy[k] * iyy[k];
        let b1 = -(wb * ix[k] * iz[k] + gx * ixx[k] * ixz[k] + gy * ixy[k] * iyz[k]);
        let b2 = -(wb * iy[k] * iz[k] + gx * ixy[k] * ixz[k] + gy * iyy[k] * iyz[k]);
        let s = [e_left[k], e_right[k], e_up[k], e_down[k]];
        let c1 = b1 + s[0] * (u_left[k] - u0[k]) + s[1] * (u_right[k] - u0[k]) + s[2] * (u_up[k] - u0[k]) + s[3] * (u_down[k] - u0[k]);
        let c2 = b2 + s[0] * (v_left[k] - v0[k]) + s[1] * (v_right[k] - v0[k]) + s[2] * (v_up[k] - v0[k]) + s[3] * (v_down[k] - v0[k]);
        let sum = s[0] + s[1] + s[2] + s[3];
        (sl[k], sr[k], su[k], sd[k]) = (s[0], s[1], s[2], s[3]);
        (a12_out[k], inv11[k], inv22[k], c1_out[k], c2_out[k]) = (a12, 1.0 / (a11 + sum), 1.0 / (a22 + sum), c1, c2);
    }
}

/// One over-relaxed Gauss-Seidel half-sweep: every pixel of `colour` from
/// its neighbours, which are all of the other colour.
fn sweep(board: &Checkerboard, colour: usize, sys: &Systems, (du, dv): (&mut Planes, &mut Planes), omega: f32) {
    let ([red_u, black_u], [red_v, black_v]) = (du, dv);
    let ((du, dv), other) = if colour == 0 { ((red_u, red_v), (&*black_u, &*black_v)) } else { ((black_u, black_v), (&*red_u, &*red_v)) };
    du.par_chunks_mut(board.stride).zip(dv.par_chunks_mut(board.stride)).enumerate().with_min_len(min_rows(board.w)).for_each(
        |(y, (du_row, dv_row))| {
            let (_, count) = board.row(colour, y);
            let (own, neighbours) = board.runs(colour, y);
            let [lu, ru, au, bu] = neighbours.clone().map(|r| &other.0[r]);
            let [lv, rv, av, bv] = neighbours.map(|r| &other.1[r]);
            let [sl, sr, sa, sb] = [0, 1, 2, 3].map(|n| &sys.s[n][own.clone()]);
            let (a12, inv_d11, inv_d22) = (&sys.a12[own.clone()], &sys.inv_d11[own.clone()], &sys.inv_d22[own.clone()]);
            let (c1, c2) = (&sys.c1[own.clone()], &sys.c2[own]);
            let row =
                SweepRow { neighbours: ([lu, ru, au, bu], [lv, rv, av, bv]), edges: [sl, sr, sa, sb], a12, inv_d11, inv_d22, c: (c1, c2) };
            sweep_row(&mut du_row[1..1 + count], &mut dv_row[1..1 + count], &row, omega);
        },
    );
}

/// What a half-sweep reads for one row of pixels: runs of one length.
struct SweepRow<'a> {
    /// The other colour's (du, dv) at the left, right, upper and lower neighbours.
    neighbours: ([&'a [f32]; 4], [&'a [f32]; 4]),
    edges: [&'a [f32]; 4],
    a12: &'a [f32],
    inv_d11: &'a [f32],
    inv_d22: &'a [f32],
    c: (&'a [f32], &'a [f32]),
}

/// Updates one row's (du, dv) in place. The rows are parameters of their
/// own so the compiler knows they overlap nothing `row` holds, and
/// vectorizes the loop.
fn sweep_row(du: &mut [f32], dv: &mut [f32], row: &SweepRow<'_>, omega: f32) {
    let n = du.len().min(dv.len());
    let (du, dv) = (&mut du[..n], &mut dv[..n]);
    let [lu, ru, au, bu] = row.neighbours.0.map(|r| &r[..n]);
    let [lv, rv, av, bv] = row.neighbours.1.map(|r| &r[..n]);
    let [sl, sr, sa, sb] = row.edges.map(|r| &r[..n]);
    let (a12, inv_d11, inv_d22, c1, c2) = (&row.a12[..n], &row.inv_d11[..n], &row.inv_d22[..n], &row.c.0[..n], &row.c.1[..n]);
    for k in 0..n {
        let su = c1[k] + sl[k] * lu[k] + sr[k] * ru[k] + sa[k] * au[k] + sb[k] * bu[k];
        let sv = c2[k] + sl[k] * lv[k] + sr[k] * rv[k] + sa[k] * av[k] + sb[k] * bv[k];
        let (old_u, old_v) = (du[k], dv[k]);
        let new_u = old_u + omega * ((su - a12[k] * old_v) * inv_d11[k] - old_u);
        dv[k] = old_v + omega * ((sv - a12[k] * new_u) * inv_d22[k] - old_v);
        du[k] = new_u;
    }
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

    /// Each pixel (x, y) lands in colour (x + y) % 2 at slot 1 + x / 2 of
    /// its row, the pads stay 0, and `gather` undoes `scatter`, at odd and
    /// even sizes; the central differences are the per-pixel formula.
    #[test]
    fn checkerboard_layout_and_differences_follow_their_definitions() {
        for (w, h) in [(5, 3), (6, 4), (1, 4), (7, 1), (2, 2), (0, 0)] {
            let board = Checkerboard::new(w, h);
            let natural = values(w * h, 3, -1.0, 1.0);
            let colours = board.scatter(&natural);
            let mut expected = board.planes();
            for (i, &v) in natural.iter().enumerate() {
                let (x, y) = (i % w, i / w);
                expected[(x + y) % 2][y * board.stride + 1 + x / 2] = v;
            }
            assert_eq!(colours, expected, "{w}x{h}");
            let mut back = vec![f32::NAN; w * h];
            board.gather(&colours, &mut back);
            assert_eq!(back, natural, "{w}x{h}");

            let (dx, dy) = (central_dx(&natural, w, h), central_dy(&natural, w, h));
            for (i, (&gx, &gy)) in dx.iter().zip(&dy).enumerate() {
                let (x, y) = (i % w, i / w);
                let at = |x: usize, y: usize| natural[y * w + x];
                assert_eq!(gx, (at((x + 1).min(w - 1), y) - at(x.saturating_sub(1), y)) * 0.5, "{w}x{h} dx at {x},{y}");
                assert_eq!(gy, (at(x, (y + 1).min(h - 1)) - at(x, y.saturating_sub(1))) * 0.5, "{w}x{h} dy at {x},{y}");
            }
        }
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

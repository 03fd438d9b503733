//! DIS step 2: a dense field from the overlapping patch displacements. Each
//! pixel averages the displacements of the patches covering it, weighted by
//! how well each one explains that pixel: 1 / max(1, |I1(x + u) - I0(x)|).

use crate::image::FlowField;
use crate::inverse_search::PatchFlow;
use crate::level::Level;
use crate::rows::min_rows;
use rayon::prelude::*;

pub fn densify(level: &Level, patches: &PatchFlow, patch: usize) -> FlowField {
    let (w, h) = (level.i0.width, level.i0.height);
    let mut out = FlowField::zeros(w, h);
    let cols = patches.xs.len();
    out.data.par_chunks_mut(2 * w).enumerate().with_min_len(min_rows(w)).for_each(|(y, row)| {
        let mut acc = vec![(0.0f32, 0.0f32, 0.0f32); w];
        let y_f = y as f32;
        for (pr, &py) in patches.ys.iter().enumerate() {
            if y < py || y >= py + patch {
                continue;
            }
            let first = &level.i0.data[y * w..][..w];
            for (pc, &px) in patches.xs.iter().enumerate() {
                let (u, v) = patches.uv[pr * cols + pc];
                // The patch's samples share their height: its rows and weight are found once.
                let second = level.i1.sample_row(y_f + v);
                for (x, a) in acc.iter_mut().enumerate().skip(px).take(patch) {
                    let diff = level.i1.sample_in_row(&second, x as f32 + u) - first[x];
                    let weight = 1.0 / diff.abs().max(1.0);
                    a.0 += weight;
                    a.1 += weight * u;
                    a.2 += weight * v;
                }
            }
        }
        for (uv, a) in row.chunks_exact_mut(2).zip(&acc) {
            // Every pixel is covered by at least one patch (see patch_origins).
            uv[0] = a.1 / a.0;
            uv[1] = a.2 / a.0;
        }
    });
    out
}

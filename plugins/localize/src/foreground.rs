//! Where things move: a binary foreground map per frame, either from the
//! frame's optical flow (docs/method.md 2.4 steps 1-2) or, for pipelines without
//! a flow stage, from the difference to a neighbouring frame (the authors'
//! earlier VEC_VAD lineage: blurred absolute frame differences).

use crate::batch_io::FrameView;
use crate::components::BinaryMap;

/// Foreground iff u^2 + v^2 > `threshold` (squared magnitude, no root).
/// `flow` is one frame's field, [H, W, 2] row-major.
pub fn flow_foreground(flow: &[f32], width: usize, height: usize, threshold: f32) -> BinaryMap {
    let pixels = flow.chunks_exact(2).map(|uv| uv[0] * uv[0] + uv[1] * uv[1] > threshold).collect();
    BinaryMap { width, height, pixels }
}

/// A frame reduced to what differencing needs: grey levels (channel mean)
/// smoothed with a 3x3 Gaussian, which keeps sensor noise below the
/// threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct SmoothedGrey {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

impl SmoothedGrey {
    pub fn of(frame: FrameView<'_>) -> SmoothedGrey {
        let (w, h) = (frame.width, frame.height);
        let grey: Vec<f32> = frame.rgb.chunks_exact(3).map(|p| (p[0] as f32 + p[1] as f32 + p[2] as f32) / 3.0).collect();
        // Separable [1 2 1] / 4 kernel, edges replicated.
        let blur = |get: &dyn Fn(usize) -> f32, i: usize, n: usize| {
            let before = get(i.saturating_sub(1));
            let after = get((i + 1).min(n - 1));
            (before + 2.0 * get(i) + after) / 4.0
        };
        let mut rows = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                rows[y * w + x] = blur(&|i| grey[y * w + i], x, w);
            }
        }
        let mut values = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                values[y * w + x] = blur(&|i| rows[i * w + x], y, h);
            }
        }
        SmoothedGrey { width: w, height: h, values }
    }
}

/// Foreground iff the smoothed grey levels of two frames differ by more
/// than `threshold` (on the 0..255 scale).
pub fn difference_foreground(a: &SmoothedGrey, b: &SmoothedGrey, threshold: f32) -> BinaryMap {
    let pixels = a.values.iter().zip(&b.values).map(|(p, q)| (p - q).abs() > threshold).collect();
    BinaryMap { width: a.width, height: a.height, pixels }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_threshold_is_on_the_squared_magnitude_and_strict() {
        // (u, v) per pixel: |.|^2 = 1 (not >1), 1.25, 0.5, 4.
        let flow = [1.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.0, -2.0];
        let map = flow_foreground(&flow, 2, 2, 1.0);
        assert_eq!(map.pixels, vec![false, true, false, true]);
    }

    #[test]
    fn difference_finds_the_changed_region_only() {
        let (w, h) = (12, 10);
        let still = vec![100u8; w * h * 3];
        let mut moved = still.clone();
        for y in 4..7 {
            for x in 5..8 {
                moved[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[200, 200, 200]);
            }
        }
        let a = SmoothedGrey::of(FrameView { rgb: &still, width: w, height: h });
        let b = SmoothedGrey::of(FrameView { rgb: &moved, width: w, height: h });
        let map = difference_foreground(&a, &b, 18.0);
        // The blur spreads the 100-level step one pixel out with weights
        // 1/4 and 3/4 per axis: the 5x5 square around the patch differs by
        // more than 18 except at its corners (100 / 16 = 6.25).
        for y in 0..h {
            for x in 0..w {
                let in_square = (3..8).contains(&y) && (4..9).contains(&x);
                let corner = (y == 3 || y == 7) && (x == 4 || x == 8);
                assert_eq!(map.get(x, y), in_square && !corner, "pixel ({x}, {y})");
            }
        }
        assert_eq!(map.count(), 21);
        assert_eq!(difference_foreground(&a, &a, 0.0).count(), 0);
    }
}

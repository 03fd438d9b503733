//! The line a `box_height`-normalizing scorer scores about (docs/method.md
//! 7.1): ln(reconstruction error) against ln(box height in pixels), fitted by
//! least squares over one model's training cubes.
//!
//! Why: every cube is its box resampled to S x S. A cube cut from a tall
//! (near) box is a downscaled crop that keeps fine detail; one from a short
//! (far) box is an upscaled, smooth crop that is easy to reconstruct. The
//! error of normal cubes therefore grows with the box's height, and a plain
//! z-score ranks near walkers above a far cyclist. Scoring the residual
//! about this line removes that. Height, not area, stands for the scale:
//! people stand upright, while a box's width also says what the object is
//! (a bicycle or cart is wider than a walker), which is what is scored.
//!
//! The runtime fits the line ([`HeightLine::fit`]) and hands it to the
//! scorer as [`names::height_stats_of`](crate::names::height_stats_of)
//! rows; the scorer computes [`HeightLine::z`]. Both sides take logarithms
//! with [`log_error`] and [`log_height`], so the two cannot drift.

/// Errors below this count as this, so that a perfect reconstruction has a
/// finite logarithm.
pub const MIN_ERROR: f64 = 1e-12;

/// ln of a reconstruction error, floored at [`MIN_ERROR`].
pub fn log_error(error: f64) -> f64 {
    error.max(MIN_ERROR).ln()
}

/// ln of a box's height in pixels (y2 - y1), floored at one pixel.
pub fn log_height(y1: f32, y2: f32) -> f64 {
    (f64::from(y2) - f64::from(y1)).max(1.0).ln()
}

/// ln(error) = intercept + slope * ln(height), with the residuals' spread.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeightLine {
    /// Training cubes the line was fitted on; 0: the model had none.
    pub count: u64,
    /// ln(error) at a height of one pixel.
    pub intercept: f64,
    /// Growth of ln(error) per unit of ln(height).
    pub slope: f64,
    /// Population standard deviation (ddof 0) of the residuals.
    pub residual_std: f64,
}

impl HeightLine {
    /// Values per row of the scorer's `height_stats.<id>` tensor.
    pub const ROW: usize = 4;

    /// The least-squares line through `(ln height, ln error)` points. With
    /// no points the line is all zeros (count 0); with one height only (or
    /// one point) the slope is 0 and the intercept the mean.
    pub fn fit(points: &[(f64, f64)]) -> HeightLine {
        let n = points.len();
        if n == 0 {
            return HeightLine::default();
        }
        let mean = |f: fn(&(f64, f64)) -> f64| points.iter().map(f).sum::<f64>() / n as f64;
        let (mx, my) = (mean(|p| p.0), mean(|p| p.1));
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for &(x, y) in points {
            sxx += (x - mx) * (x - mx);
            sxy += (x - mx) * (y - my);
        }
        // Relative to the spread of the heights, so that rounding in sxx of
        // equal heights does not make a slope.
        let slope = if sxx > 1e-12 * n as f64 { sxy / sxx } else { 0.0 };
        let intercept = my - slope * mx;
        let residual_std = (points.iter().map(|&(x, y)| (y - intercept - slope * x).powi(2)).sum::<f64>() / n as f64).sqrt();
        HeightLine { count: n as u64, intercept, slope, residual_std }
    }

    /// How many residual spreads `error` lies above the line at the height
    /// of the box from `y1` to `y2`. A zero (or unusable) spread scales by
    /// 1, as the band z-score does.
    pub fn z(&self, error: f64, y1: f32, y2: f32) -> f64 {
        let scale = if self.residual_std > 0.0 && self.residual_std.is_finite() { self.residual_std } else { 1.0 };
        (log_error(error) - self.intercept - self.slope * log_height(y1, y2)) / scale
    }

    /// The row of the `height_stats.<id>` tensor: (count, intercept, slope, residual std).
    pub fn to_row(&self) -> [f64; HeightLine::ROW] {
        [self.count as f64, self.intercept, self.slope, self.residual_std]
    }

    /// The line of a `height_stats.<id>` row; `None` when `row` is not
    /// [`HeightLine::ROW`] values long or a trained line is not finite.
    pub fn from_row(row: &[f64]) -> Option<HeightLine> {
        let &[count, intercept, slope, residual_std] = row else { return None };
        let finite = intercept.is_finite() && slope.is_finite() && residual_std.is_finite();
        if !(count >= 0.0 && count.fract() == 0.0) || (count > 0.0 && !finite) {
            return None;
        }
        Some(HeightLine { count: count as u64, intercept, slope, residual_std })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_power_law_is_recovered_and_scores_zero_on_the_line() {
        // error = 3 * height^0.8, each height once 10% above and once 10% below (in ln).
        let points: Vec<(f64, f64)> =
            [10.0f64, 20.0, 40.0, 80.0].iter().flat_map(|&h| [0.1, -0.1].map(|r| (h.ln(), (3.0 * h.powf(0.8)).ln() + r))).collect();
        let line = HeightLine::fit(&points);
        assert_eq!(line.count, 8);
        assert!((line.slope - 0.8).abs() < 1e-12, "{line:?}");
        assert!((line.intercept - 3f64.ln()).abs() < 1e-12, "{line:?}");
        assert!((line.residual_std - 0.1).abs() < 1e-12, "{line:?}");
        // On the line at another height: z 0; e^0.1 times above it: z 1.
        assert!(line.z(3.0 * 50f64.powf(0.8), 0.0, 50.0).abs() < 1e-9);
        assert!((line.z(0.1f64.exp() * 3.0 * 50f64.powf(0.8), 10.0, 60.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn residuals_are_measured_in_their_spread() {
        // Two heights, each with errors e^(+-0.5) around the same line: slope 0, spread 0.5.
        let points = [(1.0, 0.5), (1.0, -0.5), (2.0, 0.5), (2.0, -0.5)];
        let line = HeightLine::fit(&points);
        assert_eq!((line.slope, line.intercept), (0.0, 0.0));
        assert!((line.residual_std - 0.5).abs() < 1e-12);
        assert!((line.z(1f64.exp(), 0.0, 2f32.exp()) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn degenerate_sets_give_a_flat_line_or_none() {
        assert_eq!(HeightLine::fit(&[]), HeightLine::default());
        let one_height = HeightLine::fit(&[(2.0, 1.0), (2.0, 3.0)]);
        assert_eq!((one_height.count, one_height.slope, one_height.intercept, one_height.residual_std), (2, 0.0, 2.0, 1.0));
        // Zero errors and zero-height boxes stay finite.
        assert!(HeightLine::fit(&[(log_height(5.0, 5.0), log_error(0.0))]).z(0.0, 5.0, 4.0).is_finite());
    }

    #[test]
    fn rows_round_trip_and_bad_rows_are_refused() {
        let line = HeightLine { count: 7, intercept: -1.5, slope: 0.9, residual_std: 0.25 };
        assert_eq!(HeightLine::from_row(&line.to_row()), Some(line));
        assert_eq!(HeightLine::from_row(&[0.0, f64::NAN, 0.0, 0.0]).map(|l| l.count), Some(0));
        assert_eq!(HeightLine::from_row(&[3.0, f64::NAN, 0.0, 0.0]), None);
        assert_eq!(HeightLine::from_row(&[1.5, 0.0, 0.0, 0.0]), None);
        assert_eq!(HeightLine::from_row(&[1.0, 0.0, 0.0]), None);
    }
}

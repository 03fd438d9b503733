//! Temporal smoothing of frame scores with a uniform moving average
//! (docs/method.md 7.4). The window is aligned like numpy's `convolve(.., "same")`:
//! output i averages inputs i - w/2 ..= i + (w-1)/2 (i-5 ..= i+4 for w = 10).

use crate::options::Smoothing;
use std::ops::Range;

/// Frames before and after the centre that a window of `window` covers.
pub fn reach(window: usize) -> (usize, usize) {
    let after = (window - 1) / 2;
    (window - 1 - after, after)
}

/// numpy "same" convolution with a uniform kernel: missing neighbours at the
/// ends count as zeros and every output is divided by the full window.
pub fn zero_padded_average(values: &[f64], window: usize) -> Vec<f64> {
    averaged(values, window, |_| window as f64)
}

/// Moving average over the neighbours that exist: near an end the window
/// is cut and divided by the frames it still holds.
pub fn truncated_average(values: &[f64], window: usize) -> Vec<f64> {
    averaged(values, window, |count| count as f64)
}

fn averaged(values: &[f64], window: usize, divisor: impl Fn(usize) -> f64) -> Vec<f64> {
    let (before, after) = reach(window);
    (0..values.len())
        .map(|i| {
            let lo = i.saturating_sub(before);
            let hi = (i + after + 1).min(values.len());
            // A direct sum (not prefix differences) avoids cancellation
            // between large running totals; it costs w additions per frame.
            let sum: f64 = values[lo..hi].iter().sum();
            sum / divisor(hi - lo)
        })
        .collect()
}

/// Smoothed scores of all frame rows; `videos` are the rows of each video.
pub fn smooth(values: &[f64], videos: &[Range<usize>], window: usize, mode: Smoothing) -> Vec<f64> {
    match mode {
        Smoothing::Pooled => zero_padded_average(values, window),
        Smoothing::PerVideo => {
            let mut out = Vec::with_capacity(values.len());
            for range in videos {
                out.extend(truncated_average(&values[range.clone()], window));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_alignment_matches_numpy_same() {
        // np.convolve(a, ones(10)/10, "same")[i] averages a[i-5 ..= i+4].
        assert_eq!(reach(10), (5, 4));
        assert_eq!(reach(3), (1, 1));
        assert_eq!(reach(1), (0, 0));
        let ones = vec![1.0; 12];
        let out = zero_padded_average(&ones, 10);
        // Row 0 sees frames 0..=4, row 7 sees 2..=11, row 11 sees 6..=11.
        assert_eq!(out[0], 0.5);
        assert_eq!(out[5], 1.0);
        assert_eq!(out[7], 1.0);
        assert_eq!(out[8], 0.9);
        assert_eq!(out[11], 0.6);
    }

    #[test]
    fn window_of_one_leaves_scores_alone() {
        let v = [3.0, -1.0, 7.5];
        assert_eq!(zero_padded_average(&v, 1), v);
        assert_eq!(truncated_average(&v, 1), v);
    }
}

//! The default event threshold, calibrated when a model is fitted: the
//! `quantile` of the training frames' scores, linearly interpolated between
//! the two nearest ranks (numpy's default `quantile`). With q = 0.99, about
//! 1 % of the footage the model was fitted on would count as anomalous; LBR-SPR
//! fits on unlabeled footage that holds its own rare anomalies, so a high
//! quantile of its scores is the scale on which "rare" is measured.

use serde::{Deserialize, Serialize};

/// The threshold and how it was found, as recorded in a model bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// "quantile": `value` is the `quantile` of the scores of `frames` training frames.
    pub rule: String,
    pub quantile: f64,
    pub frames: usize,
    pub value: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdError(pub String);

impl std::fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ThresholdError {}

/// The `quantile` (0 to 1) of `scores`; every score must be finite.
pub fn calibrate(scores: &[f32], quantile: f64) -> Result<Threshold, ThresholdError> {
    if !(0.0..=1.0).contains(&quantile) {
        return Err(ThresholdError(format!("the threshold quantile must be between 0 and 1, found {quantile}")));
    }
    if scores.is_empty() {
        return Err(ThresholdError("no training frame scores to calibrate the threshold on".into()));
    }
    if let Some(bad) = scores.iter().find(|s| !s.is_finite()) {
        return Err(ThresholdError(format!("a training frame score is {bad}; the threshold needs finite scores")));
    }
    let mut sorted: Vec<f64> = scores.iter().map(|&s| s as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let position = quantile * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    let value = sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64);
    Ok(Threshold { rule: "quantile".into(), quantile, frames: scores.len(), value: value as f32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.quantile([1, 2, 3, 4, 5], q): 0.5 -> 3, 0.9 -> 4.6, 0 -> 1, 1 -> 5.
        let scores = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(calibrate(&scores, 0.5).unwrap().value, 3.0);
        assert!((calibrate(&scores, 0.9).unwrap().value - 4.6).abs() < 1e-6);
        assert_eq!(calibrate(&scores, 0.0).unwrap().value, 1.0);
        let top = calibrate(&scores, 1.0).unwrap();
        assert_eq!((top.value, top.frames, top.rule.as_str()), (5.0, 5, "quantile"));
        assert_eq!(calibrate(&[7.0], 0.99).unwrap().value, 7.0);
    }

    #[test]
    fn about_the_requested_share_of_training_frames_lies_above() {
        let scores: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1000) as f32).collect();
        let t = calibrate(&scores, 0.99).unwrap().value;
        let above = scores.iter().filter(|&&s| s > t).count();
        assert_eq!(above, 10, "threshold {t}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(calibrate(&[], 0.99).unwrap_err().0.contains("no training frame scores"));
        assert!(calibrate(&[1.0], 1.5).unwrap_err().0.contains("between 0 and 1"));
        assert!(calibrate(&[1.0, f32::NAN], 0.5).unwrap_err().0.contains("NaN"));
    }
}

//! Ranking metrics computed the way scikit-learn does: scores are grouped
//! by distinct value (ties form one threshold, as in `_binary_clf_curve`),
//! the anomaly (label true) is the positive class.
//!
//! - AUROC equals `roc_auc_score`: the trapezoid under the ROC curve, which
//!   with tied scores is the tie-aware area (a tie counts half). It is
//!   computed exactly in integers.
//! - Average precision equals `average_precision_score`:
//!   sum over thresholds of (R_k - R_{k-1}) * P_k, no interpolation.
//! - [`RocCurve`] equals `roc_curve(drop_intermediate=True)`: collinear
//!   intermediate points are dropped; the area is unchanged by that.
//! - EER is where the ROC polyline crosses fnr = fpr, interpolated linearly
//!   between its vertices (the usual `brentq(1 - x - interp1d(fpr, tpr)(x))`).

use crate::EvalError;

/// All samples that share one score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tie {
    pub score: f64,
    pub positives: u64,
    pub negatives: u64,
}

/// Samples grouped by distinct score, highest score first.
#[derive(Clone, Debug, PartialEq)]
pub struct RankedCounts {
    ties: Vec<Tie>,
    positives: u64,
    negatives: u64,
}

/// A ROC curve as scikit-learn's `roc_curve` returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    /// Score threshold of each point; the first is +inf (nothing flagged).
    pub thresholds: Vec<f64>,
}

impl RankedCounts {
    /// Groups `scores` (any float type) with their labels (true = anomaly).
    pub fn from_samples<S: Copy + Into<f64>>(scores: &[S], labels: &[bool]) -> Result<RankedCounts, EvalError> {
        if scores.len() != labels.len() {
            return Err(EvalError::invalid(format!("{} scores but {} labels; expected one label per score", scores.len(), labels.len())));
        }
        let mut pairs = Vec::with_capacity(scores.len());
        for (i, (&s, &l)) in scores.iter().zip(labels).enumerate() {
            let s: f64 = s.into();
            if s.is_nan() {
                return Err(EvalError::invalid(format!("score {i} is NaN; expected a number")));
            }
            pairs.push((s, l));
        }
        Ok(Self::from_ties(pairs.into_iter().map(|(score, l)| Tie { score, positives: l as u64, negatives: !l as u64 })))
    }

    /// Groups already counted samples; equal scores are merged.
    pub fn from_ties(ties: impl IntoIterator<Item = Tie>) -> RankedCounts {
        // `+ 0.0` turns -0.0 into 0.0 so the two tie, as they do in numpy.
        let mut all: Vec<Tie> = ties.into_iter().map(|t| Tie { score: t.score + 0.0, ..t }).collect();
        all.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut merged: Vec<Tie> = Vec::new();
        for t in all {
            match merged.last_mut() {
                Some(last) if last.score == t.score => {
                    last.positives += t.positives;
                    last.negatives += t.negatives;
                }
                _ => merged.push(t),
            }
        }
        let positives = merged.iter().map(|t| t.positives).sum();
        let negatives = merged.iter().map(|t| t.negatives).sum();
        RankedCounts { ties: merged, positives, negatives }
    }

    pub fn ties(&self) -> &[Tie] {
        &self.ties
    }
    pub fn positives(&self) -> u64 {
        self.positives
    }
    pub fn negatives(&self) -> u64 {
        self.negatives
    }

    fn need_both_classes(&self) -> Result<(), EvalError> {
        if self.positives == 0 || self.negatives == 0 {
            return Err(EvalError::invalid(format!(
                "AUROC needs both classes; found {} anomalous and {} normal samples",
                self.positives, self.negatives
            )));
        }
        Ok(())
    }

    /// Area under the ROC curve (`roc_auc_score`).
    pub fn auroc(&self) -> Result<f64, EvalError> {
        self.need_both_classes()?;
        // Twice the area times P * N: each negative in a tie is outranked by
        // every positive above the tie and by half the positives within it.
        let mut above: u128 = 0;
        let mut doubled: u128 = 0;
        for t in &self.ties {
            doubled += t.negatives as u128 * (2 * above + t.positives as u128);
            above += t.positives as u128;
        }
        Ok(doubled as f64 / (2.0 * self.positives as f64 * self.negatives as f64))
    }

    /// Average precision with the anomaly as positive class
    /// (`average_precision_score`).
    pub fn average_precision(&self) -> Result<f64, EvalError> {
        if self.positives == 0 {
            return Err(EvalError::invalid("average precision needs at least one anomalous sample; found none"));
        }
        let (mut tp, mut fp, mut ap) = (0u64, 0u64, 0.0f64);
        for t in &self.ties {
            tp += t.positives;
            fp += t.negatives;
            if t.positives > 0 {
                ap += (t.positives as f64 / self.positives as f64) * (tp as f64 / (tp + fp) as f64);
            }
        }
        Ok(ap)
    }

    /// The ROC curve with scikit-learn's `drop_intermediate=True`.
    pub fn roc_curve(&self) -> Result<RocCurve, EvalError> {
        self.need_both_classes()?;
        let mut tps = Vec::with_capacity(self.ties.len());
        let mut fps = Vec::with_capacity(self.ties.len());
        let mut thresholds = Vec::with_capacity(self.ties.len());
        let (mut tp, mut fp) = (0u64, 0u64);
        for t in &self.ties {
            tp += t.positives;
            fp += t.negatives;
            tps.push(tp);
            fps.push(fp);
            thresholds.push(t.score);
        }
        // Keep the ends and every point where the second difference of tps
        // or fps is non-zero (a change of direction).
        let n = tps.len();
        let second = |v: &[u64], i: usize| v[i + 1] as i128 - 2 * v[i] as i128 + v[i - 1] as i128;
        let keep: Vec<usize> = (0..n).filter(|&i| i == 0 || i == n - 1 || second(&tps, i) != 0 || second(&fps, i) != 0).collect();
        let (p, q) = (self.positives as f64, self.negatives as f64);
        let mut curve = RocCurve { fpr: vec![0.0], tpr: vec![0.0], thresholds: vec![f64::INFINITY] };
        for i in keep {
            curve.fpr.push(fps[i] as f64 / q);
            curve.tpr.push(tps[i] as f64 / p);
            curve.thresholds.push(thresholds[i]);
        }
        Ok(curve)
    }

    /// Equal error rate: the false positive rate where it equals the false
    /// negative rate on the ROC polyline.
    pub fn eer(&self) -> Result<f64, EvalError> {
        Ok(self.roc_curve()?.eer())
    }
}

impl RocCurve {
    /// Where the polyline crosses fnr = fpr (see the module docs). It
    /// starts at (0, 0), where fnr - fpr = 1, and ends at (1, 1), where it is
    /// -1, so a crossing always exists.
    pub fn eer(&self) -> f64 {
        let gap = |k: usize| (1.0 - self.tpr[k]) - self.fpr[k];
        for k in 1..self.fpr.len() {
            let (before, here) = (gap(k - 1), gap(k));
            if here <= 0.0 {
                if here == 0.0 || before == here {
                    return self.fpr[k];
                }
                let t = before / (before - here);
                return self.fpr[k - 1] + t * (self.fpr[k] - self.fpr[k - 1]);
            }
        }
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_ties() {
        // Scores 0.9(+) 0.5(+) 0.5(-) 0.1(-): of the 4 (positive, negative)
        // pairs, 3 are ranked right and the tie at 0.5 counts half: 3.5 / 4.
        let c = RankedCounts::from_samples(&[0.9f64, 0.5, 0.5, 0.1], &[true, true, false, false]).unwrap();
        assert_eq!(c.auroc().unwrap(), 0.875);
        // AP: threshold 0.9 gives R 0.5, P 1; threshold 0.5 gives R 1, P 2/3.
        assert!((c.average_precision().unwrap() - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-15);
        let roc = c.roc_curve().unwrap();
        assert_eq!(roc.fpr, [0.0, 0.0, 0.5, 1.0]);
        assert_eq!(roc.tpr, [0.0, 0.5, 1.0, 1.0]);
        // fnr - fpr goes 0.5 -> -0.5 along (0, 0.5) -> (0.5, 1): crosses at 0.25.
        assert_eq!(roc.eer(), 0.25);
    }

    #[test]
    fn collinear_points_are_dropped_and_one_class_is_an_error() {
        let scores = [4.0f32, 3.0, 2.0, 1.0];
        let c = RankedCounts::from_samples(&scores, &[true, true, false, false]).unwrap();
        let roc = c.roc_curve().unwrap();
        // tps 1 2 2 2, fps 0 0 1 2: the point at score 2 lies on the line
        // from score 3 to score 1 and is dropped. scikit-learn keeps the
        // first threshold's point even though the (0, 0) it prepends makes
        // it collinear too.
        assert_eq!(roc.fpr, [0.0, 0.0, 0.0, 1.0]);
        assert_eq!(roc.tpr, [0.0, 0.5, 1.0, 1.0]);
        assert_eq!(roc.thresholds, [f64::INFINITY, 4.0, 3.0, 1.0]);
        assert_eq!(roc.eer(), 0.0);
        let one = RankedCounts::from_samples(&scores, &[false; 4]).unwrap();
        assert!(one.auroc().unwrap_err().to_string().contains("found 0 anomalous and 4 normal"));
        assert!(RankedCounts::from_samples(&[f64::NAN], &[true]).is_err());
        assert!(RankedCounts::from_samples(&[1.0f64], &[true, false]).is_err());
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        let c = RankedCounts::from_samples(&[0.0f64, -0.0], &[true, false]).unwrap();
        assert_eq!(c.ties().len(), 1);
        assert_eq!(c.auroc().unwrap(), 0.5);
    }
}

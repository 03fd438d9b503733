//! Per-box scores: z-normalize each reconstructor's error with its band's
//! training statistics, then fuse the modalities (docs/method.md 7.1, 7.2).

use crate::input::{BandStats, Modality};

/// z-score of `error` under `stats`. A zero (or unusable) std scales by 1,
/// as scikit-learn's StandardScaler does, instead of dividing by zero.
pub fn z_score(error: f64, stats: BandStats) -> f64 {
    let scale = if stats.std > 0.0 && stats.std.is_finite() { stats.std } else { 1.0 };
    (error - stats.mean) / scale
}

/// Fused score of every box: sum over modalities of weight * z, or
/// `untrained_score` when the box's band had no training boxes in any
/// modality (its model never learnt anything).
pub fn box_scores(bands: &[u32], modalities: &[Modality<'_>], untrained_score: f64) -> Vec<f64> {
    bands
        .iter()
        .enumerate()
        .map(|(i, &band)| {
            let band = band as usize;
            if modalities.iter().any(|m| m.stats[band].count <= 0.0) {
                return untrained_score;
            }
            modalities.iter().map(|m| m.weight * z_score(m.errors[i] as f64, m.stats[band])).sum()
        })
        .collect()
}

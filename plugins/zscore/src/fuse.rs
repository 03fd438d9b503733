//! Per-box scores: normalize each reconstructor's error with its band's
//! training statistics (a z-score, or the residual about the band's line in
//! box height), then fuse the modalities (docs/method.md 7.1, 7.2).

use crate::input::{BandStats, FrameBox, Modality};

/// z-score of `error` under `stats`. A zero (or unusable) std scales by 1,
/// as scikit-learn's StandardScaler does, instead of dividing by zero.
pub fn z_score(error: f64, stats: BandStats) -> f64 {
    let scale = if stats.std > 0.0 && stats.std.is_finite() { stats.std } else { 1.0 };
    (error - stats.mean) / scale
}

/// One modality's normalized error of box `i` in `band`: about the band's
/// height line when the modality carries lines, else its z-score.
fn normalized(m: &Modality<'_>, i: usize, b: &FrameBox, band: usize) -> f64 {
    let error = m.errors[i] as f64;
    match &m.height_lines {
        Some(lines) => lines[band].z(error, b.y1, b.y2),
        None => z_score(error, m.stats[band]),
    }
}

/// Fused score of every box: sum over modalities of weight * normalized
/// error, or `untrained_score` when the box's band had no training boxes in
/// any modality (its model never learnt anything).
pub fn box_scores(boxes: &[FrameBox], bands: &[u32], modalities: &[Modality<'_>], untrained_score: f64) -> Vec<f64> {
    bands
        .iter()
        .zip(boxes)
        .enumerate()
        .map(|(i, (&band, b))| {
            let band = band as usize;
            if modalities.iter().any(|m| m.stats[band].count <= 0.0) {
                return untrained_score;
            }
            modalities.iter().map(|m| m.weight * normalized(m, i, b, band)).sum()
        })
        .collect()
}

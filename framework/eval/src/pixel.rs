//! Per-frame score maps painted from box scores, and pixel-level AUROC
//! accumulated one frame at a time.
//!
//! Pixel AUROC is exact: each frame's pixels are counted per distinct score
//! (anomalous and normal counts), and the AUROC of those counts is the same
//! as over all pixels listed one by one. Memory grows with the number of
//! distinct scores, not pixels: a map painted from boxes has at most one
//! value per box plus the background, so a whole dataset (tens of millions
//! of pixels) needs a few thousand counters. Masks never need to be held
//! together: load one, add it, drop it.

use crate::curve::{RankedCounts, Tie};
use crate::EvalError;
use std::collections::HashMap;

/// A height x width map of box scores; pixels no box covers are unpainted.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreMap {
    pub height: u32,
    pub width: u32,
    /// Row-major; NaN marks an unpainted pixel.
    values: Vec<f32>,
}

/// Pixel region (x0, y0, x1, y1), exclusive ends, that a box
/// (x1, y1, x2, y2) paints: ceil-ed coordinates clipped to the frame, as the
/// `zscore` scorer does (docs/method.md 7.3); `None` when empty.
pub fn box_region(b: [f32; 4], height: u32, width: u32) -> Option<(u32, u32, u32, u32)> {
    let clip = |v: f32, limit: u32| if v.is_nan() { 0 } else { v.ceil().clamp(0.0, limit as f32) as u32 };
    let (x0, x1) = (clip(b[0], width), clip(b[2], width));
    let (y0, y1) = (clip(b[1], height), clip(b[3], height));
    (x0 < x1 && y0 < y1).then_some((x0, y0, x1, y1))
}

impl ScoreMap {
    /// Paints each box's score over its region, keeping the maximum where
    /// boxes overlap.
    pub fn paint(height: u32, width: u32, boxes: &[[f32; 4]], scores: &[f32]) -> Result<ScoreMap, EvalError> {
        if boxes.len() != scores.len() {
            return Err(EvalError::invalid(format!("{} boxes but {} scores; expected one score per box", boxes.len(), scores.len())));
        }
        let mut values = vec![f32::NAN; height as usize * width as usize];
        for (&b, &score) in boxes.iter().zip(scores) {
            let Some((x0, y0, x1, y1)) = box_region(b, height, width) else { continue };
            for y in y0..y1 {
                let row = &mut values[(y * width) as usize..][..width as usize];
                for v in &mut row[x0 as usize..x1 as usize] {
                    // NaN.max(s) is s, so unpainted pixels take the score.
                    *v = v.max(score);
                }
            }
        }
        Ok(ScoreMap { height, width, values })
    }

    /// The score at (x, y), `None` where no box painted.
    pub fn get(&self, x: u32, y: u32) -> Option<f32> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let v = self.values[(y * self.width + x) as usize];
        (!v.is_nan()).then_some(v)
    }

    /// The highest painted score (the frame score), `None` if nothing painted.
    pub fn max(&self) -> Option<f32> {
        self.values.iter().copied().filter(|v| !v.is_nan()).reduce(f32::max)
    }

    /// All pixels, unpainted ones set to `background` (e.g. the scorer's
    /// `no_box_score`), for pixel-level evaluation.
    pub fn filled(&self, background: f32) -> Vec<f32> {
        self.values.iter().map(|&v| if v.is_nan() { background } else { v }).collect()
    }
}

/// Pixel-level AUROC over frames added one by one.
#[derive(Clone, Debug, Default)]
pub struct PixelAuroc {
    /// Score bits -> (anomalous, normal) pixel counts.
    counts: HashMap<u64, (u64, u64)>,
    frames: usize,
}

impl PixelAuroc {
    pub fn new() -> PixelAuroc {
        PixelAuroc::default()
    }

    /// Adds one frame: a score per pixel and its mask (true = anomalous),
    /// both row-major and of equal length.
    pub fn add_frame(&mut self, scores: &[f32], mask: &[bool]) -> Result<(), EvalError> {
        if scores.len() != mask.len() {
            return Err(EvalError::invalid(format!(
                "frame {}: {} scores but {} mask pixels; expected equal sizes",
                self.frames,
                scores.len(),
                mask.len()
            )));
        }
        if let Some(i) = scores.iter().position(|s| s.is_nan()) {
            return Err(EvalError::invalid(format!("frame {}: pixel {i} has a NaN score", self.frames)));
        }
        // A painted frame is a few rectangles on a background, so a row is a
        // few runs of one score and one label: counting by runs makes one
        // map update per run instead of per pixel (a 40,000-frame set at
        // 856x480 is 16 billion pixels).
        let mut start = 0;
        while start < scores.len() {
            let (s, m) = (scores[start], mask[start]);
            let run = scores[start..].iter().zip(&mask[start..]).take_while(|&(&t, &n)| t.to_bits() == s.to_bits() && n == m).count();
            // `+ 0.0` merges -0.0 into 0.0 so the key is one per value.
            let entry = self.counts.entry((s as f64 + 0.0).to_bits()).or_default();
            if m {
                entry.0 += run as u64;
            } else {
                entry.1 += run as u64;
            }
            start += run;
        }
        self.frames += 1;
        Ok(())
    }

    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Distinct scores seen so far (what the memory use grows with).
    pub fn distinct_scores(&self) -> usize {
        self.counts.len()
    }

    /// Whether both anomalous and normal pixels were added (else the
    /// AUROC is not defined).
    pub fn has_both_classes(&self) -> bool {
        let (mut positives, mut negatives) = (0u64, 0u64);
        for &(p, n) in self.counts.values() {
            positives += p;
            negatives += n;
        }
        positives > 0 && negatives > 0
    }

    /// The AUROC over every pixel added.
    pub fn auroc(&self) -> Result<f64, EvalError> {
        let ties = self.counts.iter().map(|(&bits, &(positives, negatives))| Tie { score: f64::from_bits(bits), positives, negatives });
        RankedCounts::from_ties(ties).auroc().map_err(|e| EvalError::invalid(format!("pixel level: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_keeps_the_max_and_ceils_coordinates() {
        // 3 x 4 frame. Box A (0.2, 0, 2, 2) -> ceil x 1..2, y 0..2, score 1.
        // Box B (1, 1, 9, 3) -> x 1..4 (clipped), y 1..3, score 3.
        // Box C (2.5, 0, 3, 3) -> ceil x 3..3, empty.
        let map = ScoreMap::paint(3, 4, &[[0.2, 0.0, 2.0, 2.0], [1.0, 1.0, 9.0, 3.0], [2.5, 0.0, 3.0, 3.0]], &[1.0, 3.0, 9.0]).unwrap();
        assert_eq!(map.get(0, 0), None);
        assert_eq!(map.get(1, 0), Some(1.0));
        assert_eq!(map.get(2, 0), None);
        assert_eq!(map.get(1, 1), Some(3.0), "overlap keeps the max");
        assert_eq!(map.get(3, 2), Some(3.0));
        assert_eq!(map.max(), Some(3.0));
        assert_eq!(map.filled(-20.0)[..4], [-20.0, 1.0, -20.0, -20.0]);
        assert_eq!(ScoreMap::paint(2, 2, &[], &[]).unwrap().max(), None);
    }

    #[test]
    fn streamed_pixels_equal_the_pooled_auroc() {
        let frames: [(&[f32], &[bool]); 2] =
            [(&[0.9, 0.1, 0.5, 0.5], &[true, false, true, false]), (&[0.3, 0.7, -0.0, 0.0], &[false, true, false, true])];
        let mut pixel = PixelAuroc::new();
        for (s, m) in frames {
            pixel.add_frame(s, m).unwrap();
        }
        let all_scores: Vec<f32> = frames.iter().flat_map(|(s, _)| s.iter().copied()).collect();
        let all_labels: Vec<bool> = frames.iter().flat_map(|(_, m)| m.iter().copied()).collect();
        let pooled = RankedCounts::from_samples(&all_scores, &all_labels).unwrap().auroc().unwrap();
        assert_eq!(pixel.auroc().unwrap(), pooled);
        assert_eq!(pixel.distinct_scores(), 6);
        assert!(pixel.add_frame(&[0.1], &[true, false]).is_err());
    }

    #[test]
    fn runs_of_one_score_count_as_their_pixels() {
        // A painted 6 x 40 frame: background, two overlapping boxes, a mask
        // region that starts and ends inside runs of one score.
        let map = ScoreMap::paint(6, 40, &[[3.0, 1.0, 20.0, 5.0], [15.0, 2.0, 33.0, 6.0]], &[0.25, 0.75]).unwrap();
        let scores = map.filled(-1.0);
        let mask: Vec<bool> = (0..scores.len()).map(|p| (10..18).contains(&(p % 40)) && p / 40 >= 2).collect();
        let mut runs = PixelAuroc::new();
        runs.add_frame(&scores, &mask).unwrap();
        let mut pixels = PixelAuroc::new();
        for (s, m) in scores.iter().zip(&mask) {
            pixels.add_frame(&[*s], &[*m]).unwrap();
        }
        assert_eq!(runs.counts, pixels.counts);
        assert_eq!(runs.auroc().unwrap(), pixels.auroc().unwrap());
        assert_eq!(runs.counts.values().map(|&(p, n)| p + n).sum::<u64>(), 240);
    }
}

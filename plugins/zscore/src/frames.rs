//! Per-frame scores: each box's score is painted over its pixel region and
//! the frame takes the maximum of its map (docs/method.md 7.3). Painting with
//! `max` and then taking the map's maximum equals the maximum over the boxes
//! whose region is not empty, which is what is computed here.

use crate::input::FrameBox;

/// Pixel region (x0, y0, x1, y1), exclusive ends, that a box paints on a
/// `height` x `width` frame: coordinates are ceil-ed (as the paper's
/// `np.ceil` slicing) and clipped to the frame; `None` when empty.
pub fn box_region(b: &FrameBox, height: u32, width: u32) -> Option<(u32, u32, u32, u32)> {
    let clip = |v: f32, limit: u32| v.ceil().clamp(0.0, limit as f32) as u32;
    let (x0, x1) = (clip(b.x1, width), clip(b.x2, width));
    let (y0, y1) = (clip(b.y1, height), clip(b.y2, height));
    (x0 < x1 && y0 < y1).then_some((x0, y0, x1, y1))
}

/// Raw score of each frame row: the maximum score of its boxes that paint
/// at least one pixel, or `no_box_score` when none does.
pub fn frame_scores(frame_sizes: &[(u32, u32)], boxes: &[FrameBox], box_scores: &[f64], no_box_score: f64) -> Vec<f64> {
    let mut best: Vec<Option<f64>> = vec![None; frame_sizes.len()];
    for (b, &score) in boxes.iter().zip(box_scores) {
        let (height, width) = frame_sizes[b.row];
        if box_region(b, height, width).is_some() {
            let slot = &mut best[b.row];
            *slot = Some(slot.map_or(score, |s| s.max(score)));
        }
    }
    best.into_iter().map(|s| s.unwrap_or(no_box_score)).collect()
}

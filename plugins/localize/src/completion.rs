//! Boxes around moving regions (docs/method.md 2.4 steps 3-6): what the motion
//! localizer returns, and what the detector adds for moving things it missed.

use crate::boxes::{Bbox, MOTION_CLASS};
use crate::components::{external_component_rects, BinaryMap};

/// Score given to motion boxes: they come from no classifier.
pub const MOTION_SCORE: f32 = 1.0;

/// How blobs of the foreground map become boxes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MotionBoxRules {
    /// Pixels added on each side (also around detector boxes when clearing).
    pub growth: i64,
    /// A blob's rectangle must have (w + 1) * (h + 1) > `min_area`.
    pub min_area: f32,
    /// ... and w/h < `max_aspect`, h/w < `max_aspect`.
    pub max_aspect: f32,
}

/// Clears each detector box, grown by `rules.growth` pixels (inclusive of the
/// grown right and bottom edge), from the foreground map (step 3).
pub fn clear_detections(map: &mut BinaryMap, detections: &[Bbox], growth: i64) {
    for d in detections {
        // Truncation to integers, as the original's int() on non-negative coordinates.
        let (x1, y1, x2, y2) = (d.x1 as i64, d.y1 as i64, d.x2 as i64, d.y2 as i64);
        map.clear_rect(x1 - growth, y1 - growth, x2 + growth, y2 + growth);
    }
}

/// Boxes around the outermost foreground blobs that pass the area and
/// aspect rules, grown and clipped to the frame (steps 4-6).
pub fn motion_boxes(map: &BinaryMap, rules: &MotionBoxRules) -> Vec<Bbox> {
    let (width, height) = (map.width as f32, map.height as f32);
    let g = rules.growth as f32;
    external_component_rects(map)
        .into_iter()
        .filter(|r| {
            let (w, h) = (r.w as f32, r.h as f32);
            (w + 1.0) * (h + 1.0) > rules.min_area && w / h < rules.max_aspect && h / w < rules.max_aspect
        })
        .map(|r| {
            let (x, y, w, h) = (r.x as f32, r.y as f32, r.w as f32, r.h as f32);
            Bbox::new((x - g).max(0.0), (y - g).max(0.0), (x + w + g).min(width), (y + h + g).min(height), MOTION_SCORE, MOTION_CLASS)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: MotionBoxRules = MotionBoxRules { growth: 2, min_area: 100.0, max_aspect: 10.0 };

    fn fill(map: &mut BinaryMap, x0: usize, y0: usize, w: usize, h: usize) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                map.set(x, y, true);
            }
        }
    }

    #[test]
    fn blobs_become_grown_clipped_boxes_when_large_enough() {
        let mut map = BinaryMap::new(60, 40);
        fill(&mut map, 10, 10, 9, 9); // (9+1)(9+1) = 100: not > 100, dropped
        fill(&mut map, 30, 5, 10, 9); // 11 * 10 = 110: kept
        fill(&mut map, 0, 30, 12, 10); // touches the left and bottom edges: clipped
        let boxes = motion_boxes(&map, &RULES);
        let corners: Vec<[f32; 4]> = boxes.iter().map(|b| [b.x1, b.y1, b.x2, b.y2]).collect();
        assert_eq!(corners, vec![[28.0, 3.0, 42.0, 16.0], [0.0, 28.0, 14.0, 40.0]]);
        assert!(boxes.iter().all(|b| b.class == MOTION_CLASS && b.score == MOTION_SCORE));
    }

    #[test]
    fn thin_blobs_fail_the_aspect_rule() {
        let mut map = BinaryMap::new(200, 40);
        fill(&mut map, 0, 0, 100, 10); // w/h = 10: not < 10
        fill(&mut map, 0, 20, 99, 10); // 9.9: kept
        let boxes = motion_boxes(&map, &RULES);
        assert_eq!(boxes.len(), 1);
        assert_eq!(boxes[0].y1, 18.0);
    }

    #[test]
    fn detections_grown_by_two_pixels_are_cleared() {
        let mut map = BinaryMap::new(40, 40);
        fill(&mut map, 0, 0, 40, 40);
        // A box at (10.7, 10.2)-(19.9, 19.5) clears x, y in 8..=21.
        clear_detections(&mut map, &[Bbox::new(10.7, 10.2, 19.9, 19.5, 0.9, 0)], 2);
        assert_eq!(map.count(), 40 * 40 - 14 * 14);
        assert!(map.get(7, 8) && !map.get(8, 8) && !map.get(21, 21) && map.get(22, 21));
    }
}

//! Boxes and the box filters both localizers share: per-class NMS (the
//! detector's own) and cover removal (docs/method.md 2.3).

/// One box in image pixels. `class` is the COCO class, or -1 for a box
/// found from motion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bbox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
    pub class: i32,
}

/// Class of boxes that come from motion, not from a classifier.
pub const MOTION_CLASS: i32 = -1;

impl Bbox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32, score: f32, class: i32) -> Bbox {
        Bbox { x1, y1, x2, y2, score, class }
    }

    /// Area with the inclusive pixel convention of the original code:
    /// (x2 - x1 + 1) * (y2 - y1 + 1).
    pub fn inclusive_area(&self) -> f32 {
        (self.x2 - self.x1 + 1.0) * (self.y2 - self.y1 + 1.0)
    }

    /// Intersection area, inclusive convention (docs/method.md 2.3 step 2).
    pub fn inclusive_intersection(&self, other: &Bbox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1) + 1.0).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1) + 1.0).max(0.0);
        w * h
    }

    /// Intersection over union with continuous coordinates (as detector
    /// NMS implementations compute it).
    pub fn iou(&self, other: &Bbox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let area = |b: &Bbox| (b.x2 - b.x1).max(0.0) * (b.y2 - b.y1).max(0.0);
        let union = area(self) + area(other) - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

/// Greedy non-maximum suppression within each class: boxes sorted by score,
/// a box is dropped when its IoU with a kept box of the same class exceeds
/// `iou_threshold`. The result is sorted by score, highest first.
pub fn nms_per_class(mut boxes: Vec<Bbox>, iou_threshold: f32) -> Vec<Bbox> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Bbox> = Vec::with_capacity(boxes.len());
    for candidate in boxes {
        let suppressed = kept.iter().any(|k| k.class == candidate.class && k.iou(&candidate) > iou_threshold);
        if !suppressed {
            kept.push(candidate);
        }
    }
    kept
}

vigil_stage_api::settings! {
    /// Cover removal's option, which both localizers take.
    pub struct CoverRemoval {
        /// drop a box when more than this share of it lies inside a larger box (1 keeps all)
        pub cover_threshold: f32 = 0.6 => vigil_stage_api::settings::within(0.0, 1.0),
    }
}

/// Cover removal (docs/method.md 2.3): with boxes in ascending area order, a box
/// is dropped when more than `threshold` of its area lies inside any box
/// after it in that order. Later boxes count even when they are dropped
/// themselves, as in the original code. Kept boxes stay in input order.
pub fn remove_covered(boxes: &[Bbox], threshold: f32) -> Vec<Bbox> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    // Stable: boxes of equal area keep their input order, so results do not
    // depend on the sort algorithm.
    order.sort_by(|&a, &b| boxes[a].inclusive_area().total_cmp(&boxes[b].inclusive_area()));
    let mut keep = vec![true; boxes.len()];
    for (rank, &i) in order.iter().enumerate() {
        let area = boxes[i].inclusive_area();
        let covered = order[rank + 1..].iter().any(|&j| boxes[i].inclusive_intersection(&boxes[j]) / area > threshold);
        keep[i] = !covered;
    }
    boxes.iter().zip(keep).filter(|(_, k)| *k).map(|(b, _)| *b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> Bbox {
        Bbox::new(x1, y1, x2, y2, 1.0, 0)
    }

    #[test]
    fn inclusive_area_and_intersection() {
        let a = b(0.0, 0.0, 9.0, 9.0);
        assert_eq!(a.inclusive_area(), 100.0);
        assert_eq!(a.inclusive_intersection(&b(5.0, 5.0, 20.0, 20.0)), 25.0);
        assert_eq!(a.inclusive_intersection(&b(9.0, 9.0, 20.0, 20.0)), 1.0);
        assert_eq!(a.inclusive_intersection(&b(10.0, 0.0, 20.0, 9.0)), 0.0);
    }

    #[test]
    fn cover_removal_drops_a_box_mostly_inside_a_bigger_one() {
        let big = b(0.0, 0.0, 99.0, 99.0);
        let inside = b(10.0, 10.0, 19.0, 19.0); // fully inside: ratio 1
        let half_out = b(90.0, 0.0, 109.0, 9.0); // 10 of 20 columns inside: ratio 0.5
        let kept = remove_covered(&[inside, big, half_out], 0.6);
        assert_eq!(kept, vec![big, half_out]);
    }

    #[test]
    fn cover_removal_threshold_is_strict() {
        // 6 of 10 columns inside: ratio exactly 0.6 is kept.
        let small = b(0.0, 0.0, 9.0, 9.0);
        let big = b(4.0, 0.0, 40.0, 9.0);
        assert_eq!(remove_covered(&[small, big], 0.6), vec![small, big]);
        // 7 of 10 columns: dropped.
        let big = b(3.0, 0.0, 40.0, 9.0);
        assert_eq!(remove_covered(&[small, big], 0.6), vec![big]);
    }

    #[test]
    fn cover_removal_compares_against_later_boxes_even_if_they_are_dropped() {
        // a (100 px) is inside b (400 px); b is inside c (1600 px) -> b is dropped,
        // and a is dropped because of b although b itself does not survive.
        // a does not overlap c at all.
        let a = b(0.0, 0.0, 9.0, 9.0);
        let bb = b(0.0, 0.0, 19.0, 19.0);
        let c = b(4.0, 4.0, 43.0, 43.0);
        // Check the premise: a alone against c would be kept.
        assert_eq!(remove_covered(&[a, c], 0.6), vec![a, c]);
        assert!(a.inclusive_intersection(&c) / a.inclusive_area() <= 0.6);
        assert_eq!(remove_covered(&[a, bb, c], 0.6), vec![c]);
    }

    #[test]
    fn cover_removal_of_equal_boxes_keeps_the_last() {
        let a = b(0.0, 0.0, 9.0, 9.0);
        let mut a2 = a;
        a2.score = 0.5;
        assert_eq!(remove_covered(&[a, a2], 0.6), vec![a2]);
    }

    #[test]
    fn nms_suppresses_within_a_class_only() {
        let p1 = Bbox::new(0.0, 0.0, 10.0, 10.0, 0.9, 0);
        let p2 = Bbox::new(1.0, 0.0, 11.0, 10.0, 0.8, 0); // IoU 0.82 with p1
        let bike = Bbox::new(1.0, 0.0, 11.0, 10.0, 0.7, 1);
        let far = Bbox::new(50.0, 50.0, 60.0, 60.0, 0.6, 0);
        assert_eq!(nms_per_class(vec![far, p2, bike, p1], 0.45), vec![p1, bike, far]);
        // Below the IoU threshold both stay.
        let p3 = Bbox::new(6.0, 0.0, 16.0, 10.0, 0.8, 0); // IoU 4/16 = 0.25
        assert_eq!(nms_per_class(vec![p1, p3], 0.45), vec![p1, p3]);
    }
}

//! Decoding YOLOX's raw output (docs/method.md 2.1): one row per
//! anchor point of the stride-8, 16 and 32 grids (row-major, x fastest),
//! columns (x, y, log w, log h, objectness, class probabilities...).

use crate::boxes::Bbox;

pub const STRIDES: [usize; 3] = [8, 16, 32];
/// Columns before the class probabilities.
pub const BOX_COLUMNS: usize = 5;

/// The anchor grid of a given input size.
#[derive(Clone, Debug, PartialEq)]
pub struct AnchorGrid {
    /// (grid x, grid y, stride) per output row.
    anchors: Vec<(f32, f32, f32)>,
}

impl AnchorGrid {
    pub fn new(input_width: usize, input_height: usize) -> AnchorGrid {
        let mut anchors = Vec::new();
        for stride in STRIDES {
            for gy in 0..input_height / stride {
                for gx in 0..input_width / stride {
                    anchors.push((gx as f32, gy as f32, stride as f32));
                }
            }
        }
        AnchorGrid { anchors }
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Every (anchor, class) with score = objectness * class probability
    /// above `min_score`, for classes with `wanted[class]`; boxes in input
    /// pixels. `output` is [anchors, 5 + classes] row-major.
    pub fn decode(&self, output: &[f32], wanted: &[bool], min_score: f32) -> Vec<Bbox> {
        let columns = BOX_COLUMNS + wanted.len();
        let mut found = Vec::new();
        for (row, &(gx, gy, stride)) in output.chunks_exact(columns).zip(&self.anchors) {
            let objectness = row[4];
            if objectness <= min_score {
                continue; // class probabilities are at most 1
            }
            let (cx, cy) = ((row[0] + gx) * stride, (row[1] + gy) * stride);
            let (w, h) = (row[2].exp() * stride, row[3].exp() * stride);
            for (class, &p) in row[BOX_COLUMNS..].iter().enumerate() {
                let score = objectness * p;
                if wanted[class] && score > min_score {
                    found.push(Bbox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0, score, class as i32));
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_3549_anchors_at_416() {
        let grid = AnchorGrid::new(416, 416);
        assert_eq!(grid.len(), 52 * 52 + 26 * 26 + 13 * 13);
        assert_eq!(grid.len(), 3549);
    }

    #[test]
    fn decodes_offsets_sizes_and_scores() {
        let grid = AnchorGrid::new(64, 32); // 8x4 + 4x2 + 2x1 = 42 anchors
        assert_eq!(grid.len(), 42);
        let classes = 3;
        let mut output = vec![0.0f32; grid.len() * (BOX_COLUMNS + classes)];
        let mut set_row = |anchor: usize, values: [f32; 8]| {
            output[anchor * 8..anchor * 8 + 8].copy_from_slice(&values);
        };
        // Stride 8, grid (3, 1) = row 1 * 8 + 3 = 11: centre (3.5+3)*8, (0.5+1)*8 = (52, 12).
        set_row(11, [3.5, 0.5, 2f32.ln(), 0.0, 0.9, 0.5, 0.1, 1.0]);
        // Stride 16, first anchor of that grid: row 32, centre (0, 0), size 16.
        set_row(32, [0.0, 0.0, 0.0, 0.0, 0.3, 1.0, 1.0, 1.0]);
        let boxes = grid.decode(&output, &[true, true, false], 0.2);
        let expect =
            [Bbox::new(44.0, 8.0, 60.0, 16.0, 0.45, 0), Bbox::new(-8.0, -8.0, 8.0, 8.0, 0.3, 0), Bbox::new(-8.0, -8.0, 8.0, 8.0, 0.3, 1)];
        assert_eq!(boxes.len(), expect.len(), "{boxes:?}");
        for (b, e) in boxes.iter().zip(&expect) {
            let close = |p: f32, q: f32| (p - q).abs() < 1e-4;
            assert!(close(b.x1, e.x1) && close(b.y1, e.y1) && close(b.x2, e.x2) && close(b.y2, e.y2), "{b:?}");
            assert!(close(b.score, e.score) && b.class == e.class, "{b:?}");
        }
    }
}

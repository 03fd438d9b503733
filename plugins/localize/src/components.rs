//! Foreground blobs of a binary map and their bounding rectangles, the same
//! rectangles OpenCV's `findContours(RETR_EXTERNAL)` + `boundingRect` give:
//! 8-connected foreground components, skipping those that sit inside a hole
//! of another component (they have no external contour).

/// A binary image, row-major, `true` = foreground.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryMap {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<bool>,
}

impl BinaryMap {
    pub fn new(width: usize, height: usize) -> BinaryMap {
        BinaryMap { width, height, pixels: vec![false; width * height] }
    }

    pub fn get(&self, x: usize, y: usize) -> bool {
        self.pixels[y * self.width + x]
    }

    pub fn set(&mut self, x: usize, y: usize, value: bool) {
        self.pixels[y * self.width + x] = value;
    }

    /// Clears the rectangle with inclusive corners, clipped to the map.
    pub fn clear_rect(&mut self, x1: i64, y1: i64, x2: i64, y2: i64) {
        let (w, h) = (self.width as i64, self.height as i64);
        let (x1, y1) = (x1.max(0), y1.max(0));
        let (x2, y2) = (x2.min(w - 1), y2.min(h - 1));
        for y in y1..=y2 {
            for x in x1..=x2 {
                self.pixels[(y * w + x) as usize] = false;
            }
        }
    }

    pub fn count(&self) -> usize {
        self.pixels.iter().filter(|&&p| p).count()
    }
}

/// An upright rectangle like OpenCV's `boundingRect`: x, y of the top-left
/// pixel, width and height in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

const NONE: u32 = u32::MAX;

/// Bounding rectangles of the outermost 8-connected foreground components,
/// in order of each component's first pixel (row-major scan).
pub fn external_component_rects(map: &BinaryMap) -> Vec<Rect> {
    let (w, h) = (map.width, map.height);
    let (labels, count) = label_components(map);
    let outside = background_reachable_from_border(map);
    let mut extent = vec![(usize::MAX, usize::MAX, 0usize, 0usize); count];
    let mut external = vec![false; count];
    for (p, &label) in labels.iter().enumerate() {
        if label == NONE {
            continue;
        }
        let (x, y) = (p % w, p / w);
        let e = &mut extent[label as usize];
        *e = (e.0.min(x), e.1.min(y), e.2.max(x), e.3.max(y));
        // Outermost iff some pixel touches the image edge or background
        // 4-connected to it (8-connected foreground has 4-connected holes).
        let on_edge = x == 0 || y == 0 || x == w - 1 || y == h - 1;
        external[label as usize] |= on_edge || neighbours4(x, y, w, h).any(|(nx, ny)| outside[ny * w + nx]);
    }
    extent
        .into_iter()
        .zip(external)
        .filter(|(_, ext)| *ext)
        .map(|((x0, y0, x1, y1), _)| Rect { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 })
        .collect()
}

/// Labels 8-connected foreground components 0, 1, 2, ... in scan order;
/// returns the labels and their count.
fn label_components(map: &BinaryMap) -> (Vec<u32>, usize) {
    let (w, h) = (map.width, map.height);
    let mut labels = vec![NONE; w * h];
    let mut next = 0u32;
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !map.pixels[start] || labels[start] != NONE {
            continue;
        }
        labels[start] = next;
        stack.push(start);
        while let Some(p) = stack.pop() {
            for (nx, ny) in neighbours8(p % w, p / w, w, h) {
                let q = ny * w + nx;
                if map.pixels[q] && labels[q] == NONE {
                    labels[q] = next;
                    stack.push(q);
                }
            }
        }
        next += 1;
    }
    (labels, next as usize)
}

/// Background pixels 4-connected to the image border.
fn background_reachable_from_border(map: &BinaryMap) -> Vec<bool> {
    let (w, h) = (map.width, map.height);
    let mut outside = vec![false; w * h];
    let mut stack: Vec<usize> = (0..w * h)
        .filter(|&p| {
            let (x, y) = (p % w, p / w);
            (x == 0 || y == 0 || x == w - 1 || y == h - 1) && !map.pixels[p]
        })
        .collect();
    for &p in &stack {
        outside[p] = true;
    }
    while let Some(p) = stack.pop() {
        for (nx, ny) in neighbours4(p % w, p / w, w, h) {
            let q = ny * w + nx;
            if !map.pixels[q] && !outside[q] {
                outside[q] = true;
                stack.push(q);
            }
        }
    }
    outside
}

fn neighbours4(x: usize, y: usize, w: usize, h: usize) -> impl Iterator<Item = (usize, usize)> {
    const STEPS: [(i64, i64); 4] = [(-1, 0), (1, 0), (0, -1), (0, 1)];
    offset(x, y, w, h, &STEPS)
}

fn neighbours8(x: usize, y: usize, w: usize, h: usize) -> impl Iterator<Item = (usize, usize)> {
    const STEPS: [(i64, i64); 8] = [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)];
    offset(x, y, w, h, &STEPS)
}

fn offset(x: usize, y: usize, w: usize, h: usize, steps: &'static [(i64, i64)]) -> impl Iterator<Item = (usize, usize)> {
    steps.iter().filter_map(move |&(dx, dy)| {
        let (nx, ny) = (x as i64 + dx, y as i64 + dy);
        (nx >= 0 && ny >= 0 && nx < w as i64 && ny < h as i64).then_some((nx as usize, ny as usize))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map from rows of '#' (foreground) and '.'.
    fn map(rows: &[&str]) -> BinaryMap {
        let mut m = BinaryMap::new(rows[0].len(), rows.len());
        for (y, row) in rows.iter().enumerate() {
            for (x, c) in row.chars().enumerate() {
                m.set(x, y, c == '#');
            }
        }
        m
    }

    fn rect(x: usize, y: usize, w: usize, h: usize) -> Rect {
        Rect { x, y, w, h }
    }

    #[test]
    fn diagonal_pixels_are_one_component() {
        #[rustfmt::skip]
        let m = map(&[
            "..........",
            ".#........",
            "..#.....##",
            "...#....##",
            "..........",
        ]);
        assert_eq!(external_component_rects(&m), vec![rect(1, 1, 3, 3), rect(8, 2, 2, 2)]);
    }

    #[test]
    fn a_blob_inside_a_hole_has_no_external_contour() {
        #[rustfmt::skip]
        let m = map(&[
            "#######..",
            "#.....#..",
            "#.##..#.#",
            "#.....#..",
            "#######..",
        ]);
        assert_eq!(external_component_rects(&m), vec![rect(0, 0, 7, 5), rect(8, 2, 1, 1)]);
    }

    #[test]
    fn a_gap_at_a_corner_is_no_hole_for_8_connected_foreground() {
        // The ring lacks its top-left corner pixel; that gap touches the inside
        // only diagonally, and background is 4-connected: the dot stays enclosed.
        #[rustfmt::skip]
        let m = map(&[
            ".#####",
            "#....#",
            "#.#..#",
            "#....#",
            "######",
        ]);
        assert_eq!(external_component_rects(&m), vec![rect(0, 0, 6, 5)]);
        // An open side lets the outside in: the dot is outermost too.
        #[rustfmt::skip]
        let m = map(&[
            "######",
            "#.....",
            "#.#..#",
            "#....#",
            "######",
        ]);
        assert_eq!(external_component_rects(&m), vec![rect(0, 0, 6, 5), rect(2, 2, 1, 1)]);
    }

    #[test]
    fn clear_rect_is_inclusive_and_clipped() {
        let mut m = map(&["####", "####", "####"]);
        m.clear_rect(-3, 1, 1, 9);
        assert_eq!(m, map(&["####", "..##", "..##"]));
        assert_eq!(m.count(), 8);
        assert!(external_component_rects(&BinaryMap::new(3, 3)).is_empty());
    }
}

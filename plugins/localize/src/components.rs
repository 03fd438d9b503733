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
///
/// This runs on every frame of the motion localizer (768x576 is 442k
/// pixels), so the loops walk rows and columns instead of dividing pixel
/// indices, and the background fill goes a row span at a time.
pub fn external_component_rects(map: &BinaryMap) -> Vec<Rect> {
    let (w, h) = (map.width, map.height);
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let (labels, count) = label_components(map);
    let outside = background_reachable_from_border(map);
    let mut extent = vec![(usize::MAX, usize::MAX, 0usize, 0usize); count];
    let mut external = vec![false; count];
    for y in 0..h {
        let row = y * w;
        for x in 0..w {
            let label = labels[row + x];
            if label == NONE {
                continue;
            }
            let (e, outer) = (&mut extent[label as usize], &mut external[label as usize]);
            *e = (e.0.min(x), e.1.min(y), e.2.max(x), e.3.max(y));
            // Outermost iff some pixel touches the image edge or background
            // 4-connected to it (8-connected foreground has 4-connected holes).
            // The edge tests come first, so the neighbours read are inside the map.
            *outer = *outer
                || x == 0
                || y == 0
                || x == w - 1
                || y == h - 1
                || outside[row + x - 1]
                || outside[row + x + 1]
                || outside[row - w + x]
                || outside[row + w + x];
        }
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
            let (x, y) = (p % w, p / w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let q = ny * w + nx;
                    if map.pixels[q] && labels[q] == NONE {
                        labels[q] = next;
                        stack.push(q);
                    }
                }
            }
        }
        next += 1;
    }
    (labels, next as usize)
}

/// Background pixels 4-connected to the image border, filled one row span
/// at a time: each seed grows left and right as far as the background
/// goes, and seeds the runs of background above and below the span.
fn background_reachable_from_border(map: &BinaryMap) -> Vec<bool> {
    let (w, h) = (map.width, map.height);
    let mut outside = vec![false; w * h];
    let open = |outside: &[bool], p: usize| !map.pixels[p] && !outside[p];
    let mut seeds: Vec<(usize, usize)> =
        (0..w).flat_map(|x| [(x, 0), (x, h - 1)]).chain((0..h).flat_map(|y| [(0, y), (w - 1, y)])).collect();
    while let Some((x, y)) = seeds.pop() {
        let row = y * w;
        if !open(&outside, row + x) {
            continue;
        }
        let (mut left, mut right) = (x, x);
        while left > 0 && open(&outside, row + left - 1) {
            left -= 1;
        }
        while right + 1 < w && open(&outside, row + right + 1) {
            right += 1;
        }
        outside[row + left..=row + right].fill(true);
        for ny in [y.wrapping_sub(1), y + 1].into_iter().filter(|&ny| ny < h) {
            let next_row = ny * w;
            let mut i = left;
            while i <= right {
                if open(&outside, next_row + i) {
                    seeds.push((i, ny));
                    while i <= right && open(&outside, next_row + i) {
                        i += 1;
                    }
                } else {
                    i += 1;
                }
            }
        }
    }
    outside
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

    /// The rectangles by the definition, pixel by pixel and slowly: flood
    /// fills over (x, y) with bounds checks on every step.
    fn reference_rects(m: &BinaryMap) -> Vec<Rect> {
        let (w, h) = (m.width as i64, m.height as i64);
        let inside = |x: i64, y: i64| x >= 0 && y >= 0 && x < w && y < h;
        let at = |x: i64, y: i64| (y * w + x) as usize;
        let fill = |seeds: Vec<(i64, i64)>, steps: &[(i64, i64)], want: bool, seen: &mut Vec<bool>| -> Vec<(i64, i64)> {
            let mut stack: Vec<(i64, i64)> = seeds.into_iter().filter(|&(x, y)| m.get(x as usize, y as usize) == want).collect();
            let mut found = Vec::new();
            for &(x, y) in &stack {
                seen[at(x, y)] = true;
            }
            while let Some((x, y)) = stack.pop() {
                found.push((x, y));
                for (dx, dy) in steps {
                    let (nx, ny) = (x + dx, y + dy);
                    if inside(nx, ny) && !seen[at(nx, ny)] && m.get(nx as usize, ny as usize) == want {
                        seen[at(nx, ny)] = true;
                        stack.push((nx, ny));
                    }
                }
            }
            found
        };
        let four = [(-1, 0), (1, 0), (0, -1), (0, 1)];
        let eight = [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)];
        let border: Vec<(i64, i64)> =
            (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).filter(|&(x, y)| x == 0 || y == 0 || x == w - 1 || y == h - 1).collect();
        let mut outside = vec![false; (w * h) as usize];
        fill(border, &four, false, &mut outside);
        let mut labelled = vec![false; (w * h) as usize];
        let mut rects = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if !m.get(x as usize, y as usize) || labelled[at(x, y)] {
                    continue;
                }
                let pixels = fill(vec![(x, y)], &eight, true, &mut labelled);
                let external = pixels.iter().any(|&(px, py)| {
                    px == 0 || py == 0 || px == w - 1 || py == h - 1 || four.iter().any(|(dx, dy)| outside[at(px + dx, py + dy)])
                });
                if external {
                    let (x0, y0) = (pixels.iter().map(|p| p.0).min().unwrap(), pixels.iter().map(|p| p.1).min().unwrap());
                    let (x1, y1) = (pixels.iter().map(|p| p.0).max().unwrap(), pixels.iter().map(|p| p.1).max().unwrap());
                    rects.push(rect(x0 as usize, y0 as usize, (x1 - x0 + 1) as usize, (y1 - y0 + 1) as usize));
                }
            }
        }
        rects
    }

    #[test]
    fn random_maps_give_the_rectangles_of_the_definition() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..300 {
            let (w, h) = (1 + (next() % 40) as usize, 1 + (next() % 30) as usize);
            // From sparse specks to mostly foreground with holes and nested blobs.
            let density = [5, 20, 45, 60, 80][case % 5];
            let mut m = BinaryMap::new(w, h);
            for p in m.pixels.iter_mut() {
                *p = next() % 100 < density;
            }
            assert_eq!(external_component_rects(&m), reference_rects(&m), "case {case}: {w}x{h}, density {density}%");
        }
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

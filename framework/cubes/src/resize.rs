//! Bilinear resize of an image region to a square, with OpenCV's
//! INTER_LINEAR geometry (pixel centres at +0.5, edge taps clamped), written
//! channel-planar as the cubes store it.

/// A rectangle of pixels: columns x0..x1, rows y0..y1 (exclusive ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

/// Source taps of each of `dst` output positions over `src` input ones:
/// (lower index, upper index, weight of the upper).
fn taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let s = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
            let lo = (s.floor() as usize).min(src - 1);
            let hi = (lo + 1).min(src - 1);
            (lo, hi, if lo == hi { 0.0 } else { (s - lo as f64) as f32 })
        })
        .collect()
}

/// Resizes `rect` of an interleaved image (`width` pixels per row,
/// `channels` values per pixel) to `size` x `size`, calling
/// `put(channel, index_in_plane, value)` for every output value.
pub fn resize_region<T: Copy + Into<f32>>(
    image: &[T],
    width: usize,
    channels: usize,
    rect: Rect,
    size: usize,
    mut put: impl FnMut(usize, usize, f32),
) {
    let xs = taps(rect.x1 - rect.x0, size);
    let ys = taps(rect.y1 - rect.y0, size);
    let at = |x: usize, y: usize, c: usize| -> f32 { image[((rect.y0 + y) * width + rect.x0 + x) * channels + c].into() };
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..channels {
                let top = at(x0, y0, c) + fx * (at(x1, y0, c) - at(x0, y0, c));
                let bottom = at(x0, y1, c) + fx * (at(x1, y1, c) - at(x0, y1, c));
                put(c, oy * size + ox, top + fy * (bottom - top));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsamples_with_half_pixel_centres() {
        // Row 0, 10 (2 pixels, 1 channel) to 4: centres at -0.25, 0.25, 0.75, 1.25.
        let mut out = [0.0; 16];
        resize_region(&[0u8, 10], 2, 1, Rect { x0: 0, y0: 0, x1: 2, y1: 1 }, 4, |_, i, v| out[i] = v);
        assert_eq!(&out[..4], &[0.0, 2.5, 7.5, 10.0]);
        assert_eq!(&out[12..], &[0.0, 2.5, 7.5, 10.0], "a single source row is repeated");
    }
}

//! One cube: the crop rule and the frame-major stacking of a box's crops.

use crate::resize::{resize_region, Rect};

/// A box on one frame of a video, in pixel coordinates of that frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameBox {
    pub frame: u32,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
    /// Detector class, -1 for boxes not from a classifier.
    pub class: i32,
}

/// The pixels LBR-SPR crops for a box: columns ceil(x1)..ceil(x2), rows
/// ceil(y1)..ceil(y2), exclusive ends, kept inside the frame; `None` when
/// that is empty or a coordinate is not finite.
pub fn crop_rect(b: &FrameBox, width: usize, height: usize) -> Option<Rect> {
    if ![b.x1, b.y1, b.x2, b.y2].iter().all(|v| v.is_finite()) {
        return None;
    }
    let clamp = |v: f32, max: usize| v.ceil().clamp(0.0, max as f32) as usize;
    let rect = Rect { x0: clamp(b.x1, width), y0: clamp(b.y1, height), x1: clamp(b.x2, width), y1: clamp(b.y2, height) };
    (rect.x1 > rect.x0 && rect.y1 > rect.y0).then_some(rect)
}

/// Frames t-c..t+c, clamped inside the video (the original's "hard" border).
pub fn context_frames(t: usize, context: usize, frames: usize) -> impl Iterator<Item = usize> {
    (0..=2 * context).map(move |k| (t + k).saturating_sub(context).min(frames - 1))
}

/// Fills `out` ([frames * channels, size, size], channel = channels * k + c)
/// with the crop `rect` of each context frame of a video stored as
/// [T, H, W, channels]; `convert` maps the resized value to the element type.
pub fn stack_crops<T: Copy + Into<f32>, O>(
    video: &[T],
    (height, width, channels): (usize, usize, usize),
    frames: impl Iterator<Item = usize>,
    rect: Rect,
    size: usize,
    out: &mut [O],
    convert: impl Fn(f32) -> O,
) {
    let frame_len = height * width * channels;
    let plane = size * size;
    for (k, f) in frames.enumerate() {
        let image = &video[f * frame_len..(f + 1) * frame_len];
        let block = &mut out[k * channels * plane..(k + 1) * channels * plane];
        resize_region(image, width, channels, rect, size, |c, i, v| block[c * plane + i] = convert(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_box(x1: f32, y1: f32, x2: f32, y2: f32) -> FrameBox {
        FrameBox { frame: 0, x1, y1, x2, y2, score: 1.0, class: 0 }
    }

    #[test]
    fn crop_uses_ceiled_exclusive_ends_inside_the_frame() {
        let r = crop_rect(&frame_box(1.2, 0.0, 4.0, 2.5), 10, 10).unwrap();
        assert_eq!(r, Rect { x0: 2, y0: 0, x1: 4, y1: 3 });
        let r = crop_rect(&frame_box(-3.0, 8.1, 12.0, 30.0), 10, 10).unwrap();
        assert_eq!(r, Rect { x0: 0, y0: 9, x1: 10, y1: 10 });
        assert_eq!(crop_rect(&frame_box(3.2, 1.0, 3.9, 5.0), 10, 10), None, "ceil(3.2) == ceil(3.9)");
        assert_eq!(crop_rect(&frame_box(5.0, 1.0, 2.0, 5.0), 10, 10), None);
        assert_eq!(crop_rect(&frame_box(f32::NAN, 1.0, 2.0, 5.0), 10, 10), None);
    }

    #[test]
    fn context_is_clamped_inside_the_video() {
        assert_eq!(context_frames(0, 2, 10).collect::<Vec<_>>(), [0, 0, 0, 1, 2]);
        assert_eq!(context_frames(9, 2, 10).collect::<Vec<_>>(), [7, 8, 9, 9, 9]);
        assert_eq!(context_frames(5, 1, 10).collect::<Vec<_>>(), [4, 5, 6]);
        assert_eq!(context_frames(0, 2, 1).collect::<Vec<_>>(), [0, 0, 0, 0, 0]);
    }
}

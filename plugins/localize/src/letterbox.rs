//! YOLOX preprocessing (docs/method.md 2.1): resize keeping the aspect
//! ratio with r = min(H_in / h, W_in / w), image at the top-left, the rest
//! padded with 114; planar BGR float 0..255, no normalization.

use crate::batch_io::FrameView;
use crate::boxes::Bbox;

pub const PAD_VALUE: f32 = 114.0;

/// How a frame was placed into the model input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// Scale from image to input pixels. In f64, as the Python reference
    /// computes it: that decides whether 360 * (416 / 360) truncates to 415.
    pub ratio: f64,
    pub image_width: usize,
    pub image_height: usize,
}

impl Letterbox {
    pub fn new(image_width: usize, image_height: usize, input_width: usize, input_height: usize) -> Letterbox {
        let ratio = (input_height as f64 / image_height as f64).min(input_width as f64 / image_width as f64);
        Letterbox { ratio, image_width, image_height }
    }

    /// Size of the resized image inside the input (truncated, as int()).
    pub fn resized_size(&self) -> (usize, usize) {
        ((self.image_width as f64 * self.ratio) as usize, (self.image_height as f64 * self.ratio) as usize)
    }

    /// A box from input to image coordinates, clipped to the image.
    pub fn to_image(&self, b: &Bbox) -> Bbox {
        let (w, h) = (self.image_width as f32, self.image_height as f32);
        let r = self.ratio as f32;
        Bbox {
            x1: (b.x1 / r).clamp(0.0, w),
            y1: (b.y1 / r).clamp(0.0, h),
            x2: (b.x2 / r).clamp(0.0, w),
            y2: (b.y2 / r).clamp(0.0, h),
            ..*b
        }
    }
}

/// Writes `frame` letterboxed into `input`, planar BGR [3, H_in, W_in].
/// The resize is bilinear with pixel centres aligned (OpenCV's INTER_LINEAR):
/// each source row is resized across once (interleaved RGB), and an output
/// row blends the two rows above and below it, so every value is computed
/// as `(p00 (1 - fx) + p01 fx) (1 - fy) + (p10 (1 - fx) + p11 fx) fy`, in
/// passes the compiler vectorizes (per pixel, this was a tenth of a frame's
/// detection time, docs/benchmarks.md).
pub fn letterbox_into(frame: FrameView<'_>, input_width: usize, input_height: usize, input: &mut [f32]) -> Letterbox {
    let placement = Letterbox::new(frame.width, frame.height, input_width, input_height);
    let (rw, rh) = placement.resized_size();
    let (rw, rh) = (rw.min(input_width), rh.min(input_height));
    input.fill(PAD_VALUE);
    let xs: Vec<(usize, usize, f32)> = (0..rw).map(|x| sample_axis(x, frame.width, rw)).collect();
    let across = |y: usize, out: &mut [f32]| {
        let row = &frame.rgb[y * frame.width * 3..][..frame.width * 3];
        for (px, &(x0, x1, fx)) in out.chunks_exact_mut(3).zip(&xs) {
            let (left, right) = (&row[x0 * 3..x0 * 3 + 3], &row[x1 * 3..x1 * 3 + 3]);
            for ((p, &l), &r) in px.iter_mut().zip(left).zip(right) {
                *p = l as f32 * (1.0 - fx) + r as f32 * fx;
            }
        }
    };
    // The source rows last resized across, with their row numbers.
    let (mut above, mut below) = ((usize::MAX, vec![0f32; rw * 3]), (usize::MAX, vec![0f32; rw * 3]));
    let mut blended = vec![0f32; rw * 3];
    let plane = input_width * input_height;
    for y in 0..rh {
        let (y0, y1, fy) = sample_axis(y, frame.height, rh);
        if above.0 != y0 {
            if below.0 == y0 {
                std::mem::swap(&mut above, &mut below);
            } else {
                across(y0, &mut above.1);
                above.0 = y0;
            }
        }
        if below.0 != y1 {
            across(y1, &mut below.1);
            below.0 = y1;
        }
        for ((d, &t), &b) in blended.iter_mut().zip(&above.1).zip(&below.1) {
            // Rounded: the reference resizes in 8 bits.
            *d = round_non_negative(t * (1.0 - fy) + b * fy);
        }
        for (plane_index, rgb_channel) in [2usize, 1, 0].into_iter().enumerate() {
            let dst = &mut input[plane_index * plane + y * input_width..][..rw];
            dst.iter_mut().zip(blended.chunks_exact(3)).for_each(|(d, px)| *d = px[rgb_channel]);
        }
    }
    placement
}

/// `v.round()` for 0 <= v < 65,536, without the libm call `round` is on the
/// baseline x86-64 target (which keeps the loop around it scalar).
fn round_non_negative(v: f32) -> f32 {
    let whole = v as u16 as f32;
    if v - whole >= 0.5 {
        whole + 1.0
    } else {
        whole
    }
}

/// Source pixels and weight of the second for output pixel `i` when `n_in`
/// pixels are resized to `n_out`, with centres aligned and edges clamped.
fn sample_axis(i: usize, n_in: usize, n_out: usize) -> (usize, usize, f32) {
    let src = ((i as f32 + 0.5) * n_in as f32 / n_out as f32 - 0.5).max(0.0);
    let i0 = (src.floor() as usize).min(n_in - 1);
    let i1 = (i0 + 1).min(n_in - 1);
    (i0, i1, if i1 == i0 { 0.0 } else { src - i0 as f32 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_with_114_and_orders_channels_bgr() {
        let (w, h) = (360, 240);
        let rgb: Vec<u8> = (0..w * h).flat_map(|_| [10u8, 20, 30]).collect();
        let mut input = vec![0.0f32; 3 * 416 * 416];
        let lb = letterbox_into(FrameView { rgb: &rgb, width: w, height: h }, 416, 416, &mut input);
        assert_eq!(lb.ratio, 416.0 / 360.0);
        // 360 * (416 / 360) is 415.99999999999994 in f64: 415 columns, as in the reference.
        assert_eq!(lb.resized_size(), (415, 277));
        let at = |c: usize, y: usize, x: usize| input[c * 416 * 416 + y * 416 + x];
        assert_eq!((at(0, 0, 0), at(1, 0, 0), at(2, 0, 0)), (30.0, 20.0, 10.0));
        assert_eq!((at(0, 276, 414), at(2, 276, 414)), (30.0, 10.0));
        assert_eq!((at(0, 277, 0), at(1, 0, 415), at(1, 415, 415)), (PAD_VALUE, PAD_VALUE, PAD_VALUE));
    }

    #[test]
    fn rows_resized_once_give_the_per_pixel_bilinear_values() {
        for (w, h) in [(360, 240), (97, 61), (640, 480)] {
            let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7919 % 251) as u8).collect();
            let mut input = vec![0.0f32; 3 * 416 * 416];
            let lb = letterbox_into(FrameView { rgb: &rgb, width: w, height: h }, 416, 416, &mut input);
            let (rw, rh) = lb.resized_size();
            for y in 0..rh.min(416) {
                let (y0, y1, fy) = sample_axis(y, h, rh);
                for x in 0..rw.min(416) {
                    let (x0, x1, fx) = sample_axis(x, w, rw);
                    for (plane, c) in [2usize, 1, 0].into_iter().enumerate() {
                        let px = |xx: usize, yy: usize| rgb[(yy * w + xx) * 3 + c] as f32;
                        let top = px(x0, y0) * (1.0 - fx) + px(x1, y0) * fx;
                        let bottom = px(x0, y1) * (1.0 - fx) + px(x1, y1) * fx;
                        let expected = (top * (1.0 - fy) + bottom * fy).round();
                        assert_eq!(input[plane * 416 * 416 + y * 416 + x], expected, "{w}x{h} at ({x}, {y}), plane {plane}");
                    }
                }
            }
        }
    }

    #[test]
    fn rounding_matches_round_on_pixel_values() {
        for i in 0..=(256 * 64) {
            let v = i as f32 / 64.0;
            for v in [v, f32::from_bits(v.to_bits().saturating_sub(1)), f32::from_bits(v.to_bits() + 1)] {
                assert_eq!(round_non_negative(v), v.round(), "{v}");
            }
        }
    }

    #[test]
    fn a_bright_square_maps_back_to_where_it_was() {
        // Ped2's frame size: r = min(416/240, 416/360) = 1.1556.
        let (w, h) = (360, 240);
        let (x0, y0, x1, y1) = (200usize, 50usize, 260usize, 130usize); // inclusive pixel range
        let mut rgb = vec![0u8; w * h * 3];
        for y in y0..=y1 {
            for x in x0..=x1 {
                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].fill(255);
            }
        }
        let mut input = vec![0.0f32; 3 * 416 * 416];
        let lb = letterbox_into(FrameView { rgb: &rgb, width: w, height: h }, 416, 416, &mut input);
        // Extent of the bright region in the input (at least half bright).
        let (mut bx0, mut by0, mut bx1, mut by1) = (usize::MAX, usize::MAX, 0, 0);
        for y in 0..416 {
            for x in 0..416 {
                if input[y * 416 + x] > 127.5 {
                    (bx0, by0, bx1, by1) = (bx0.min(x), by0.min(y), bx1.max(x), by1.max(y));
                }
            }
        }
        // Pixel edges in input coordinates back to image coordinates.
        let found = lb.to_image(&Bbox::new(bx0 as f32, by0 as f32, (bx1 + 1) as f32, (by1 + 1) as f32, 1.0, 0));
        let expected = [x0 as f32, y0 as f32, (x1 + 1) as f32, (y1 + 1) as f32];
        for (f, e) in [found.x1, found.y1, found.x2, found.y2].into_iter().zip(expected) {
            assert!((f - e).abs() <= 1.0, "{found:?} vs {expected:?}");
        }
        // Clipping to the image.
        let outside = lb.to_image(&Bbox::new(-20.0, -1.0, 430.0, 430.0, 1.0, 0));
        assert_eq!([outside.x1, outside.y1, outside.x2, outside.y2], [0.0, 0.0, 360.0, 240.0]);
    }
}

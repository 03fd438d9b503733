//! Resampling: bilinear resize with OpenCV's INTER_LINEAR geometry (pixel
//! centres at +0.5, edge taps clamped) and the 2x2 box reduction that builds
//! the pyramid (OpenCV's INTER_AREA at scale 1/2).

use crate::image::{FlowField, GrayImage};
use crate::rows::min_rows;
use rayon::prelude::*;

/// Source taps of one destination coordinate: lower index, upper index and
/// the weight of the upper one.
#[derive(Clone, Copy)]
struct Tap {
    lo: usize,
    hi: usize,
    frac: f32,
}

fn taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let s = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
            let lo = (s.floor() as usize).min(src - 1);
            let hi = (lo + 1).min(src - 1);
            let frac = if lo == hi { 0.0 } else { (s - lo as f64) as f32 };
            Tap { lo, hi, frac }
        })
        .collect()
}

/// Bilinear resize of an interleaved `C`-channel f32 raster.
pub fn resize_bilinear<const C: usize>(src: &[f32], width: usize, height: usize, dst_w: usize, dst_h: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; dst_w * dst_h * C];
    resize_bilinear_into(src, (width, height), [1.0; C], (dst_w, dst_h), &mut out);
    out
}

/// Bilinear resize of an interleaved `C`-channel raster into `out`, each
/// channel multiplied by its `scale`. Each output row blends its two source
/// rows first, then interpolates along the blended row.
fn resize_bilinear_into<const C: usize>(
    src: &[f32],
    (width, height): (usize, usize),
    scale: [f32; C],
    (dst_w, dst_h): (usize, usize),
    out: &mut [f32],
) {
    assert_eq!(src.len(), width * height * C, "raster size does not match {width}x{height}x{C}");
    assert_eq!(out.len(), dst_w * dst_h * C, "output size does not match {dst_w}x{dst_h}x{C}");
    if (width, height) == (dst_w, dst_h) {
        for (o, (s, k)) in out.iter_mut().zip(src.iter().zip(scale.iter().cycle())) {
            *o = s * k;
        }
        return;
    }
    let xs = taps(width, dst_w);
    let ys = taps(height, dst_h);
    let row_len = width * C;
    out.par_chunks_mut(dst_w * C).zip(ys.par_iter()).with_min_len(min_rows(dst_w)).for_each_init(
        || vec![0.0f32; row_len],
        |line, (row, ty)| {
            let top = &src[ty.lo * row_len..][..row_len];
            let bottom = &src[ty.hi * row_len..][..row_len];
            for ((l, t), b) in line.iter_mut().zip(top).zip(bottom) {
                *l = t + ty.frac * (b - t);
            }
            let line: &[[f32; C]] = line.as_chunks().0;
            for (pixel, tx) in row.as_chunks_mut::<C>().0.iter_mut().zip(&xs) {
                let (lo, hi) = (line[tx.lo], line[tx.hi]);
                for c in 0..C {
                    pixel[c] = (lo[c] + tx.frac * (hi[c] - lo[c])) * scale[c];
                }
            }
        },
    );
}

pub fn resize_gray(img: &GrayImage, width: usize, height: usize) -> GrayImage {
    GrayImage::new(width, height, resize_bilinear::<1>(&img.data, img.width, img.height, width, height))
}

/// Resizes a flow field to another grid. Vector values are kept as they are
/// (not rescaled), as LBR-SPR does when it maps 512x384-grid flow back to
/// the frame size.
pub fn resize_flow(flow: &FlowField, width: usize, height: usize) -> FlowField {
    FlowField::new(width, height, resize_bilinear::<2>(&flow.data, flow.width, flow.height, width, height))
}

/// Halves an image by averaging 2x2 blocks (an odd last row or column is
/// dropped, as in OpenCV's integer pyramid sizes).
pub fn half(img: &GrayImage) -> GrayImage {
    let (w, h) = (img.width / 2, img.height / 2);
    let mut data = vec![0.0f32; w * h];
    data.par_chunks_mut(w.max(1)).enumerate().with_min_len(min_rows(w)).for_each(|(y, row)| {
        let r0 = &img.data[2 * y * img.width..][..img.width];
        let r1 = &img.data[(2 * y + 1) * img.width..][..img.width];
        // Pairs of columns, not indices 2x and 2x + 1: the loop vectorizes.
        for ((out, top), bottom) in row.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)) {
            *out = 0.25 * (top[0] + top[1] + bottom[0] + bottom[1]);
        }
    });
    GrayImage::new(w, h, data)
}

/// Resizes a flow field computed on a coarser version of a `units` (width,
/// height) grid to `width` x `height`, expressing the vectors in pixels of
/// `units`.
pub fn resample_flow(flow: &FlowField, width: usize, height: usize, units: (usize, usize)) -> FlowField {
    let mut out = FlowField::zeros(width, height);
    resample_flow_into(flow, width, height, units, &mut out.data);
    out
}

/// [`resample_flow`] into `out` (interleaved (u, v), `width` x `height`).
pub fn resample_flow_into(flow: &FlowField, width: usize, height: usize, units: (usize, usize), out: &mut [f32]) {
    if flow.width == 0 || flow.height == 0 {
        out.fill(0.0);
        return;
    }
    let scale = [units.0 as f32 / flow.width as f32, units.1 as f32 / flow.height as f32];
    resize_bilinear_into(&flow.data, (flow.width, flow.height), scale, (width, height), out);
}

/// A coarse flow field on a finer grid, vectors scaled with it.
pub fn upscale_flow(flow: &FlowField, width: usize, height: usize) -> FlowField {
    resample_flow(flow, width, height, (width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_matches_half_pixel_geometry() {
        // 2 -> 4 pixels: destination centres map to -0.25, 0.25, 0.75, 1.25.
        let out = resize_bilinear::<1>(&[0.0, 4.0], 2, 1, 4, 1);
        assert_eq!(out, vec![0.0, 1.0, 3.0, 4.0]);
        // Downscale 4 -> 2: centres at 0.5 and 2.5.
        let out = resize_bilinear::<1>(&[0.0, 2.0, 4.0, 6.0], 4, 1, 2, 1);
        assert_eq!(out, vec![1.0, 5.0]);
    }

    #[test]
    fn flow_resize_keeps_values_and_upscale_scales_them() {
        let flow = FlowField::new(1, 1, vec![1.5, -2.0]);
        let same = resize_flow(&flow, 3, 2);
        assert!(same.data.chunks(2).all(|uv| uv == [1.5, -2.0]));
        let up = upscale_flow(&flow, 2, 2);
        assert!(up.data.chunks(2).all(|uv| uv == [3.0, -4.0]));
        // A 1x1 field of a 4x2 grid, shown at 3x3, in grid pixels.
        let grid = resample_flow(&flow, 3, 3, (4, 2));
        assert!(grid.data.chunks(2).all(|uv| uv == [6.0, -4.0]));
    }

    #[test]
    fn half_averages_blocks() {
        let img = GrayImage::new(3, 2, vec![0.0, 4.0, 9.0, 8.0, 4.0, 9.0]);
        assert_eq!(half(&img).data, vec![4.0]);
    }
}

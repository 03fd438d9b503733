//! One level of the image pyramid: both images at 1/2^k size and the
//! gradients of the first (inverse search only differentiates the template).

use crate::image::GrayImage;
use crate::resize::half;
use rayon::prelude::*;

pub struct Level {
    pub i0: GrayImage,
    pub i1: GrayImage,
    pub gx: Vec<f32>,
    pub gy: Vec<f32>,
}

impl Level {
    pub fn new(i0: GrayImage, i1: GrayImage) -> Level {
        let (gx, gy) = sobel(&i0);
        Level { i0, i1, gx, gy }
    }
}

/// Image derivatives by the 3x3 Sobel operator divided by 8 (so they are in
/// intensity per pixel), border pixels replicated.
pub fn sobel(img: &GrayImage) -> (Vec<f32>, Vec<f32>) {
    let (w, h) = (img.width, img.height);
    let mut gx = vec![0.0f32; w * h];
    let mut gy = vec![0.0f32; w * h];
    gx.par_chunks_mut(w).zip(gy.par_chunks_mut(w)).enumerate().for_each(|(y, (rx, ry))| {
        let up = &img.data[y.saturating_sub(1) * w..][..w];
        let mid = &img.data[y * w..][..w];
        let down = &img.data[(y + 1).min(h - 1) * w..][..w];
        for x in 0..w {
            let (l, r) = (x.saturating_sub(1), (x + 1).min(w - 1));
            rx[x] = ((up[r] - up[l]) + 2.0 * (mid[r] - mid[l]) + (down[r] - down[l])) / 8.0;
            ry[x] = ((down[l] - up[l]) + 2.0 * (down[x] - up[x]) + (down[r] - up[r])) / 8.0;
        }
    });
    (gx, gy)
}

/// Images of both frames at scales 0..=coarsest, finest first.
pub fn pyramid(i0: GrayImage, i1: GrayImage, coarsest: usize) -> Vec<(GrayImage, GrayImage)> {
    let mut levels = vec![(i0, i1)];
    for _ in 0..coarsest {
        let (a, b) = levels.last().map(|(a, b)| (half(a), half(b))).expect("pyramid starts non-empty");
        levels.push((a, b));
    }
    levels
}

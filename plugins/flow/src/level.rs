//! The image pyramid: a frame at 1/2^k of the flow grid for the levels the
//! search visits, with the gradients inverse search differentiates, built
//! once per frame however many pairs the frame is part of.

use crate::image::GrayImage;
use crate::resize::half;
use crate::rows::min_rows;
use rayon::prelude::*;

/// One frame at one pyramid level, with its derivatives.
pub struct LevelImage {
    pub image: GrayImage,
    pub gx: Vec<f32>,
    pub gy: Vec<f32>,
}

impl LevelImage {
    fn new(image: GrayImage) -> LevelImage {
        let (gx, gy) = sobel(&image);
        LevelImage { image, gx, gy }
    }
}

/// One level of a pair: both images at the same size and the gradients of
/// the first (inverse search only differentiates the template).
pub struct Level<'a> {
    pub i0: &'a GrayImage,
    pub i1: &'a GrayImage,
    pub gx: &'a [f32],
    pub gy: &'a [f32],
}

impl<'a> Level<'a> {
    pub fn new(first: &'a LevelImage, second: &'a LevelImage) -> Level<'a> {
        Level { i0: &first.image, i1: &second.image, gx: &first.gx, gy: &first.gy }
    }
}

/// Image derivatives by the 3x3 Sobel operator divided by 8 (so they are in
/// intensity per pixel), border pixels replicated.
pub fn sobel(img: &GrayImage) -> (Vec<f32>, Vec<f32>) {
    let (w, h) = (img.width, img.height);
    let mut gx = vec![0.0f32; w * h];
    let mut gy = vec![0.0f32; w * h];
    gx.par_chunks_mut(w).zip(gy.par_chunks_mut(w)).enumerate().with_min_len(min_rows(w)).for_each(|(y, (rx, ry))| {
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

/// Levels `finest..=coarsest` of `image` (level 0), finest first; the finer
/// levels are only made to be halved.
pub fn pyramid(image: GrayImage, finest: usize, coarsest: usize) -> Vec<LevelImage> {
    let mut levels = Vec::with_capacity(coarsest + 1 - finest.min(coarsest));
    let mut current = image;
    for scale in 0..=coarsest {
        let next = (scale < coarsest).then(|| half(&current));
        if scale >= finest {
            levels.push(LevelImage::new(current));
        }
        match next {
            Some(next) => current = next,
            None => break,
        }
    }
    levels
}

//! The cube builder (method.md 2): for every box of frame t, the same box
//! cropped from frames t-c..t+c (clamped inside the video), resized to S x S
//! with bilinear interpolation, stacked frame-major into 3(2c+1) u8
//! channels; the flow of the same frames into 2(2c+1) f32 channels; and the
//! spatial band of the box centre.

use crate::extract::VideoProducts;
use vigil_stage_api::{Batch, FrameId, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CubeConfig {
    pub context: usize,
    pub size: usize,
    pub h_block: usize,
    pub w_block: usize,
}

impl From<&crate::pipeline::CubeSpec> for CubeConfig {
    fn from(spec: &crate::pipeline::CubeSpec) -> CubeConfig {
        CubeConfig {
            context: spec.context as usize,
            size: spec.size as usize,
            h_block: spec.h_block as usize,
            w_block: spec.w_block as usize,
        }
    }
}

/// Which box a cube was cut from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CubeRecord {
    pub id: FrameId,
    /// x1, y1, x2, y2 in pixels of the frame.
    pub bbox: [f32; 4],
    pub band: u32,
    /// Whether the cube's video is scored (`data.test`) or only trained on.
    pub scored: bool,
}

pub struct CubeSet {
    pub config: CubeConfig,
    pub appearance: Vec<u8>,
    pub motion: Vec<f32>,
    pub records: Vec<CubeRecord>,
    /// Boxes whose crop was empty after rounding, per video.
    pub skipped: usize,
}

/// Bilinear resize of a `src_w` x `src_h` crop with `channels` interleaved
/// values per pixel to `size` x `size`, with OpenCV's half-pixel centres.
/// `sample(x, y, c)` reads the source.
fn resize_bilinear(src_w: usize, src_h: usize, size: usize, mut sample: impl FnMut(usize, usize) -> f32, out: &mut [f32]) {
    let (sx, sy) = (src_w as f32 / size as f32, src_h as f32 / size as f32);
    for oy in 0..size {
        let fy = ((oy as f32 + 0.5) * sy - 0.5).max(0.0);
        let y0 = (fy as usize).min(src_h - 1);
        let y1 = (y0 + 1).min(src_h - 1);
        let wy = (fy - y0 as f32).min(1.0);
        for ox in 0..size {
            let fx = ((ox as f32 + 0.5) * sx - 0.5).max(0.0);
            let x0 = (fx as usize).min(src_w - 1);
            let x1 = (x0 + 1).min(src_w - 1);
            let wx = (fx - x0 as f32).min(1.0);
            let top = sample(x0, y0) * (1.0 - wx) + sample(x1, y0) * wx;
            let bottom = sample(x0, y1) * (1.0 - wx) + sample(x1, y1) * wx;
            out[oy * size + ox] = top * (1.0 - wy) + bottom * wy;
        }
    }
}

impl CubeSet {
    pub fn new(config: CubeConfig) -> CubeSet {
        CubeSet { config, appearance: Vec::new(), motion: Vec::new(), records: Vec::new(), skipped: 0 }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn depth(&self) -> usize {
        2 * self.config.context + 1
    }

    /// Cuts the cubes of every box of one video.
    pub fn add_video(&mut self, video: &VideoProducts, scored: bool) {
        let (w, h, s, depth) = (video.width, video.height, self.config.size, self.depth());
        let mut plane = vec![0f32; s * s];
        for b in &video.boxes {
            let t = b[0] as usize;
            // ceil-ed coordinates, exclusive ends, clipped to the frame (method.md 2.1)
            let x1 = (b[1].max(0.0).ceil() as usize).min(w);
            let y1 = (b[2].max(0.0).ceil() as usize).min(h);
            let x2 = (b[3].max(0.0).ceil() as usize).min(w);
            let y2 = (b[4].max(0.0).ceil() as usize).min(h);
            if x2 <= x1 || y2 <= y1 {
                self.skipped += 1;
                continue;
            }
            let (cw, ch) = (x2 - x1, y2 - y1);
            for k in 0..depth {
                let frame = (t + k).saturating_sub(self.config.context).min(video.count - 1);
                let pixels = &video.frames[frame * h * w * 3..(frame + 1) * h * w * 3];
                for c in 0..3 {
                    resize_bilinear(cw, ch, s, |x, y| pixels[((y1 + y) * w + x1 + x) * 3 + c] as f32, &mut plane);
                    self.appearance.extend(plane.iter().map(|v| v.round().clamp(0.0, 255.0) as u8));
                }
                if let Some(flows) = &video.flows {
                    let field = &flows[frame * h * w * 2..(frame + 1) * h * w * 2];
                    for c in 0..2 {
                        resize_bilinear(cw, ch, s, |x, y| field[((y1 + y) * w + x1 + x) * 2 + c], &mut plane);
                        self.motion.extend_from_slice(&plane);
                    }
                }
            }
            let band_h = h as f32 / self.config.h_block as f32;
            let band_w = w as f32 / self.config.w_block as f32;
            let row = (((b[2] + b[4]) / 2.0 / band_h) as usize).min(self.config.h_block - 1);
            let col = (((b[1] + b[3]) / 2.0 / band_w) as usize).min(self.config.w_block - 1);
            self.records.push(CubeRecord {
                id: FrameId { video: video.video, frame: t as u32 },
                bbox: [b[1], b[2], b[3], b[4]],
                band: (row * self.config.w_block + col) as u32,
                scored,
            });
        }
    }

    pub fn bands(&self) -> Vec<u32> {
        self.records.iter().map(|r| r.band).collect()
    }

    /// The reconstructor's training tensors (copies, one set per consumer).
    pub fn batch(&self, with_motion: bool) -> Batch {
        let (m, d, s) = (self.len(), self.depth(), self.config.size);
        let ids = self.records.iter().map(|r| r.id).collect();
        let mut batch = Batch::new(ids)
            .with("appearance", Tensor::from_vec(self.appearance.clone(), &[m, 3 * d, s, s]))
            .with("band", Tensor::from_vec(self.bands(), &[m]));
        if with_motion && self.motion.len() == m * 2 * d * s * s {
            batch.insert("motion", Tensor::from_vec(self.motion.clone(), &[m, 2 * d, s, s]));
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(count: usize, h: usize, w: usize, boxes: Vec<[f32; 7]>) -> VideoProducts {
        // pixel value = 10 * frame + x, same in all channels
        let mut frames = Vec::new();
        for t in 0..count {
            for _y in 0..h {
                for x in 0..w {
                    frames.extend([(10 * t + x) as u8; 3]);
                }
            }
        }
        let flows = Some((0..count * h * w * 2).map(|i| (i / (h * w * 2)) as f32).collect());
        VideoProducts { video: 3, frames, count, height: h, width: w, flows, boxes }
    }

    #[test]
    fn identity_sized_crops_are_copied_and_borders_clamp() {
        let config = CubeConfig { context: 1, size: 2, h_block: 2, w_block: 1 };
        let mut set = CubeSet::new(config);
        // a 2x2 box at x 1..3, y 0..2 of frame 0 of a 3-frame video
        set.add_video(&video(3, 4, 4, vec![[0.0, 1.0, 0.0, 3.0, 2.0, 1.0, -1.0]]), true);
        assert_eq!(set.len(), 1);
        // frames used: 0 (clamped from -1), 0, 1; channel 0 row 0 = x 1, 2
        let a = &set.appearance;
        assert_eq!(&a[0..4], &[1, 2, 1, 2]);
        assert_eq!(&a[12..16], &[1, 2, 1, 2]);
        assert_eq!(&a[24..28], &[11, 12, 11, 12]);
        assert_eq!(set.motion.len(), 3 * 2 * 4);
        assert_eq!(set.motion[2 * 2 * 4], 1.0, "third frame's flow is frame 1's");
        assert_eq!(set.records[0].band, 0);
        assert_eq!(set.records[0].id, FrameId { video: 3, frame: 0 });
    }

    #[test]
    fn bands_follow_the_box_centre_and_empty_boxes_are_skipped() {
        let config = CubeConfig { context: 0, size: 2, h_block: 2, w_block: 1 };
        let mut set = CubeSet::new(config);
        set.add_video(&video(1, 4, 4, vec![[0.0, 0.0, 2.5, 2.0, 4.0, 1.0, 0.0], [0.0, 1.2, 1.0, 1.9, 1.0, 1.0, 0.0]]), false);
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped, 1);
        assert_eq!(set.records[0].band, 1);
        let batch = set.batch(true);
        assert_eq!(batch.get("appearance").unwrap().shape(), vec![1, 3, 2, 2]);
        assert_eq!(batch.get("motion").unwrap().shape(), vec![1, 2, 2, 2]);
    }

    #[test]
    fn downscaling_averages_like_opencv() {
        let mut out = [0f32; 1];
        // 2x2 -> 1x1 with half-pixel centres samples the middle: the mean
        resize_bilinear(2, 2, 1, |x, y| (x + 2 * y) as f32, &mut out);
        assert!((out[0] - 1.5).abs() < 1e-6);
    }
}

//! UCSD Ped2 test set for localizer quality checks: frames, pixel masks, and
//! the share of anomalous frames where some box overlaps the anomaly.
//! Shared by the tests and the `ped2_localizers` example.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use vigil_stage_api::{names, Batch, FrameId, Tensor};

pub const WIDTH: usize = 360;
pub const HEIGHT: usize = 240;

pub struct Ped2 {
    frames: PathBuf,
    masks: PathBuf,
}

impl Ped2 {
    /// `ped2` is the data folder's `ped2` directory.
    pub fn new(ped2: &Path) -> Ped2 {
        Ped2 { frames: ped2.join("testing/frames"), masks: ped2.join("UCSDped2/Test") }
    }

    /// Test videos as (index 1.., frame count).
    pub fn videos(&self) -> Vec<(u32, u32)> {
        let mut videos: Vec<(u32, u32)> = std::fs::read_dir(&self.frames)
            .expect("read Ped2 frames folder")
            .filter_map(|e| {
                let e = e.ok()?;
                let index = e.file_name().to_str()?.parse().ok()?;
                Some((index, std::fs::read_dir(e.path()).ok()?.count() as u32))
            })
            .collect();
        videos.sort();
        videos
    }

    /// RGB frame `frame` (0-based) of video `video` (1-based).
    pub fn frame(&self, video: u32, frame: u32) -> Vec<u8> {
        let path = self.frames.join(format!("{video:02}/{frame:03}.jpg"));
        let image = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
        assert_eq!(image.dimensions(), (WIDTH as u32, HEIGHT as u32), "{}", path.display());
        image.into_raw()
    }

    /// Anomaly mask of frame `frame` (0-based; mask files are 1-based and
    /// named `NNN.bmp`, or `frameNNN.bmp` in videos 06, 09 and 12).
    pub fn mask(&self, video: u32, frame: u32) -> Vec<bool> {
        let folder = self.masks.join(format!("Test{video:03}_gt"));
        let plain = folder.join(format!("{:03}.bmp", frame + 1));
        let path = if plain.exists() { plain } else { folder.join(format!("frame{:03}.bmp", frame + 1)) };
        let image = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_luma8();
        image.into_raw().into_iter().map(|v| v != 0).collect()
    }

    /// A batch of the given frames of one video.
    pub fn batch(&self, video: u32, frames: &[u32]) -> Batch {
        let data: Vec<u8> = frames.iter().flat_map(|&f| self.frame(video, f)).collect();
        let ids = frames.iter().map(|&frame| FrameId { video, frame }).collect();
        Batch::new(ids).with(names::FRAMES, Tensor::from_vec(data, &[frames.len(), HEIGHT, WIDTH, 3]))
    }
}

/// The boxes of batch row `row` from a `boxes` [M, 7] tensor, as (x1, y1, x2, y2, class).
pub fn boxes_of_row(boxes: &Tensor, row: usize) -> Vec<[f32; 5]> {
    let data = boxes.as_slice::<f32>().expect("boxes are f32");
    data.chunks_exact(7).filter(|b| b[0] as usize == row).map(|b| [b[1], b[2], b[3], b[4], b[6]]).collect()
}

/// Whether a box covers some mask pixel: pixel (x, y) is covered when its
/// square [x, x+1) x [y, y+1) meets the box.
pub fn overlaps(b: &[f32; 5], mask: &[bool]) -> bool {
    let x0 = (b[0].floor().max(0.0) as usize).min(WIDTH);
    let y0 = (b[1].floor().max(0.0) as usize).min(HEIGHT);
    let x1 = (b[2].ceil().max(0.0) as usize).min(WIDTH);
    let y1 = (b[3].ceil().max(0.0) as usize).min(HEIGHT);
    (y0..y1).any(|y| (x0..x1).any(|x| mask[y * WIDTH + x]))
}

/// Running tally over frames.
#[derive(Default, Debug, Clone, Copy)]
pub struct Coverage {
    pub frames: usize,
    pub boxes: usize,
    pub anomalous: usize,
    pub covered: usize,
}

impl Coverage {
    pub fn add(&mut self, boxes: &[[f32; 5]], mask: &[bool]) {
        self.frames += 1;
        self.boxes += boxes.len();
        if mask.iter().any(|&m| m) {
            self.anomalous += 1;
            if boxes.iter().any(|b| overlaps(b, mask)) {
                self.covered += 1;
            }
        }
    }

    pub fn share(&self) -> f64 {
        self.covered as f64 / self.anomalous.max(1) as f64
    }

    pub fn boxes_per_frame(&self) -> f64 {
        self.boxes as f64 / self.frames.max(1) as f64
    }
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1}% of anomalous frames covered ({} of {}), {:.1} boxes/frame over {} frames",
            100.0 * self.share(),
            self.covered,
            self.anomalous,
            self.boxes_per_frame(),
            self.frames
        )
    }
}

//! `framediff`: a localizer that needs no optical flow. A pixel is
//! foreground when its grey level changed by more than `threshold` since the
//! previous frame of the same video; each 8-connected blob of foreground
//! with at least `min_area` pixels becomes a box, grown by `grow` pixels.
//!
//! It is a drop-in replacement for the stock `motion` localizer: change
//! `plugin = "motion"` to `plugin = "framediff"` in a pipeline.

use vigil_stage_api::settings::{at_least, Settings};
use vigil_stage_api::{
    export_plugin, names, settings, stage_info, Batch, DType, Localizer, Options, RResult, StageContext, StageError, StageFactory,
    StageInfo, StageInstance, StageIo, StageKind, Tensor, TensorSpec,
};

settings! {
    /// The stage's options: type, default, documentation and check, once.
    pub struct FrameDiffSettings {
        /// grey-level change (0-255) that makes a pixel foreground
        pub threshold: u8 = 20,
        /// smallest blob, in pixels, that becomes a box
        pub min_area: usize = 60 => at_least(1),
        /// pixels added on each side of a box
        pub grow: u32 = 2,
    }
}

struct FrameDiff {
    settings: FrameDiffSettings,
    /// Grey levels of the last frame seen, with its video, so that the first
    /// frame of a batch can be compared with the end of the previous batch.
    previous: Option<(u32, Vec<u8>)>,
}

impl StageFactory for FrameDiff {
    fn info() -> StageInfo {
        stage_info! {
            name: "framediff",
            kind: StageKind::Localizer,
            description: "Boxes around pixels that changed since the previous frame (example third-party plugin)",
            options: FrameDiffSettings::specs(),
        }
    }

    fn create(options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        let stage = FrameDiff { settings: FrameDiffSettings::from_options(options)?, previous: None };
        let io = StageIo::new(
            vec![TensorSpec::new(names::FRAMES, DType::U8, 4, "RGB frames [N, H, W, 3]")],
            vec![TensorSpec::new(names::BOXES, DType::F32, 2, "[M, 7]: row, x1, y1, x2, y2, score, class (-1)")],
        );
        Ok(StageInstance::localizer(stage, io))
    }
}

fn grey(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3).map(|p| ((p[0] as u32 * 77 + p[1] as u32 * 150 + p[2] as u32 * 29) >> 8) as u8).collect()
}

/// Bounding boxes (x1, y1, x2, y2 inclusive) and pixel counts of the
/// 8-connected components of `mask`.
fn components(mask: &[bool], width: usize, height: usize) -> Vec<([usize; 4], usize)> {
    let mut seen = vec![false; mask.len()];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut bbox, mut count) = ([width, height, 0, 0], 0);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            count += 1;
            bbox = [bbox[0].min(x), bbox[1].min(y), bbox[2].max(x), bbox[3].max(y)];
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        continue;
                    }
                    let j = ny as usize * width + nx as usize;
                    if mask[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        found.push((bbox, count));
    }
    found
}

impl FrameDiff {
    fn boxes(&mut self, batch: &Batch) -> Result<Vec<f32>, StageError> {
        let frames = batch.require(names::FRAMES)?;
        let shape = frames.shape();
        if shape.len() != 4 || shape[3] != 3 {
            return Err(StageError::invalid(format!("`frames` must be [N, H, W, 3], found {shape:?}")));
        }
        let (height, width) = (shape[1], shape[2]);
        let pixels = frames.as_slice::<u8>()?;
        let mut boxes = Vec::new();
        for (row, rgb) in pixels.chunks_exact(height * width * 3).enumerate() {
            let video = batch.ids.get(row).map(|id| id.video).unwrap_or(0);
            let current = grey(rgb);
            if let Some((prev_video, prev)) = &self.previous {
                if *prev_video == video && prev.len() == current.len() {
                    let mask: Vec<bool> = current.iter().zip(prev).map(|(a, b)| a.abs_diff(*b) > self.settings.threshold).collect();
                    for (b, count) in components(&mask, width, height) {
                        if count < self.settings.min_area {
                            continue;
                        }
                        let g = self.settings.grow as f32;
                        boxes.extend_from_slice(&[
                            row as f32,
                            (b[0] as f32 - g).max(0.0),
                            (b[1] as f32 - g).max(0.0),
                            (b[2] as f32 + 1.0 + g).min(width as f32),
                            (b[3] as f32 + 1.0 + g).min(height as f32),
                            1.0,
                            -1.0,
                        ]);
                    }
                }
            }
            self.previous = Some((video, current));
        }
        Ok(boxes)
    }
}

impl Localizer for FrameDiff {
    fn process(&mut self, mut batch: Batch) -> RResult<Batch, StageError> {
        match self.boxes(&batch) {
            Ok(boxes) => {
                let count = boxes.len() / 7;
                batch.insert(names::BOXES, Tensor::from_vec(boxes, &[count, 7]));
                RResult::ROk(batch)
            }
            Err(e) => RResult::RErr(e),
        }
    }
}

export_plugin!(FrameDiff);

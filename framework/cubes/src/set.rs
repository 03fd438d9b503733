//! [`CubeSet`]: cubes of many videos, appended video by video, handed over
//! as reconstructor tensors; in memory up to a budget, then on disk.

use crate::cube::{context_frames, crop_rect, stack_crops, FrameBox};
use crate::store::Store;
use crate::CubeError;
use rayon::prelude::*;
use std::path::PathBuf;
use vigil_stage_api::{f16, names, Batch, FrameId, Tensor};

/// Boxes turned into cubes at once (bounds the memory of one step).
const CHUNK: usize = 256;

#[derive(Clone, Debug, PartialEq)]
pub struct CubeConfig {
    /// Frames on each side of the box's frame (D = 2 * context + 1).
    pub context: usize,
    /// Side S of the resized crops.
    pub size: usize,
    /// Spatial bands: rows and columns of the frame grid (docs/method.md 4.3).
    pub h_block: u32,
    pub w_block: u32,
    /// Bytes of cube data held in memory; beyond it the set moves to
    /// memory-mapped temporary files in `spill_dir`.
    pub memory_budget: usize,
    pub spill_dir: PathBuf,
}

impl Default for CubeConfig {
    fn default() -> CubeConfig {
        CubeConfig { context: 2, size: 32, h_block: 1, w_block: 1, memory_budget: 4 << 30, spill_dir: std::env::temp_dir() }
    }
}

impl CubeConfig {
    pub fn depth(&self) -> usize {
        2 * self.context + 1
    }

    /// The band of a box: the grid cell holding its centre, row-major.
    pub fn band(&self, b: &FrameBox, width: usize, height: usize) -> u32 {
        let cell = |centre: f32, extent: usize, blocks: u32| {
            let index = (centre / (extent as f32 / blocks as f32)).floor();
            index.clamp(0.0, (blocks - 1) as f32) as u32
        };
        let row = cell((b.y1 + b.y2) / 2.0, height, self.h_block);
        let col = cell((b.x1 + b.x2) / 2.0, width, self.w_block);
        row * self.w_block + col
    }
}

/// What each cube came from, in cube order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CubeRecord {
    pub video: u32,
    pub frame_box: FrameBox,
    pub band: u32,
}

impl CubeRecord {
    pub fn id(&self) -> FrameId {
        FrameId { video: self.video, frame: self.frame_box.frame }
    }
}

/// Cubes added and boxes skipped (empty crop or non-finite coordinates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AddReport {
    pub added: usize,
    pub skipped: usize,
}

/// The reconstructor's inputs: `appearance` u8 [M, 3D, S, S], `motion` f16
/// [M, 2D, S, S] (when flows were given), `band` u32 [M]. Flow is stored as
/// f16, half the bytes of f32: its rounding (a relative 2^-11, 0.005 px at
/// 10 px) is far below the flow's own error (docs/benchmarks.md, "Flow cubes
/// as f16").
pub struct CubeTensors {
    pub appearance: Tensor,
    pub motion: Option<Tensor>,
    pub band: Tensor,
    pub records: Vec<CubeRecord>,
}

impl CubeTensors {
    /// As a batch (one row id per cube), plus the records.
    pub fn into_batch(self) -> (Batch, Vec<CubeRecord>) {
        let ids = self.records.iter().map(CubeRecord::id).collect();
        let mut batch = Batch::new(ids).with(names::APPEARANCE, self.appearance).with(names::BAND, self.band);
        if let Some(motion) = self.motion {
            batch.insert(names::MOTION, motion);
        }
        (batch, self.records)
    }
}

pub struct CubeSet {
    config: CubeConfig,
    appearance: Store<u8>,
    motion: Store<f16>,
    /// Whether videos come with flows; fixed by the first video added.
    with_motion: Option<bool>,
    records: Vec<CubeRecord>,
    skipped: usize,
}

impl CubeSet {
    pub fn new(config: CubeConfig) -> Result<CubeSet, CubeError> {
        if config.size == 0 || config.h_block == 0 || config.w_block == 0 {
            return Err(CubeError::Invalid(format!(
                "cube size, h_block and w_block must be at least 1, found {}, {} and {}",
                config.size, config.h_block, config.w_block
            )));
        }
        Ok(CubeSet { config, appearance: Store::new(), motion: Store::new(), with_motion: None, records: Vec::new(), skipped: 0 })
    }

    pub fn config(&self) -> &CubeConfig {
        &self.config
    }
    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    pub fn records(&self) -> &[CubeRecord] {
        &self.records
    }
    /// Boxes skipped so far (empty crop or non-finite coordinates).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
    /// Whether the cubes have moved to disk.
    pub fn is_spilled(&self) -> bool {
        self.appearance.is_spilled()
    }
    /// Bytes of the cubes (pixels and flow), in memory or on disk.
    pub fn bytes(&self) -> usize {
        self.appearance.bytes() + self.motion.bytes()
    }

    /// Adds the cubes of the boxes of one video. `frames` u8 [T, H, W, 3];
    /// `flows` f32 [T, H, W, 2], the flow of each frame (see
    /// [`crate::per_frame_flow`]), for all videos of a set or for none.
    pub fn add_video(
        &mut self,
        video: u32,
        frames: &[u8],
        flows: Option<&[f32]>,
        (t, h, w): (usize, usize, usize),
        boxes: &[FrameBox],
    ) -> Result<AddReport, CubeError> {
        self.check_video(video, frames, flows, (t, h, w), boxes)?;
        let (depth, size) = (self.config.depth(), self.config.size);
        let appearance_len = 3 * depth * size * size;
        let motion_len = if flows.is_some() { 2 * depth * size * size } else { 0 };
        let mut report = AddReport::default();
        for chunk in boxes.chunks(CHUNK) {
            let cubes: Vec<Option<(Vec<u8>, Vec<f16>)>> = chunk
                .par_iter()
                .map(|b| {
                    let rect = crop_rect(b, w, h)?;
                    let context = || context_frames(b.frame as usize, self.config.context, t);
                    let mut appearance = vec![0u8; appearance_len];
                    stack_crops(frames, (h, w, 3), context(), rect, size, &mut appearance, |v| v.round().clamp(0.0, 255.0) as u8);
                    let mut motion = vec![f16::ZERO; motion_len];
                    if let Some(flows) = flows {
                        stack_crops(flows, (h, w, 2), context(), rect, size, &mut motion, f16::from_f32);
                    }
                    Some((appearance, motion))
                })
                .collect();
            for (b, cube) in chunk.iter().zip(cubes) {
                let Some((appearance, motion)) = cube else {
                    report.skipped += 1;
                    continue;
                };
                self.appearance.extend(&appearance).map_err(|e| self.spill_error(e))?;
                self.motion.extend(&motion).map_err(|e| self.spill_error(e))?;
                self.records.push(CubeRecord { video, frame_box: *b, band: self.config.band(b, w, h) });
                report.added += 1;
            }
            if !self.is_spilled() && self.appearance.bytes_in_memory() + self.motion.bytes_in_memory() > self.config.memory_budget {
                self.appearance.spill(&self.config.spill_dir).map_err(|e| self.spill_error(e))?;
                self.motion.spill(&self.config.spill_dir).map_err(|e| self.spill_error(e))?;
            }
        }
        self.skipped += report.skipped;
        Ok(report)
    }

    fn check_video(
        &mut self,
        video: u32,
        frames: &[u8],
        flows: Option<&[f32]>,
        (t, h, w): (usize, usize, usize),
        boxes: &[FrameBox],
    ) -> Result<(), CubeError> {
        let invalid = |m: String| Err(CubeError::Invalid(format!("video {video}: {m}")));
        if t == 0 || h == 0 || w == 0 {
            return invalid(format!("expected at least one frame of at least 1x1 pixels, found {t} frames of {w}x{h}"));
        }
        if frames.len() != t * h * w * 3 {
            return invalid(format!("frames: expected u8 [{t}, {h}, {w}, 3] = {} values, found {}", t * h * w * 3, frames.len()));
        }
        if let Some(flows) = flows {
            if flows.len() != t * h * w * 2 {
                return invalid(format!("flows: expected f32 [{t}, {h}, {w}, 2] = {} values, found {}", t * h * w * 2, flows.len()));
            }
        }
        match self.with_motion {
            Some(with) if with != flows.is_some() => {
                return invalid(format!(
                    "flows must be given for every video or for none; earlier videos came {} them",
                    if with { "with" } else { "without" }
                ))
            }
            _ => self.with_motion = Some(flows.is_some()),
        }
        if let Some(b) = boxes.iter().find(|b| b.frame as usize >= t) {
            return invalid(format!("a box is on frame {}, but the video has {t} frames", b.frame));
        }
        Ok(())
    }

    /// An I/O error of the stores: only spilled cubes touch the disk.
    fn spill_error(&self, source: std::io::Error) -> CubeError {
        CubeError::Spill { dir: self.config.spill_dir.clone(), error: source }
    }

    /// Hands the cubes over as tensors, without copying them.
    pub fn into_tensors(self) -> Result<CubeTensors, CubeError> {
        let (m, d, s) = (self.records.len(), self.config.depth(), self.config.size);
        let spill_error = |source| CubeError::Spill { dir: self.config.spill_dir.clone(), error: source };
        let appearance = self.appearance.into_tensor(&[m, 3 * d, s, s]).map_err(spill_error)?;
        let motion = match self.with_motion {
            Some(true) => Some(self.motion.into_tensor(&[m, 2 * d, s, s]).map_err(spill_error)?),
            _ => None,
        };
        let band = Tensor::from_vec(self.records.iter().map(|r| r.band).collect::<Vec<u32>>(), &[m]);
        Ok(CubeTensors { appearance, motion, band, records: self.records })
    }
}

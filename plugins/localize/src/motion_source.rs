//! The foreground map of each frame of a batch, from the batch's `flow`
//! or from frame differences, plus the options both localizers share to
//! choose and tune it.

use crate::batch_io::{flow_spec, Frames};
use crate::completion::MotionBoxRules;
use crate::components::BinaryMap;
use crate::foreground::{difference_foreground, flow_foreground, SmoothedGrey};
use crate::rows::on_cores;
use vigil_stage_api::settings::at_least;
use vigil_stage_api::{Batch, FrameId, StageError, TensorSpec};

vigil_stage_api::choice! {
    /// What tells motion.
    pub enum MotionSourceKind {
        /// The pipeline's `flow` tensor.
        Flow = "flow",
        /// The difference to the previous frame.
        FrameDifference = "frame_difference",
    }
}

vigil_stage_api::settings! {
    /// Options that choose and tune the foreground map and turn its blobs
    /// into boxes (docs/method.md 2.4; defaults of 9.1, Ped2 column). Both
    /// localizers take them.
    pub struct MotionSettings {
        /// what tells motion: the pipeline's `flow` (needs a flow stage), or the difference to the
        /// previous frame (no flow stage needed)
        pub motion_source: MotionSourceKind = MotionSourceKind::Flow,
        /// a pixel moves when u^2 + v^2 > this (512x384-grid pixels)
        pub flow_threshold: f32 = 1.0,
        /// with motion_source = "frame_difference": a pixel moves when its 3x3-blurred grey level
        /// changes by more than this (0..255)
        pub difference_threshold: f32 = 18.0,
        /// smallest box kept: (w + 1) * (h + 1) > this for motion boxes, area >= this for detections
        pub min_area: f32 = 100.0,
        /// motion boxes need w/h and h/w below this
        pub max_aspect: f32 = 10.0,
        /// pixels added on each side of a motion box, and of a detection before it is cleared from the motion map
        pub box_growth: i64 = 2 => at_least(0),
    }
}

impl MotionSettings {
    /// How blobs become boxes.
    pub fn box_rules(&self) -> MotionBoxRules {
        MotionBoxRules { growth: self.box_growth, min_area: self.min_area, max_aspect: self.max_aspect }
    }

    /// The foreground map's source, with no frame seen yet.
    pub fn source(&self) -> MotionSource {
        match self.motion_source {
            MotionSourceKind::Flow => MotionSource::Flow { threshold: self.flow_threshold },
            MotionSourceKind::FrameDifference => MotionSource::FrameDifference { threshold: self.difference_threshold, last: None },
        }
    }
}

/// Where the foreground map comes from.
pub enum MotionSource {
    Flow {
        threshold: f32,
    },
    /// Remembers the last frame it saw, so the first frame of the next
    /// batch of the same video has its predecessor.
    FrameDifference {
        threshold: f32,
        last: Option<(FrameId, SmoothedGrey)>,
    },
}

impl MotionSource {
    /// The input tensors this source needs beyond `frames`.
    pub fn inputs(&self) -> Vec<TensorSpec> {
        match self {
            MotionSource::Flow { .. } => vec![flow_spec()],
            MotionSource::FrameDifference { .. } => vec![],
        }
    }

    /// One foreground map per batch row.
    pub fn foreground(&mut self, batch: &Batch, frames: &Frames<'_>) -> Result<Vec<BinaryMap>, StageError> {
        let (w, h) = (frames.width, frames.height);
        match self {
            MotionSource::Flow { threshold } => {
                let flow = frames
                    .flow(batch)
                    .map_err(|e| StageError::invalid(format!("{e} (set motion_source = \"frame_difference\" without a flow stage)")))?;
                let threshold = *threshold;
                on_cores(frames.count, |row| Ok(flow_foreground(flow.field(row), w, h, threshold)))
            }
            MotionSource::FrameDifference { threshold, last } => {
                let grey = on_cores(frames.count, |row| Ok(SmoothedGrey::of(frames.frame(row))))?;
                let (ids, threshold, last_batch) = (&batch.ids, *threshold, last.as_ref());
                let maps = on_cores(frames.count, |row| {
                    // Compare with the previous frame (from this batch or the
                    // last one); a video's first frame uses the next instead.
                    let previous_in_batch = (row > 0 && is_successor(ids[row - 1], ids[row])).then(|| &grey[row - 1]);
                    let previous_batch = last_batch.filter(|(l, _)| row == 0 && is_successor(*l, ids[row])).map(|(_, g)| g);
                    let next_in_batch = (row + 1 < frames.count && is_successor(ids[row], ids[row + 1])).then(|| &grey[row + 1]);
                    Ok(match previous_in_batch.or(previous_batch).or(next_in_batch) {
                        Some(neighbour) => difference_foreground(&grey[row], neighbour, threshold),
                        None => BinaryMap::new(w, h), // a lone frame: nothing moves
                    })
                })?;
                *last = ids.last().copied().zip(grey.into_iter().last());
                Ok(maps)
            }
        }
    }
}

/// Whether `b` is the frame right after `a` in the same video.
fn is_successor(a: FrameId, b: FrameId) -> bool {
    a.video == b.video && a.frame + 1 == b.frame
}

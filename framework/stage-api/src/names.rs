//! The names of the tensors that pass between stages, declared once. A
//! stage's [`TensorSpec`]s and its reads and writes of a [`Batch`](crate::Batch)
//! use these, so that the contract between plugins and the runtime cannot
//! drift by a typo in one file.
//!
//! Along a frame's path (docs/architecture.md, "Tensor names along the
//! path"): a decoder makes [`FRAMES`], a flow stage adds [`FLOW`], a
//! localizer adds [`BOXES`]; the runtime cuts cubes into [`APPEARANCE`] and
//! [`MOTION`] with each cube's [`BAND`] for the reconstructors, and hands the
//! scorer the [`scoring_batch`]; the scorer adds [`SCORES`], [`RAW_SCORES`]
//! and [`BOX_SCORES`].

use crate::{DType, TensorSpec};

/// u8 [N, H, W, 3]: decoded RGB frames.
pub const FRAMES: &str = "frames";
/// f32 [N, H, W, 2]: optical flow from each frame to the next.
pub const FLOW: &str = "flow";
/// f32 boxes: [R, 7] rows from a localizer, [M, 5] rows in the scoring batch.
pub const BOXES: &str = "boxes";
/// u8 appearance cubes [M, frames x 3, S, S].
pub const APPEARANCE: &str = "appearance";
/// f32 motion (flow) cubes [M, frames x 2, S, S].
pub const MOTION: &str = "motion";
/// u32 [M]: the model (band) of each cube or box.
pub const BAND: &str = "band";
/// u32 [F, 2] or [1, 2]: (height, width) of each frame row.
pub const FRAME_SIZE: &str = "frame_size";
/// f32 [M]: the guiding reconstructor's per-sample errors (the refiner's input).
pub const ERRORS: &str = "errors";
/// f32 [F]: the smoothed anomaly score per frame.
pub const SCORES: &str = "scores";
/// f32 [F]: the frame score before smoothing.
pub const RAW_SCORES: &str = "raw_scores";
/// f32 [M]: the fused score per box.
pub const BOX_SCORES: &str = "box_scores";

/// The prefix of [`errors_of`].
pub const ERRORS_PREFIX: &str = "errors.";
/// The prefix of [`stats_of`].
pub const STATS_PREFIX: &str = "stats.";
/// The prefix of [`height_stats_of`].
pub const HEIGHT_STATS_PREFIX: &str = "height_stats.";

/// f32 [M]: reconstructor `id`'s error per box.
pub fn errors_of(id: &str) -> String {
    format!("{ERRORS_PREFIX}{id}")
}

/// f64 [B, 3]: (count, mean, std) of reconstructor `id`'s training errors per model.
pub fn stats_of(id: &str) -> String {
    format!("{STATS_PREFIX}{id}")
}

/// f64 [B, 4]: (count, intercept, slope, residual std) per model of the
/// least-squares line of ln(error) against ln(box height) over reconstructor
/// `id`'s training cubes ([`HeightLine`](crate::height::HeightLine)).
pub fn height_stats_of(id: &str) -> String {
    format!("{HEIGHT_STATS_PREFIX}{id}")
}

/// What the runtime hands a scorer, with errors and statistics for the
/// reconstructors `ids`: the runtime declares it as what it provides, and a
/// scorer declares the part it reads.
pub fn scoring_batch(ids: &[&str]) -> Vec<TensorSpec> {
    let mut specs = vec![
        TensorSpec::new(FRAME_SIZE, DType::U32, 2, "(height, width) per frame row [F, 2], or [1, 2] for all"),
        TensorSpec::new(BOXES, DType::F32, 2, "(frame row, x1, y1, x2, y2) per scored box [M, 5]"),
        TensorSpec::new(BAND, DType::U32, 1, "model (band) of each box [M]"),
    ];
    for id in ids {
        specs.push(TensorSpec::new(&errors_of(id), DType::F32, 1, "reconstruction error per box [M]"));
        specs.push(TensorSpec::new(&stats_of(id), DType::F64, 2, "(count, mean, std) per model [B, 3]"));
        specs.push(TensorSpec::new(
            &height_stats_of(id),
            DType::F64,
            2,
            "(count, intercept, slope, residual std) of ln(error) against ln(box height) per model [B, 4]",
        ));
    }
    specs
}

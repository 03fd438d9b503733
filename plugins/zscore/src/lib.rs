//! `zscore`: the LBR-SPR scorer (docs/method.md section 7). Per-box reconstruction
//! errors become z-scores with each band's training statistics (or, with
//! `normalize = "box_height"`, z-scores about the band's line of ln(error)
//! in ln(box height)), modalities
//! are fused with weights, each frame takes the maximum of its boxes' scores
//! painted over their pixels, and a moving average smooths the result.
//!
//! # Input batch (built by the runtime)
//! - `ids`: one [`FrameId`](vigil_stage_api::FrameId) per frame of the
//!   scored set: all videos in dataset order, each video's frames contiguous
//!   and ascending. F = number of ids; frame row r is `ids[r]`.
//! - `frame_size` u32 [F, 2]: (height, width) of each frame row, or [1, 2]
//!   when all frames share one size.
//! - `boxes` f32 [M, 5]: (frame row, x1, y1, x2, y2) in pixels of that frame,
//!   one row per scored cube.
//! - `band` u32 [M]: the model (spatial band) of each box.
//! - for each reconstructor stage id R that takes part:
//!   - `errors.R` f32 [M]: the box's reconstruction error (SSE);
//!   - `stats.R` f64 [B, 3]: row b = (count, mean, std) of model b's training
//!     errors, from `Reconstructor::statistics` (`ModelStats`, std with
//!     ddof 0). Every band used in `band` needs a row; a model without
//!     training boxes has count 0.
//!   - `height_stats.R` f64 [B, 4], read with `normalize = "box_height"`
//!     only: row b = (count, intercept, slope, residual std) of the
//!     least-squares line of ln(error) in ln(box height) over model b's
//!     training errors (`vigil_stage_api::height::HeightLine`).
//!
//! With option `weights` set, exactly its ids take part (an `errors.X` in
//! the batch without a weight is an error). With `weights` empty (default),
//! every `errors.*` tensor takes part, with the paper's weights
//! appearance = 0.5, motion = 1.0 when those two are present. A single
//! reconstructor always scores with its z alone (weight 1).
//!
//! # Outputs
//! - `scores` f32 [F]: smoothed frame scores, the final anomaly scores;
//! - `raw_scores` f32 [F]: frame scores before smoothing;
//! - `box_scores` f32 [M]: fused score of each box (for heat maps).

pub mod frames;
pub mod fuse;
pub mod input;
pub mod options;
pub mod smooth;

use options::{Normalization, ScoringOptions};
use vigil_stage_api::settings::Settings;
use vigil_stage_api::{
    names, stage_info, Batch, DType, FrameReach, Options, RResult, Scorer, StageContext, StageError, StageFactory, StageInfo,
    StageInstance, StageIo, StageKind, Tensor, TensorSpec,
};

/// A configured scorer.
pub struct ZScore {
    options: ScoringOptions,
}

/// The three score vectors the scorer produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub smoothed: Vec<f64>,
    pub raw: Vec<f64>,
    pub boxes: Vec<f64>,
}

impl ZScore {
    pub fn new(options: ScoringOptions) -> ZScore {
        ZScore { options }
    }

    /// Scores a batch laid out as described in the crate docs.
    pub fn compute(&self, batch: &Batch) -> Result<Scores, StageError> {
        let o = &self.options;
        let input = input::read_input(batch, &o.weights, o.normalize)?;
        let boxes = fuse::box_scores(&input.boxes, input.bands, &input.modalities, o.untrained_score);
        let raw = frames::frame_scores(&input.frame_sizes, &input.boxes, &boxes, o.no_box_score);
        let smoothed = smooth::smooth(&raw, &input.videos, o.window, o.smoothing);
        Ok(Scores { smoothed, raw, boxes })
    }
}

fn to_tensor(values: &[f64]) -> Tensor {
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    let n = data.len();
    Tensor::from_vec(data, &[n])
}

impl Scorer for ZScore {
    fn score(&mut self, mut batch: Batch) -> RResult<Batch, StageError> {
        let scores = match self.compute(&batch) {
            Ok(s) => s,
            Err(e) => return RResult::RErr(e),
        };
        batch.insert(names::SCORES, to_tensor(&scores.smoothed));
        batch.insert(names::RAW_SCORES, to_tensor(&scores.raw));
        batch.insert(names::BOX_SCORES, to_tensor(&scores.boxes));
        RResult::ROk(batch)
    }
    fn reach(&self) -> RResult<FrameReach, StageError> {
        let (before, after) = smooth::reach(self.options.window);
        RResult::ROk(FrameReach { before: before as u32, after: after as u32 })
    }
}

/// The tensors a scorer with these options consumes and produces. Inputs
/// `errors.R` / `stats.R` (and `height_stats.R` when normalizing by box
/// height) are listed for explicitly weighted ids only; with empty weights
/// they are found in the batch.
pub fn stage_io(options: &ScoringOptions) -> StageIo {
    let weighted: Vec<&str> = options.weights.iter().map(|(id, _)| id.as_str()).collect();
    let by_height = options.normalize == Normalization::BoxHeight;
    let inputs =
        names::scoring_batch(&weighted).into_iter().filter(|t| by_height || !t.name.starts_with(names::HEIGHT_STATS_PREFIX)).collect();
    let outputs = vec![
        TensorSpec::new(names::SCORES, DType::F32, 1, "smoothed anomaly score per frame row [F]"),
        TensorSpec::new(names::RAW_SCORES, DType::F32, 1, "frame score before smoothing [F]"),
        TensorSpec::new(names::BOX_SCORES, DType::F32, 1, "fused score per box [M]"),
    ];
    StageIo::new(inputs, outputs)
}

/// The `zscore` stage.
pub struct ZScoreStage;

impl StageFactory for ZScoreStage {
    fn info() -> StageInfo {
        stage_info! {
            name: "zscore",
            kind: StageKind::Scorer,
            description: "z-normalized, fused, max-over-boxes, smoothed frame scores (LBR-SPR)",
            options: ScoringOptions::specs(),
        }
    }

    fn create(options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        let options = ScoringOptions::from_options(options)?;
        let io = stage_io(&options);
        Ok(StageInstance::scorer(ZScore::new(options), io))
    }
}

vigil_stage_api::export_plugin!(ZScoreStage);

#![allow(non_local_definitions)]
//! The six stage kinds, one `#[sabi_trait]` each, and what a stage says
//! about itself (name, kind, version, description, options, tensors).
//!
//! Conventions shared by all kinds:
//! - a stage receives a [`Batch`] by value and returns it with its outputs
//!   added (inputs pass through untouched, so nothing is copied);
//! - errors are values; the host adds plugin and stage names.

use crate::{Batch, DType, DeviceKind, OptionSpec, StageError};
use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

/// The six kinds of stage, one per step of LBR-SPR's data path.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StageKind {
    /// Turns a source (video file, frame folder, stream) into RGB frames ([`Decoder`]).
    Decoder,
    /// Dense optical flow between consecutive frames ([`Flow`]).
    Flow,
    /// Boxes around the objects of each frame ([`Localizer`]).
    Localizer,
    /// A model that reconstructs cubes and reports per-cube errors ([`Reconstructor`]).
    Reconstructor,
    /// Per-cube training weights from errors: self-paced refinement ([`Refiner`]).
    Refiner,
    /// Frame scores from per-cube errors ([`Scorer`]).
    Scorer,
}

impl StageKind {
    /// Every kind, in the order of the data path.
    pub const ALL: [StageKind; 6] =
        [StageKind::Decoder, StageKind::Flow, StageKind::Localizer, StageKind::Reconstructor, StageKind::Refiner, StageKind::Scorer];
    /// The kind's name as `vigil plugins` and messages show it (`"decoder"`).
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Decoder => "decoder",
            StageKind::Flow => "flow",
            StageKind::Localizer => "localizer",
            StageKind::Reconstructor => "reconstructor",
            StageKind::Refiner => "refiner",
            StageKind::Scorer => "scorer",
        }
    }
}

impl std::fmt::Display for StageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named tensor a stage consumes or produces, with its dtype and rank.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// The tensor's name in a [`Batch`] (`frames`, `flow`, `boxes`, ...).
    pub name: RString,
    /// Its element type.
    pub dtype: DType,
    /// Its number of dimensions.
    pub rank: u32,
    /// What it holds, for `vigil plugins NAME`.
    pub doc: RString,
    /// Where it lives: for an input, every device kind the stage reads it
    /// from; for an output, where the stage puts it. `vigil check` refuses a
    /// pipeline that hands a stage a tensor on a device it does not read.
    pub devices: RVec<DeviceKind>,
}

impl TensorSpec {
    /// A spec from plain strings, for a tensor in host memory.
    pub fn new(name: &str, dtype: DType, rank: u32, doc: &str) -> TensorSpec {
        TensorSpec { name: name.into(), dtype, rank, doc: doc.into(), devices: vec![DeviceKind::Cpu].into() }
    }

    /// The same spec on `devices` instead of the CPU alone: the kinds an
    /// input is read from, or the one an output is put on.
    pub fn on(mut self, devices: &[DeviceKind]) -> TensorSpec {
        self.devices = devices.to_vec().into();
        self
    }

    /// Whether the tensor lives only in host memory.
    pub fn is_host_only(&self) -> bool {
        self.devices.iter().all(|&d| d == DeviceKind::Cpu)
    }

    /// Its device kinds for messages: "cpu", "wgpu or cuda".
    pub fn devices_text(&self) -> String {
        self.devices.iter().map(DeviceKind::to_string).collect::<Vec<_>>().join(" or ")
    }
}

/// What a stage is, independent of its options.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct StageInfo {
    /// The stage's name, what a pipeline's `plugin = "..."` names.
    pub name: RString,
    /// Which of the six traits it implements.
    pub kind: StageKind,
    /// Its version (semver); a model bundle records it.
    pub version: RString,
    /// One line for `vigil plugins`.
    pub description: RString,
    /// Every option it takes, with type, default and doc.
    pub options: RVec<OptionSpec>,
}

/// The tensors a configured stage consumes and produces. They may depend on
/// its options (a reconstructor with `target = "flow"` needs flow cubes).
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Default)]
pub struct StageIo {
    /// Tensors the stage reads from the batches it receives.
    pub inputs: RVec<TensorSpec>,
    /// Tensors it adds to them.
    pub outputs: RVec<TensorSpec>,
}

impl StageIo {
    /// The contract from plain vectors.
    pub fn new(inputs: Vec<TensorSpec>, outputs: Vec<TensorSpec>) -> StageIo {
        StageIo { inputs: inputs.into(), outputs: outputs.into() }
    }
}

/// Pipeline-wide settings a stage is created with.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct StageContext {
    /// The id the user gave this stage in the pipeline file.
    pub stage_id: RString,
    /// `[pipeline] seed`: a stage that draws random numbers starts from it.
    pub seed: u64,
    /// "cpu", "gpu" or "auto" (a real GPU when the stage can use one, else
    /// the CPU), from `[pipeline] device`.
    pub device: RString,
    /// A folder the stage may use for its own files (checkpoints, caches).
    pub work_dir: RString,
}

/// Facts about one opened video.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct VideoInfo {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frame count from the container or folder, when known before decoding.
    pub frame_count: ROption<u64>,
    /// Frames per second, when the container says.
    pub fps: ROption<f64>,
}

/// Decoders turn a source (file or frame folder) into RGB u8 frames:
/// `frames` u8 [N, H, W, 3] with one (video, frame) id per row.
#[sabi_trait]
pub trait Decoder: Send {
    /// Opens `source` (a path or URL) as video number `video` of the run,
    /// the `video` of every [`crate::FrameId`] it then yields; closes the
    /// one open before.
    fn open(&mut self, source: RStr<'_>, video: u32) -> RResult<VideoInfo, StageError>;
    /// The next at most `max_frames` frames, or none at the end of the video.
    #[sabi(last_prefix_field)]
    fn next_batch(&mut self, max_frames: u32) -> RResult<ROption<Batch>, StageError>;
}

/// Dense optical flow. Receives `frames` u8 [N, H, W, 3], consecutive frames
/// of one video (N >= 2); adds `flow` f32 [N-1, H, W, 2], row i the forward
/// flow from frame i to frame i+1 in (u, v) pixels.
#[sabi_trait]
pub trait Flow: Send {
    /// Adds `flow` to a batch of consecutive frames.
    #[sabi(last_prefix_field)]
    fn process(&mut self, batch: Batch) -> RResult<Batch, StageError>;
}

/// Finds objects. Receives `frames` u8 [N, H, W, 3] and, when the pipeline
/// has a flow stage, `flow` f32 [N, H, W, 2] (the flow of each frame); adds
/// `boxes` f32 [M, 7]: (row in batch, x1, y1, x2, y2, score, class), pixel
/// coordinates, class -1 for boxes not from a classifier.
#[sabi_trait]
pub trait Localizer: Send {
    /// Adds `boxes` to a batch of frames.
    #[sabi(last_prefix_field)]
    fn process(&mut self, batch: Batch) -> RResult<Batch, StageError>;
}

/// How a reconstructor wants to be trained.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct FitPlan {
    /// Passes over the cubes.
    pub epochs: u32,
    /// Cubes per step (the last step of an epoch may have fewer).
    pub batch_size: u32,
    /// Model (spatial band) of each cube, as given in `band`.
    pub models: u32,
}

/// Training-error statistics of one model, used to z-normalize scores.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq)]
pub struct ModelStats {
    /// The model (spatial band) these statistics are of.
    pub model: u32,
    /// Cubes they were computed over.
    pub count: u64,
    /// Mean reconstruction error.
    pub mean: f64,
    /// Population standard deviation (ddof 0).
    pub std: f64,
}

/// A deep reconstructor. The runtime owns the epoch/step loop; the
/// reconstructor receives all training cubes once (`fit_begin`) and keeps
/// them on its device, then only index and per-sample vectors cross.
#[sabi_trait]
pub trait Reconstructor: Send {
    /// Cubes: `appearance` u8 [M, 3D, S, S], `motion` f16 [M, 2D, S, S] when
    /// present (f32 before stage-api 1.2), `band` u32 [M] (which model each
    /// cube belongs to). The tensors are read-only: the runtime hands the
    /// same memory to every reconstructor of the pipeline (and so to
    /// `errors_of`), so a stage must never write through them.
    fn fit_begin(&mut self, cubes: Batch) -> RResult<FitPlan, StageError>;
    /// Per-sample reconstruction SSE, model in eval mode, no gradients.
    fn errors(&mut self, indices: RSlice<'_, u32>) -> RResult<RVec<f32>, StageError>;
    /// One optimizer step on the weighted loss over `indices` (one model).
    /// Returns the loss.
    fn step(&mut self, indices: RSlice<'_, u32>, weights: RSlice<'_, f32>) -> RResult<f32, StageError>;
    /// Training-error statistics per model over all fit cubes (eval mode).
    fn statistics(&mut self) -> RResult<RVec<ModelStats>, StageError>;
    /// Writes weights (and what resuming needs) into `dir`, atomically.
    fn save(&mut self, dir: RStr<'_>) -> RResult<(), StageError>;
    /// Loads what `save` wrote; false when `dir` holds no checkpoint.
    fn load(&mut self, dir: RStr<'_>) -> RResult<bool, StageError>;
    /// Per-sample reconstruction SSE of **new** cubes (laid out as for
    /// `fit_begin`), with the fitted or loaded models in eval mode; the
    /// cubes are not kept. This is how a saved model scores footage it was
    /// not fitted on (`vigil score`). Since stage-api 0.2; part of 1.0.
    #[sabi(last_prefix_field)]
    fn errors_of(&mut self, cubes: Batch) -> RResult<RVec<f32>, StageError>;
}

/// Turns per-sample errors into per-sample weights (self-paced refinement).
#[sabi_trait]
pub trait Refiner: Send {
    /// Whether weighting is on in `epoch` (0-based); when off, all weights
    /// are 1 and no errors are computed.
    fn active(&mut self, epoch: u32) -> RResult<bool, StageError>;
    /// The training weight of each cube of `model`, from its current errors
    /// (same order; 0 drops a cube from this epoch).
    fn weights(&mut self, model: u32, errors: RSlice<'_, f32>) -> RResult<RVec<f32>, StageError>;
    /// Serialized state for checkpoints (e.g. iteration counters).
    fn state(&mut self) -> RResult<RString, StageError>;
    /// Restores what `state` returned, when a fit resumes.
    #[sabi(last_prefix_field)]
    fn restore(&mut self, state: RStr<'_>) -> RResult<(), StageError>;
}

/// How many neighbouring frames a frame's score depends on: its score is a
/// function of the inputs of frames `t - before ..= t + after` only (of the
/// same video or, for a scorer that pools videos, of the sequence). The
/// runtime uses it to score a long input in chunks with the same result as
/// scoring it whole: it hands the scorer each chunk with this much context.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameReach {
    /// Frames before `t` its score depends on.
    pub before: u32,
    /// Frames after `t` its score depends on.
    pub after: u32,
}

/// Turns per-cube errors into per-frame scores.
#[sabi_trait]
pub trait Scorer: Send {
    /// Receives every frame's boxes with each reconstructor's errors and the
    /// training statistics (the runtime's scoring batch, docs/plugins.md);
    /// adds `scores` f32 [frames] and `box_scores` f32 [boxes].
    fn score(&mut self, batch: Batch) -> RResult<Batch, StageError>;
    /// The frames around a frame that its score depends on. Since stage-api
    /// 0.2; part of 1.0.
    #[sabi(last_prefix_field)]
    fn reach(&self) -> RResult<FrameReach, StageError>;
}

/// A boxed [`Decoder`] trait object, as it crosses the ABI.
pub type DecoderBox = Decoder_TO<'static, RBox<()>>;
/// A boxed [`Flow`] trait object, as it crosses the ABI.
pub type FlowBox = Flow_TO<'static, RBox<()>>;
/// A boxed [`Localizer`] trait object, as it crosses the ABI.
pub type LocalizerBox = Localizer_TO<'static, RBox<()>>;
/// A boxed [`Reconstructor`] trait object, as it crosses the ABI.
pub type ReconstructorBox = Reconstructor_TO<'static, RBox<()>>;
/// A boxed [`Refiner`] trait object, as it crosses the ABI.
pub type RefinerBox = Refiner_TO<'static, RBox<()>>;
/// A boxed [`Scorer`] trait object, as it crosses the ABI.
pub type ScorerBox = Scorer_TO<'static, RBox<()>>;

/// A created stage, as one of the six kinds.
#[repr(u8)]
#[derive(StableAbi)]
#[allow(missing_docs)] // one variant per kind, each named after its trait
pub enum StageObject {
    Decoder(DecoderBox),
    Flow(FlowBox),
    Localizer(LocalizerBox),
    Reconstructor(ReconstructorBox),
    Refiner(RefinerBox),
    Scorer(ScorerBox),
}

impl StageObject {
    /// Which kind this stage is.
    pub fn kind(&self) -> StageKind {
        match self {
            StageObject::Decoder(_) => StageKind::Decoder,
            StageObject::Flow(_) => StageKind::Flow,
            StageObject::Localizer(_) => StageKind::Localizer,
            StageObject::Reconstructor(_) => StageKind::Reconstructor,
            StageObject::Refiner(_) => StageKind::Refiner,
            StageObject::Scorer(_) => StageKind::Scorer,
        }
    }
}

/// A created stage and the tensors it consumes and produces.
#[repr(C)]
#[derive(StableAbi)]
pub struct StageInstance {
    /// The tensors it consumes and produces, as configured.
    pub io: StageIo,
    /// The stage itself.
    pub stage: StageObject,
}

//! Vigil's stable plugin ABI.
//!
//! A plugin library depends on this crate alone, implements one of the six
//! stage traits ([`Decoder`], [`Flow`], [`Localizer`], [`Reconstructor`],
//! [`Refiner`], [`Scorer`]) per stage, describes each stage with a
//! [`StageFactory`], and exports them with [`export_plugin!`]. Data crosses
//! the boundary as [`Batch`]es of DLPack-style [`Tensor`]s, moved, never
//! copied; errors cross as [`StageError`] values, never as panics.
//!
//! # A plugin in one page
//!
//! The smallest localizer: one box per frame, the frame itself. In a crate
//! of `crate-type = ["cdylib"]` that depends on `vigil-stage-api` alone,
//! `export_plugin!(WholeFrame);` makes it a plugin `vigil plugins` lists
//! and a pipeline names with `plugin = "whole-frame"`. Below, the host's
//! side is played by hand.
//!
//! ```
//! use vigil_stage_api::settings::Settings;
//! use vigil_stage_api::*;
//!
//! // Options: type, default, documentation (`vigil plugins` prints it) and
//! // check, each written once (see [`settings`]).
//! settings! {
//!     pub struct WholeFrameSettings {
//!         /// the score of every box
//!         pub score: f32 = 1.0 => settings::within(0.0, 1.0),
//!     }
//! }
//!
//! struct WholeFrame;
//!
//! impl StageFactory for WholeFrame {
//!     fn info() -> StageInfo {
//!         stage_info! {
//!             name: "whole-frame",
//!             kind: StageKind::Localizer,
//!             description: "one box per frame: the whole frame",
//!             options: WholeFrameSettings::specs(),
//!         }
//!     }
//!
//!     fn create(options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
//!         let score = WholeFrameSettings::from_options(options)?.score;
//!         let io = StageIo::new(
//!             vec![TensorSpec::new(names::FRAMES, DType::U8, 4, "RGB frames [N, H, W, 3]")],
//!             vec![TensorSpec::new(names::BOXES, DType::F32, 2, "[M, 7]: row, x1, y1, x2, y2, score, class")],
//!         );
//!         Ok(StageInstance::localizer(WholeFrameStage { score }, io))
//!     }
//! }
//!
//! struct WholeFrameStage {
//!     score: f32,
//! }
//!
//! impl Localizer for WholeFrameStage {
//!     fn process(&mut self, batch: Batch) -> RResult<Batch, StageError> {
//!         let shape = match batch.require(names::FRAMES) {
//!             Ok(frames) => frames.shape(),
//!             Err(e) => return RResult::RErr(e),
//!         };
//!         let (n, h, w) = (shape[0], shape[1] as f32, shape[2] as f32);
//!         let boxes: Vec<f32> = (0..n).flat_map(|row| [row as f32, 0.0, 0.0, w, h, self.score, -1.0]).collect();
//!         RResult::ROk(batch.with(names::BOXES, Tensor::from_vec(boxes, &[n, 7])))
//!     }
//! }
//!
//! // The host completes the options from the specs, creates the stage and
//! // passes it a batch of two 4x6 frames.
//! let info = WholeFrame::info();
//! let options = complete_options(&info.options, &serde_json::Map::new()).unwrap();
//! let context = StageContext { stage_id: "boxes".into(), seed: 0, device: "cpu".into(), work_dir: "/tmp".into() };
//! let instance = WholeFrame::create(&options, &context).unwrap();
//! let StageObject::Localizer(mut stage) = instance.stage else { unreachable!() };
//! let ids = vec![FrameId { video: 0, frame: 0 }, FrameId { video: 0, frame: 1 }];
//! let batch = Batch::new(ids).with(names::FRAMES, Tensor::from_vec(vec![0u8; 2 * 4 * 6 * 3], &[2, 4, 6, 3]));
//! let out = stage.process(batch).unwrap();
//! let boxes = out.require(names::BOXES).unwrap();
//! assert_eq!(boxes.shape(), [2, 7]);
//! assert_eq!(boxes.as_slice::<f32>().unwrap()[7..], [1.0, 0.0, 0.0, 6.0, 4.0, 1.0, -1.0]);
//! ```

#![warn(missing_docs)]

pub mod batch;
pub mod error;
pub mod guard;
pub mod height;
pub mod log_bridge;
pub mod memory;
pub mod names;
pub mod open;
pub mod options;
pub mod plugin;
pub mod rng;
pub mod settings;
pub mod stage;
pub mod tensor;
pub mod version;

pub use abi_stable;
pub use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};
pub use batch::{Batch, FrameId, NamedTensor};
pub use error::{ResultExt, StageError, StageErrorKind};
/// The half-precision float of [`DType::F16`] tensors (the `half` crate's,
/// re-exported so that host and plugins name the same type).
pub use half::f16;
pub use options::{complete_options, OptionProblem, OptionSpec, OptionType, Options};
pub use plugin::{StageFactory, VigilPlugin_Ref, API_VERSION};
pub use rng::SplitMix64;
pub use stage::*;
pub use tensor::{DType, Device, DeviceContext, DeviceKind, Element, Tensor};

/// Builds a [`StageInfo`] in [`StageFactory::info`]. `version` is the
/// package version of the crate that invokes the macro (the plugin's), and
/// `options` takes any iterable of [`OptionSpec`]s (an array is usual).
#[macro_export]
macro_rules! stage_info {
    (name: $name:expr, kind: $kind:expr, description: $desc:expr, options: $options:expr $(,)?) => {
        $crate::StageInfo {
            name: $name.into(),
            kind: $kind,
            version: env!("CARGO_PKG_VERSION").into(),
            description: $desc.into(),
            options: $options.into_iter().collect(),
        }
    };
}

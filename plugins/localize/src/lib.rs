//! Localizer stages: where the objects of each frame are.
//!
//! - `detector`: an ONNX object detector (YOLOX-style, run by tract or by
//!   ONNX Runtime loaded at run time), its
//!   boxes filtered by score, size and cover removal, completed with boxes
//!   around moving regions it missed;
//! - `motion`: boxes around moving regions only, no weights.
//!
//! Both return `boxes` f32 [M, 7] and share the box logic below, so a
//! pipeline swaps one for the other by changing its `plugin` line.

pub mod batch_io;
pub mod boxes;
pub mod completion;
pub mod components;
pub mod detector;
pub mod foreground;
pub mod letterbox;
pub mod model;
pub mod motion;
pub mod motion_source;
pub mod onnxruntime;
pub mod rows;
pub mod yolox;

pub use detector::DetectorLocalizer;
pub use motion::MotionLocalizer;

vigil_stage_api::export_plugin!(DetectorLocalizer, MotionLocalizer);

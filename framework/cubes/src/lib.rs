//! Spatio-temporal cubes (LBR-SPR, docs/method.md section 4): for every box of
//! frame t, the same crop of frames t-c..t+c (clamped inside the video),
//! each resized to S x S, stacked frame-major into an appearance cube
//! u8 [3(2c+1), S, S] and a flow cube f32 [2(2c+1), S, S]; plus the spatial
//! band of the box. [`CubeSet`] collects them video by video and hands them
//! over as the tensors a reconstructor's `fit_begin` takes.

mod cube;
mod frame_flow;
mod resize;
mod set;
mod store;

pub use cube::{crop_rect, FrameBox};
pub use frame_flow::per_frame_flow;
pub use resize::Rect;
pub use set::{AddReport, CubeConfig, CubeRecord, CubeSet, CubeTensors};

#[derive(Debug, thiserror::Error)]
pub enum CubeError {
    /// The input does not have the shape or content the call expects.
    #[error("{0}")]
    Invalid(String),
    /// Cubes beyond the memory budget could not be written to or read back
    /// from the spill folder.
    /// (`error` is in the message, not a `source()`, so that it is said once.)
    #[error("cube storage in {} (cubes beyond the memory budget spill there): {error}", dir.display())]
    Spill { dir: std::path::PathBuf, error: std::io::Error },
}

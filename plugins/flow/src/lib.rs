//! Dense optical flow in pure Rust: DIS (Kroeger et al., ECCV 2016), a
//! coarse-to-fine patch-alignment method without learned weights, and the
//! `flow` stage that runs it on the frames of a video.
//!
//! Library use: [`estimate_flow`] on two [`GrayImage`]s, or
//! [`estimate_flow_on_grid`] to compute on a fixed grid (512x384 in LBR-SPR)
//! and map the field back without rescaling its vectors.

mod densify;
mod estimate;
mod image;
mod inverse_search;
mod level;
pub mod middlebury;
mod params;
mod resize;
mod rows;
mod stage;
mod variational;

pub use estimate::{estimate_flow, estimate_flow_on_grid, FlowError};
pub use image::{FlowField, GrayImage};
pub use params::{FlowParams, Preset, VariationalParams};
pub use resize::{resize_flow, resize_gray};
pub use stage::FlowStage;

vigil_stage_api::export_plugin!(FlowStage);

//! Vigil's runtime: pipeline files, plugin registry, check, executor, fit
//! loop, cache, report. It never names a plugin: stages are found by the
//! names in a pipeline file and driven through the stage-api traits.

pub mod allocator;
pub mod bench;
pub mod bundle;
pub mod cache;
pub mod check;
pub mod checkpoint;
pub mod decoders;
pub mod diagnostic;
pub mod document;
pub mod extract;
pub mod fingerprint;
pub mod fit;
pub mod interrupt;
pub mod labels;
pub mod latency;
pub mod manifest;
pub mod model;
pub mod out_dir;
pub mod pipeline;
pub mod progress;
pub mod registry;
pub mod report;
pub mod roles;
pub mod run;
pub mod score;
pub mod stage;
pub mod stream;
pub mod train;

/// Unit tests fuzz readers (bench.rs's `.flo`); the allocator lets them
/// check that no allocation follows a header's claim.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: vigil_stage_testkit::fuzz::TrackingAllocator = vigil_stage_testkit::fuzz::TrackingAllocator;

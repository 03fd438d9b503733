//! The coarse-to-fine driver: per pyramid level, coarsest first, inverse
//! search, densification and (optionally) variational refinement, each level
//! starting from the upscaled result of the previous one.

use crate::densify::densify;
use crate::image::{FlowField, GrayImage};
use crate::inverse_search::{inverse_search, Search};
use crate::level::{pyramid, Level, LevelImage};
use crate::params::FlowParams;
use crate::resize::{resample_flow_into, resize_gray, upscale_flow};
use crate::variational::refine;

/// Why a flow could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowError(pub String);

impl std::fmt::Display for FlowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FlowError {}

fn check_sizes(prev: &GrayImage, next: &GrayImage) -> Result<(), FlowError> {
    if (next.width, next.height) != (prev.width, prev.height) {
        return Err(FlowError(format!("images differ in size: {}x{} and {}x{}", prev.width, prev.height, next.width, next.height)));
    }
    Ok(())
}

/// Dense forward flow from `prev` to `next` (same size), in pixels.
pub fn estimate_flow(prev: &GrayImage, next: &GrayImage, params: &FlowParams) -> Result<FlowField, FlowError> {
    estimate_flow_on_grid(prev, next, None, params)
}

/// Flow computed on a fixed grid: both images are resized to `grid`
/// (width, height), the flow is computed there and resized back to the
/// images' size **without rescaling the vectors** (LBR-SPR computes flow on
/// 512x384 frames this way; units are grid pixels). `None` = native size.
pub fn estimate_flow_on_grid(
    prev: &GrayImage,
    next: &GrayImage,
    grid: Option<(usize, usize)>,
    params: &FlowParams,
) -> Result<FlowField, FlowError> {
    check_sizes(prev, next)?;
    let (first, second) = (FramePyramid::new(prev, grid, params)?, FramePyramid::new(next, grid, params)?);
    let mut flow = FlowField::zeros(prev.width, prev.height);
    flow_between(&first, &second, params, &mut flow.data);
    Ok(flow)
}

/// Where the search runs on an image of a given size: patch side and
/// stride (shrunk to fit small images) and the pyramid levels visited.
struct Geometry {
    patch: usize,
    stride: usize,
    finest: usize,
    coarsest: usize,
}

impl Geometry {
    /// `None` for an image too small to hold a 2x2 patch: nothing can be measured.
    fn new(w: usize, h: usize, params: &FlowParams) -> Result<Option<Geometry>, FlowError> {
        if params.patch_size < 2 || params.patch_stride < 1 {
            return Err(FlowError(format!(
                "patch size must be >= 2 and stride >= 1, got {} and {}",
                params.patch_size, params.patch_stride
            )));
        }
        if w < 2 || h < 2 {
            return Ok(None);
        }
        let patch = params.patch_size.min(w).min(h);
        let coarsest = coarsest_scale(w, h, patch);
        Ok(Some(Geometry { patch, stride: params.patch_stride.min(patch), finest: params.finest_scale.min(coarsest), coarsest }))
    }
}

/// The coarsest level whose size is about 4 patches across (DIS's rule),
/// kept large enough to hold one patch.
fn coarsest_scale(w: usize, h: usize, patch: usize) -> usize {
    let ideal = ((w.max(h) as f64 / (4 * patch) as f64).log2() + 0.5).floor().max(0.0) as usize;
    (0..=ideal).rev().find(|&s| (w >> s) >= patch && (h >> s) >= patch).unwrap_or(0)
}

/// One frame ready for flow: its pyramid on the flow grid over the levels
/// the search visits, with their gradients. A video's frames are each
/// prepared once and then paired with both neighbours.
pub struct FramePyramid {
    /// The frame's own (width, height), the size of the flow written for it.
    frame: (usize, usize),
    /// The grid's (width, height): the unit of the flow vectors.
    grid: (usize, usize),
    /// `None` when the grid is too small to search (the flow is zero).
    geometry: Option<Geometry>,
    /// Finest first.
    levels: Vec<LevelImage>,
}

impl FramePyramid {
    /// Prepares `image` on `grid` (`None` = its own size).
    pub fn new(image: &GrayImage, grid: Option<(usize, usize)>, params: &FlowParams) -> Result<FramePyramid, FlowError> {
        let frame = (image.width, image.height);
        let grid = grid.filter(|&(gw, gh)| gw > 0 && gh > 0 && frame.0 > 0 && frame.1 > 0).unwrap_or(frame);
        let geometry = Geometry::new(grid.0, grid.1, params)?;
        let levels = match &geometry {
            None => Vec::new(),
            Some(geometry) => {
                let on_grid = if grid == frame { image.clone() } else { resize_gray(image, grid.0, grid.1) };
                pyramid(on_grid, geometry.finest, geometry.coarsest)
            }
        };
        Ok(FramePyramid { frame, grid, geometry, levels })
    }
}

/// Writes the forward flow from `first` to `second` (prepared with the same
/// grid and parameters) into `out`, interleaved (u, v) at the frame size, in
/// grid pixels.
pub fn flow_between(first: &FramePyramid, second: &FramePyramid, params: &FlowParams, out: &mut [f32]) {
    let (w, h) = first.frame;
    let Some(geometry) = &first.geometry else {
        out.fill(0.0);
        return;
    };
    let passes = if params.spatial_propagation { 2 } else { 1 };
    let search = Search {
        patch: geometry.patch,
        stride: geometry.stride,
        iterations_per_pass: params.descent_iterations.div_ceil(passes),
        propagate: params.spatial_propagation,
        max_move: params.max_move,
    };
    let mut flow: Option<FlowField> = None;
    for (a, b) in first.levels.iter().zip(&second.levels).rev() {
        let level = Level::new(a, b);
        let (lw, lh) = (level.i0.width, level.i0.height);
        let init = match flow {
            None => FlowField::zeros(lw, lh),
            Some(f) => upscale_flow(&f, lw, lh),
        };
        let patches = inverse_search(&level, &init, &search);
        let mut dense = densify(&level, &patches, geometry.patch);
        refine(&level, &mut dense, &params.variational);
        flow = Some(dense);
    }
    let flow = flow.expect("a searchable grid has at least one level");
    resample_flow_into(&flow, w, h, first.grid, out);
}

//! The coarse-to-fine driver: per pyramid level, coarsest first, inverse
//! search, densification and (optionally) variational refinement, each level
//! starting from the upscaled result of the previous one.

use crate::densify::densify;
use crate::image::{FlowField, GrayImage};
use crate::inverse_search::{inverse_search, Search};
use crate::level::{pyramid, Level};
use crate::params::FlowParams;
use crate::resize::{resample_flow, resize_gray, upscale_flow};
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
    let (w, h) = (prev.width, prev.height);
    Ok(resample_flow(&finest_level_flow(prev, next, params)?, w, h, (w, h)))
}

/// The flow at the finest level the parameters ask for (1/2^finest_scale of
/// the input size), in pixels of that level.
fn finest_level_flow(prev: &GrayImage, next: &GrayImage, params: &FlowParams) -> Result<FlowField, FlowError> {
    check_sizes(prev, next)?;
    let (w, h) = (prev.width, prev.height);
    if params.patch_size < 2 || params.patch_stride < 1 {
        return Err(FlowError(format!("patch size must be >= 2 and stride >= 1, got {} and {}", params.patch_size, params.patch_stride)));
    }
    // Too small to hold a 2x2 patch: nothing can be measured.
    if w < 2 || h < 2 {
        return Ok(FlowField::zeros(w, h));
    }
    let patch = params.patch_size.min(w).min(h);
    let stride = params.patch_stride.min(patch);
    let coarsest = coarsest_scale(w, h, patch);
    let finest = params.finest_scale.min(coarsest);
    let passes = if params.spatial_propagation { 2 } else { 1 };
    let search = Search {
        patch,
        stride,
        iterations_per_pass: params.descent_iterations.div_ceil(passes),
        propagate: params.spatial_propagation,
        max_move: params.max_move,
    };

    let mut levels = pyramid(prev.clone(), next.clone(), coarsest);
    let mut flow: Option<FlowField> = None;
    for (i0, i1) in levels.drain(finest..).rev() {
        let level = Level::new(i0, i1);
        let (lw, lh) = (level.i0.width, level.i0.height);
        let init = match flow {
            None => FlowField::zeros(lw, lh),
            Some(f) => upscale_flow(&f, lw, lh),
        };
        let patches = inverse_search(&level, &init, &search);
        let mut dense = densify(&level, &patches, patch);
        refine(&level, &mut dense, &params.variational);
        flow = Some(dense);
    }
    Ok(flow.expect("the pyramid has at least one level"))
}

/// The coarsest level whose size is about 4 patches across (DIS's rule),
/// kept large enough to hold one patch.
fn coarsest_scale(w: usize, h: usize, patch: usize) -> usize {
    let ideal = ((w.max(h) as f64 / (4 * patch) as f64).log2() + 0.5).floor().max(0.0) as usize;
    (0..=ideal).rev().find(|&s| (w >> s) >= patch && (h >> s) >= patch).unwrap_or(0)
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
    let (w, h) = (prev.width, prev.height);
    match grid {
        Some((gw, gh)) if (gw, gh) != (w, h) && w > 0 && h > 0 => {
            let flow = finest_level_flow(&resize_gray(prev, gw, gh), &resize_gray(next, gw, gh), params)?;
            // Straight from the finest level to the frame size, in grid units
            // (one resize instead of two).
            Ok(resample_flow(&flow, w, h, (gw, gh)))
        }
        _ => estimate_flow(prev, next, params),
    }
}

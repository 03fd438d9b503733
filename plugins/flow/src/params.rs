//! Estimator settings and the speed/quality presets.

vigil_stage_api::choice! {
    /// Speed/quality trade-offs, with the same meaning (and, as far as this
    /// implementation goes, the same numbers) as OpenCV's DIS presets.
    pub enum Preset {
        /// Finest scale 1/4, no variational refinement.
        Ultrafast = "ultrafast",
        /// Finest scale 1/4, variational refinement.
        Fast = "fast",
        /// Finest scale 1/2, larger patches, more iterations.
        Medium = "medium",
    }
}

/// Variational refinement weights (energy of Brox et al. as used by DIS):
/// `delta` brightness constancy, `gamma` gradient constancy, `alpha`
/// smoothness; `iterations` fixed-point iterations, each with
/// `sor_iterations` successive over-relaxation sweeps of factor `omega`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VariationalParams {
    pub iterations: usize,
    pub sor_iterations: usize,
    pub omega: f32,
    pub alpha: f32,
    pub delta: f32,
    pub gamma: f32,
}

/// All settings of [`crate::estimate_flow`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlowParams {
    /// Finest pyramid level searched (0 = full resolution); coarser levels
    /// are chosen from the image size.
    pub finest_scale: usize,
    /// Side of the square patches aligned by inverse search.
    pub patch_size: usize,
    /// Distance between neighbouring patches.
    pub patch_stride: usize,
    /// Gauss-Newton iterations per patch (split over the two propagation passes).
    pub descent_iterations: usize,
    /// Try the neighbours' displacements before descending (DIS's spatial propagation).
    pub spatial_propagation: bool,
    /// Farthest Gauss-Newton may move a patch from its starting displacement
    /// on one level, in pixels of that level; farther means it slid along an
    /// edge, and the start is kept. Coarse-to-fine still reaches large motions
    /// (each level doubles what the coarser ones found).
    pub max_move: f32,
    pub variational: VariationalParams,
}

impl FlowParams {
    pub fn preset(preset: Preset) -> FlowParams {
        let variational = VariationalParams { iterations: 5, sor_iterations: 5, omega: 1.6, alpha: 20.0, delta: 5.0, gamma: 10.0 };
        match preset {
            Preset::Ultrafast => FlowParams {
                finest_scale: 2,
                patch_size: 8,
                patch_stride: 4,
                descent_iterations: 12,
                spatial_propagation: true,
                max_move: 2.0,
                variational: VariationalParams { iterations: 0, ..variational },
            },
            Preset::Fast => FlowParams {
                finest_scale: 2,
                patch_size: 8,
                patch_stride: 4,
                descent_iterations: 16,
                spatial_propagation: true,
                max_move: 2.0,
                variational,
            },
            Preset::Medium => FlowParams {
                finest_scale: 1,
                patch_size: 12,
                patch_stride: 8,
                descent_iterations: 25,
                spatial_propagation: true,
                max_move: 3.0,
                variational,
            },
        }
    }
}

impl Default for FlowParams {
    fn default() -> FlowParams {
        FlowParams::preset(Preset::Fast)
    }
}

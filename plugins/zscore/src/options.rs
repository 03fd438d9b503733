//! The scorer's options, declared once: type, default, documentation and
//! check per field (`vigil_stage_api::settings!`).

use vigil_stage_api::settings::{at_least, finite};
use vigil_stage_api::{choice, settings};

choice! {
    /// How frame scores are smoothed over time.
    pub enum Smoothing {
        /// Each video separately; a window reaching past either end of a video
        /// averages only the frames inside it.
        PerVideo = "per_video",
        /// The paper's numpy "same" convolution over all videos concatenated,
        /// zero padded at the two ends of the whole sequence (docs/method.md 7.4).
        Pooled = "pooled",
    }
}

choice! {
    /// What a box's reconstruction error is measured against before fusion.
    pub enum Normalization {
        /// The paper: z = (error - mean) / std of the band's training errors.
        Band = "band",
        /// The residual of ln(error) about the band's least-squares line in
        /// ln(box height), in units of the residuals' std: the error of a
        /// normal cube grows with its box's size in pixels (a tall box is a
        /// downscaled, detailed crop), and this takes the growth out
        /// (docs/method.md 7.1).
        BoxHeight = "box_height",
    }
}

settings! {
    /// Typed, checked settings of one scorer.
    pub struct ScoringOptions {
        /// fusion weight per reconstructor stage id (score = sum of weight * z). Empty: every reconstructor
        /// in the batch; the paper's appearance = 0.5, motion = 1.0 when exactly those two exist. A single
        /// reconstructor always scores with its z alone
        pub weights: Vec<(String, f64)> = Vec::new() => finite_weights,
        /// band: the paper's z-score of the error; box_height: the z-score of ln(error) about the line the
        /// band's training errors follow in ln(box height), which stops a box's size from ranking it
        pub normalize: Normalization = Normalization::Band,
        /// moving-average window in frames (1 = no smoothing)
        pub window: usize = 10 => at_least(1),
        /// per_video: average within each video (windows are cut at video ends); pooled: the paper's
        /// zero-padded "same" convolution across all videos concatenated
        pub smoothing: Smoothing = Smoothing::PerVideo,
        /// score of a frame in which no box paints any pixel
        pub no_box_score: f64 = -20.0 => finite,
        /// score of a box whose band's model saw no training boxes (count 0 in `stats.<id>`)
        pub untrained_score: f64 = 20.0 => finite,
    }
}

#[allow(clippy::ptr_arg)] // a settings check takes &T, and T is the field's Vec
fn finite_weights(weights: &Vec<(String, f64)>) -> Result<(), String> {
    match weights.iter().find(|(_, w)| !w.is_finite()) {
        Some((name, w)) => Err(format!("`{name}` must be a finite number, found {w}")),
        None => Ok(()),
    }
}

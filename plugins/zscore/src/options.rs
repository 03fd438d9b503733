//! The scorer's options: declared once (for `vigil plugins` and validation)
//! and read into typed settings.

use vigil_stage_api::{OptionSpec, Options, StageError};

/// How frame scores are smoothed over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Smoothing {
    /// Each video separately; a window reaching past either end of a video
    /// averages only the frames inside it.
    PerVideo,
    /// The paper's numpy "same" convolution over all videos concatenated,
    /// zero padded at the two ends of the whole sequence (docs/method.md 7.4).
    Pooled,
}

/// Typed, checked settings of one scorer.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoringOptions {
    /// Fusion weight per reconstructor stage id; empty = use every
    /// reconstructor in the batch with the paper's weights.
    pub weights: Vec<(String, f64)>,
    pub window: usize,
    pub smoothing: Smoothing,
    pub no_box_score: f64,
    pub untrained_score: f64,
}

pub fn specs() -> Vec<OptionSpec> {
    vec![
        OptionSpec::float_table(
            "weights",
            &[],
            "fusion weight per reconstructor stage id (score = sum of weight * z). Empty: every reconstructor \
             in the batch; the paper's appearance = 0.5, motion = 1.0 when exactly those two exist. A single \
             reconstructor always scores with its z alone",
        ),
        OptionSpec::int("window", 10, "moving-average window in frames (1 = no smoothing)"),
        OptionSpec::choice(
            "smoothing",
            &["per_video", "pooled"],
            "per_video",
            "per_video: average within each video (windows are cut at video ends); pooled: the paper's \
             zero-padded \"same\" convolution across all videos concatenated",
        ),
        OptionSpec::float("no_box_score", -20.0, "score of a frame in which no box paints any pixel"),
        OptionSpec::float("untrained_score", 20.0, "score of a box whose band's model saw no training boxes (count 0 in `stats.<id>`)"),
    ]
}

impl ScoringOptions {
    pub fn from_options(options: &Options) -> Result<ScoringOptions, StageError> {
        let weights = options.float_table("weights")?;
        if let Some((name, w)) = weights.iter().find(|(_, w)| !w.is_finite()) {
            return Err(StageError::invalid(format!("option `weights`: `{name}` must be a finite number, found {w}")));
        }
        let window = options.int("window")?;
        if window < 1 {
            return Err(StageError::invalid(format!("option `window`: expected an int >= 1, found {window}")));
        }
        let smoothing = match options.string("smoothing")?.as_str() {
            "per_video" => Smoothing::PerVideo,
            "pooled" => Smoothing::Pooled,
            other => {
                return Err(StageError::invalid(format!("option `smoothing`: expected \"per_video\" or \"pooled\", found \"{other}\"")))
            }
        };
        let finite = |name: &str| -> Result<f64, StageError> {
            let v = options.float(name)?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(StageError::invalid(format!("option `{name}`: expected a finite number, found {v}")))
            }
        };
        Ok(ScoringOptions {
            weights,
            window: window as usize,
            smoothing,
            no_box_score: finite("no_box_score")?,
            untrained_score: finite("untrained_score")?,
        })
    }
}

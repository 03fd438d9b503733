//! Evaluation for Vigil, as a plain library: frame- and pixel-level metrics
//! that match scikit-learn, PNG plots, and the run's report files.
//!
//! - [`frame_metrics`]: pooled AUROC, mean per-video AUROC, EER, PR-AUC;
//! - [`PixelAuroc`] with [`ScoreMap`]: pixel-level AUROC, one frame at a time;
//! - [`plot_roc`], [`plot_timeline`], [`plot_heatmap`]: PNG figures;
//! - [`html::write_html`]: `report.html`, one self-contained page with plots, events and their frames;
//! - [`write_scores_csv`], [`write_boxes_csv`], [`write_report`], [`write_atomic`]: output files.

pub mod atomic;
pub mod curve;
pub mod error;
pub mod html;
pub mod metrics;
pub mod pixel;
pub mod plot;
pub mod report;

pub use atomic::write_atomic;
pub use curve::{RankedCounts, RocCurve, Tie};
pub use error::EvalError;
pub use metrics::{frame_metrics, most_anomalous_frames, Metrics, VideoSeries};
pub use pixel::{PixelAuroc, ScoreMap};
pub use plot::heatmap::{plot_heatmap, HeatmapLayout, RgbFrame};
pub use plot::roc::plot_roc;
pub use plot::timeline::{anomalous_ranges, plot_timeline, ANOMALY_SHADE};
pub use plot::PlotArea;
pub use report::{
    boxes_csv, boxes_header, push_box_row, push_score_row, report_json, scores_csv, write_boxes_csv, write_report, write_scores_csv,
    BoxRow, SCORES_HEADER,
};

/// `n` and the noun for it: "1 video", "3 videos". Every summary a person
/// reads (report.html, `vigil score`'s last line) words counts this way.
///
/// ```
/// assert_eq!(vigil_eval::count(1, "video", "videos"), "1 video");
/// assert_eq!(vigil_eval::count(0, "event", "events"), "0 events");
/// ```
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

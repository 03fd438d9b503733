//! Frame-level metrics of a scored set of videos.

use crate::curve::RankedCounts;
use crate::EvalError;
use serde::Serialize;

/// One video's frame scores (every frame, in order) and, when known, its
/// frame labels (true = anomalous).
#[derive(Clone, Copy, Debug)]
pub struct VideoSeries<'a> {
    pub name: &'a str,
    pub scores: &'a [f32],
    pub labels: Option<&'a [bool]>,
}

impl<'a> VideoSeries<'a> {
    /// The labels, checked to match the scores.
    pub fn require_labels(&self) -> Result<&'a [bool], EvalError> {
        let labels =
            self.labels.ok_or_else(|| EvalError::invalid(format!("video `{}` has no frame labels", self.name)))?;
        if labels.len() != self.scores.len() {
            return Err(EvalError::invalid(format!(
                "video `{}`: {} scores but {} labels; expected one label per frame",
                self.name,
                self.scores.len(),
                labels.len()
            )));
        }
        Ok(labels)
    }
}

/// The metrics object of `report.json`. All rates are fractions in [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    /// Frame-level AUROC pooled over all frames of all videos.
    pub auroc: f64,
    /// Mean of per-video AUROCs over the videos that have both classes;
    /// `None` when no video has both.
    pub auroc_video_mean: Option<f64>,
    /// Videos that entered the mean.
    pub videos_in_mean: usize,
    /// Videos left out of the mean because all their frames share one label.
    pub videos_one_class: Vec<String>,
    pub eer: f64,
    /// Average precision, anomaly positive.
    pub pr_auc: f64,
    pub frames: usize,
    pub anomalous_frames: usize,
    /// Pixel-level AUROC, when masks were given ([`crate::PixelAuroc`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixel_auroc: Option<f64>,
}

/// Frame-level metrics over `videos`, all of which must have labels.
pub fn frame_metrics(videos: &[VideoSeries<'_>]) -> Result<Metrics, EvalError> {
    let mut scores: Vec<f32> = Vec::new();
    let mut labels: Vec<bool> = Vec::new();
    let mut per_video: Vec<f64> = Vec::new();
    let mut one_class: Vec<String> = Vec::new();
    for video in videos {
        let video_labels = video.require_labels()?;
        scores.extend_from_slice(video.scores);
        labels.extend_from_slice(video_labels);
        let counts = RankedCounts::from_samples(video.scores, video_labels)
            .map_err(|e| EvalError::invalid(format!("video `{}`: {e}", video.name)))?;
        if counts.positives() == 0 || counts.negatives() == 0 {
            one_class.push(video.name.to_string());
        } else {
            per_video.push(counts.auroc()?);
        }
    }
    let all = RankedCounts::from_samples(&scores, &labels)?;
    Ok(Metrics {
        auroc: all.auroc()?,
        auroc_video_mean: (!per_video.is_empty()).then(|| per_video.iter().sum::<f64>() / per_video.len() as f64),
        videos_in_mean: per_video.len(),
        videos_one_class: one_class,
        eer: all.eer()?,
        pr_auc: all.average_precision()?,
        frames: scores.len(),
        anomalous_frames: all.positives() as usize,
        pixel_auroc: None,
    })
}

/// The `k` highest-scoring frames as (video index, frame, score), best
/// first; ties keep dataset order. For choosing which frames to draw.
pub fn most_anomalous_frames(videos: &[VideoSeries<'_>], k: usize) -> Vec<(usize, usize, f32)> {
    let mut all: Vec<(usize, usize, f32)> = videos
        .iter()
        .enumerate()
        .flat_map(|(v, video)| video.scores.iter().enumerate().map(move |(f, &s)| (v, f, s)))
        .filter(|(_, _, s)| !s.is_nan())
        .collect();
    all.sort_by(|a, b| b.2.total_cmp(&a.2));
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_and_per_video_auroc_differ_and_one_class_videos_are_named() {
        // Video a ranks perfectly; video b is perfectly inverted; video c has
        // no anomaly. Pooled over all 6 frames: positives 0.9 and 0.2,
        // negatives 0.1, 0.8, 0.3, 0.4: pairs won 4 + 1 = 5 of 8.
        let a = VideoSeries { name: "a", scores: &[0.9, 0.1], labels: Some(&[true, false]) };
        let b = VideoSeries { name: "b", scores: &[0.2, 0.8], labels: Some(&[true, false]) };
        let c = VideoSeries { name: "c", scores: &[0.3, 0.4], labels: Some(&[false, false]) };
        let m = frame_metrics(&[a, b, c]).unwrap();
        assert_eq!(m.auroc, 5.0 / 8.0);
        assert_eq!(m.auroc_video_mean, Some(0.5));
        assert_eq!(m.videos_in_mean, 2);
        assert_eq!(m.videos_one_class, ["c"]);
        assert_eq!((m.frames, m.anomalous_frames), (6, 2));
        let unlabeled = VideoSeries { name: "d", scores: &[0.1], labels: None };
        assert_eq!(frame_metrics(&[a, unlabeled]).unwrap_err().to_string(), "video `d` has no frame labels");
        let short = VideoSeries { name: "e", scores: &[0.1, 0.2], labels: Some(&[true]) };
        assert!(frame_metrics(&[short]).unwrap_err().to_string().contains("2 scores but 1 labels"));
        let top = most_anomalous_frames(&[a, b, c], 2);
        assert_eq!(top, [(0, 0, 0.9), (1, 1, 0.8)]);
    }
}

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
        let labels = self.labels.ok_or_else(|| EvalError::invalid(format!("video `{}` has no frame labels", self.name)))?;
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
/// A metric the labels leave undefined (AUROC and EER when every frame has
/// one label) is `None` (`null`), and `note` says why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    /// Frame-level AUROC pooled over all frames of all videos.
    pub auroc: Option<f64>,
    /// Mean of per-video AUROCs over the videos that have both classes;
    /// `None` when no video has both.
    pub auroc_video_mean: Option<f64>,
    /// Videos that entered the mean.
    pub videos_in_mean: usize,
    /// Videos left out of the mean because all their frames share one label.
    pub videos_one_class: Vec<String>,
    pub eer: Option<f64>,
    /// Average precision, anomaly positive (needs one anomalous frame).
    pub pr_auc: Option<f64>,
    pub frames: usize,
    pub anomalous_frames: usize,
    /// Pixel-level AUROC, when masks were given ([`crate::PixelAuroc`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pixel_auroc: Option<f64>,
    /// Why metrics are missing, when some are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Metrics {
    /// Adds a sentence to [`Metrics::note`].
    pub fn add_note(&mut self, sentence: &str) {
        self.note = Some(match self.note.take() {
            Some(note) => format!("{note} {sentence}"),
            None => sentence.to_string(),
        });
    }
}

/// Frame-level metrics over `videos`, all of which must have labels. When
/// all frames share one label, AUROC and EER (and PR-AUC without an
/// anomalous frame) are `None`, with a note.
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
    let both = all.positives() > 0 && all.negatives() > 0;
    let mut metrics = Metrics {
        auroc: if both { Some(all.auroc()?) } else { None },
        auroc_video_mean: (!per_video.is_empty()).then(|| per_video.iter().sum::<f64>() / per_video.len() as f64),
        videos_in_mean: per_video.len(),
        videos_one_class: one_class,
        eer: if both { Some(all.eer()?) } else { None },
        pr_auc: if all.positives() > 0 { Some(all.average_precision()?) } else { None },
        frames: scores.len(),
        anomalous_frames: all.positives() as usize,
        pixel_auroc: None,
        note: None,
    };
    if !both {
        let (which, undefined) = match all.positives() {
            0 => ("no frame is labeled anomalous", "AUROC, EER and PR-AUC are"),
            _ => ("every frame is labeled anomalous", "AUROC and EER are"),
        };
        metrics.add_note(&format!("{which} ({} frames): {undefined} not defined (they need normal and anomalous frames).", scores.len()));
    }
    Ok(metrics)
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
        assert_eq!(m.auroc, Some(5.0 / 8.0));
        assert_eq!(m.note, None);
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

    /// Issue 15: one class made the run fail at AUROC and write nothing.
    #[test]
    fn one_class_labels_leave_the_undefined_metrics_out_with_a_note() {
        let normal = VideoSeries { name: "n", scores: &[0.3, 0.4, 0.1], labels: Some(&[false, false, false]) };
        let m = frame_metrics(&[normal]).unwrap();
        assert_eq!((m.auroc, m.eer, m.pr_auc, m.auroc_video_mean), (None, None, None, None));
        assert_eq!((m.frames, m.anomalous_frames, m.videos_one_class.as_slice()), (3, 0, ["n".to_string()].as_slice()));
        let note = m.note.clone().unwrap();
        assert_eq!(
            note,
            "no frame is labeled anomalous (3 frames): AUROC, EER and PR-AUC are not defined (they need normal and anomalous frames)."
        );
        let json = serde_json::to_value(&m).unwrap();
        assert!(json["auroc"].is_null() && json["note"].is_string(), "{json}");

        let anomalous = VideoSeries { name: "a", scores: &[0.3, 0.4], labels: Some(&[true, true]) };
        let m = frame_metrics(&[anomalous]).unwrap();
        assert_eq!((m.auroc, m.eer, m.pr_auc), (None, None, Some(1.0)));
        assert!(m.note.unwrap().starts_with("every frame is labeled anomalous (2 frames): AUROC and EER are not defined"));
    }
}

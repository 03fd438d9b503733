//! One video's score timeline for `report.html`, bounded in size whatever
//! the video's length: scores are kept as the highest score of each bin of
//! `bin` frames, and when the bins outnumber the capacity, neighbouring
//! bins merge and `bin` doubles. A live stream scored for days keeps the
//! same few kilobytes; a short video keeps every frame (one frame per bin).

use serde::Serialize;

/// Event spans drawn per video; more are counted in `events_left_out`.
pub const MAX_EVENT_MARKS: usize = 1000;

/// Bins kept per video by [`Timeline::new`].
pub const DEFAULT_BINS: usize = 2048;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    pub video: String,
    /// Frames pushed so far.
    pub frames: usize,
    /// Frames per bin (a power of two).
    pub bin: usize,
    /// The highest score of each bin; the last bin may be partly filled.
    pub peaks: Vec<f32>,
    /// Labelled anomalous frames, as inclusive `[first, last]` ranges.
    pub labelled: Vec<[u32; 2]>,
    /// Events as `[start, end, peak_frame]`, at most [`MAX_EVENT_MARKS`].
    pub events: Vec<[u32; 3]>,
    pub events_left_out: usize,
    #[serde(skip)]
    capacity: usize,
}

impl Timeline {
    pub fn new(video: &str) -> Timeline {
        Timeline::with_capacity(video, DEFAULT_BINS)
    }

    /// At most `capacity` (at least 2) bins.
    pub fn with_capacity(video: &str, capacity: usize) -> Timeline {
        Timeline {
            video: video.to_string(),
            frames: 0,
            bin: 1,
            peaks: Vec::new(),
            labelled: Vec::new(),
            events: Vec::new(),
            events_left_out: 0,
            capacity: capacity.max(2),
        }
    }

    /// A whole video's scores (frame 0 first) and, when known, its labels.
    pub fn of_scores(video: &str, scores: &[f32], labels: Option<&[bool]>) -> Timeline {
        let mut timeline = Timeline::new(video);
        scores.iter().for_each(|&s| timeline.push(s));
        if let Some(labels) = labels {
            timeline.labelled = crate::anomalous_ranges(labels).into_iter().map(|(a, b)| [a as u32, b as u32]).collect();
        }
        timeline
    }

    /// The score of the next frame.
    pub fn push(&mut self, score: f32) {
        match self.peaks.last_mut() {
            Some(last) if !self.frames.is_multiple_of(self.bin) => *last = last.max(score),
            _ => self.peaks.push(score),
        }
        self.frames += 1;
        if self.peaks.len() > self.capacity {
            self.peaks = self.peaks.chunks(2).map(|pair| pair.iter().copied().fold(f32::NEG_INFINITY, f32::max)).collect();
            self.bin *= 2;
        }
    }

    pub fn mark_event(&mut self, start: u32, end: u32, peak_frame: u32) {
        if self.events.len() < MAX_EVENT_MARKS {
            self.events.push([start, end, peak_frame]);
        } else {
            self.events_left_out += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_video_keeps_every_frame() {
        let t = Timeline::of_scores("v", &[1.0, 3.0, 2.0], Some(&[false, true, true]));
        assert_eq!((t.bin, t.peaks.as_slice(), t.labelled.as_slice()), (1, [1.0, 3.0, 2.0].as_slice(), [[1, 2]].as_slice()));
    }

    #[test]
    fn a_long_input_stays_within_capacity_and_keeps_each_bins_peak() {
        let mut t = Timeline::with_capacity("stream", 4);
        let scores: Vec<f32> = (0..37).map(|i| ((i * 7) % 11) as f32).collect();
        scores.iter().for_each(|&s| t.push(s));
        assert_eq!(t.frames, 37);
        assert!(t.peaks.len() <= 4, "{} bins", t.peaks.len());
        assert_eq!(t.peaks.len(), t.frames.div_ceil(t.bin));
        for (i, peak) in t.peaks.iter().enumerate() {
            let end = ((i + 1) * t.bin).min(scores.len());
            let expected = scores[i * t.bin..end].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(*peak, expected, "bin {i} of {} frames", t.bin);
        }
    }

    #[test]
    fn event_marks_are_bounded() {
        let mut t = Timeline::new("v");
        for i in 0..(MAX_EVENT_MARKS as u32 + 5) {
            t.mark_event(i, i, i);
        }
        assert_eq!((t.events.len(), t.events_left_out), (MAX_EVENT_MARKS, 5));
    }
}

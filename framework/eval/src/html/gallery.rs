//! The events `report.html` lists and shows: the highest peaks in a table,
//! the very highest with their peak frame, boxes and scores. Bounded: a
//! stream that raises a million events keeps the top few and a count.

use crate::{EvalError, RgbFrame};
use base64::Engine;
use serde::Serialize;
use vigil_events::Event;

/// Snapshots are scaled down to at most this width (JPEG keeps the page small).
pub const SNAPSHOT_WIDTH: u32 = 640;
const JPEG_QUALITY: u8 = 85;

/// An event with its peak frame, as a JPEG data URL; `width` and `height`
/// are the frame's own, in which the event's boxes are given.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub event: Event,
    pub width: u32,
    pub height: u32,
    pub image: String,
}

impl Snapshot {
    pub fn new(event: Event, frame: RgbFrame<'_>) -> Result<Snapshot, EvalError> {
        let (width, height) = (frame.width, frame.height);
        let expected = width as usize * height as usize * 3;
        if frame.pixels.len() != expected || width == 0 || height == 0 {
            return Err(EvalError::invalid(format!(
                "the peak frame {} of video {} has {} bytes, expected {width}x{height}x3 = {expected}",
                event.peak_frame,
                event.video,
                frame.pixels.len()
            )));
        }
        let full = image::RgbImage::from_raw(width, height, frame.pixels.to_vec())
            .ok_or_else(|| EvalError::invalid("a snapshot frame does not fit its size"))?;
        let shown = if width > SNAPSHOT_WIDTH {
            let h = (height as u64 * SNAPSHOT_WIDTH as u64 / width as u64).max(1) as u32;
            image::imageops::resize(&full, SNAPSHOT_WIDTH, h, image::imageops::FilterType::Triangle)
        } else {
            full
        };
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY).encode_image(&shown).map_err(|e| EvalError::Plot {
            what: format!("the snapshot of video {} frame {}", event.video, event.peak_frame),
            message: e.to_string(),
        })?;
        let image = format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(&jpeg));
        Ok(Snapshot { event, width, height, image })
    }
}

/// The top events by peak score.
#[derive(Clone, Debug, Serialize)]
pub struct Gallery {
    /// Every event added.
    pub total: usize,
    /// The `table_size` highest, highest first.
    pub events: Vec<Event>,
    /// The `snapshot_count` highest that came with a frame, highest first.
    pub snapshots: Vec<Snapshot>,
    #[serde(skip)]
    table_size: usize,
    #[serde(skip)]
    snapshot_count: usize,
}

impl Gallery {
    pub fn new(table_size: usize, snapshot_count: usize) -> Gallery {
        Gallery { total: 0, events: Vec::new(), snapshots: Vec::new(), table_size, snapshot_count }
    }

    /// Whether an event peaking at `score` would get a snapshot: callers
    /// fetch or keep a peak frame only then.
    pub fn wants_snapshot(&self, score: f32) -> bool {
        self.snapshot_count > 0
            && (self.snapshots.len() < self.snapshot_count || self.snapshots.last().is_some_and(|s| score > s.event.peak_score))
    }

    /// Adds an event, with its peak frame when the caller has it.
    pub fn add(&mut self, event: Event, frame: Option<RgbFrame<'_>>) -> Result<(), EvalError> {
        self.total += 1;
        if let Some(frame) = frame.filter(|_| self.wants_snapshot(event.peak_score)) {
            let snapshot = Snapshot::new(event.clone(), frame)?;
            insert_ranked(&mut self.snapshots, snapshot, self.snapshot_count, |s| s.event.peak_score);
        }
        insert_ranked(&mut self.events, event, self.table_size, |e| e.peak_score);
        Ok(())
    }
}

/// Inserts `item` after every item scoring at least as high, keeping `limit`.
fn insert_ranked<T>(items: &mut Vec<T>, item: T, limit: usize, score: impl Fn(&T) -> f32) {
    let at = items.partition_point(|other| score(other) >= score(&item));
    if at < limit {
        items.insert(at, item);
        items.truncate(limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(start: u32, peak: f32) -> Event {
        Event { video: "v".into(), start, end: start + 2, peak_frame: start + 1, peak_score: peak, threshold: 1.0, boxes: Vec::new() }
    }

    #[test]
    fn keeps_the_highest_peaks_in_order_and_counts_all() {
        let pixels = vec![128u8; 8 * 4 * 3];
        let frame = RgbFrame { width: 8, height: 4, pixels: &pixels };
        let mut g = Gallery::new(3, 2);
        for (i, peak) in [2.0, 5.0, 3.0, 5.0, 1.5].into_iter().enumerate() {
            g.add(event(i as u32 * 10, peak), Some(frame)).unwrap();
        }
        assert_eq!(g.total, 5);
        let starts: Vec<u32> = g.events.iter().map(|e| e.start).collect();
        assert_eq!(starts, [10, 30, 20], "highest first, ties in arrival order");
        let shots: Vec<u32> = g.snapshots.iter().map(|s| s.event.start).collect();
        assert_eq!(shots, [10, 30]);
        assert!(g.snapshots[0].image.starts_with("data:image/jpeg;base64,/9j/"), "a JPEG");
        assert!(!g.wants_snapshot(5.0) && g.wants_snapshot(5.5));
    }

    #[test]
    fn wide_frames_are_scaled_down_and_bad_frames_refused() {
        let pixels = vec![200u8; 1280 * 8 * 3];
        let shot = Snapshot::new(event(0, 2.0), RgbFrame { width: 1280, height: 8, pixels: &pixels }).unwrap();
        assert_eq!((shot.width, shot.height), (1280, 8), "the frame's own size, for its boxes");
        let short = Snapshot::new(event(0, 2.0), RgbFrame { width: 4, height: 4, pixels: &pixels[..10] }).unwrap_err();
        assert!(short.to_string().contains("expected 4x4x3 = 48"), "{short}");
    }
}

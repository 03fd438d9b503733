//! One anomaly event, as written to `events.jsonl`.

use serde::{Deserialize, Serialize};

/// A box of the event's peak frame, with its fused score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
}

/// Frames `start ..= end` of `video` scored above `threshold`, every frame
/// in between included; the highest score is `peak_score`, at `peak_frame`
/// (the first such frame on ties).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub video: String,
    pub start: u32,
    pub end: u32,
    pub peak_frame: u32,
    pub peak_score: f32,
    pub threshold: f32,
    /// The boxes of the peak frame.
    pub boxes: Vec<EventBox>,
}

impl Event {
    pub fn frames(&self) -> u32 {
        self.end - self.start + 1
    }
}

//! Frame scores in, events out: a run of consecutive frames of one video
//! scored above the threshold is one event, closed by the first frame at or
//! below it, by a gap in the frame numbers, by another video, or by
//! [`EventGrouper::finish`].

use crate::event::{Event, EventBox};

pub struct EventGrouper {
    threshold: f32,
    open: Option<Event>,
}

impl EventGrouper {
    pub fn new(threshold: f32) -> EventGrouper {
        EventGrouper { threshold, open: None }
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The next frame's score, frames of a video in ascending order;
    /// `boxes` is asked for only when the frame becomes an event's peak.
    /// Returns the event this frame closed, if any.
    pub fn push(&mut self, video: &str, frame: u32, score: f32, boxes: impl FnOnce() -> Vec<EventBox>) -> Option<Event> {
        let continues = self.open.as_ref().is_some_and(|e| e.video == video && frame == e.end + 1);
        let closed = if continues { None } else { self.open.take() };
        if score > self.threshold {
            match &mut self.open {
                Some(event) => {
                    event.end = frame;
                    if score > event.peak_score {
                        event.peak_score = score;
                        event.peak_frame = frame;
                        event.boxes = boxes();
                    }
                }
                None => {
                    self.open = Some(Event {
                        video: video.to_string(),
                        start: frame,
                        end: frame,
                        peak_frame: frame,
                        peak_score: score,
                        threshold: self.threshold,
                        boxes: boxes(),
                    })
                }
            }
            closed
        } else {
            // A frame at or below the threshold closes the open event.
            closed.or_else(|| self.open.take())
        }
    }

    /// The event still open at the end of the input, if any.
    pub fn finish(&mut self) -> Option<Event> {
        self.open.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes_of(frame: u32) -> impl FnOnce() -> Vec<EventBox> {
        move || vec![EventBox { x1: frame as f32, y1: 0.0, x2: 1.0, y2: 1.0, score: 0.0 }]
    }

    /// Events of one pass over (video, frame, score) rows.
    fn events(threshold: f32, rows: &[(&str, u32, f32)]) -> Vec<Event> {
        let mut grouper = EventGrouper::new(threshold);
        let mut out: Vec<Event> = rows.iter().filter_map(|&(v, f, s)| grouper.push(v, f, s, boxes_of(f))).collect();
        out.extend(grouper.finish());
        out
    }

    #[test]
    fn consecutive_frames_above_the_threshold_are_one_event_with_its_peak() {
        let scores = [0.0, 2.0, 5.0, 3.0, 1.0, 1.5, 0.5];
        let rows: Vec<(&str, u32, f32)> = scores.iter().enumerate().map(|(f, &s)| ("a", f as u32, s)).collect();
        let found = events(1.0, &rows);
        assert_eq!(found.len(), 2);
        let (first, second) = (&found[0], &found[1]);
        assert_eq!((first.start, first.end, first.peak_frame, first.peak_score), (1, 3, 2, 5.0));
        assert_eq!(first.boxes[0].x1, 2.0, "the boxes are the peak frame's");
        assert_eq!(first.frames(), 3);
        // A score equal to the threshold is not above it and closes the first event.
        assert_eq!((second.start, second.end, second.peak_frame), (5, 5, 5));
        assert_eq!(first.threshold, 1.0);
    }

    #[test]
    fn another_video_or_a_gap_closes_an_event() {
        let found = events(0.0, &[("a", 8, 1.0), ("a", 9, 2.0), ("b", 0, 3.0), ("b", 2, 4.0)]);
        let spans: Vec<(&str, u32, u32)> = found.iter().map(|e| (e.video.as_str(), e.start, e.end)).collect();
        assert_eq!(spans, [("a", 8, 9), ("b", 0, 0), ("b", 2, 2)]);
    }

    #[test]
    fn ties_keep_the_first_peak_and_nothing_above_gives_no_event() {
        let found = events(0.0, &[("a", 0, 2.0), ("a", 1, 2.0)]);
        assert_eq!(found[0].peak_frame, 0);
        assert!(events(10.0, &[("a", 0, 2.0), ("a", 1, 9.9)]).is_empty());
    }
}

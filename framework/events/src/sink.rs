//! Where events go. A sink receives each event as soon as it closes; the
//! JSON Lines sink writes one object per line and flushes it, so a reader
//! (or a crash) never sees half an event.

use crate::event::Event;
use std::io::Write;
use std::path::Path;

/// A destination for events. Implement it in any crate to add one (MQTT, a
/// webhook): `emit` is called once per event, in order; `name` says where
/// the events go, for error messages; `finish` is called once after the
/// last event.
pub trait EventSink {
    fn name(&self) -> String;
    fn emit(&mut self, event: &Event) -> std::io::Result<()>;
    /// Called once after the last event. A sink that buffers (a network
    /// sink queueing events while its broker is down) delivers what it
    /// holds, or returns an error saying how many events were not
    /// delivered. The default does nothing: a sink that writes each event
    /// in `emit` has nothing left to deliver.
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One JSON object per line to a writer, flushed after every event.
pub struct JsonLines<W: Write> {
    name: String,
    out: W,
}

impl JsonLines<std::io::BufWriter<std::fs::File>> {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::File::create(path)?;
        Ok(JsonLines { name: path.display().to_string(), out: std::io::BufWriter::new(file) })
    }
}

impl JsonLines<std::io::Stdout> {
    pub fn stdout() -> Self {
        JsonLines { name: "standard output".into(), out: std::io::stdout() }
    }
}

impl<W: Write> JsonLines<W> {
    pub fn new(name: &str, out: W) -> Self {
        JsonLines { name: name.to_string(), out }
    }
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> EventSink for JsonLines<W> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn emit(&mut self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventBox;

    #[test]
    fn each_event_is_one_json_line() {
        let event = Event {
            video: "cam \"1\"".into(),
            start: 3,
            end: 5,
            peak_frame: 4,
            peak_score: 2.5,
            threshold: 1.0,
            boxes: vec![EventBox { x1: 1.0, y1: 2.0, x2: 3.0, y2: 4.0, score: 2.5 }],
        };
        let mut sink = JsonLines::new("memory", Vec::new());
        sink.emit(&event).unwrap();
        sink.emit(&event).unwrap();
        let text = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: Event = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn a_file_sink_has_every_event_on_disk_as_soon_as_it_is_emitted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut sink = JsonLines::create(&path).unwrap();
        let event = Event { video: "v".into(), start: 0, end: 0, peak_frame: 0, peak_score: 1.0, threshold: 0.0, boxes: vec![] };
        sink.emit(&event).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1, "flushed without closing the sink");
        assert_eq!(sink.name(), path.display().to_string());
    }
}

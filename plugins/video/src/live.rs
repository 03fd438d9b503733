//! Live streams: a URL FFmpeg reads (`rtsp://`, `udp://`, `http://`, ...)
//! or a capture device. A stream neither waits for its reader nor ends on
//! schedule, so a thread of its own decodes frames as they arrive into a
//! bounded queue that `next_batch` empties:
//!
//! - **Falling behind.** When the queue is full (scoring is slower than the
//!   stream), arriving frames are dropped, not buffered: memory and latency
//!   stay bounded by `queue_frames`. Frames that are kept stay in order, so
//!   a gap shows as a jump in motion; the drops are counted and logged
//!   (at most every few seconds) with the share they are of what arrived.
//! - **Stalls and lost connections.** Every read waits at most
//!   `read_timeout_s`. When the stream stalls, ends or breaks, the reader
//!   reconnects up to `reconnects` times, waiting 1, 2, 4, ... s (at most
//!   30 s) between tries; a frame read in between restores the full count.
//!   When the tries are spent, `next_batch` hands out the frames already
//!   queued, then fails with what happened: the runtime scores and writes
//!   what it has before it reports the error. With `reconnects = 0` a
//!   stream that ends (a finite file served over HTTP) is a clean end.

use crate::reader::{Step, VideoFacts, VideoReader, WRITE_SLACK};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a live stream is read (the `video` stage's options).
#[derive(Clone, Debug)]
pub struct LiveSettings {
    pub read_timeout: Duration,
    pub reconnects: u32,
    pub queue_frames: usize,
}

/// The longest wait between two reconnection tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The least time between two "dropped frames" warnings.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(5);

enum Message {
    Frame(Vec<u8>),
    /// The stream is gone for good; why.
    Gone(String),
}

pub struct LiveStream {
    facts: VideoFacts,
    queue: Receiver<Message>,
    /// Why the stream ended, once the queue said so.
    gone: Option<String>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LiveStream {
    /// Connects to `url` (an error if it cannot be read within the timeout)
    /// and starts reading it.
    pub fn open(url: &str, settings: LiveSettings) -> Result<LiveStream, String> {
        let reader = VideoReader::open_stream(url, settings.read_timeout)?;
        // A live stream has no length, whatever its container's header says.
        let facts = VideoFacts { header_frames: None, ..reader.facts().clone() };
        let (sender, queue) = sync_channel(settings.queue_frames.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let worker =
            Worker { url: url.to_string(), settings, sender, stop: stop.clone(), received: 0, dropped: 0, reported: None, tries: 0 };
        let thread = std::thread::Builder::new()
            .name("vigil-live-reader".into())
            .spawn(move || worker.run(reader))
            .map_err(|e| format!("{url}: cannot start the stream's reader thread: {e}"))?;
        Ok(LiveStream { facts, queue, gone: None, stop, thread: Some(thread) })
    }

    pub fn facts(&self) -> &VideoFacts {
        &self.facts
    }

    pub fn frame_bytes(&self) -> usize {
        self.facts.width as usize * self.facts.height as usize * 3
    }

    /// Appends to `out` the next frames, at least one (waiting for it) and at
    /// most `max`, without waiting for more than are queued. `Ok(0)` once a
    /// stream that ended cleanly is drained; the error says why it broke.
    pub fn read_into(&mut self, out: &mut Vec<u8>, max: usize) -> Result<usize, String> {
        if let Some(reason) = &self.gone {
            return Err(reason.clone());
        }
        let mut frames = 0;
        while frames < max {
            let next = if frames == 0 { self.queue.recv().map_err(|_| TryRecvError::Disconnected) } else { self.queue.try_recv() };
            match next {
                Ok(Message::Frame(pixels)) => {
                    out.extend_from_slice(&pixels);
                    frames += 1;
                }
                Ok(Message::Gone(reason)) => {
                    self.gone = Some(reason.clone());
                    return if frames == 0 { Err(reason) } else { Ok(frames) };
                }
                Err(TryRecvError::Empty) => break,
                // The reader ended with no error: a stream that ended where no reconnection is wanted.
                Err(TryRecvError::Disconnected) => break,
            }
        }
        out.reserve(WRITE_SLACK);
        Ok(frames)
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblocks a worker waiting on a full queue; it then sees `stop`.
        while self.queue.try_recv().is_ok() {}
        if let Some(thread) = self.thread.take() {
            // A worker inside a read returns within the read timeout.
            let _ = thread.join();
        }
    }
}

/// The reader thread's side.
struct Worker {
    url: String,
    settings: LiveSettings,
    sender: SyncSender<Message>,
    stop: Arc<AtomicBool>,
    received: u64,
    dropped: u64,
    reported: Option<Instant>,
    /// Reconnection tries since the last frame read.
    tries: u32,
}

impl Worker {
    fn run(mut self, first: VideoReader) {
        let facts = first.facts().clone();
        let frame_bytes = first.frame_bytes();
        let mut reader = first;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let mut pixels = Vec::with_capacity(frame_bytes + WRITE_SLACK);
            let trouble = match reader.read_frame(&mut pixels) {
                Step::Frame => {
                    self.received += 1;
                    self.tries = 0;
                    if !self.offer(pixels) {
                        return;
                    }
                    continue;
                }
                Step::End if self.settings.reconnects == 0 => {
                    tracing::info!("{}: the stream ended after {} frames", self.url, self.received);
                    return;
                }
                Step::End => "the stream ended".to_string(),
                Step::Damaged(reason) => reason,
            };
            // Close the connection first: a UDP reader holds its port until then.
            drop(reader);
            match self.reconnect(&trouble, &facts) {
                Ok(Some(next)) => reader = next,
                Ok(None) => return,
                Err(reason) => {
                    // Blocks while the queue is full: the frames before it go first.
                    let _ = self.sender.send(Message::Gone(reason));
                    return;
                }
            }
        }
    }

    /// Queues a frame, or drops it when the queue is full. False when the
    /// stream's consumer is gone.
    fn offer(&mut self, pixels: Vec<u8>) -> bool {
        match self.sender.try_send(Message::Frame(pixels)) {
            Ok(()) => true,
            Err(TrySendError::Disconnected(_)) => false,
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                if self.reported.is_none_or(|at| at.elapsed() >= DROP_REPORT_EVERY) {
                    self.reported = Some(Instant::now());
                    tracing::warn!(
                        "{}: scoring is slower than the stream: {} of {} frames received were dropped ({:.1}%); \
                         the queue holds {} frames",
                        self.url,
                        self.dropped,
                        self.received,
                        100.0 * self.dropped as f64 / self.received.max(1) as f64,
                        self.settings.queue_frames
                    );
                }
                true
            }
        }
    }

    /// Tries to open the stream again after `trouble`, waiting longer before
    /// each try. `Ok(None)`: asked to stop; `Err`: the tries are spent (or
    /// the stream came back with another frame size).
    fn reconnect(&mut self, trouble: &str, facts: &VideoFacts) -> Result<Option<VideoReader>, String> {
        let tries = self.settings.reconnects;
        let mut last = trouble.to_string();
        while self.tries < tries {
            self.tries += 1;
            let attempt = self.tries;
            let wait = (Duration::from_secs(1) * 2u32.saturating_pow(attempt - 1)).min(MAX_BACKOFF);
            tracing::warn!("{}: {last}; reconnecting in {} s (try {attempt} of {tries})", self.url, wait.as_secs());
            if !self.sleep(wait) {
                return Ok(None);
            }
            match VideoReader::open_stream(&self.url, self.settings.read_timeout) {
                Ok(reader) if (reader.facts().width, reader.facts().height) == (facts.width, facts.height) => {
                    tracing::info!("{}: reconnected after {} frames", self.url, self.received);
                    return Ok(Some(reader));
                }
                Ok(reader) => {
                    return Err(format!(
                        "{}: the stream came back with {}x{} frames instead of {}x{}",
                        self.url,
                        reader.facts().width,
                        reader.facts().height,
                        facts.width,
                        facts.height
                    ))
                }
                Err(e) => last = e,
            }
        }
        Err(format!(
            "{}: {trouble} (each read waits at most {:.1} s), and {tries} reconnection tries failed (last: {last}); \
             {} frames were received, {} of them dropped",
            self.url,
            self.settings.read_timeout.as_secs_f64(),
            self.received,
            self.dropped
        ))
    }

    /// Sleeps `total` in short steps; false if asked to stop meanwhile.
    fn sleep(&self, total: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < total {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_arriving_frames_keeps_the_queued_ones_in_order_and_counts() {
        let (sender, queue) = sync_channel(2);
        let settings = LiveSettings { read_timeout: Duration::from_secs(1), reconnects: 0, queue_frames: 2 };
        let stop = Arc::new(AtomicBool::new(false));
        let mut worker = Worker { url: "udp://test".into(), settings, sender, stop, received: 0, dropped: 0, reported: None, tries: 0 };
        for i in 0..5u8 {
            worker.received += 1;
            assert!(worker.offer(vec![i]));
        }
        assert_eq!(worker.dropped, 3);
        let kept: Vec<u8> = queue
            .try_iter()
            .map(|m| match m {
                Message::Frame(pixels) => pixels[0],
                Message::Gone(reason) => panic!("unexpected end: {reason}"),
            })
            .collect();
        assert_eq!(kept, [0, 1]);
        drop(queue);
        assert!(!worker.offer(vec![9]), "a reader whose consumer is gone stops");
    }
}

//! An [`EventSink`] that publishes Vigil anomaly events to NATS JetStream.
//!
//! [`JetStreamSink`] publishes each event of camera `<camera>` on the
//! subject `vigil.events.<camera>`, into a JetStream stream (by default
//! `VIGIL_EVENTS`, subjects `vigil.events.>`, file storage) that it creates
//! if the server does not have it yet. The payload is the event as JSON,
//! the same object as a line of `events.jsonl`; the header `Nats-Msg-Id`
//! carries the event's deterministic id ([`event_id`]) and `Vigil-Camera`
//! the camera.
//!
//! # Delivery guarantee
//!
//! Each event is stored in the stream exactly once, provided the broker
//! comes back within the sink's patience (below):
//!
//! * **At least once.** An event leaves the sink's local queue only when
//!   JetStream has acknowledged it, that is once the stream has stored it.
//!   Until then the sink publishes it again (backing off from 100 ms to 5 s
//!   between tries, and at once when the client has reconnected), through
//!   disconnections and broker restarts: the client reconnects by itself,
//!   forever. Events go one at a time, the oldest unacknowledged first, so
//!   the stream holds a sink's events in the order they were emitted; that
//!   costs one round trip to the broker per event, far more than a scorer's
//!   event rate needs.
//! * **At most once.** A publish whose acknowledgement was lost, or an
//!   event published again by a restarted scorer, carries the same
//!   `Nats-Msg-Id`, and JetStream drops a message whose id it has stored
//!   within the stream's duplicate window ([`DUPLICATE_WINDOW`], 10 minutes
//!   for a stream this sink creates); the server rebuilds that window from
//!   the stored messages when it restarts. An acknowledgement flagged
//!   `duplicate` counts as delivered.
//!
//! So an event is lost only if the sink gives up ([`EventSink::finish`]
//! waits [`NatsSettings::finish_timeout`], then says how many events were
//! not delivered) or the process dies with events queued (the queue is in
//! memory), and it is stored twice only if it is published again after the
//! duplicate window. An event too large for the server (its `max_payload`,
//! 1 MiB by default) is refused by `emit` with an error.
//!
//! # Never blocking on the network
//!
//! The client runs on a background thread (a single-threaded tokio
//! runtime). [`EventSink::emit`] only serializes the event and puts it in
//! a queue of at most [`NatsSettings::buffer_events`] events. When the
//! queue is full (the broker has been unreachable for that many events),
//! `emit` waits for room: the scorer slows down to the broker's pace rather
//! than dropping events, and a warning says so once per outage.
//!
//! Connecting at start fails at once, with an error naming the URL, if no
//! server answers there: a typo in the URL should not look like an outage.

#![deny(missing_docs)]

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::{self, Context};
use async_nats::{ConnectOptions, Subject};
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use vigil_events::{Event, EventSink};

/// Events of camera `<camera>` go to the subject `vigil.events.<camera>`.
pub const SUBJECT_PREFIX: &str = "vigil.events";

/// The stream's name unless [`NatsSettings::stream`] says otherwise.
pub const DEFAULT_STREAM: &str = "VIGIL_EVENTS";

/// The duplicate window of a stream this sink creates: an event published
/// again within it is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The header carrying the camera's name (the subject carries it too).
pub const CAMERA_HEADER: &str = "Vigil-Camera";

/// How long one publish waits for its acknowledgement before it is tried
/// again.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting at start waits for a server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause after the first failed publish (or reconnection attempt);
/// it doubles after each failure up to [`LAST_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// Bytes a message's headers add to its payload besides the id and the
/// camera: `NATS/1.0\r\nNats-Msg-Id: \r\nVigil-Camera: \r\n\r\n` and then
/// some.
const HEADER_OVERHEAD: usize = 64;

/// Where and how a [`JetStreamSink`] publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsSettings {
    /// The server, e.g. `nats://127.0.0.1:4222` (several, comma-separated,
    /// for a cluster).
    pub url: String,
    /// The camera the events come from: one NATS subject token (see
    /// [`check_camera`]). Events go to `vigil.events.<camera>`.
    pub camera: String,
    /// The JetStream stream holding the events, created if missing with
    /// subjects `vigil.events.>`, file storage and a duplicate window of
    /// [`DUPLICATE_WINDOW`]. Default [`DEFAULT_STREAM`].
    pub stream: String,
    /// How many events may wait for the broker's acknowledgement before
    /// [`EventSink::emit`] waits for room. Default 10 000.
    pub buffer_events: usize,
    /// How long [`EventSink::finish`] (or dropping the sink) waits for the
    /// queued events to be acknowledged. Default 30 s.
    pub finish_timeout: Duration,
}

impl NatsSettings {
    /// The settings for publishing the events of `camera` to the server at
    /// `url`, every other field at its default.
    pub fn new(url: impl Into<String>, camera: impl Into<String>) -> Self {
        NatsSettings {
            url: url.into(),
            camera: camera.into(),
            stream: DEFAULT_STREAM.to_string(),
            buffer_events: 10_000,
            finish_timeout: Duration::from_secs(30),
        }
    }
}

/// Checks that `camera` is one NATS subject token, so that the subject
/// `vigil.events.<camera>` names that camera alone: not empty, and no
/// whitespace, control characters, `.`, `*`, `>` or `/` (the `/` would make
/// [`event_id`] ambiguous).
pub fn check_camera(camera: &str) -> io::Result<()> {
    let bad = camera.chars().find(|&c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/'));
    if camera.is_empty() || bad.is_some() {
        let what = match bad {
            None => "is empty".to_string(),
            Some(c) => format!("contains {c:?}"),
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "camera name {camera:?} {what}: a camera name is one NATS subject token, \
                 letters, digits and punctuation such as '-' or '_' but no '.', '*', '>', '/' or whitespace"
            ),
        ));
    }
    Ok(())
}

/// The subject the events of `camera` are published on:
/// `vigil.events.<camera>`.
pub fn subject(camera: &str) -> String {
    format!("{SUBJECT_PREFIX}.{camera}")
}

/// The event's id, its `Nats-Msg-Id`: `<camera>/<video>/<start>`, e.g.
/// `cam1/lobby/1200` for the event starting at frame 1200 of video `lobby`.
///
/// It depends on nothing but the camera and the event, so scoring the same
/// video again publishes the same ids and JetStream stores each event once.
/// The camera has no `/` ([`check_camera`]) and the start is a number, so
/// the id reads back unambiguously even when the video's name has `/`s.
/// The end, scores and boxes are not part of it: scoring a video again with
/// another threshold can end an event elsewhere, and within the duplicate
/// window JetStream keeps the version first published.
/// Control characters in the video's name, which a header cannot carry, are
/// replaced by U+FFFD.
pub fn event_id(camera: &str, event: &Event) -> String {
    let video: String = event.video.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    format!("{camera}/{video}/{}", event.start)
}

/// One event waiting for its acknowledgement.
#[derive(Clone)]
struct Pending {
    id: String,
    message: PublishMessage,
}

/// What `emit`, `finish` and the background thread share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when the queue shrinks or the background thread stops.
    room: Condvar,
    /// Wakes the background thread when an event is queued or the sink is
    /// finishing.
    wake: Notify,
    /// Stops the background thread at once, events queued or not.
    stop: Notify,
}

struct State {
    /// Oldest first; the front is the event being published.
    queue: VecDeque<Pending>,
    /// `finish` was called: the background thread stops once the queue is
    /// empty.
    closing: bool,
    /// The background thread has stopped.
    stopped: bool,
    /// Events the server refused for good (too large for it).
    rejected: usize,
    /// The queue was full and `emit` said so; cleared when it empties.
    warned_full: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks the background thread stopped however it ends, panics included,
/// so that `emit` and `finish` never wait for it in vain.
struct StoppedOnDrop(Arc<Shared>);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.lock().stopped = true;
        self.0.room.notify_all();
    }
}

/// Publishes events to NATS JetStream: see the [crate documentation](crate)
/// for the delivery guarantee.
pub struct JetStreamSink {
    name: String,
    url: String,
    camera: String,
    buffer_events: usize,
    finish_timeout: Duration,
    max_payload: usize,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    finished: bool,
}

impl JetStreamSink {
    /// Connects to the server at `settings.url`, gets or creates the stream
    /// `settings.stream`, and starts the background thread that publishes.
    ///
    /// Fails if the camera name is not one subject token, if no server
    /// answers at the URL (within 5 s), if the server has no JetStream, or
    /// if the stream exists without the subject `vigil.events.<camera>`.
    pub fn connect(settings: NatsSettings) -> io::Result<Self> {
        check_camera(&settings.camera)?;
        if settings.buffer_events == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the NATS event buffer must hold at least one event"));
        }
        let subject = subject(&settings.camera);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let reconnected = Arc::new(Notify::new());
        let (context, max_payload) = runtime.block_on(open(&settings, &subject, reconnected.clone()))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State { queue: VecDeque::new(), closing: false, stopped: false, rejected: 0, warned_full: false }),
            room: Condvar::new(),
            wake: Notify::new(),
            stop: Notify::new(),
        });
        let publisher =
            Publisher { shared: shared.clone(), context, subject: Subject::from(subject.as_str()), url: settings.url.clone(), reconnected };
        let stopped = StoppedOnDrop(shared.clone());
        let worker = std::thread::Builder::new().name("vigil-nats".into()).spawn(move || {
            let _stopped = stopped;
            let shared = publisher.shared.clone();
            runtime.block_on(async move {
                tokio::select! {
                    () = publisher.run() => {}
                    () = shared.stop.notified() => {}
                }
            });
        })?;
        let name = format!("NATS JetStream {} ({subject})", settings.url);
        tracing::info!("publishing events to {name}, stream {}", settings.stream);
        Ok(JetStreamSink {
            name,
            url: settings.url,
            camera: settings.camera,
            buffer_events: settings.buffer_events,
            finish_timeout: settings.finish_timeout,
            max_payload,
            shared,
            worker: Some(worker),
            finished: false,
        })
    }

    /// How many events are queued, waiting for the broker's acknowledgement.
    pub fn pending(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Waits up to `timeout` for the queue to empty, then stops the
    /// background thread. Returns the events left in the queue and those
    /// the server refused.
    fn drain(&mut self, timeout: Duration) -> (usize, usize) {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        state.closing = true;
        self.shared.wake.notify_one();
        while !state.queue.is_empty() && !state.stopped {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self.shared.room.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        let left = (state.queue.len(), state.rejected);
        drop(state);
        self.shared.stop.notify_one();
        if let Some(worker) = self.worker.take() {
            // The background thread only awaits, so it sees the stop at once.
            let _ = worker.join();
        }
        left
    }

    fn undelivered_error(&self, left: usize, rejected: usize) -> Option<io::Error> {
        let mut parts = Vec::new();
        if left > 0 {
            let events = if left == 1 { "1 event was" } else { &format!("{left} events were") };
            parts.push(format!("{events} not delivered to NATS at {} within {} s", self.url, self.finish_timeout.as_secs_f64()));
        }
        if rejected > 0 {
            let events = if rejected == 1 { "1 event was" } else { &format!("{rejected} events were") };
            parts.push(format!("{events} refused by NATS at {} (larger than its max_payload)", self.url));
        }
        let kind = if left > 0 { io::ErrorKind::TimedOut } else { io::ErrorKind::InvalidData };
        (!parts.is_empty()).then(|| io::Error::new(kind, parts.join("; ")))
    }
}

impl EventSink for JetStreamSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Queues the event for publishing; waits only when
    /// [`NatsSettings::buffer_events`] events are already queued.
    fn emit(&mut self, event: &Event) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other(format!("{}: an event was emitted after finish", self.name)));
        }
        let payload = serde_json::to_vec(event).map_err(io::Error::other)?;
        let id = event_id(&self.camera, event);
        let size = payload.len() + id.len() + self.camera.len() + HEADER_OVERHEAD;
        if size > self.max_payload {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "event {id} is {size} bytes as a NATS message, more than the {} bytes NATS at {} accepts",
                    self.max_payload, self.url
                ),
            ));
        }
        let message = PublishMessage::build().message_id(&id).header(CAMERA_HEADER, self.camera.as_str()).payload(payload.into());
        let mut state = self.shared.lock();
        loop {
            if state.stopped {
                return Err(io::Error::other(format!("{}: the publishing thread has stopped", self.name)));
            }
            if state.queue.len() < self.buffer_events {
                break;
            }
            if !state.warned_full {
                tracing::warn!(
                    "NATS at {} has acknowledged no event for a while and {} events are queued, the most the buffer holds: \
                     new events wait for room until the broker is back",
                    self.url,
                    state.queue.len()
                );
                state.warned_full = true;
            }
            state = self.shared.room.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.queue.push_back(Pending { id, message });
        drop(state);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Waits up to [`NatsSettings::finish_timeout`] for every queued event
    /// to be acknowledged.
    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let (left, rejected) = self.drain(self.finish_timeout);
        match self.undelivered_error(left, rejected) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl Drop for JetStreamSink {
    /// Without [`EventSink::finish`], still delivers the queued events, for
    /// up to [`NatsSettings::finish_timeout`], and logs those it could not.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let (left, rejected) = self.drain(self.finish_timeout);
        if let Some(error) = self.undelivered_error(left, rejected) {
            tracing::error!("{error}");
        }
    }
}

/// Connects and gets or creates the stream; returns the JetStream context
/// and the server's largest message.
async fn open(settings: &NatsSettings, subject: &str, reconnected: Arc<Notify>) -> io::Result<(Context, usize)> {
    let url = settings.url.clone();
    let events_url = url.clone();
    let options = ConnectOptions::new()
        .name(format!("vigil {}", settings.camera))
        .connection_timeout(CONNECT_TIMEOUT)
        .reconnect_delay_callback(|attempts| retry_delay(attempts.saturating_sub(1)))
        .event_callback(move |event| {
            let url = events_url.clone();
            let reconnected = reconnected.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("lost the connection to NATS at {url}; reconnecting, events queue meanwhile")
                    }
                    async_nats::Event::Connected => {
                        tracing::info!("connected to NATS at {url}");
                        reconnected.notify_waiters();
                    }
                    other => tracing::debug!("NATS at {url}: {other}"),
                }
            }
        });
    let client = options
        .connect(url.as_str())
        .await
        .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, format!("cannot reach NATS at {url}: {e}")))?;
    let max_payload = client.server_info().max_payload;
    let mut context = jetstream::new(client);
    context.set_timeout(ACK_TIMEOUT);
    let config = StreamConfig {
        name: settings.stream.clone(),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        storage: StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    };
    let stream = context.get_or_create_stream(config).await.map_err(|e| {
        io::Error::other(format!(
            "cannot get or create the JetStream stream {} on NATS at {url}: {e} (does the server run JetStream, nats-server -js?)",
            settings.stream
        ))
    })?;
    let info = stream.cached_info();
    if !info.config.subjects.iter().any(|pattern| subject_matches(pattern, subject)) {
        return Err(io::Error::other(format!(
            "the JetStream stream {} on NATS at {url} takes the subjects {:?}, not {subject}: \
             give another stream name, or add {SUBJECT_PREFIX}.> to its subjects",
            settings.stream, info.config.subjects
        )));
    }
    if info.config.duplicate_window < DUPLICATE_WINDOW {
        tracing::warn!(
            "the JetStream stream {} on NATS at {url} drops duplicates within {} s only: an event published again later is stored twice",
            settings.stream,
            info.config.duplicate_window.as_secs_f64()
        );
    }
    Ok((context, max_payload))
}

/// Whether the subject `pattern` (with `*` and `>` wildcards) matches the
/// literal `subject`.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let (mut pattern, mut subject) = (pattern.split('.'), subject.split('.'));
    loop {
        match (pattern.next(), subject.next()) {
            (None, None) | (Some(">"), Some(_)) => return true,
            (Some(p), Some(s)) if p == "*" || p == s => {}
            _ => return false,
        }
    }
}

/// The pause after `failures` consecutive failures (0 for none): 0, then
/// 100 ms, doubling up to 5 s.
fn retry_delay(failures: usize) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let doublings = (failures - 1).min(16) as u32;
    FIRST_RETRY.saturating_mul(1 << doublings).min(LAST_RETRY)
}

/// The background thread's side: publishes the queue's front until it is
/// acknowledged, then the next.
struct Publisher {
    shared: Arc<Shared>,
    context: Context,
    subject: Subject,
    url: String,
    /// Notified (`notify_waiters`) when the client has reconnected.
    reconnected: Arc<Notify>,
}

impl Publisher {
    async fn run(self) {
        let mut failures = 0;
        loop {
            let front = {
                let state = self.shared.lock();
                match state.queue.front() {
                    Some(pending) => Some(pending.clone()),
                    None if state.closing => return,
                    None => None,
                }
            };
            let Some(pending) = front else {
                self.shared.wake.notified().await;
                continue;
            };
            // A publish sent while the connection was dying is lost with it:
            // once the client has reconnected, publish it again at once
            // rather than wait out its acknowledgement's timeout.
            let reconnected = self.reconnected.notified();
            let publish = async {
                match self.context.send_publish(self.subject.clone(), pending.message.clone()).await {
                    Ok(ack) => ack.await,
                    Err(e) => Err(e),
                }
            };
            let acked = tokio::select! {
                acked = publish => acked,
                () = reconnected => {
                    tracing::debug!("reconnected to NATS at {}: publishing event {} again", self.url, pending.id);
                    continue;
                }
            };
            match acked {
                Ok(ack) => {
                    if failures > 0 {
                        tracing::info!("NATS at {} acknowledges events again, after {failures} failed tries", self.url);
                    }
                    failures = 0;
                    tracing::debug!(
                        id = pending.id,
                        stream = ack.stream,
                        sequence = ack.sequence,
                        duplicate = ack.duplicate,
                        "event stored"
                    );
                    self.dequeue(false);
                }
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    tracing::error!("NATS at {} refuses event {}: {e}; it will not be delivered", self.url, pending.id);
                    self.dequeue(true);
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(
                            "cannot publish event {} to NATS at {} ({e}); trying again until it is acknowledged",
                            pending.id,
                            self.url
                        );
                    } else {
                        tracing::debug!("try {failures} to publish event {} to NATS at {} failed: {e}", pending.id, self.url);
                    }
                    let reconnected = self.reconnected.notified();
                    tokio::select! {
                        () = tokio::time::sleep(retry_delay(failures)) => {}
                        () = reconnected => {}
                    }
                }
            }
        }
    }

    /// Removes the queue's front, acknowledged (or refused for good).
    fn dequeue(&self, rejected: bool) {
        let mut state = self.shared.lock();
        state.queue.pop_front();
        if rejected {
            state.rejected += 1;
        }
        if state.queue.is_empty() {
            state.warned_full = false;
        }
        drop(state);
        self.shared.room.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(video: &str, start: u32) -> Event {
        Event { video: video.into(), start, end: start + 4, peak_frame: start + 1, peak_score: 2.0, threshold: 1.0, boxes: vec![] }
    }

    #[test]
    fn a_camera_name_is_one_subject_token() {
        for good in ["cam1", "lobby-east", "Gate_2", "caméra", "a"] {
            check_camera(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        }
        for bad in ["", "cam 1", "cam.1", "cam*", ">", "lobby/east", "tab\there", "new\nline"] {
            let error = check_camera(bad).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            let text = error.to_string();
            assert!(text.contains("one NATS subject token") && text.contains("no '.', '*', '>', '/' or whitespace"), "{text}");
        }
        assert!(check_camera("").unwrap_err().to_string().contains("is empty"));
        assert!(check_camera("cam.1").unwrap_err().to_string().contains("contains '.'"));
        let settings = NatsSettings { camera: "cam.1".into(), ..NatsSettings::new("nats://127.0.0.1:1", "x") };
        let error = JetStreamSink::connect(settings).err().expect("a bad camera name is refused before connecting");
        assert!(error.to_string().contains("camera name \"cam.1\" contains '.'"), "{error}");
    }

    #[test]
    fn an_event_id_is_the_camera_the_video_and_the_start() {
        assert_eq!(event_id("cam1", &event("lobby", 1200)), "cam1/lobby/1200");
        assert_eq!(event_id("cam1", &event("site/lobby", 0)), "cam1/site/lobby/0");
        assert_eq!(event_id("cam1", &event("a\r\nb", 7)), "cam1/a\u{fffd}\u{fffd}b/7");
        // The same event has the same id; another start, camera or video another one.
        assert_eq!(event_id("c", &event("v", 5)), event_id("c", &Event { end: 99, peak_score: 9.0, ..event("v", 5) }));
        assert_ne!(event_id("c", &event("v", 5)), event_id("c", &event("v", 6)));
        assert_ne!(event_id("c", &event("v", 5)), event_id("d", &event("v", 5)));
        assert_eq!(subject("cam1"), "vigil.events.cam1");
    }

    #[test]
    fn defaults() {
        let settings = NatsSettings::new("nats://h:4222", "cam1");
        assert_eq!(settings.stream, "VIGIL_EVENTS");
        assert_eq!(settings.buffer_events, 10_000);
        assert_eq!(settings.finish_timeout, Duration::from_secs(30));
    }

    #[test]
    fn subject_patterns() {
        assert!(subject_matches("vigil.events.>", "vigil.events.cam1"));
        assert!(subject_matches("vigil.*.cam1", "vigil.events.cam1"));
        assert!(subject_matches(">", "vigil.events.cam1"));
        assert!(subject_matches("vigil.events.cam1", "vigil.events.cam1"));
        assert!(!subject_matches("vigil.events.cam2", "vigil.events.cam1"));
        assert!(!subject_matches("vigil.events", "vigil.events.cam1"));
        assert!(!subject_matches("vigil.events.cam1.>", "vigil.events.cam1"));
        assert!(!subject_matches("vigil.>", "vigil"));
    }

    #[test]
    fn retries_back_off_from_100_ms_to_5_s() {
        let delays: Vec<u64> = (0..10).map(|n| retry_delay(n).as_millis() as u64).collect();
        assert_eq!(delays, [0, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(retry_delay(usize::MAX), LAST_RETRY);
    }
}

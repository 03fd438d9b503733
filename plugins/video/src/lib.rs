//! Decoder stage `video`: video files (avi, mp4, mkv, mov, ... every codec
//! the system FFmpeg has) through video-rs, as RGB u8 frames.
//!
//! A damaged or truncated file yields the frames before the damage and a
//! warning that names the file and where decoding stopped; a missing,
//! non-video or undecodable file is an error naming the file.
//!
//! A source with a URL scheme (`rtsp://`, `udp://`, `http://`, ...) or a
//! capture device (`/dev/video0`) is read live (`live.rs`): bounded waits,
//! reconnection, and frames dropped rather than queued without bound when
//! the consumer is slower than the stream.

mod live;
mod pool;
mod reader;

use live::{LiveSettings, LiveStream};
use pool::BufferPool;
pub use reader::{Step, VideoFacts, VideoReader};
use std::time::Duration;

use std::path::Path;
use vigil_stage_api::settings::{within, Settings};
use vigil_stage_api::{
    names, settings, Batch, DType, Decoder, FrameId, Options, ROption, RResult, RStr, StageContext, StageError, StageFactory, StageInfo,
    StageInstance, StageIo, StageKind, TensorSpec, VideoInfo,
};

settings! {
    /// The `video` stage's options; they matter for live streams only.
    pub struct VideoSettings {
        /// live streams: the longest wait for data before the stream counts as stalled
        pub read_timeout_s: f64 = 5.0 => timeout_seconds,
        /// live streams: reconnection tries after a stall or a lost connection (waits 1, 2, 4, ... s); 0: none
        pub reconnects: u32 = 3 => within(0, 1000),
        /// live streams: frames held for scoring; when full, arriving frames are dropped
        pub queue_frames: usize = 100 => within(1, 10_000),
        /// seconds of the input skipped before the first frame used (frames are numbered from there)
        pub start_s: f64 = 0.0 => at_least_zero,
        /// seconds of the input used from `start_s` on; 0: until the input ends
        pub duration_s: f64 = 0.0 => at_least_zero,
    }
}

fn at_least_zero(seconds: &f64) -> Result<(), String> {
    if seconds.is_finite() && *seconds >= 0.0 {
        Ok(())
    } else {
        Err(format!("expected seconds >= 0, found {seconds}"))
    }
}

/// The part of an input that `start_s` and `duration_s` select, in frames.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Span {
    /// Frames still to decode and discard before the first one used.
    skip: u64,
    /// Frames used, from the first; `None`: until the input ends.
    keep: Option<u64>,
}

impl Span {
    /// The span of an input at `fps` frames per second; the whole input
    /// when no range is set.
    fn of(settings: &RangeSettings, fps: Option<f64>, source: &str) -> Result<Span, String> {
        if settings.start_s == 0.0 && settings.duration_s == 0.0 {
            return Ok(Span::default());
        }
        let fps = fps
            .filter(|f| f.is_finite() && *f > 0.0)
            .ok_or_else(|| format!("{source}: start_s and duration_s need the frame rate, and the input does not state one"))?;
        let frames = |seconds: f64| (seconds * fps).round() as u64;
        Ok(Span { skip: frames(settings.start_s), keep: (settings.duration_s > 0.0).then(|| frames(settings.duration_s).max(1)) })
    }

    /// How many of `wanted` frames may still be used after `used` of them.
    fn allowed(&self, used: u32, wanted: u32) -> u32 {
        self.keep.map_or(wanted, |keep| keep.saturating_sub(used as u64).min(wanted as u64) as u32)
    }

    /// The frame count a header promises, within the span.
    fn count(&self, header: Option<u64>) -> Option<u64> {
        let after_skip = header.map(|n| n.saturating_sub(self.skip));
        match (after_skip, self.keep) {
            (Some(n), Some(keep)) => Some(n.min(keep)),
            (n, _) => n,
        }
    }
}

/// `start_s` and `duration_s`.
#[derive(Clone, Copy, Debug)]
struct RangeSettings {
    start_s: f64,
    duration_s: f64,
}

fn timeout_seconds(seconds: &f64) -> Result<(), String> {
    if *seconds > 0.0 && *seconds <= 3600.0 {
        Ok(())
    } else {
        Err(format!("expected seconds in (0, 3600], found {seconds}"))
    }
}

/// The `video` stage's factory.
pub struct VideoStage;

impl StageFactory for VideoStage {
    fn info() -> StageInfo {
        vigil_stage_api::stage_info! {
            name: "video",
            kind: StageKind::Decoder,
            description: "Decodes video files (avi, mp4, mkv, mov, ...) and live streams (rtsp, udp, http, ... URLs) \
                          with the system FFmpeg into RGB frames",
            options: VideoSettings::specs(),
        }
    }

    fn create(options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        let settings = VideoSettings::from_options(options)?;
        let live = LiveSettings {
            read_timeout: Duration::from_secs_f64(settings.read_timeout_s),
            reconnects: settings.reconnects,
            queue_frames: settings.queue_frames,
        };
        let range = RangeSettings { start_s: settings.start_s, duration_s: settings.duration_s };
        Ok(StageInstance::decoder(VideoDecoder { open: None, live, range, pool: BufferPool::default() }, io()))
    }
}

fn io() -> StageIo {
    StageIo::new(vec![], vec![TensorSpec::new(names::FRAMES, DType::U8, 4, "RGB frames [N, H, W, 3], one (video, frame) id per row")])
}

/// Frames a batch buffer is first sized for.
const INITIAL_FRAMES: u64 = 64;

struct VideoDecoder {
    open: Option<Opened>,
    live: LiveSettings,
    range: RangeSettings,
    pool: BufferPool,
}

enum Opened {
    File(OpenVideo),
    Live(OpenStream),
}

/// Whether `source` is read live: a URL, or a capture device.
fn is_live(source: &str) -> bool {
    source.contains("://") || source.starts_with("/dev/")
}

struct OpenStream {
    stream: LiveStream,
    video: u32,
    span: Span,
    decoded: u32,
}

impl OpenStream {
    fn next_batch(&mut self, max_frames: u32, pool: &BufferPool) -> Result<Option<Batch>, StageError> {
        if max_frames == 0 {
            return Err(StageError::invalid("next_batch was asked for 0 frames"));
        }
        let frame_bytes = self.stream.frame_bytes();
        while self.span.skip > 0 {
            let mut discarded = pool.take(INITIAL_FRAMES as usize * frame_bytes + reader::WRITE_SLACK);
            let n = self.stream.read_into(&mut discarded, self.span.skip.min(INITIAL_FRAMES) as usize).map_err(StageError::new)?;
            if n == 0 {
                return Ok(None);
            }
            self.span.skip -= n as u64;
        }
        let max = self.span.allowed(self.decoded, max_frames.min(INITIAL_FRAMES as u32)) as usize;
        if max == 0 {
            return Ok(None);
        }
        let mut data = pool.take(max * frame_bytes + reader::WRITE_SLACK);
        let n = self.stream.read_into(&mut data, max).map_err(StageError::new)?;
        if n == 0 {
            return Ok(None);
        }
        let first = self.decoded;
        self.decoded += n as u32;
        let facts = self.stream.facts();
        let ids = (first..self.decoded).map(|frame| FrameId { video: self.video, frame }).collect();
        let shape = [n, facts.height as usize, facts.width as usize, 3];
        Ok(Some(Batch::new(ids).with(names::FRAMES, pool.tensor(data, &shape))))
    }
}

struct OpenVideo {
    reader: VideoReader,
    video: u32,
    span: Span,
    /// Frames decoded so far (the index of the next one).
    decoded: u32,
    finished: bool,
}

impl OpenVideo {
    fn next_batch(&mut self, max_frames: u32, pool: &BufferPool) -> Result<Option<Batch>, StageError> {
        if max_frames == 0 {
            return Err(StageError::invalid("next_batch was asked for 0 frames"));
        }
        if self.finished {
            return Ok(None);
        }
        self.skip_to_span()?;
        let max_frames = self.span.allowed(self.decoded, max_frames);
        if max_frames == 0 || self.finished {
            self.finished = true;
            return Ok(None);
        }
        let facts = self.reader.facts().clone();
        let remaining = self.span.count(facts.header_frames).map_or(max_frames as u64, |n| n.saturating_sub(self.decoded as u64).max(1));
        // Reserve for what the header promises, but not past a few dozen
        // frames: a header can lie or be missing; the buffer grows if needed.
        let frames = (max_frames as u64).min(remaining).min(INITIAL_FRAMES) as usize;
        let mut data = pool.take(frames * self.reader.frame_bytes() + reader::WRITE_SLACK);
        let first = self.decoded;
        while self.decoded - first < max_frames {
            data.reserve(self.reader.frame_bytes() + reader::WRITE_SLACK);
            match self.reader.read_frame(&mut data) {
                Step::Frame => self.decoded += 1,
                Step::End => {
                    self.finish_at_end();
                    break;
                }
                Step::Damaged(reason) => {
                    self.finish_damaged(&reason);
                    break;
                }
            }
        }
        let n = (self.decoded - first) as usize;
        if n == 0 {
            return Ok(None);
        }
        let ids = (first..self.decoded).map(|frame| FrameId { video: self.video, frame }).collect();
        let shape = [n, facts.height as usize, facts.width as usize, 3];
        Ok(Some(Batch::new(ids).with(names::FRAMES, pool.tensor(data, &shape))))
    }

    /// Decodes and discards the frames before the span.
    fn skip_to_span(&mut self) -> Result<(), StageError> {
        if self.span.skip == 0 {
            return Ok(());
        }
        let mut discarded = Vec::with_capacity(self.reader.frame_bytes() + reader::WRITE_SLACK);
        while self.span.skip > 0 {
            discarded.clear();
            match self.reader.read_frame(&mut discarded) {
                Step::Frame => self.span.skip -= 1,
                Step::End | Step::Damaged(_) => {
                    return Err(StageError::invalid(format!(
                        "{}: start_s is past the end of the input ({} frames before it)",
                        self.reader.path().display(),
                        self.span.skip
                    )))
                }
            }
        }
        Ok(())
    }

    fn finish_at_end(&mut self) {
        self.finished = true;
        if let Some(header) = self.span.count(self.reader.facts().header_frames) {
            if (self.decoded as u64) < header {
                tracing::warn!(
                    "{}: the video stream ended after {} frames but its header says {header}; the file is probably truncated or damaged",
                    self.reader.path().display(),
                    self.decoded
                );
            }
        }
    }

    fn finish_damaged(&mut self, reason: &str) {
        self.finished = true;
        let of = match self.reader.facts().header_frames {
            Some(header) => format!(" of {header} (header count)"),
            None => String::new(),
        };
        tracing::warn!(
            "{}: decoding stopped at frame {}{of}: {reason}; the {} frames before it are used",
            self.reader.path().display(),
            self.decoded,
            self.decoded
        );
    }
}

impl Decoder for VideoDecoder {
    fn open(&mut self, source: RStr<'_>, video: u32) -> RResult<VideoInfo, StageError> {
        self.open = None;
        let source = source.as_str();
        let range = self.range;
        let facts = if is_live(source) {
            LiveStream::open(source, self.live.clone()).and_then(|stream| {
                let facts = stream.facts().clone();
                let span = Span::of(&range, facts.fps, source)?;
                self.open = Some(Opened::Live(OpenStream { stream, video, span, decoded: 0 }));
                Ok((facts, span))
            })
        } else {
            VideoReader::open(Path::new(source)).and_then(|reader| {
                let facts = reader.facts().clone();
                let span = Span::of(&range, facts.fps, source)?;
                self.open = Some(Opened::File(OpenVideo { reader, video, span, decoded: 0, finished: false }));
                Ok((facts, span))
            })
        };
        facts
            .map(|(f, span)| VideoInfo {
                width: f.width,
                height: f.height,
                frame_count: span.count(f.header_frames).into(),
                fps: f.fps.into(),
            })
            .map_err(StageError::invalid)
            .into()
    }

    fn next_batch(&mut self, max_frames: u32) -> RResult<ROption<Batch>, StageError> {
        let result = match self.open.as_mut() {
            None => Err(StageError::invalid("next_batch called before open")),
            Some(Opened::File(open)) => open.next_batch(max_frames, &self.pool),
            Some(Opened::Live(open)) => open.next_batch(max_frames, &self.pool),
        };
        result.map(ROption::from).into()
    }
}

vigil_stage_api::export_plugin!(VideoStage);

#[cfg(test)]
mod tests;

//! Decoder stage `video`: video files (avi, mp4, mkv, mov, ... every codec
//! the system FFmpeg has) through video-rs, as RGB u8 frames.
//!
//! A damaged or truncated file yields the frames before the damage and a
//! warning that names the file and where decoding stopped; a missing,
//! non-video or undecodable file is an error naming the file.

mod pool;
mod reader;

use pool::BufferPool;
pub use reader::{Step, VideoFacts, VideoReader};

use std::path::Path;
use vigil_stage_api::{
    Batch, DType, Decoder, FrameId, OptionSpec, Options, ROption, RResult, RStr, StageContext, StageError, StageFactory, StageInfo,
    StageInstance, StageIo, StageKind, TensorSpec, VideoInfo,
};

/// The `video` stage's factory.
pub struct VideoStage;

impl StageFactory for VideoStage {
    fn info() -> StageInfo {
        vigil_stage_api::stage_info! {
            name: "video",
            kind: StageKind::Decoder,
            description: "Decodes video files (avi, mp4, mkv, mov, ...) with the system FFmpeg into RGB frames",
            options: Vec::<OptionSpec>::new(),
        }
    }

    fn create(_options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        Ok(StageInstance::decoder(VideoDecoder::default(), io()))
    }
}

fn io() -> StageIo {
    StageIo::new(vec![], vec![TensorSpec::new("frames", DType::U8, 4, "RGB frames [N, H, W, 3], one (video, frame) id per row")])
}

/// Frames a batch buffer is first sized for.
const INITIAL_FRAMES: u64 = 64;

#[derive(Default)]
struct VideoDecoder {
    open: Option<OpenVideo>,
    pool: BufferPool,
}

struct OpenVideo {
    reader: VideoReader,
    video: u32,
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
        let facts = self.reader.facts().clone();
        let remaining = facts.header_frames.map_or(max_frames as u64, |n| n.saturating_sub(self.decoded as u64).max(1));
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
        Ok(Some(Batch::new(ids).with("frames", pool.tensor(data, &shape))))
    }

    fn finish_at_end(&mut self) {
        self.finished = true;
        if let Some(header) = self.reader.facts().header_frames {
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
        let result = VideoReader::open(Path::new(source.as_str())).map_err(StageError::invalid).map(|reader| {
            let facts = reader.facts().clone();
            self.open = Some(OpenVideo { reader, video, decoded: 0, finished: false });
            VideoInfo { width: facts.width, height: facts.height, frame_count: facts.header_frames.into(), fps: facts.fps.into() }
        });
        result.into()
    }

    fn next_batch(&mut self, max_frames: u32) -> RResult<ROption<Batch>, StageError> {
        let result = match self.open.as_mut() {
            None => Err(StageError::invalid("next_batch called before open")),
            Some(open) => open.next_batch(max_frames, &self.pool),
        };
        result.map(ROption::from).into()
    }
}

vigil_stage_api::export_plugin!(VideoStage);

#[cfg(test)]
mod tests;

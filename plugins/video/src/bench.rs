//! Decode-rate measurement for `vigil bench decode` and the bench example.

use crate::{Step, VideoReader};
use std::path::Path;
use std::time::Instant;

/// Frames decoded and the wall time it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeRate {
    pub frames: u64,
    pub seconds: f64,
}

impl DecodeRate {
    pub fn frames_per_second(&self) -> f64 {
        self.frames as f64 / self.seconds.max(1e-9)
    }
}

/// Decodes every frame of `path` to RGB in batches of `batch` frames, the way
/// the `video` stage does, reusing one batch buffer.
pub fn measure_video_decode(path: &Path, batch: usize) -> Result<DecodeRate, String> {
    let start = Instant::now();
    let mut reader = VideoReader::open(path)?;
    let mut buffer = Vec::with_capacity(batch.max(1) * reader.frame_bytes());
    let mut frames = 0u64;
    loop {
        if buffer.len() >= batch.max(1) * reader.frame_bytes() {
            buffer.clear();
        }
        match reader.read_frame(&mut buffer) {
            Step::Frame => frames += 1,
            Step::End => break,
            Step::Damaged(reason) => return Err(format!("{}: decoding failed at frame {frames}: {reason}", path.display())),
        }
    }
    Ok(DecodeRate { frames, seconds: start.elapsed().as_secs_f64() })
}

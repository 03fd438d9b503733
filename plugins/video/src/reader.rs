//! One video file read frame by frame through video-rs' `decode_raw()`:
//! video-rs converts each decoded frame to RGB24 with one swscale context
//! that lives as long as the file, and we copy the RGB rows straight into
//! the caller's batch buffer (no per-frame ndarray allocation).

use std::path::{Path, PathBuf};
use std::sync::Once;
use video_rs::{Decoder, Error as VideoError};

/// Facts about an opened video, as the container reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoFacts {
    pub width: u32,
    pub height: u32,
    /// The stream's frame count from the header, when the container has one.
    pub header_frames: Option<u64>,
    pub fps: Option<f64>,
}

/// How reading one more frame ended.
#[derive(Debug)]
pub enum Step {
    /// A frame was appended to the buffer.
    Frame,
    /// The stream ended.
    End,
    /// Decoding failed: the file is damaged from here on.
    Damaged(String),
}

pub struct VideoReader {
    path: PathBuf,
    decoder: Decoder,
    facts: VideoFacts,
}

/// Once per process: FFmpeg's global setup, and its log routed to `tracing`.
fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(e) = video_rs::init() {
            tracing::warn!("FFmpeg initialisation reported: {e}");
        }
    });
}

impl VideoReader {
    /// Opens `path`; the error names the file and says what is wrong with it.
    pub fn open(path: &Path) -> Result<VideoReader, String> {
        let shown = path.display();
        if path.is_dir() {
            return Err(format!(
                "{shown} is a folder; the `video` decoder reads video files (use the `frames` decoder for frame folders)"
            ));
        }
        match std::fs::metadata(path) {
            Err(e) => return Err(format!("cannot read video file {shown}: {e}")),
            Ok(m) if m.len() == 0 => return Err(format!("video file {shown} is empty")),
            Ok(_) => {}
        }
        init_ffmpeg();
        let decoder = Decoder::new(path).map_err(|e| match e {
            VideoError::BackendError(video_rs::ffmpeg::Error::DecoderNotFound) => {
                format!("{shown}: this FFmpeg build has no decoder for the file's video codec")
            }
            VideoError::BackendError(video_rs::ffmpeg::Error::StreamNotFound) => {
                format!("{shown} holds no video stream")
            }
            other => format!("{shown} cannot be opened as a video: {other}"),
        })?;
        let (width, height) = decoder.size();
        let header_frames = decoder.frames().ok().filter(|&n| n > 0);
        let fps = Some(decoder.frame_rate() as f64).filter(|f| f.is_finite() && *f > 0.0);
        Ok(VideoReader { path: path.to_path_buf(), decoder, facts: VideoFacts { width, height, header_frames, fps } })
    }

    pub fn facts(&self) -> &VideoFacts {
        &self.facts
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of one RGB frame.
    pub fn frame_bytes(&self) -> usize {
        self.facts.width as usize * self.facts.height as usize * 3
    }

    /// Decodes the next frame and appends its RGB rows to `out`.
    pub fn read_frame(&mut self, out: &mut Vec<u8>) -> Step {
        let frame = match self.decoder.decode_raw() {
            Ok(frame) => frame,
            Err(VideoError::DecodeExhausted | VideoError::ReadExhausted) => return Step::End,
            Err(e) => return Step::Damaged(e.to_string()),
        };
        let (width, height) = (self.facts.width as usize, self.facts.height as usize);
        if frame.width() as usize != width || frame.height() as usize != height {
            return Step::Damaged(format!(
                "frame size changed from {width}x{height} to {}x{}",
                frame.width(),
                frame.height()
            ));
        }
        let stride = frame.stride(0);
        let data = frame.data(0);
        let row = width * 3;
        for y in 0..height {
            out.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        Step::Frame
    }
}

//! One video file read frame by frame. video-rs opens the file and reads
//! its packets; decoding and the conversion to RGB24 use its FFmpeg
//! bindings directly so that nothing is allocated per frame: one decoded
//! frame is reused, and one swscale context converts each frame straight
//! into the caller's batch buffer. (video-rs' own `decode_raw()` allocates a
//! new RGB frame per frame, which had us at 341 frames/s against OpenCV's 974.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;
use video_rs::ffmpeg as ff;
use video_rs::{Error as VideoError, Options, Reader, ReaderBuilder};

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
    /// A frame was written to the buffer.
    Frame,
    /// The stream ended.
    End,
    /// Decoding failed: the file is damaged from here on.
    Damaged(String),
}

/// Bytes swscale may write past the end of the last RGB row (its SIMD
/// converters work in blocks of pixels); reserved after every batch.
pub const WRITE_SLACK: usize = 256;

pub struct VideoReader {
    path: PathBuf,
    reader: Reader,
    stream: usize,
    decoder: ff::decoder::Video,
    decoded: ff::frame::Video,
    /// Built for the decoded frames' pixel format and range (rebuilt if they change).
    scaler: Option<(ff::software::scaling::Context, ff::format::Pixel, bool)>,
    draining: bool,
    /// A live stream: packets are read one by one so that a stall or a
    /// dropped connection is reported with FFmpeg's reason (video-rs' reader
    /// retries, then reports every failure as the end).
    live: bool,
    facts: VideoFacts,
}

// SAFETY: the FFmpeg contexts are owned by this value alone and only used
// through `&mut self`; moving them to another thread is fine.
unsafe impl Send for VideoReader {}

/// Once per process: FFmpeg's global setup, and its log routed to `tracing`.
fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(e) = video_rs::init() {
            tracing::warn!("FFmpeg initialisation reported: {e}");
        }
    });
}

#[cfg(test)]
pub(crate) fn init_ffmpeg_for_tests() {
    init_ffmpeg();
}

impl VideoReader {
    /// Opens `path`; the error names the file and says what is wrong with it.
    pub fn open(path: &Path) -> Result<VideoReader, String> {
        let shown = path.display();
        if path.is_dir() {
            return Err(format!("{shown} is a folder; the `video` decoder reads video files (use the `frames` decoder for frame folders)"));
        }
        match std::fs::metadata(path) {
            Err(e) => return Err(format!("cannot read video file {shown}: {e}")),
            Ok(m) if m.len() == 0 => return Err(format!("video file {shown} is empty")),
            Ok(_) => {}
        }
        init_ffmpeg();
        let reader = Reader::new(path).map_err(|e| format!("{shown} cannot be opened as a video: {e}"))?;
        VideoReader::from_reader(path, reader, false)
    }

    /// Opens a live stream (a URL FFmpeg reads, or a capture device): a read
    /// that waits longer than `timeout` for data fails instead of hanging.
    pub fn open_stream(url: &str, timeout: Duration) -> Result<VideoReader, String> {
        init_ffmpeg();
        let micros = timeout.as_micros().max(1).to_string();
        let mut options = HashMap::new();
        // `rw_timeout` bounds every read of any protocol; `timeout` is the
        // socket (udp, tcp, rtsp) and connection (http) timeout.
        options.insert("rw_timeout".to_string(), micros.clone());
        options.insert("timeout".to_string(), micros);
        let options = Options::from(options);
        let reader = ReaderBuilder::new(Path::new(url))
            .with_options(&options)
            .build()
            .map_err(|e| format!("{url} cannot be opened as a video stream: {e}"))?;
        VideoReader::from_reader(Path::new(url), reader, true)
    }

    fn from_reader(path: &Path, reader: Reader, live: bool) -> Result<VideoReader, String> {
        let shown = path.display();
        let stream_index = reader.best_video_stream_index().map_err(|_| format!("{shown} holds no video stream"))?;
        let stream = reader.input.stream(stream_index).ok_or_else(|| format!("{shown} holds no video stream"))?;
        let codec_problem = |e: ff::Error| match e {
            ff::Error::DecoderNotFound => format!("{shown}: this FFmpeg build has no decoder for the file's video codec"),
            other => format!("{shown}: cannot set up its video decoder: {other}"),
        };
        let mut context = ff::codec::Context::from_parameters(stream.parameters()).map_err(codec_problem)?;
        context.set_threading(ff::codec::threading::Config::kind(ff::codec::threading::Type::Frame));
        let decoder = context.decoder().video().map_err(codec_problem)?;
        if decoder.width() == 0 || decoder.height() == 0 {
            return Err(format!("{shown}: the video stream does not say its frame size"));
        }
        let rate = stream.avg_frame_rate();
        let rate = if rate.denominator() > 0 && rate.numerator() > 0 { rate } else { stream.rate() };
        let fps = (rate.denominator() > 0).then(|| rate.numerator() as f64 / rate.denominator() as f64).filter(|f| *f > 0.0);
        let facts = VideoFacts {
            width: decoder.width(),
            height: decoder.height(),
            header_frames: Some(stream.frames()).filter(|&n| n > 0).map(|n| n as u64),
            fps,
        };
        Ok(VideoReader {
            path: path.to_path_buf(),
            reader,
            stream: stream_index,
            decoder,
            decoded: ff::frame::Video::empty(),
            scaler: None,
            draining: false,
            live,
            facts,
        })
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

    /// Decodes the next frame into `self.decoded`; false at the end.
    fn decode_next(&mut self) -> Result<bool, String> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => return Ok(true),
                Err(ff::Error::Eof) => return Ok(false),
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN && !self.draining => {}
                Err(e) => return Err(e.to_string()),
            }
            if self.live {
                self.send_next_live_packet()?;
                continue;
            }
            match self.reader.read(self.stream) {
                Ok(packet) => {
                    let (packet, _) = packet.into_inner_parts();
                    self.decoder.send_packet(&packet).map_err(|e| e.to_string())?;
                }
                Err(VideoError::ReadExhausted) => {
                    self.decoder.send_eof().map_err(|e| e.to_string())?;
                    self.draining = true;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Reads packets until one of the video stream's reaches the decoder, or
    /// the stream ends (the decoder then drains).
    fn send_next_live_packet(&mut self) -> Result<(), String> {
        let mut packet = ff::Packet::empty();
        loop {
            match packet.read(&mut self.reader.input) {
                Ok(()) if packet.stream() == self.stream => return self.decoder.send_packet(&packet).map_err(|e| e.to_string()),
                Ok(()) | Err(ff::Error::InvalidData) => {}
                Err(ff::Error::Eof) => {
                    self.draining = true;
                    return self.decoder.send_eof().map_err(|e| e.to_string());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Decodes the next frame and appends its RGB pixels to `out`, which
    /// must have room for one frame plus [`WRITE_SLACK`] bytes.
    pub fn read_frame(&mut self, out: &mut Vec<u8>) -> Step {
        match self.decode_next() {
            Ok(true) => {}
            Ok(false) => return Step::End,
            Err(e) => return Step::Damaged(e),
        }
        let (width, height) = (self.facts.width, self.facts.height);
        if self.decoded.width() != width || self.decoded.height() != height {
            return Step::Damaged(format!(
                "frame size changed from {width}x{height} to {}x{}",
                self.decoded.width(),
                self.decoded.height()
            ));
        }
        let (format, full_range) = source_format(&self.decoded);
        if self.scaler.as_ref().is_none_or(|(_, f, r)| (*f, *r) != (format, full_range)) {
            match rgb_scaler(format, full_range, width, height) {
                Ok(s) => self.scaler = Some((s, format, full_range)),
                Err(e) => return Step::Damaged(format!("cannot convert {format:?} frames to RGB: {e}")),
            }
        }
        let frame_bytes = self.frame_bytes();
        let (scaler, _, _) = self.scaler.as_mut().expect("just built");
        assert!(out.capacity() - out.len() >= frame_bytes + WRITE_SLACK, "buffer has no room for a frame");
        let row = (width * 3) as i32;
        // SAFETY: `out` has room for the frame plus slack (checked above);
        // swscale writes `height` rows of `row` bytes from there, and the
        // decoded frame's planes are valid for the call.
        let written = unsafe {
            let dst = out.as_mut_ptr().add(out.len());
            let src = self.decoded.as_ptr();
            let dst_data: [*mut u8; 4] = [dst, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut()];
            let dst_stride: [i32; 4] = [row, 0, 0, 0];
            ff::ffi::sws_scale(
                scaler.as_mut_ptr(),
                (*src).data.as_ptr() as *const *const u8,
                (*src).linesize.as_ptr(),
                0,
                height as i32,
                dst_data.as_ptr(),
                dst_stride.as_ptr(),
            )
        };
        if written != height as i32 {
            return Step::Damaged(format!("converting the frame to RGB wrote {written} of {height} rows"));
        }
        // SAFETY: the bytes up to the new length were just written.
        unsafe { out.set_len(out.len() + frame_bytes) };
        Step::Frame
    }
}

/// The frame's pixel format with the deprecated full-range `YUVJ` formats
/// (MJPEG) mapped to their `YUV` twins, and whether the range is full.
fn source_format(frame: &ff::frame::Video) -> (ff::format::Pixel, bool) {
    use ff::format::Pixel;
    let full = frame.color_range() == ff::util::color::Range::JPEG;
    match frame.format() {
        Pixel::YUVJ420P => (Pixel::YUV420P, true),
        Pixel::YUVJ422P => (Pixel::YUV422P, true),
        Pixel::YUVJ444P => (Pixel::YUV444P, true),
        Pixel::YUVJ440P => (Pixel::YUV440P, true),
        Pixel::YUVJ411P => (Pixel::YUV411P, true),
        other => (other, full),
    }
}

/// A same-size converter to RGB24 that reads `full_range` YUV correctly.
fn rgb_scaler(format: ff::format::Pixel, full_range: bool, width: u32, height: u32) -> Result<ff::software::scaling::Context, ff::Error> {
    let flags = ff::software::scaling::Flags::BILINEAR;
    let mut scaler = ff::software::scaling::Context::get(format, width, height, ff::format::Pixel::RGB24, width, height, flags)?;
    if full_range {
        // SAFETY: plain calls on a valid context with FFmpeg's own tables.
        unsafe {
            let table = ff::ffi::sws_getCoefficients(ff::ffi::SWS_CS_DEFAULT);
            ff::ffi::sws_setColorspaceDetails(scaler.as_mut_ptr(), table, 1, table, 1, 0, 1 << 16, 1 << 16);
        }
    }
    Ok(scaler)
}

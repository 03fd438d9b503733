//! Dataset layouts as they ship, resolved into a list of videos:
//! - a folder of per-video frame folders (`testing/frames/01/000.jpg`,
//!   UCSD `Test/Test001/001.tif`; UCSD's `*_gt` mask folders are skipped),
//! - a folder of video files (`testing_videos/01.avi`),
//! - a single video file, or a single frame folder,
//! - a live stream: a URL FFmpeg opens (`rtsp://`, `http://`, `udp://`, ...)
//!   or a capture device (`/dev/video0`).

use crate::error::{invalid, io, Result};
use crate::natural::{file_name, sort_paths};
use std::path::{Path, PathBuf};

pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "tif", "tiff", "bmp"];
pub const VIDEO_EXTENSIONS: &[&str] = &["avi", "mp4", "mkv", "mov", "m4v", "mpg", "mpeg", "webm", "wmv", "flv"];
/// URL schemes read as live streams (the network protocols of FFmpeg that carry video).
pub const STREAM_SCHEMES: &[&str] = &["rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A folder of image files, one per frame.
    FrameFolder,
    VideoFile,
    /// A live stream (URL or capture device): no end known in advance, no
    /// seeking, and it may stall.
    Stream,
}

impl SourceKind {
    /// The decoder plugin that reads this kind of source.
    pub fn decoder(self) -> &'static str {
        match self {
            SourceKind::FrameFolder => "frames",
            SourceKind::VideoFile | SourceKind::Stream => "video",
        }
    }
}

/// Whether `text` names a live stream: a URL with one of [`STREAM_SCHEMES`],
/// or a Linux capture device.
pub fn is_stream(text: &str) -> bool {
    let scheme = text.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
    scheme.is_some_and(|s| STREAM_SCHEMES.contains(&s.as_str())) || text.starts_with("/dev/video")
}

/// A name for a stream's rows in scores.csv: the URL without its scheme
/// separator, query or credentials, in characters safe in a file name
/// (`udp://127.0.0.1:5000` -> `udp-127.0.0.1-5000`).
fn stream_name(text: &str) -> String {
    let (scheme, rest) = text.split_once("://").unwrap_or(("", text));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let joined = if scheme.is_empty() { rest.to_string() } else { format!("{scheme}-{rest}") };
    let name: String = joined.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' { c } else { '-' }).collect();
    name.trim_matches('-').to_string()
}

/// One video of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSource {
    /// The folder or file name: `01`, `Test001`, `01.avi`.
    pub name: String,
    pub path: PathBuf,
    pub kind: SourceKind,
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

pub fn is_image_file(path: &Path) -> bool {
    has_extension(path, IMAGE_EXTENSIONS)
}

pub fn is_video_file(path: &Path) -> bool {
    has_extension(path, VIDEO_EXTENSIONS)
}

fn is_hidden(path: &Path) -> bool {
    file_name(path).starts_with('.')
}

/// The visible entries of a folder, in natural order.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if !is_hidden(&path) {
            out.push(path);
        }
    }
    sort_paths(&mut out);
    Ok(out)
}

/// The frames of a frame folder in natural order (`2.jpg` before `10.jpg`).
/// Any other visible file is an error naming it; subfolders are ignored.
pub fn list_frame_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut frames = Vec::new();
    for path in entries(dir)? {
        if path.is_dir() {
            continue;
        }
        if !is_image_file(&path) {
            return invalid(format!(
                "{} is not an image file (a frame folder holds only {} files)",
                path.display(),
                IMAGE_EXTENSIONS.join("/")
            ));
        }
        frames.push(path);
    }
    if frames.is_empty() {
        return invalid(format!("frame folder {} holds no image files", dir.display()));
    }
    Ok(frames)
}

/// Whether `name` is a UCSD pixel-mask folder (`Test001_gt`).
fn is_mask_folder(name: &str) -> bool {
    name.to_lowercase().ends_with("_gt")
}

/// Resolves a dataset path into its videos, in natural order.
pub fn resolve(path: &Path) -> Result<Vec<VideoSource>> {
    if let Some(text) = path.to_str().filter(|t| is_stream(t)) {
        return Ok(vec![VideoSource { name: stream_name(text), path: path.to_path_buf(), kind: SourceKind::Stream }]);
    }
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let source = |path: &Path, kind| VideoSource { name: file_name(path), path: path.to_path_buf(), kind };
    if meta.is_file() {
        if is_video_file(path) {
            return Ok(vec![source(path, SourceKind::VideoFile)]);
        }
        return invalid(format!("{} is neither a video file ({}) nor a folder", path.display(), VIDEO_EXTENSIONS.join("/")));
    }
    let all = entries(path)?;
    if all.is_empty() {
        return invalid(format!("{} is an empty folder", path.display()));
    }
    let images: Vec<&PathBuf> = all.iter().filter(|p| p.is_file() && is_image_file(p)).collect();
    let videos: Vec<&PathBuf> = all.iter().filter(|p| p.is_file() && is_video_file(p)).collect();
    let folders: Vec<&PathBuf> = all.iter().filter(|p| p.is_dir() && !is_mask_folder(&file_name(p))).collect();
    let present = [(!images.is_empty(), "image files"), (!videos.is_empty(), "video files"), (!folders.is_empty(), "subfolders")];
    let kinds: Vec<&str> = present.iter().filter(|(p, _)| *p).map(|(_, k)| *k).collect();
    if kinds.len() > 1 {
        return invalid(format!(
            "{} mixes {}; expected one video per file, one frame folder, or one folder of frame folders",
            path.display(),
            kinds.join(" and ")
        ));
    }
    if !images.is_empty() {
        list_frame_files(path)?;
        return Ok(vec![source(path, SourceKind::FrameFolder)]);
    }
    if !videos.is_empty() {
        return Ok(videos.into_iter().map(|v| source(v, SourceKind::VideoFile)).collect());
    }
    if folders.is_empty() {
        return invalid(format!("{} holds no images, video files or frame folders", path.display()));
    }
    let mut out = Vec::new();
    for folder in folders {
        let has_images = entries(folder)?.iter().any(|p| p.is_file() && is_image_file(p));
        if !has_images {
            return invalid(format!(
                "{} holds no image files (expected {} to be a folder of frame folders such as testing/frames/01/000.jpg)",
                folder.display(),
                path.display()
            ));
        }
        out.push(source(folder, SourceKind::FrameFolder));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn urls_and_capture_devices_are_streams_named_without_credentials_or_query() {
        let one = |text: &str| {
            let sources = resolve(Path::new(text)).unwrap();
            assert_eq!(sources.len(), 1);
            assert_eq!(sources[0].kind, SourceKind::Stream);
            assert_eq!(sources[0].path, Path::new(text));
            sources[0].name.clone()
        };
        assert_eq!(one("udp://127.0.0.1:5000"), "udp-127.0.0.1-5000");
        assert_eq!(one("rtsp://user:secret@cam.local:554/live?x=1"), "rtsp-cam.local-554-live");
        assert_eq!(one("HTTP://host/stream.ts"), "HTTP-host-stream.ts");
        assert_eq!(one("/dev/video0"), "dev-video0");
        assert!(!is_stream("ftp://host/file.avi") && !is_stream("videos/01.avi") && !is_stream("file:///x.avi"));
        assert_eq!(SourceKind::Stream.decoder(), "video");
        assert_eq!(SourceKind::FrameFolder.decoder(), "frames");
    }

    #[test]
    fn folder_of_frame_folders_in_natural_order_skipping_masks() {
        let dir = tempfile::tempdir().unwrap();
        for v in ["Test10", "Test2", "Test1"] {
            touch(&dir.path().join(v).join("001.tif"));
        }
        touch(&dir.path().join("Test1_gt/001.bmp"));
        touch(&dir.path().join("UCSDped2.m"));
        let videos = resolve(dir.path()).unwrap();
        let names: Vec<&str> = videos.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["Test1", "Test2", "Test10"]);
        assert!(videos.iter().all(|v| v.kind == SourceKind::FrameFolder));
    }

    #[test]
    fn video_files_single_file_and_single_frame_folder() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("videos/10.avi"));
        touch(&dir.path().join("videos/02.mp4"));
        let videos = resolve(&dir.path().join("videos")).unwrap();
        assert_eq!(videos.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["02.mp4", "10.avi"]);
        assert!(videos.iter().all(|v| v.kind == SourceKind::VideoFile));

        let one = resolve(&dir.path().join("videos/10.avi")).unwrap();
        assert_eq!(one[0].name, "10.avi");

        touch(&dir.path().join("frames/2.png"));
        touch(&dir.path().join("frames/10.png"));
        let folder = resolve(&dir.path().join("frames")).unwrap();
        assert_eq!((folder.len(), folder[0].kind), (1, SourceKind::FrameFolder));
        let files = list_frame_files(&folder[0].path).unwrap();
        assert_eq!(files.iter().map(|p| file_name(p)).collect::<Vec<_>>(), ["2.png", "10.png"]);
    }

    #[test]
    fn clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(&dir.path().join("absent")).unwrap_err().to_string();
        assert!(err.contains("absent"), "{err}");
        let err = resolve(dir.path()).unwrap_err().to_string();
        assert!(err.contains("empty folder"), "{err}");

        touch(&dir.path().join("mixed/01.avi"));
        touch(&dir.path().join("mixed/000.jpg"));
        let err = resolve(&dir.path().join("mixed")).unwrap_err().to_string();
        assert!(err.contains("mixes image files and video files"), "{err}");

        touch(&dir.path().join("nested/frames/01/000.jpg"));
        let err = resolve(&dir.path().join("nested")).unwrap_err().to_string();
        assert!(err.contains("frames holds no image files"), "{err}");

        touch(&dir.path().join("notes.txt"));
        let err = resolve(&dir.path().join("notes.txt")).unwrap_err().to_string();
        assert!(err.contains("neither a video file"), "{err}");

        touch(&dir.path().join("bad/000.jpg"));
        touch(&dir.path().join("bad/readme.txt"));
        let err = list_frame_files(&dir.path().join("bad")).unwrap_err().to_string();
        assert!(err.contains("readme.txt is not an image file"), "{err}");
    }
}

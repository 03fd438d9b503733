//! A synthetic surveillance scene with known answers, for `vigil demo` and
//! for tests: a fixed camera over a walkway, many look-alike walkers moving
//! left to right at walking speed, and rare anomalies (a fast cyclist, a
//! walker against the flow, a cart). Seeded and deterministic: the same
//! config gives byte-identical files.
//!
//! Layout written by [`generate`] (the frame layout `resolve` reads):
//! ```text
//! <out>/frames/01/000.png ...   RGB frames, one folder per video
//! <out>/masks/01/000.png ...    pixel masks, 255 = anomalous
//! <out>/labels.csv              video,frame,label
//! <out>/scene.json              the config and the anomaly events
//! ```

mod render;
mod rng;
mod world;

pub use world::AnomalyKind;

use rayon::prelude::*;
use rng::Rng;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct SceneConfig {
    pub seed: u64,
    pub videos: usize,
    pub frames_per_video: usize,
    pub width: u32,
    pub height: u32,
    /// Normal walkers in view at any time.
    pub walkers: usize,
}

impl Default for SceneConfig {
    fn default() -> Self {
        SceneConfig { seed: 0, videos: 6, frames_per_video: 80, width: 240, height: 160, walkers: 8 }
    }
}

/// One anomaly as it shows in the frames (0-based, inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalyEvent {
    pub video: String,
    pub kind: AnomalyKind,
    pub first_frame: usize,
    pub last_frame: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SceneSummary {
    pub root: PathBuf,
    /// The folder of per-video frame folders (give it to `[data] test`).
    pub frames_root: PathBuf,
    /// The folder of per-video mask folders (pixel-level ground truth).
    pub masks_root: PathBuf,
    /// `video,frame,label` frame labels.
    pub labels: PathBuf,
    pub videos: usize,
    pub frames: usize,
    pub anomalous_frames: usize,
    pub events: Vec<AnomalyEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    #[error("scene config: {0}")]
    Config(String),
    // Each cause is part of the message, not a chained source, so that a
    // report printing the whole chain names it once.
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{}: {cause}", path.display())]
    Image { path: PathBuf, cause: image::ImageError },
    #[error("refusing to replace {}: it exists and is not a scene folder (no scene.json)", .0.display())]
    NotAScene(PathBuf),
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> SceneError + '_ {
    move |cause| SceneError::Io { path: path.to_path_buf(), cause }
}

impl SceneConfig {
    fn check(&self) -> Result<(), SceneError> {
        let problem = if self.width < 96 || self.height < 64 {
            Some(format!("frames must be at least 96x64, got {}x{}", self.width, self.height))
        } else if self.videos == 0 || self.videos > 99 {
            Some(format!("videos must be 1..=99, got {}", self.videos))
        } else if self.frames_per_video < 40 || self.frames_per_video > 999 {
            Some(format!("frames_per_video must be 40..=999, got {}", self.frames_per_video))
        } else {
            None
        };
        problem.map_or(Ok(()), |p| Err(SceneError::Config(p)))
    }
}

/// Writes the scene into `out` (created or replaced as a whole: the files
/// are written to a temporary sibling folder that is renamed at the end).
/// An existing `out` is replaced only if it is empty or an earlier scene.
pub fn generate(config: &SceneConfig, out: &Path) -> Result<SceneSummary, SceneError> {
    generate_with_progress(config, out, &|_| {})
}

/// [`generate`], calling `video_done` with the number of videos written
/// after each one (a large scene takes minutes).
pub fn generate_with_progress(config: &SceneConfig, out: &Path, video_done: &dyn Fn(usize)) -> Result<SceneSummary, SceneError> {
    config.check()?;
    if out.exists() && !is_replaceable(out) {
        return Err(SceneError::NotAScene(out.to_path_buf()));
    }
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "scene".into());
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_at(parent))?;
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_at(&tmp))?;
    }
    let written = write_scene(config, &tmp, video_done);
    let summary = match written {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(io_at(out))?;
    }
    std::fs::rename(&tmp, out).map_err(io_at(out))?;
    Ok(SceneSummary {
        frames_root: out.join("frames"),
        masks_root: out.join("masks"),
        labels: out.join("labels.csv"),
        root: out.to_path_buf(),
        ..summary
    })
}

fn is_replaceable(out: &Path) -> bool {
    out.is_dir() && (out.join("scene.json").is_file() || std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_none()))
}

fn video_name(index: usize) -> String {
    format!("{:02}", index + 1)
}

/// Renders and writes every video into `root`; returns the counts and events.
fn write_scene(config: &SceneConfig, root: &Path, video_done: &dyn Fn(usize)) -> Result<SceneSummary, SceneError> {
    let rng = Rng::new(config.seed);
    let background = render::background(config.width, config.height, &mut rng.fork(0));
    let mut csv = String::from("video,frame,label\n");
    let mut events = Vec::new();
    let mut anomalous_frames = 0;
    for index in 0..config.videos {
        let name = video_name(index);
        let frames_dir = root.join("frames").join(&name);
        let masks_dir = root.join("masks").join(&name);
        for dir in [&frames_dir, &masks_dir] {
            std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        }
        let states = world::simulate(config, index, &mut rng.fork(index as u64 + 1));
        let labels: Vec<bool> = states
            .par_iter()
            .enumerate()
            .map(|(f, objects)| {
                let frame = render::render(&background, config.width, config.height, objects);
                let anomalous = frame.mask.iter().any(|&m| m != 0);
                let (w, h) = (config.width, config.height);
                let save = |path: PathBuf, result: image::ImageResult<()>| result.map_err(|cause| SceneError::Image { path, cause });
                let frame_path = frames_dir.join(format!("{f:03}.png"));
                let rgb = image::RgbImage::from_raw(w, h, frame.rgb).expect("frame buffer matches its size");
                save(frame_path.clone(), rgb.save(&frame_path))?;
                let mask_path = masks_dir.join(format!("{f:03}.png"));
                let mask = image::GrayImage::from_raw(w, h, frame.mask).expect("mask buffer matches its size");
                save(mask_path.clone(), mask.save(&mask_path))?;
                Ok(anomalous)
            })
            .collect::<Result<_, SceneError>>()?;
        for (f, &label) in labels.iter().enumerate() {
            let _ = writeln!(csv, "{name},{f},{}", label as u8);
        }
        anomalous_frames += labels.iter().filter(|&&l| l).count();
        if let (Some(kind), Some(first), Some(last)) =
            (world::anomaly_of(index), labels.iter().position(|&l| l), labels.iter().rposition(|&l| l))
        {
            events.push(AnomalyEvent { video: name, kind, first_frame: first, last_frame: last });
        }
        video_done(index + 1);
    }
    let labels_path = root.join("labels.csv");
    std::fs::write(&labels_path, csv).map_err(io_at(&labels_path))?;
    let description = serde_json::json!({
        "generator": "vigil-scene",
        "version": env!("CARGO_PKG_VERSION"),
        "seed": config.seed,
        "videos": config.videos,
        "frames_per_video": config.frames_per_video,
        "width": config.width,
        "height": config.height,
        "walkers": config.walkers,
        "anomalous_frames": anomalous_frames,
        "events": events.iter().map(|e| serde_json::json!({
            "video": e.video, "kind": e.kind.as_str(), "first_frame": e.first_frame, "last_frame": e.last_frame,
        })).collect::<Vec<_>>(),
    });
    let json_path = root.join("scene.json");
    let text = serde_json::to_string_pretty(&description).expect("plain JSON values");
    std::fs::write(&json_path, text + "\n").map_err(io_at(&json_path))?;
    Ok(SceneSummary {
        root: root.to_path_buf(),
        frames_root: root.join("frames"),
        masks_root: root.join("masks"),
        labels: labels_path,
        videos: config.videos,
        frames: config.videos * config.frames_per_video,
        anomalous_frames,
        events,
    })
}

#[cfg(test)]
mod tests;

//! Ground truth: frame labels per video (in the order of the resolved
//! videos) and, where the dataset has them, pixel masks read lazily one
//! (video, frame) at a time. The kind of a labels path is detected from
//! its extension or, for a folder, from what it holds.

mod csv;
mod images;
mod matlab;
mod shanghaitech;
mod ucsd_m;

use crate::error::{invalid, io, Result};
use crate::layout::VideoSource;
use crate::mask::Mask;
use crate::natural::{file_name, video_key};
use crate::npy::NpyArray;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelFormat {
    /// UCSD `UCSDped1.m` / `UCSDped2.m` (with `TestNNN_gt` masks when beside it).
    UcsdM,
    /// A MAT-file whose `gt` cell holds [start; end] ranges per video (`ped2.mat`).
    MatRanges,
    /// A folder of per-video mask-image folders (`Test001_gt/001.bmp`).
    MaskImages,
    /// Avenue `testing_label_mask/N_label.mat` (`volLabel`).
    AvenueMat,
    /// ShanghaiTech `test_frame_mask/*.npy` (+ `test_pixel_mask/*.npy`).
    ShanghaiTechNpy,
    /// `video,frame,label` rows.
    Csv,
}

impl std::fmt::Display for LabelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LabelFormat::UcsdM => "UCSD .m frame ranges",
            LabelFormat::MatRanges => "MAT-file `gt` frame ranges",
            LabelFormat::MaskImages => "pixel-mask images",
            LabelFormat::AvenueMat => "Avenue volLabel MAT-files",
            LabelFormat::ShanghaiTechNpy => "ShanghaiTech .npy masks",
            LabelFormat::Csv => "CSV video,frame,label",
        })
    }
}

/// What the ground truth says about the frames of one video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameTruth {
    /// One label per frame: the source knows the video's length.
    PerFrame(Vec<bool>),
    /// Anomalous frame ranges, 0-based half-open; the length comes from the video.
    Ranges(Vec<Range<usize>>),
}

impl FrameTruth {
    /// The labels of a video with `frames` frames (ranges are clipped).
    pub fn labels(&self, frames: usize) -> Vec<bool> {
        match self {
            FrameTruth::PerFrame(v) => v.clone(),
            FrameTruth::Ranges(ranges) => {
                let mut out = vec![false; frames];
                for r in ranges {
                    out[r.start.min(frames)..r.end.min(frames)].iter_mut().for_each(|l| *l = true);
                }
                out
            }
        }
    }
}

/// Where a video's pixel masks are read from, one frame at a time.
#[derive(Debug, Clone)]
pub(crate) enum MaskSource {
    /// One image per frame; nonzero pixels are anomalous.
    Images(Vec<PathBuf>),
    /// An Avenue `N_label.mat` file (`volLabel` cell, one mask per frame).
    AvenueMat(PathBuf),
    /// A [frames, height, width] `.npy` array.
    Npy(NpyArray),
}

impl MaskSource {
    /// Frames the masks cover, when known without reading them all.
    fn frames(&self) -> Option<usize> {
        match self {
            MaskSource::Images(files) => Some(files.len()),
            MaskSource::AvenueMat(_) => None,
            MaskSource::Npy(a) => a.shape.first().copied(),
        }
    }
}

/// The ground truth of one resolved video.
#[derive(Debug, Clone)]
pub struct VideoTruth {
    /// The resolved video's name.
    pub video: String,
    pub frames: FrameTruth,
    pub(crate) masks: Option<MaskSource>,
}

impl VideoTruth {
    pub fn has_masks(&self) -> bool {
        self.masks.is_some()
    }
}

/// Ground truth aligned with a list of resolved videos.
#[derive(Debug)]
pub struct GroundTruth {
    pub source: PathBuf,
    pub format: LabelFormat,
    videos: Vec<VideoTruth>,
    /// The masks of the Avenue video read last (a whole file is one read).
    avenue_cache: Mutex<Option<(usize, Vec<Mask>)>>,
}

/// Ground truth of one video in a source that names its videos.
#[derive(Debug)]
pub(crate) struct Named {
    pub name: String,
    pub frames: FrameTruth,
    pub masks: Option<MaskSource>,
}

impl GroundTruth {
    pub fn videos(&self) -> &[VideoTruth] {
        &self.videos
    }

    pub fn has_masks(&self) -> bool {
        self.videos.iter().any(VideoTruth::has_masks)
    }

    /// Frame labels per video after checking them against the frame
    /// counts the decoder found; a disagreement names the video and both counts.
    pub fn frame_labels(&self, decoded_frame_counts: &[usize]) -> Result<Vec<Vec<bool>>> {
        self.check_counts(decoded_frame_counts.len())?;
        let mut out = Vec::with_capacity(self.videos.len());
        for (truth, &count) in self.videos.iter().zip(decoded_frame_counts) {
            self.check_video(truth, count, "were decoded")?;
            out.push(truth.frames.labels(count));
        }
        Ok(out)
    }

    /// Checks the frame counts known before decoding (`None`: not known,
    /// e.g. of a video file), each counted as `how` (e.g. "are in its frame
    /// folder"), so that a mismatch is found before any work is done.
    pub fn check_frame_counts(&self, counts: &[Option<usize>], how: &str) -> Result<()> {
        self.check_counts(counts.len())?;
        for (truth, count) in self.videos.iter().zip(counts) {
            if let Some(count) = *count {
                self.check_video(truth, count, how)?;
            }
        }
        Ok(())
    }

    fn check_counts(&self, videos: usize) -> Result<()> {
        if videos != self.videos.len() {
            return invalid(format!("{}: ground truth for {} videos, frame counts for {videos}", self.source.display(), self.videos.len()));
        }
        Ok(())
    }

    /// Whether one video's ground truth fits its `count` frames.
    fn check_video(&self, truth: &VideoTruth, count: usize, how: &str) -> Result<()> {
        let (source, name) = (self.source.display(), &truth.video);
        match &truth.frames {
            FrameTruth::PerFrame(labels) if labels.len() != count => {
                return invalid(format!("{source}: video {name}: the ground truth has {} frames but {count} frames {how}", labels.len()))
            }
            FrameTruth::Ranges(ranges) => {
                if let Some(end) = ranges.iter().map(|r| r.end).max().filter(|&end| end > count) {
                    return invalid(format!(
                        "{source}: video {name}: the ground truth marks frames up to {end} (1-based) but {count} frames {how}"
                    ));
                }
            }
            _ => {}
        }
        if let Some(frames) = truth.masks.as_ref().and_then(MaskSource::frames).filter(|&f| f != count) {
            return invalid(format!("{source}: video {name}: the pixel masks cover {frames} frames but {count} frames {how}"));
        }
        Ok(())
    }

    /// The pixel mask of (video, frame), read now; `None` when that video
    /// has no masks.
    pub fn mask(&self, video: usize, frame: usize) -> Result<Option<Mask>> {
        let Some(truth) = self.videos.get(video) else {
            return invalid(format!("{}: no video {video} (there are {})", self.source.display(), self.videos.len()));
        };
        let past_end =
            |n: usize| invalid(format!("{}: video {}: no mask for frame {frame} (it has {n})", self.source.display(), truth.video));
        match &truth.masks {
            None => Ok(None),
            Some(MaskSource::Images(files)) => match files.get(frame) {
                Some(file) => images::read_mask(file).map(Some),
                None => past_end(files.len()),
            },
            Some(MaskSource::Npy(array)) => array.frame_mask(frame).map(Some),
            Some(MaskSource::AvenueMat(path)) => {
                let mut cache = self.avenue_cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.as_ref().is_none_or(|(v, _)| *v != video) {
                    *cache = Some((video, matlab::read_avenue_masks(path)?));
                }
                let masks = &cache.as_ref().expect("just filled").1;
                match masks.get(frame) {
                    Some(mask) => Ok(Some(mask.clone())),
                    None => past_end(masks.len()),
                }
            }
        }
    }
}

/// Loads the ground truth at `path` for `videos` (from [`crate::resolve`]).
pub fn load_ground_truth(path: &Path, videos: &[VideoSource]) -> Result<GroundTruth> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let (format, truths) = if meta.is_file() { load_file(path, videos)? } else { load_folder(path, videos)? };
    Ok(GroundTruth { source: path.to_path_buf(), format, videos: truths, avenue_cache: Mutex::new(None) })
}

/// Loads and validates in one go: frame labels per video.
pub fn load_frame_labels(path: &Path, videos: &[VideoSource], decoded_frame_counts: &[usize]) -> Result<Vec<Vec<bool>>> {
    load_ground_truth(path, videos)?.frame_labels(decoded_frame_counts)
}

/// Checks ground truth against the decoded frame counts; see
/// [`GroundTruth::frame_labels`].
pub fn validate(truth: &GroundTruth, decoded_frame_counts: &[usize]) -> Result<Vec<Vec<bool>>> {
    truth.frame_labels(decoded_frame_counts)
}

fn load_file(path: &Path, videos: &[VideoSource]) -> Result<(LabelFormat, Vec<VideoTruth>)> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_lowercase();
    match ext.as_str() {
        "m" => Ok((LabelFormat::UcsdM, align_ordered(path, ucsd_m::read(path)?, videos)?)),
        "mat" => Ok((LabelFormat::MatRanges, align_ordered(path, matlab::read_ranges(path)?, videos)?)),
        "csv" => Ok((LabelFormat::Csv, align_named(path, csv::read(path)?, videos)?)),
        _ => invalid(format!(
            "{}: unknown ground-truth file type (expected .m, .mat or .csv, or a folder of masks, *_label.mat or .npy files)",
            path.display()
        )),
    }
}

fn load_folder(dir: &Path, videos: &[VideoSource]) -> Result<(LabelFormat, Vec<VideoTruth>)> {
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if file_name(&path).starts_with('.') {
            continue;
        }
        if path.is_dir() {
            folders.push(path);
        } else {
            files.push(path);
        }
    }
    let ext_is = |p: &PathBuf, ext: &str| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext));
    let m_files: Vec<&PathBuf> = files.iter().filter(|p| ext_is(p, "m")).collect();
    if let [m_file] = m_files.as_slice() {
        // A UCSD `Test` folder: frame ranges from the .m file, masks from
        // the `_gt` folders where the dataset has them (Ped1: 10 of 36).
        let mut truths = align_ordered(m_file, ucsd_m::read(m_file)?, videos)?;
        let masks = images::read_mask_folders(dir)?;
        attach_masks(&mut truths, masks);
        return Ok((LabelFormat::UcsdM, truths));
    }
    if files.iter().any(|p| file_name(p).to_lowercase().ends_with("_label.mat")) {
        return Ok((LabelFormat::AvenueMat, align_named(dir, matlab::read_avenue_folder(dir)?, videos)?));
    }
    let frame_masks = dir.join("test_frame_mask");
    if frame_masks.is_dir() {
        let named = shanghaitech::read(&frame_masks, Some(&dir.join("test_pixel_mask")))?;
        return Ok((LabelFormat::ShanghaiTechNpy, align_named(&frame_masks, named, videos)?));
    }
    if files.iter().any(|p| ext_is(p, "npy")) {
        let pixels = dir.parent().map(|p| p.join("test_pixel_mask"));
        let named = shanghaitech::read(dir, pixels.as_deref())?;
        return Ok((LabelFormat::ShanghaiTechNpy, align_named(dir, named, videos)?));
    }
    let masks = images::read_mask_folders(dir)?;
    if !masks.is_empty() {
        return Ok((LabelFormat::MaskImages, align_named(dir, masks, videos)?));
    }
    invalid(format!(
        "{}: no ground truth found (expected a .m file, *_label.mat files, .npy files, a test_frame_mask folder, or folders of mask images)",
        dir.display()
    ))
}

/// Ground truth listed in video order (`.m`, `gt` cell).
fn align_ordered(source: &Path, truths: Vec<FrameTruth>, videos: &[VideoSource]) -> Result<Vec<VideoTruth>> {
    if truths.len() != videos.len() {
        return invalid(format!(
            "{}: ground truth for {} videos, but the data holds {} videos",
            source.display(),
            truths.len(),
            videos.len()
        ));
    }
    Ok(videos.iter().zip(truths).map(|(v, frames)| VideoTruth { video: v.name.clone(), frames, masks: None }).collect())
}

/// Ground truth keyed by video name (`08.avi` matches `8_label.mat`).
/// Every video needs an entry; entries for other videos are ignored, so a
/// subset of a dataset can be scored.
fn align_named(source: &Path, named: Vec<Named>, videos: &[VideoSource]) -> Result<Vec<VideoTruth>> {
    let mut by_key: HashMap<String, Named> = HashMap::new();
    for entry in named {
        let key = video_key(&entry.name);
        if let Some(previous) = by_key.get(&key) {
            return invalid(format!("{}: `{}` and `{}` name the same video", source.display(), previous.name, entry.name));
        }
        by_key.insert(key, entry);
    }
    let mut out = Vec::with_capacity(videos.len());
    let mut missing = Vec::new();
    for v in videos {
        match by_key.remove(&video_key(&v.name)) {
            Some(entry) => out.push(VideoTruth { video: v.name.clone(), frames: entry.frames, masks: entry.masks }),
            None => missing.push(v.name.clone()),
        }
    }
    if !missing.is_empty() {
        return invalid(format!("{}: no ground truth for video(s) {}", source.display(), missing.join(", ")));
    }
    Ok(out)
}

fn attach_masks(truths: &mut [VideoTruth], masks: Vec<Named>) {
    let mut by_key: HashMap<String, MaskSource> = masks.into_iter().filter_map(|n| Some((video_key(&n.name), n.masks?))).collect();
    for t in truths {
        t.masks = by_key.remove(&video_key(&t.video));
    }
}

#[cfg(test)]
mod tests;

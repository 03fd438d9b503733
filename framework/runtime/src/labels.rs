//! `data.labels`, read and checked before any video is decoded (by `vigil
//! run` and `vigil check`), so that a missing, corrupt or mismatched labels
//! file is reported in seconds, not after the fit.

use crate::pipeline::Pipeline;
use anyhow::{anyhow, bail, Result};
use std::path::Path;
use vigil_datasets::{GroundTruth, SourceKind, VideoSource};

/// Loads the ground truth of the scored videos of `sources` (from
/// [`crate::train::sources`]) and checks it against what is known without
/// decoding: it exists and parses, names every scored video, is not the data
/// itself, and agrees with the number of frames of each frame folder (video
/// files are checked once decoded). `None` when no labels are given.
pub fn preload(pipeline: &Pipeline, sources: &[(VideoSource, bool)]) -> Result<Option<GroundTruth>> {
    let Some(labels) = &pipeline.data.labels else { return Ok(None) };
    let path = &labels.path;
    // Dataset errors name the file already (and keep their cause in the message).
    let reading = |e: vigil_datasets::Error| anyhow!("reading the labels (data.labels): {e}");
    let data = pipeline.data.test.iter().chain(&pipeline.data.extra).map(|p| p.path.as_path());
    if let Some(same) = data.chain(sources.iter().map(|(s, _)| s.path.as_path())).find(|p| same_path(p, path)) {
        bail!(
            "data.labels {} is the video data {}: give the ground truth instead (a .m, .mat or .csv file, or a folder of masks)",
            path.display(),
            same.display()
        );
    }
    let scored: Vec<VideoSource> = sources.iter().filter(|(_, s)| *s).map(|(v, _)| v.clone()).collect();
    let truth = vigil_datasets::load_ground_truth(path, &scored).map_err(reading)?;
    let counts: Vec<Option<usize>> = scored
        .iter()
        .map(|v| match v.kind {
            SourceKind::FrameFolder => vigil_datasets::list_frame_files(&v.path).ok().map(|files| files.len()),
            SourceKind::VideoFile | SourceKind::Stream => None,
        })
        .collect();
    truth.check_frame_counts(&counts, "are in its frame folder").map_err(reading)?;
    Ok(Some(truth))
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

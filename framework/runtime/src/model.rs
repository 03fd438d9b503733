//! `vigil fit`: train on a pipeline's data (`train.rs`), calibrate the event
//! threshold on the training frames' scores, and save everything `vigil
//! score` needs as a model bundle (`bundle.rs`).

use crate::bundle::{self, BundleContents};
use crate::cache::Cache;
use crate::check::Checked;
use crate::train::{train, TrainOptions};
use anyhow::{anyhow, Result};
use serde_json::json;
use std::path::PathBuf;
use vigil_events::Threshold;

/// The quantile of the training frames' scores that becomes the default
/// event threshold (vigil_events::threshold says why a high quantile).
pub const DEFAULT_QUANTILE: f64 = 0.99;

pub struct FitModelOptions {
    /// The bundle folder. Checkpoints of an interrupted fit are kept in
    /// `<out>.work/` (so it resumes) and removed once the bundle is written.
    pub out: PathBuf,
    pub cache: Cache,
    pub progress: bool,
    pub fresh: bool,
    pub quantile: f64,
}

pub struct FitModelOutcome {
    pub bundle: PathBuf,
    pub threshold: Threshold,
    pub videos: usize,
    pub frames: usize,
    pub cubes: usize,
}

/// Whether `dir` holds an intact bundle fitted on this pipeline's data (the
/// same files, unchanged) with the same settings and threshold quantile, so
/// that fitting again would only repeat it.
pub fn is_fitted(checked: &Checked, dir: &std::path::Path, quantile: f64) -> Result<bool> {
    let Ok(record) = bundle::read_record(dir) else { return Ok(false) };
    if record.threshold.quantile != quantile || bundle::verify_files(dir, &record).is_err() {
        return Ok(false);
    }
    let now = crate::fingerprint::Fingerprint::of(checked, &crate::train::sources(checked)?)?;
    Ok(record.fingerprint == now)
}

pub fn fit_model(mut checked: Checked, options: &FitModelOptions) -> Result<FitModelOutcome> {
    if !(0.0..=1.0).contains(&options.quantile) {
        return Err(anyhow!("--threshold-quantile must be between 0 and 1, found {}", options.quantile));
    }
    bundle::check_replaceable(&options.out)?;
    let work = bundle::sibling(&options.out, "work")?;
    let train_options = TrainOptions { dir: work.clone(), cache: options.cache.clone(), progress: options.progress, fresh: options.fresh };
    let trained = train(&mut checked, &train_options)?;
    let scores: Vec<f32> = trained.scored.scores.concat();
    let threshold = vigil_events::calibrate(&scores, options.quantile).map_err(|e| anyhow!("calibrating the event threshold: {e}"))?;
    let mut frame_sizes: Vec<(usize, usize)> = trained.videos.iter().map(|v| (v.height, v.width)).collect();
    frame_sizes.sort();
    frame_sizes.dedup();
    let frames: usize = trained.videos.iter().map(|v| v.frames).sum();
    let training = json!({
        "videos": trained.videos,
        "frames": frames,
        "cubes": trained.records.len(),
        "epochs": trained.summary.epochs,
    });
    let contents = BundleContents {
        statistics: &trained.summary.statistics,
        height_lines: &trained.scored.height_lines,
        frame_sizes,
        threshold: threshold.clone(),
        fingerprint: trained.fingerprint.clone(),
        training,
    };
    bundle::write(&options.out, contents, &mut checked)?;
    if let Err(e) = std::fs::remove_dir_all(&work) {
        tracing::warn!("the bundle is written, but its work folder {} could not be removed: {e}", work.display());
    }
    Ok(FitModelOutcome { bundle: options.out.clone(), threshold, videos: trained.videos.len(), frames, cubes: trained.records.len() })
}

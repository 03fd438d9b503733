//! `vigil run`: train (extract, fit, score the fit's own frames; `train.rs`),
//! then evaluate against labels when given and write the report, scores and
//! plots into the output folder (`report.rs`).

use crate::cache::Cache;
use crate::check::Checked;
use crate::extract::{CacheUse, VideoRecord};
use crate::train::{train, TrainOptions};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Instant;

pub struct RunOptions {
    pub out_dir: PathBuf,
    pub cache: Cache,
    pub progress: bool,
    /// Discard a checkpoint in `out_dir` instead of resuming it (without it,
    /// a checkpoint of another fit is an error).
    pub fresh: bool,
}

/// What a run produced, for the caller to print.
pub struct RunOutcome {
    pub out_dir: PathBuf,
    pub metrics: Option<vigil_eval::Metrics>,
    pub videos: Vec<VideoRecord>,
    pub cubes: usize,
    pub cache_use: CacheUse,
}

pub fn run(mut checked: Checked, options: &RunOptions) -> Result<RunOutcome> {
    let started = Instant::now();
    let out = options.out_dir.clone();
    let plugins = crate::report::stage_summary(&checked.stages);
    let train_options = TrainOptions { dir: out.clone(), cache: options.cache.clone(), progress: options.progress, fresh: options.fresh };
    let trained = train(&mut checked, &train_options)?;
    let decoder = crate::roles::roles(&mut checked.stages)?.decoder;
    let videos = &trained.videos;
    let metrics = crate::report::write(
        &crate::report::Outputs {
            out: &out,
            pipeline: &checked.pipeline,
            plugins,
            sources: &trained.sources,
            truth: trained.truth.as_ref(),
            videos,
            records: &trained.records,
            cube_config: &trained.cube_config,
            skipped: trained.skipped,
            cube_bytes: trained.cube_bytes,
            spilled: trained.spilled,
            scored: &trained.scored,
            fit: &trained.summary,
            timings: &trained.timings,
            cache_use: trained.cache_use,
            started,
        },
        &mut |video, frame| crate::report::decode_frame(decoder, &videos[video].source, video as u32, frame),
    )?;
    Ok(RunOutcome { out_dir: out, metrics, cubes: trained.records.len(), cache_use: trained.cache_use, videos: trained.videos })
}

//! Extract every video of a pipeline's data, fit the reconstructors on
//! their cubes and score the fit's own frames: what `vigil run` reports on
//! and what `vigil fit` saves (with a threshold calibrated on those scores).

use crate::cache::Cache;
use crate::check::Checked;
use crate::extract::{extract_all, CacheUse, Extractor, Timings, VideoRecord};
use crate::fingerprint::Fingerprint;
use crate::fit::{FitOptions, FitSummary};
use crate::roles::{roles, Roles};
use crate::score::{score_fitted, Scored};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vigil_cubes::{CubeConfig, CubeRecord, CubeSet};
use vigil_datasets::VideoSource;

pub struct TrainOptions {
    /// Holds `checkpoints/` (an interrupted fit resumes from them) and
    /// `work/` (cubes past the memory budget).
    pub dir: PathBuf,
    pub cache: Cache,
    pub progress: bool,
    /// Discard a checkpoint in `dir` instead of resuming it (without it, a
    /// checkpoint of another fit is an error).
    pub fresh: bool,
}

/// What training produced.
pub struct Trained {
    pub sources: Vec<(VideoSource, bool)>,
    /// The labels of the scored videos, when `data.labels` is set.
    pub truth: Option<vigil_datasets::GroundTruth>,
    pub fingerprint: Fingerprint,
    pub videos: Vec<VideoRecord>,
    pub records: Vec<CubeRecord>,
    pub cube_config: CubeConfig,
    /// Boxes whose crop was empty.
    pub skipped: usize,
    /// Bytes of the cubes, and whether they went to disk (`[cubes] memory_budget_mb`).
    pub cube_bytes: usize,
    pub spilled: bool,
    pub summary: FitSummary,
    pub scored: Scored,
    pub timings: Timings,
    pub cache_use: CacheUse,
}

/// The videos of `data.test` (scored) and `data.extra` (trained on only).
pub fn sources(checked: &Checked) -> Result<Vec<(VideoSource, bool)>> {
    let data = &checked.pipeline.data;
    let test = data.test.as_ref().context("`data.test` is not set")?;
    let mut all = Vec::new();
    for (path, scored) in std::iter::once((&test.path, true)).chain(data.extra.iter().map(|p| (&p.path, false))) {
        let videos = vigil_datasets::resolve(path).with_context(|| format!("reading the data at {}", path.display()))?;
        all.extend(videos.into_iter().map(|v| (v, scored)));
    }
    Ok(all)
}

/// The cube builder's settings from `[cubes]`; spilled cubes go to `spill_dir`.
pub fn cube_config(spec: &crate::pipeline::CubeSpec, spill_dir: &Path) -> CubeConfig {
    CubeConfig {
        context: spec.context as usize,
        size: spec.size as usize,
        h_block: spec.h_block,
        w_block: spec.w_block,
        memory_budget: (spec.memory_budget_mb as usize).saturating_mul(1 << 20),
        spill_dir: spill_dir.to_path_buf(),
    }
}

/// Extract, fit and score the fit's own frames.
pub fn train(checked: &mut Checked, options: &TrainOptions) -> Result<Trained> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating the output folder {}", dir.display()))?;
    let sources = sources(checked)?;
    // Before any work: the labels, and whether a checkpoint here is of this fit.
    let truth = match checked.labels.take() {
        Some(read_by_check) => Some(read_by_check),
        None => crate::labels::preload(&checked.pipeline, &sources)?,
    };
    let fingerprint = Fingerprint::of(checked, &sources)?;
    let checkpoint_dir = dir.join("checkpoints");
    crate::fingerprint::prepare(dir, &checkpoint_dir, &fingerprint, options.fresh)?;
    let pipeline = &checked.pipeline;
    let cube_config = cube_config(&pipeline.cubes, &dir.join("work"));
    let seed = pipeline.seed;
    let motion_cubes = crate::check::wants_motion_cubes(&checked.stages);
    let Roles { decoder, flow, localizer, mut reconstructors, mut refiner, scorer } = roles(&mut checked.stages)?;

    let mut extractor = Extractor::new(decoder, flow, localizer, options.cache.clone(), motion_cubes);
    let mut cubes = CubeSet::new(cube_config.clone())?;
    let extracted = extract_all(&mut extractor, &sources, &mut cubes, options.progress, None)?;
    let videos = extracted.videos;
    let Extractor { mut timings, cache_use, .. } = extractor;
    let frames_total: usize = videos.iter().map(|v| v.frames).sum();
    let reused = if cache_use.flow_reused + cache_use.boxes_reused > 0 {
        format!(" (from the cache: flow of {} videos, boxes of {})", cache_use.flow_reused, cache_use.boxes_reused)
    } else {
        String::new()
    };
    let (cube_bytes, spilled) = (cubes.bytes(), cubes.is_spilled());
    let stored = if spilled {
        format!(
            ", on disk in {} (more than `cubes.memory_budget_mb` = {})",
            cube_config.spill_dir.display(),
            pipeline.cubes.memory_budget_mb
        )
    } else {
        " in memory".to_string()
    };
    tracing::info!(
        "extracted {frames_total} frames of {} videos: {} cubes{reused}, {:.2} GB{stored}",
        videos.len(),
        cubes.len(),
        cube_bytes as f64 / 1e9
    );
    if cubes.is_empty() {
        bail!("the localizer found no boxes in any video: nothing to train on (check its options)");
    }

    let fit_started = Instant::now();
    let skipped = cubes.skipped();
    let fit_options = FitOptions {
        seed,
        checkpoint_dir: Some(checkpoint_dir),
        resume: true,
        progress: options.progress,
        fingerprint: Some(fingerprint.clone()),
    };
    let refiner_role = refiner.as_mut().map(|(id, r)| (id.as_str(), &mut **r));
    let (summary, records) = crate::fit::fit_cubes(cubes, &mut reconstructors, refiner_role, &fit_options)?;
    timings.add("fit", fit_started.elapsed());

    crate::interrupt::set(format!(
        "while scoring: the fit is whole in {}; run the same command again to score without training",
        dir.join("checkpoints").display()
    ));
    let score_started = Instant::now();
    let scored = score_fitted(&mut reconstructors, scorer, &records, &videos, &summary)?;
    timings.add("score", score_started.elapsed());
    Ok(Trained {
        sources,
        truth,
        fingerprint,
        videos,
        records,
        cube_config,
        skipped,
        cube_bytes,
        spilled,
        summary,
        scored,
        timings,
        cache_use,
    })
}

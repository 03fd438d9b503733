//! `vigil run`: extract every video, fit the reconstructors with the
//! refiner, score every frame, evaluate against labels when given, and write
//! the report, scores and plots into the output folder.

use crate::cache::Cache;
use crate::check::Checked;
use crate::extract::{CacheUse, Extractor, Timings};
use crate::fit::{self, FitMember, FitOptions, FitSummary};
use crate::stage::Stage;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Instant;
use vigil_datasets::VideoSource;
use vigil_cubes::{CubeConfig, CubeRecord, CubeSet};
use vigil_stage_api::{Batch, DType, FrameId, ReconstructorBox, RefinerBox, StageKind, StageObject, Tensor};

pub struct RunOptions {
    pub out_dir: PathBuf,
    pub cache: Cache,
    pub progress: bool,
    /// Discard a checkpoint in `out_dir` instead of resuming it (without it,
    /// a checkpoint of another fit is an error).
    pub fresh: bool,
}

/// One video of the run, as decoded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VideoRecord {
    pub name: String,
    pub source: PathBuf,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    /// Scored (`data.test`) or only trained on (`data.extra`).
    pub scored: bool,
}

/// Scores of the scored videos.
pub struct Scored {
    /// Index into the run's videos of each scored video.
    pub videos: Vec<usize>,
    /// Smoothed and raw frame scores, per scored video.
    pub scores: Vec<Vec<f32>>,
    pub raw_scores: Vec<Vec<f32>>,
    /// Index into the cube set of each scored cube, and its fused score.
    pub cubes: Vec<usize>,
    pub box_scores: Vec<f32>,
    /// Each reconstructor's stage id and its raw error of every scored cube.
    pub errors: Vec<(String, Vec<f32>)>,
}

/// What a run produced, for the caller to print.
pub struct RunOutcome {
    pub out_dir: PathBuf,
    pub metrics: Option<vigil_eval::Metrics>,
    pub videos: Vec<VideoRecord>,
    pub cubes: usize,
    pub cache_use: CacheUse,
}

/// The stages of a checked pipeline, split by kind.
struct Roles<'a> {
    decoder: &'a mut Stage,
    flow: Option<&'a mut Stage>,
    localizer: &'a mut Stage,
    reconstructors: Vec<(String, &'a mut ReconstructorBox)>,
    refiner: Option<(String, &'a mut RefinerBox)>,
    scorer: &'a mut Stage,
}

fn roles(stages: &mut [Stage]) -> Result<Roles<'_>> {
    let (mut decoder, mut flow, mut localizer, mut refiner, mut scorer) = (None, None, None, None, None);
    let mut reconstructors = Vec::new();
    for stage in stages.iter_mut() {
        let id = stage.id().to_string();
        match stage.kind() {
            StageKind::Decoder => decoder = Some(stage),
            StageKind::Flow => flow = Some(stage),
            StageKind::Localizer => localizer = Some(stage),
            StageKind::Scorer => scorer = Some(stage),
            StageKind::Reconstructor => {
                if let StageObject::Reconstructor(object) = &mut stage.object {
                    reconstructors.push((id, object));
                }
            }
            StageKind::Refiner => {
                if let StageObject::Refiner(object) = &mut stage.object {
                    refiner = Some((id, object));
                }
            }
        }
    }
    match (decoder, localizer, scorer) {
        (Some(decoder), Some(localizer), Some(scorer)) if !reconstructors.is_empty() => {
            Ok(Roles { decoder, flow, localizer, reconstructors, refiner, scorer })
        }
        _ => bail!("a pipeline needs a decoder, a localizer, a reconstructor and a scorer (see `vigil check`)"),
    }
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

pub fn run(mut checked: Checked, options: &RunOptions) -> Result<RunOutcome> {
    let started = Instant::now();
    let out = options.out_dir.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("creating the output folder {}", out.display()))?;
    let sources = sources(&checked)?;
    // Before any work: the labels, and whether a checkpoint here is of this fit.
    let truth = crate::labels::preload(&checked.pipeline, &sources)?;
    let fingerprint = crate::fingerprint::Fingerprint::of(&checked, &sources)?;
    let checkpoint_dir = out.join("checkpoints");
    crate::fingerprint::prepare(&out, &checkpoint_dir, &fingerprint, options.fresh)?;
    let pipeline = checked.pipeline.clone();
    let cube_config = cube_config(&pipeline.cubes, &out.join("work"));
    let plugins = crate::report::stage_summary(&checked.stages);
    let Roles { decoder, flow, localizer, mut reconstructors, mut refiner, scorer } = roles(&mut checked.stages)?;

    // 1. Extract, one video at a time.
    let mut extractor = Extractor {
        decoder,
        flow,
        localizer,
        cache: options.cache.clone(),
        timings: Timings::default(),
        cache_use: CacheUse::default(),
    };
    let mut cubes = CubeSet::new(cube_config.clone())?;
    let mut videos = Vec::new();
    let bar = crate::progress::bar(options.progress, sources.len() as u64, "extract");
    for (index, (source, scored)) in sources.iter().enumerate() {
        bar.set_message(source.name.clone());
        crate::interrupt::set(format!(
            "while extracting video {} ({} of {}){}",
            source.name,
            index + 1,
            sources.len(),
            if options.cache.root().is_some() { "; the flow and boxes of the videos done before it are cached, and a rerun reuses them" } else { "" }
        ));
        let products = extractor.video(&source.path, index as u32, &|_| {})?;
        let shape = (products.count, products.height, products.width);
        cubes.add_video(index as u32, &products.frames, products.flows.as_deref(), shape, &products.boxes)?;
        videos.push(VideoRecord {
            name: source.name.clone(),
            source: source.path.clone(),
            frames: products.count,
            height: products.height,
            width: products.width,
            scored: *scored,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let Extractor { decoder, mut timings, cache_use, .. } = extractor;
    let frames_total: usize = videos.iter().map(|v| v.frames).sum();
    let reused = if cache_use.flow_reused + cache_use.boxes_reused > 0 {
        format!(" (from the cache: flow of {} videos, boxes of {})", cache_use.flow_reused, cache_use.boxes_reused)
    } else {
        String::new()
    };
    tracing::info!("extracted {frames_total} frames of {} videos: {} cubes{reused}", videos.len(), cubes.len());
    if cubes.is_empty() {
        bail!("the localizer found no boxes in any video: nothing to train on (check its options)");
    }

    // 2. Fit. The first reconstructor takes the cubes without a copy.
    let fit_started = Instant::now();
    let skipped = cubes.skipped();
    let (batch, records) = cubes.into_tensors()?.into_batch();
    let bands: Vec<u32> = records.iter().map(|r| r.band).collect();
    let mut batches: Vec<Batch> = (1..reconstructors.len()).map(|_| copy_batch(&batch)).collect();
    batches.insert(0, batch);
    let members: Vec<FitMember> = reconstructors
        .iter_mut()
        .zip(batches)
        .map(|((id, stage), cubes)| FitMember { id: id.clone(), stage: &mut **stage, cubes })
        .collect();
    let fit_options = FitOptions {
        seed: pipeline.seed,
        checkpoint_dir: Some(checkpoint_dir),
        resume: true,
        progress: options.progress,
        fingerprint: Some(fingerprint),
    };
    let refiner_role = refiner.as_mut().map(|(id, r)| (id.as_str(), &mut **r));
    let summary = fit::fit(members, refiner_role, &bands, &fit_options)?;
    timings.add("fit", fit_started.elapsed());

    // 3. Score.
    crate::interrupt::set(format!(
        "while scoring: the fit is whole in {}; run the same command again to score without training",
        out.join("checkpoints").display()
    ));
    let score_started = Instant::now();
    let scored = score(&mut reconstructors, scorer, &records, &videos, &summary)?;
    timings.add("score", score_started.elapsed());

    // 4. Evaluate and write everything.
    let metrics = crate::report::write(&crate::report::Outputs {
        out: &out,
        pipeline: &pipeline,
        plugins,
        sources: &sources,
        truth: truth.as_ref(),
        videos: &videos,
        records: &records,
        cube_config: &cube_config,
        skipped,
        scored: &scored,
        fit: &summary,
        timings: &timings,
        cache_use,
        started,
    }, &mut |video, frame| crate::report::decode_frame(decoder, &videos[video].source, video as u32, frame))?;
    Ok(RunOutcome { out_dir: out, metrics, videos, cubes: records.len(), cache_use })
}

/// Per-cube errors of every reconstructor, then the scorer's frame scores
/// for the scored videos (the batch layout is the `zscore` contract).
fn score(
    reconstructors: &mut [(String, &mut ReconstructorBox)],
    scorer: &mut Stage,
    records: &[CubeRecord],
    videos: &[VideoRecord],
    summary: &FitSummary,
) -> Result<Scored> {
    let scored_videos: Vec<usize> = (0..videos.len()).filter(|&v| videos[v].scored).collect();
    // frame row of the first frame of each scored video
    let mut first_row = vec![usize::MAX; videos.len()];
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    for &v in &scored_videos {
        first_row[v] = ids.len();
        for frame in 0..videos[v].frames {
            ids.push(FrameId { video: v as u32, frame: frame as u32 });
            sizes.extend([videos[v].height as u32, videos[v].width as u32]);
        }
    }
    let scored_cubes: Vec<usize> = (0..records.len()).filter(|&i| videos[records[i].video as usize].scored).collect();
    let indices: Vec<u32> = scored_cubes.iter().map(|&i| i as u32).collect();
    let mut boxes = Vec::with_capacity(scored_cubes.len() * 5);
    let mut bands = Vec::with_capacity(scored_cubes.len());
    for &i in &scored_cubes {
        let r = &records[i];
        let b = &r.frame_box;
        boxes.extend([(first_row[r.video as usize] + b.frame as usize) as f32, b.x1, b.y1, b.x2, b.y2]);
        bands.push(r.band);
    }
    let models = records.iter().map(|r| r.band + 1).max().unwrap_or(0) as usize;
    let (f, m) = (ids.len(), scored_cubes.len());
    let mut batch = Batch::new(ids)
        .with("frame_size", Tensor::from_vec(sizes, &[f, 2]))
        .with("boxes", Tensor::from_vec(boxes, &[m, 5]))
        .with("band", Tensor::from_vec(bands, &[m]));
    let mut member_errors = Vec::with_capacity(reconstructors.len());
    for (member, (id, stage)) in reconstructors.iter_mut().enumerate() {
        let mut errors = Vec::with_capacity(m);
        for chunk in indices.chunks(1024) {
            let part = Stage::call(&format!("stage `{id}`"), stage.errors(chunk.into()))?;
            errors.extend_from_slice(&part);
        }
        let mut stats = vec![0f64; models * 3];
        for s in &summary.statistics[member] {
            if (s.model as usize) < models {
                stats[s.model as usize * 3..][..3].copy_from_slice(&[s.count as f64, s.mean, s.std]);
            }
        }
        batch.insert(&format!("errors.{id}"), Tensor::from_vec(errors.clone(), &[m]));
        member_errors.push((id.clone(), errors));
        batch.insert(&format!("stats.{id}"), Tensor::from_vec(stats, &[models, 3]));
    }
    let label = scorer.label();
    let StageObject::Scorer(object) = &mut scorer.object else { bail!("{label} is not a scorer") };
    let out = Stage::call(&label, object.score(batch))?;
    let read = |name: &str, len: usize| -> Result<Vec<f32>> {
        let t = out.require(name).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        let values = t.as_slice::<f32>().map_err(|e| anyhow::anyhow!("{label}: `{name}`: {e}"))?;
        if values.len() != len {
            bail!("{label}: `{name}` has {} values, expected {len}", values.len());
        }
        Ok(values.to_vec())
    };
    let (smoothed, raw, box_scores) = (read("scores", f)?, read("raw_scores", f)?, read("box_scores", m)?);
    let split = |all: &[f32]| -> Vec<Vec<f32>> {
        scored_videos.iter().map(|&v| all[first_row[v]..first_row[v] + videos[v].frames].to_vec()).collect()
    };
    Ok(Scored { scores: split(&smoothed), raw_scores: split(&raw), videos: scored_videos, cubes: scored_cubes, box_scores, errors: member_errors })
}

/// The cube builder's settings from `[cubes]`; spilled cubes go to `spill_dir`.
pub fn cube_config(spec: &crate::pipeline::CubeSpec, spill_dir: &std::path::Path) -> CubeConfig {
    CubeConfig {
        context: spec.context as usize,
        size: spec.size as usize,
        h_block: spec.h_block,
        w_block: spec.w_block,
        memory_budget: (spec.memory_budget_mb as usize).saturating_mul(1 << 20),
        spill_dir: spill_dir.to_path_buf(),
    }
}

/// A copy of a batch, for a second consumer of the same cubes.
fn copy_batch(batch: &Batch) -> Batch {
    let mut copy = Batch::new(batch.ids.to_vec());
    for named in batch.tensors.iter() {
        let t = &named.tensor;
        let tensor = match t.dtype() {
            DType::U8 => Tensor::from_vec(t.as_slice::<u8>().expect("cpu u8").to_vec(), &t.shape()),
            DType::U32 => Tensor::from_vec(t.as_slice::<u32>().expect("cpu u32").to_vec(), &t.shape()),
            _ => Tensor::from_vec(t.as_slice::<f32>().expect("cube tensors are u8, u32 or f32").to_vec(), &t.shape()),
        };
        copy.insert(&named.name, tensor);
    }
    copy
}

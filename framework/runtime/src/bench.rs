//! `vigil bench`: throughput of a pipeline's own stages, measured through
//! the plugin ABI exactly as `vigil run` calls them.

use crate::cache::Cache;
use crate::check::Checked;
use crate::extract::{extract_all, Extractor};
use crate::stage::Stage;
use anyhow::{bail, Context, Result};
use std::time::Instant;
use vigil_cubes::{CubeConfig, CubeSet};
use vigil_stage_api::{names, StageKind, StageObject};

/// Frames per second of each extraction stage and overall.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExtractBench {
    pub videos: usize,
    pub frames: usize,
    pub cubes: usize,
    /// (stage id, plugin, seconds, frames per second)
    pub stages: Vec<(String, String, f64, f64)>,
    pub cube_seconds: f64,
    pub total_seconds: f64,
}

impl ExtractBench {
    pub fn overall_fps(&self) -> f64 {
        self.frames as f64 / self.total_seconds
    }
}

/// Runs decode, flow, localize and the cube builder over the pipeline's
/// `data.test` (at most `max_videos` videos), without the cache.
pub fn extract(checked: &mut Checked, max_videos: Option<usize>) -> Result<ExtractBench> {
    let sources: Vec<_> =
        crate::train::sources(checked)?.into_iter().filter(|(_, scored)| *scored).take(max_videos.unwrap_or(usize::MAX)).collect();
    let spill = std::env::temp_dir().join("vigil-bench-cubes");
    let mut cubes = CubeSet::new(crate::train::cube_config(&checked.pipeline.cubes, &spill))?;
    let plugins: std::collections::BTreeMap<String, String> =
        checked.stages.iter().map(|s| (s.id().to_string(), s.spec.plugin.clone())).collect();
    let mut extractor = Extractor::from_stages(&mut checked.stages, Cache::disabled())?;
    let started = Instant::now();
    let extracted = extract_all(&mut extractor, &sources, &mut cubes, false, None)?;
    let total = started.elapsed().as_secs_f64();
    let frames: usize = extracted.videos.iter().map(|v| v.frames).sum();
    let stages = extractor
        .timings
        .0
        .iter()
        .map(|(id, t)| (id.clone(), plugins.get(id).cloned().unwrap_or_default(), t.as_secs_f64(), frames as f64 / t.as_secs_f64()))
        .collect();
    Ok(ExtractBench {
        videos: sources.len(),
        frames,
        cubes: cubes.len(),
        stages,
        cube_seconds: extracted.cube_time.as_secs_f64(),
        total_seconds: total,
    })
}

/// Seconds per training step and per eval forward of one batch size.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StepTimes {
    pub batch: usize,
    /// Gather, forward, weighted loss, backward and optimizer update.
    pub train_step: f64,
    /// Eval-mode errors of `batch` cubes (`Reconstructor::errors`), what
    /// self-paced refinement asks for before each step and scoring per chunk.
    pub eval_forward: f64,
}

/// Training-step and eval-forward seconds of the first reconstructor at
/// each batch size (medians of `steps` calls after one warm-up call), on
/// cubes extracted (through the cache) from as many videos of `data.test`
/// as needed.
pub fn fit_steps(checked: &mut Checked, batch_sizes: &[usize], steps: usize) -> Result<Vec<StepTimes>> {
    let largest = batch_sizes.iter().copied().max().unwrap_or(1);
    let sources: Vec<_> = crate::train::sources(checked)?.into_iter().filter(|(_, scored)| *scored).collect();
    // One model: every cube in band 0.
    let spill = std::env::temp_dir().join("vigil-bench-cubes");
    let mut cubes = CubeSet::new(CubeConfig { h_block: 1, w_block: 1, ..crate::train::cube_config(&checked.pipeline.cubes, &spill) })?;
    let mut extractor = Extractor::from_stages(&mut checked.stages, Cache::default_location())?;
    extract_all(&mut extractor, &sources, &mut cubes, false, Some(largest))?;
    if cubes.len() < largest {
        bail!("the data gives only {} cubes; batch size {largest} needs more", cubes.len());
    }
    let stage = checked.stages.iter_mut().find(|s| s.kind() == StageKind::Reconstructor).expect("checked pipeline");
    let label = stage.label();
    let StageObject::Reconstructor(object) = &mut stage.object else { bail!("{label} is not a reconstructor") };
    Stage::call(&label, object.fit_begin(cubes.into_tensors()?.into_batch().0))?;
    let mut results = Vec::new();
    for &batch in batch_sizes {
        let indices: Vec<u32> = (0..batch as u32).collect();
        let weights = vec![1f32; batch];
        let train_step =
            median_seconds(steps, || Stage::call(&label, object.step(indices.as_slice().into(), weights.as_slice().into())).map(drop))?;
        let eval_forward = median_seconds(steps, || Stage::call(&label, object.errors(indices.as_slice().into())).map(drop))?;
        results.push(StepTimes { batch, train_step, eval_forward });
    }
    Ok(results)
}

/// The median seconds of `runs` calls of `call`, after one untimed call.
fn median_seconds(runs: usize, mut call: impl FnMut() -> Result<()>) -> Result<f64> {
    call()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        call()?;
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Accuracy and speed of a pipeline's flow stage on image pairs with
/// ground truth (FlyingChairs layout: `N-img0.ppm`, `N-img1.ppm`,
/// `N-gt.flo`): (pair name, endpoint error in px, milliseconds). Each pair
/// runs once to warm up (caches, buffer pools), then `passes` times; the
/// time is the median pass, as the OpenCV reference times its own.
pub fn flow_pairs(checked: &mut Checked, dir: &std::path::Path, passes: usize) -> Result<Vec<(String, f64, f64)>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix("-gt.flo").map(str::to_owned))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("{} holds no `*-gt.flo` ground truth", dir.display());
    }
    let stage = checked.stages.iter_mut().find(|s| s.kind() == StageKind::Flow).context("the pipeline has no flow stage")?;
    let label = stage.label();
    let StageObject::Flow(object) = &mut stage.object else { bail!("{label} is not a flow stage") };
    let mut results = Vec::new();
    for name in names {
        let read = |suffix: &str| -> Result<image::RgbImage> {
            let path = dir.join(format!("{name}{suffix}"));
            Ok(image::open(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?.to_rgb8())
        };
        let (first, second) = (read("-img0.ppm")?, read("-img1.ppm")?);
        let (w, h) = first.dimensions();
        let truth = read_flo(&dir.join(format!("{name}-gt.flo")), w as usize, h as usize)?;
        let mut pixels = first.into_raw();
        pixels.extend_from_slice(second.as_raw());
        let ids = vec![vigil_stage_api::FrameId { video: 0, frame: 0 }, vigil_stage_api::FrameId { video: 0, frame: 1 }];
        let batch = || {
            vigil_stage_api::Batch::new(ids.clone())
                .with(names::FRAMES, vigil_stage_api::Tensor::from_vec(pixels.clone(), &[2, h as usize, w as usize, 3]))
        };
        let mut out = Stage::call(&label, object.process(batch()))?;
        let mut times = Vec::with_capacity(passes);
        for _ in 0..passes.max(1) {
            let input = batch();
            let started = Instant::now();
            out = Stage::call(&label, object.process(input))?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let ms = times[times.len() / 2];
        let flow = out.require(names::FLOW).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        let flow = flow.as_slice::<f32>().map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        if flow.len() != truth.len() {
            bail!("{label}: flow has {} values, the ground truth {}", flow.len(), truth.len());
        }
        let epe = flow
            .chunks_exact(2)
            .zip(truth.chunks_exact(2))
            .map(|(a, b)| (((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)) as f64).sqrt())
            .sum::<f64>()
            / (flow.len() / 2) as f64;
        results.push((name, epe, ms));
    }
    Ok(results)
}

/// A Middlebury `.flo` file of the expected size, as interleaved (u, v).
fn read_flo(path: &std::path::Path, width: usize, height: usize) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let word = |i: usize| bytes.get(i..i + 4).map(|b| [b[0], b[1], b[2], b[3]]);
    let (Some(tag), Some(w), Some(h)) = (word(0), word(4), word(8)) else { bail!("{}: too short for a .flo header", path.display()) };
    let (w, h) = (u32::from_le_bytes(w) as usize, u32::from_le_bytes(h) as usize);
    if f32::from_le_bytes(tag) != 202021.25 || (w, h) != (width, height) || bytes.len() != 12 + w * h * 8 {
        bail!("{}: expected a .flo file of {width}x{height}, found tag/size {w}x{h}, {} bytes", path.display(), bytes.len());
    }
    Ok(bytes[12..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::read_flo;
    use vigil_stage_testkit::fuzz::{fuzz, FuzzFile, Sample};

    fn flo(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = 202021.25f32.to_le_bytes().to_vec();
        bytes.extend(width.to_le_bytes());
        bytes.extend(height.to_le_bytes());
        bytes.extend((0..width * height * 2).flat_map(|i| (i as f32 * 0.25 - 3.0).to_le_bytes()));
        bytes
    }

    #[test]
    fn flo_ground_truth_is_read_and_checked() {
        let file = FuzzFile::new("0-gt.flo");
        let values = read_flo(file.write(&flo(3, 2)), 3, 2).unwrap();
        assert_eq!(values.len(), 12);
        assert_eq!((values[0], values[11]), (-3.0, -0.25));
        let err = read_flo(file.path(), 4, 2).unwrap_err().to_string();
        assert!(err.contains("0-gt.flo") && err.contains("expected a .flo file of 4x2") && err.contains("3x2"), "{err}");
    }

    /// Issue 15: `.flo` files are outside bytes (vigil_stage_testkit::fuzz).
    #[test]
    fn mutated_flo_files_are_errors_not_panics() {
        let samples = [Sample::new("3x2", flo(3, 2)), Sample::new("16x12", flo(16, 12))];
        let file = FuzzFile::new("0-gt.flo");
        fuzz(".flo", &samples, |bytes| read_flo(file.write(bytes), 16, 12).map(drop));
    }
}

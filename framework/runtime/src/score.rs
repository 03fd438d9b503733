//! The score phase: per-cube errors of every reconstructor and the scorer's
//! frame scores, laid out as the scorer contract says (docs/architecture.md
//! 3.7). [`score_fitted`] scores the fit's own cubes (`vigil run`); the
//! streaming scorer of `vigil score` (`stream.rs`) builds the same
//! [`ScorerRows`] chunk by chunk.

use crate::extract::VideoRecord;
use crate::fit::FitSummary;
use crate::stage::Stage;
use anyhow::{bail, Result};
use vigil_cubes::CubeRecord;
use vigil_stage_api::height::{log_error, log_height, HeightLine};
use vigil_stage_api::{names, Batch, FrameId, ModelStats, ReconstructorBox, StageObject, Tensor};

/// Cube indices asked of a reconstructor at once.
const ERRORS_CHUNK: usize = 1024;

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
    /// Each reconstructor's line of ln(error) in ln(box height) per band,
    /// over all the fit's cubes: training statistics like `FitSummary`'s.
    pub height_lines: Vec<Vec<HeightLine>>,
}

/// The scorer's inputs for consecutive frame rows.
#[derive(Default)]
pub struct ScorerRows {
    pub ids: Vec<FrameId>,
    /// (height, width) of each row, flattened.
    pub sizes: Vec<u32>,
    /// (frame row, x1, y1, x2, y2) of each box, flattened.
    pub boxes: Vec<f32>,
    pub bands: Vec<u32>,
}

impl ScorerRows {
    pub fn push_frame(&mut self, id: FrameId, height: usize, width: usize) {
        self.ids.push(id);
        self.sizes.extend([height as u32, width as u32]);
    }
    /// A box on frame row `row`.
    pub fn push_box(&mut self, row: usize, b: &vigil_cubes::FrameBox, band: u32) {
        self.boxes.extend([row as f32, b.x1, b.y1, b.x2, b.y2]);
        self.bands.push(band);
    }
}

/// What the scorer returned for [`ScorerRows`].
pub struct ScorerOutput {
    /// Smoothed and raw score of each frame row.
    pub scores: Vec<f32>,
    pub raw_scores: Vec<f32>,
    /// Fused score of each box.
    pub box_scores: Vec<f32>,
}

/// Each band's (count, mean, std) as the `stats.<id>` tensor [models, 3];
/// bands without statistics have count 0.
pub fn stats_table(statistics: &[ModelStats], models: usize) -> Vec<f64> {
    let mut stats = vec![0f64; models * 3];
    for s in statistics {
        if (s.model as usize) < models {
            stats[s.model as usize * 3..][..3].copy_from_slice(&[s.count as f64, s.mean, s.std]);
        }
    }
    stats
}

/// Each band's line of ln(error) in ln(box height) over the cubes of
/// `records` with their `errors` (docs/method.md 7.1); `models` lines.
pub fn height_lines(records: &[CubeRecord], errors: &[f32], models: usize) -> Vec<HeightLine> {
    let mut points = vec![Vec::new(); models];
    for (r, &error) in records.iter().zip(errors) {
        points[r.band as usize].push((log_height(r.frame_box.y1, r.frame_box.y2), log_error(f64::from(error))));
    }
    points.iter().map(|p| HeightLine::fit(p)).collect()
}

/// The `height_stats.<id>` tensor's values [models, 4]; models without a
/// line have count 0.
pub fn height_table(lines: &[HeightLine], models: usize) -> Vec<f64> {
    (0..models).flat_map(|b| lines.get(b).copied().unwrap_or_default().to_row()).collect()
}

/// One reconstructor's part of the scorer's input: its stage id, the error
/// of each box of the rows, its statistics table and, when known, its
/// height lines (a model bundle from before they were recorded has none).
pub struct MemberErrors<'a> {
    pub id: &'a str,
    pub errors: Vec<f32>,
    pub stats: Vec<f64>,
    pub height_lines: Option<&'a [HeightLine]>,
}

/// Calls the scorer on `rows` with every member's errors and statistics.
pub fn call_scorer(scorer: &mut Stage, rows: ScorerRows, members: Vec<MemberErrors>, models: usize) -> Result<ScorerOutput> {
    let (f, m) = (rows.ids.len(), rows.bands.len());
    let mut batch = Batch::new(rows.ids)
        .with(names::FRAME_SIZE, Tensor::from_vec(rows.sizes, &[f, 2]))
        .with(names::BOXES, Tensor::from_vec(rows.boxes, &[m, 5]))
        .with(names::BAND, Tensor::from_vec(rows.bands, &[m]));
    for member in members {
        batch.insert(&names::errors_of(member.id), Tensor::from_vec(member.errors, &[m]));
        batch.insert(&names::stats_of(member.id), Tensor::from_vec(member.stats, &[models, 3]));
        if let Some(lines) = member.height_lines {
            batch.insert(&names::height_stats_of(member.id), Tensor::from_vec(height_table(lines, models), &[models, HeightLine::ROW]));
        }
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
    Ok(ScorerOutput { scores: read("scores", f)?, raw_scores: read("raw_scores", f)?, box_scores: read("box_scores", m)? })
}

/// Per-cube errors of every reconstructor over the fit's own cubes, each
/// band's height line over them, then the scorer's frame scores for the
/// scored videos.
pub fn score_fitted(
    reconstructors: &mut [(String, &mut ReconstructorBox)],
    scorer: &mut Stage,
    records: &[CubeRecord],
    videos: &[VideoRecord],
    summary: &FitSummary,
) -> Result<Scored> {
    let scored_videos: Vec<usize> = (0..videos.len()).filter(|&v| videos[v].scored).collect();
    // frame row of the first frame of each scored video
    let mut first_row = vec![usize::MAX; videos.len()];
    let mut rows = ScorerRows::default();
    for &v in &scored_videos {
        first_row[v] = rows.ids.len();
        for frame in 0..videos[v].frames {
            rows.push_frame(FrameId { video: v as u32, frame: frame as u32 }, videos[v].height, videos[v].width);
        }
    }
    let scored_cubes: Vec<usize> = (0..records.len()).filter(|&i| videos[records[i].video as usize].scored).collect();
    for &i in &scored_cubes {
        let r = &records[i];
        rows.push_box(first_row[r.video as usize] + r.frame_box.frame as usize, &r.frame_box, r.band);
    }
    let models = records.iter().map(|r| r.band + 1).max().unwrap_or(0) as usize;
    // Every cube's error, since the height lines are over all training
    // cubes; the scored ones are a subset (all of them in the test-only setting).
    let all: Vec<u32> = (0..records.len() as u32).collect();
    let mut member_errors = Vec::with_capacity(reconstructors.len());
    let mut lines = Vec::with_capacity(reconstructors.len());
    for (id, stage) in reconstructors.iter_mut() {
        let mut errors = Vec::with_capacity(all.len());
        for chunk in all.chunks(ERRORS_CHUNK) {
            let part = Stage::call(&format!("stage `{id}`"), stage.errors(chunk.into()))?;
            errors.extend_from_slice(&part);
        }
        lines.push(height_lines(records, &errors, models));
        member_errors.push((id.clone(), scored_cubes.iter().map(|&i| errors[i]).collect::<Vec<f32>>()));
    }
    let members = member_errors
        .iter()
        .zip(&summary.statistics)
        .zip(&lines)
        .map(|(((id, errors), stats), lines)| MemberErrors {
            id,
            errors: errors.clone(),
            stats: stats_table(stats, models),
            height_lines: Some(lines),
        })
        .collect();
    let out = call_scorer(scorer, rows, members, models)?;
    let split = |all: &[f32]| -> Vec<Vec<f32>> {
        scored_videos.iter().map(|&v| all[first_row[v]..first_row[v] + videos[v].frames].to_vec()).collect()
    };
    Ok(Scored {
        scores: split(&out.scores),
        raw_scores: split(&out.raw_scores),
        videos: scored_videos,
        cubes: scored_cubes,
        box_scores: out.box_scores,
        errors: member_errors,
        height_lines: lines,
    })
}

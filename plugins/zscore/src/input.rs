//! Reads and checks the scorer's input batch (the contract is in lib.rs).

use crate::options::Normalization;
use std::ops::Range;
use vigil_stage_api::height::HeightLine;
use vigil_stage_api::{names, Batch, FrameId, StageError, Tensor};

/// Training statistics of one model (band) of one reconstructor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandStats {
    pub count: f64,
    pub mean: f64,
    pub std: f64,
}

/// One reconstructor's per-box errors, its band statistics and its weight.
#[derive(Debug)]
pub struct Modality<'a> {
    pub stage: String,
    pub weight: f64,
    pub errors: &'a [f32],
    pub stats: Vec<BandStats>,
    /// Each band's line of ln(error) in ln(box height), when scoring about it.
    pub height_lines: Option<Vec<HeightLine>>,
}

/// A box in pixel coordinates on frame row `row` of the scored set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameBox {
    pub row: usize,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

/// Everything the scorer needs, checked for consistency.
#[derive(Debug)]
pub struct ScoringInput<'a> {
    /// (height, width) of each frame row.
    pub frame_sizes: Vec<(u32, u32)>,
    /// Rows of each video, in order.
    pub videos: Vec<Range<usize>>,
    pub boxes: Vec<FrameBox>,
    pub bands: &'a [u32],
    pub modalities: Vec<Modality<'a>>,
}

pub use vigil_stage_api::names::{ERRORS_PREFIX, HEIGHT_STATS_PREFIX, STATS_PREFIX};

fn shaped<'a, T: vigil_stage_api::Element>(
    batch: &'a Batch,
    name: &str,
    expected: &str,
    shape_ok: impl Fn(&[usize]) -> bool,
) -> Result<&'a [T], StageError> {
    let tensor: &Tensor = batch.require(name)?;
    let shape = tensor.shape();
    if !shape_ok(&shape) {
        return Err(StageError::invalid(format!("input `{name}`: expected shape {expected}, found {shape:?}")));
    }
    tensor.as_slice::<T>().map_err(|e| StageError::invalid(format!("input `{name}`: {e}")))
}

/// Contiguous row ranges of each video; frames must ascend within a video
/// and a video's rows must not be split, since smoothing runs along them.
pub fn video_ranges(ids: &[FrameId]) -> Result<Vec<Range<usize>>, StageError> {
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (row, id) in ids.iter().enumerate() {
        match ranges.last_mut() {
            Some(r) if ids[r.end - 1].video == id.video => {
                let previous = ids[r.end - 1].frame;
                if id.frame <= previous {
                    return Err(StageError::invalid(format!(
                        "ids: video {} frame {} follows frame {previous}; frames of a video must ascend",
                        id.video, id.frame
                    )));
                }
                r.end = row + 1;
            }
            _ => {
                if !seen.insert(id.video) {
                    return Err(StageError::invalid(format!(
                        "ids: video {} appears again at row {row}; each video's frames must be contiguous",
                        id.video
                    )));
                }
                ranges.push(row..row + 1);
            }
        }
    }
    Ok(ranges)
}

fn read_boxes(batch: &Batch, frames: usize) -> Result<Vec<FrameBox>, StageError> {
    let flat: &[f32] = shaped(batch, names::BOXES, "[M, 5]", |s| s.len() == 2 && s[1] == 5)?;
    flat.chunks_exact(5)
        .enumerate()
        .map(|(i, b)| {
            let row = b[0];
            if !(row >= 0.0 && row.fract() == 0.0 && (row as usize) < frames) {
                return Err(StageError::invalid(format!("input `boxes` row {i}: frame row {row} is not an integer in 0..{frames}")));
            }
            if b[1..].iter().any(|v| !v.is_finite()) {
                return Err(StageError::invalid(format!("input `boxes` row {i}: coordinates {:?} are not finite", &b[1..])));
            }
            Ok(FrameBox { row: row as usize, x1: b[1], y1: b[2], x2: b[3], y2: b[4] })
        })
        .collect()
}

fn read_frame_sizes(batch: &Batch, frames: usize) -> Result<Vec<(u32, u32)>, StageError> {
    let expected = format!("[{frames}, 2] or [1, 2]");
    let flat: &[u32] = shaped(batch, names::FRAME_SIZE, &expected, |s| s.len() == 2 && s[1] == 2 && (s[0] == frames || s[0] == 1))?;
    let sizes: Vec<(u32, u32)> = flat.chunks_exact(2).map(|s| (s[0], s[1])).collect();
    Ok(if sizes.len() == 1 { vec![sizes[0]; frames] } else { sizes })
}

fn read_stats(batch: &Batch, stage: &str, bands: &[u32]) -> Result<Vec<BandStats>, StageError> {
    let name = format!("{STATS_PREFIX}{stage}");
    let flat: &[f64] = shaped(batch, &name, "[B, 3] (count, mean, std)", |s| s.len() == 2 && s[1] == 3)?;
    let stats: Vec<BandStats> = flat.chunks_exact(3).map(|s| BandStats { count: s[0], mean: s[1], std: s[2] }).collect();
    if let Some(&band) = bands.iter().find(|&&b| b as usize >= stats.len()) {
        return Err(StageError::invalid(format!(
            "input `{name}` has {} rows but `band` names model {band}; give one row per model \
             (count 0 for a model without training boxes)",
            stats.len()
        )));
    }
    if let Some((b, s)) = stats.iter().enumerate().find(|(_, s)| s.count > 0.0 && !(s.mean.is_finite() && s.std.is_finite())) {
        return Err(StageError::invalid(format!("input `{name}` row {b}: mean {} and std {} must be finite", s.mean, s.std)));
    }
    Ok(stats)
}

fn read_height_lines(batch: &Batch, stage: &str, models: usize) -> Result<Vec<HeightLine>, StageError> {
    let name = format!("{HEIGHT_STATS_PREFIX}{stage}");
    if batch.get(&name).is_none() {
        return Err(StageError::invalid(format!(
            "option `normalize = \"box_height\"` needs input `{name}`, the line of ln(error) in ln(box height) per \
             model, and the batch has none (a model bundle written before Vigil recorded these lines: fit it again, \
             or score with `normalize = \"band\"`)"
        )));
    }
    let expected = format!("[{models}, {}] (count, intercept, slope, residual std)", HeightLine::ROW);
    let flat: &[f64] = shaped(batch, &name, &expected, |s| s == [models, HeightLine::ROW])?;
    flat.chunks_exact(HeightLine::ROW)
        .enumerate()
        .map(|(b, row)| {
            HeightLine::from_row(row)
                .ok_or_else(|| StageError::invalid(format!("input `{name}` row {b}: {row:?} is not a count and a finite line")))
        })
        .collect()
}

/// Which reconstructors take part, with their weights. Explicit weights
/// name them; otherwise every `errors.<id>` in the batch does.
fn resolve_weights(batch: &Batch, weights: &[(String, f64)]) -> Result<Vec<(String, f64)>, StageError> {
    let present: Vec<String> = batch.names().filter_map(|n| n.strip_prefix(ERRORS_PREFIX)).map(str::to_owned).collect();
    let chosen: Vec<(String, f64)> = if weights.is_empty() {
        match present.as_slice() {
            [] => return Err(StageError::invalid("the batch holds no `errors.<reconstructor id>` tensor; the scorer needs at least one")),
            [one] => vec![(one.clone(), 1.0)],
            many => {
                let paper = |id: &str| match id {
                    "appearance" => Some(0.5),
                    "motion" => Some(1.0),
                    _ => None,
                };
                let known: Option<Vec<(String, f64)>> = many.iter().map(|id| Some((id.clone(), paper(id)?))).collect();
                known.ok_or_else(|| {
                    StageError::invalid(format!(
                        "several reconstructors ({}) and no option `weights`: the paper's defaults only cover \
                         `appearance` and `motion`; set `weights = {{ id = number, .. }}`",
                        many.join(", ")
                    ))
                })?
            }
        }
    } else {
        if let Some(extra) = present.iter().find(|p| !weights.iter().any(|(w, _)| w == *p)) {
            let named: Vec<&str> = weights.iter().map(|(w, _)| w.as_str()).collect();
            return Err(StageError::invalid(format!(
                "the batch has `{ERRORS_PREFIX}{extra}` but option `weights` gives no weight for `{extra}` \
                 (it names: {})",
                named.join(", ")
            )));
        }
        weights.to_vec()
    };
    // A single modality scores with its z alone (docs/method.md 7.2).
    Ok(if chosen.len() == 1 { vec![(chosen[0].0.clone(), 1.0)] } else { chosen })
}

pub fn read_input<'a>(batch: &'a Batch, weights: &[(String, f64)], normalization: Normalization) -> Result<ScoringInput<'a>, StageError> {
    let frames = batch.ids.len();
    let videos = video_ranges(&batch.ids)?;
    let frame_sizes = read_frame_sizes(batch, frames)?;
    let boxes = read_boxes(batch, frames)?;
    let m = boxes.len();
    let bands: &[u32] = shaped(batch, names::BAND, &format!("[{m}]"), |s| s == [m])?;
    let modalities = resolve_weights(batch, weights)?
        .into_iter()
        .map(|(stage, weight)| {
            let name = format!("{ERRORS_PREFIX}{stage}");
            let errors: &[f32] = shaped(batch, &name, &format!("[{m}] (one per box)"), |s| s == [m])?;
            if let Some(i) = errors.iter().position(|e| !e.is_finite()) {
                return Err(StageError::invalid(format!("input `{name}`: box {i} has error {}", errors[i])));
            }
            let stats = read_stats(batch, &stage, bands)?;
            let height_lines = match normalization {
                Normalization::Band => None,
                Normalization::BoxHeight => Some(read_height_lines(batch, &stage, stats.len())?),
            };
            Ok(Modality { stage, weight, errors, stats, height_lines })
        })
        .collect::<Result<Vec<_>, StageError>>()?;
    Ok(ScoringInput { frame_sizes, videos, boxes, bands, modalities })
}

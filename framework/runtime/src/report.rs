//! The outputs of `vigil run`, all written atomically: `report.json`,
//! `report.html`, `scores.csv`, `boxes.csv`, `events.jsonl`, and PNG plots
//! (ROC curve, one score timeline per video with the ground truth shaded,
//! heatmaps of the most anomalous frames). Events use the rule of `vigil
//! fit`'s threshold: the scored frames are the ones the model was fitted on.

use crate::extract::VideoRecord;
use crate::extract::{CacheUse, Timings};
use crate::fit::FitSummary;
use crate::pipeline::Pipeline;
use crate::score::Scored;
use crate::stage::Stage;
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::Instant;
use vigil_datasets::VideoSource;
use vigil_eval::html::{write_html, Gallery, HtmlReport, RocPlot, Timeline};
use vigil_eval::{Metrics, PixelAuroc, RankedCounts, RgbFrame, ScoreMap, VideoSeries};
use vigil_events::{EventBox, EventGrouper};

/// Events listed in report.html's table (events.jsonl holds every one).
pub const EVENTS_LISTED: usize = 50;
/// Events report.html shows at their peak frame, with their boxes.
pub const EVENT_FRAMES: usize = 6;
use vigil_stage_api::{names, ROption, StageObject};

pub struct Outputs<'a> {
    pub out: &'a Path,
    pub pipeline: &'a Pipeline,
    /// From [`stage_summary`].
    pub plugins: Value,
    pub sources: &'a [(VideoSource, bool)],
    /// The labels of the scored videos, read before extraction
    /// ([`crate::labels::preload`]); checked here against the decoded frames.
    pub truth: Option<&'a vigil_datasets::GroundTruth>,
    pub videos: &'a [VideoRecord],
    pub records: &'a [vigil_cubes::CubeRecord],
    pub cube_config: &'a vigil_cubes::CubeConfig,
    /// Boxes whose crop was empty.
    pub skipped: usize,
    /// Bytes of the cubes, and whether they were spilled to disk.
    pub cube_bytes: usize,
    pub spilled: bool,
    pub scored: &'a Scored,
    pub fit: &'a FitSummary,
    pub timings: &'a Timings,
    pub cache_use: CacheUse,
    pub started: Instant,
}

/// Every stage: id, plugin, kind, version, library and complete options.
pub fn stage_summary(stages: &[Stage]) -> Value {
    Value::Array(
        stages
            .iter()
            .map(|s| {
                json!({
                    "id": s.id(), "plugin": s.spec.plugin, "kind": s.kind().as_str(),
                    "version": s.info.version.as_str(), "library": s.library, "library_version": s.library_version,
                    "options": Value::Object(s.options.map().clone()),
                })
            })
            .collect(),
    )
}

/// Decodes frame `frame` of a video again (for heatmap overlays).
pub fn decode_frame(decoder: &mut Stage, source: &Path, video: u32, frame: usize) -> Result<Vec<u8>> {
    let label = decoder.label();
    let StageObject::Decoder(object) = &mut decoder.object else { bail!("{label} is not a decoder") };
    let path = source.display().to_string();
    Stage::call(&label, object.open(path.as_str().into(), video))?;
    let mut seen = 0usize;
    loop {
        let ROption::RSome(batch) = Stage::call(&label, object.next_batch(64))? else {
            bail!("{}: frame {frame} is past the end ({seen} frames)", source.display());
        };
        let frames = batch.require(names::FRAMES).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        let n = frames.shape()[0];
        if frame < seen + n {
            let all = frames.as_slice::<u8>().map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
            let len = all.len() / n;
            return Ok(all[(frame - seen) * len..(frame - seen + 1) * len].to_vec());
        }
        seen += n;
    }
}

/// Frame labels and (optionally) pixel masks of the scored videos.
/// The ground truth and, per scored video, its frame labels.
type Labels<'a> = (&'a vigil_datasets::GroundTruth, Vec<Vec<bool>>);

fn load_labels<'a>(o: &Outputs<'a>) -> Result<Option<Labels<'a>>> {
    let Some(truth) = o.truth else { return Ok(None) };
    let counts: Vec<usize> = o.scored.videos.iter().map(|&v| o.videos[v].frames).collect();
    let frame_labels = vigil_datasets::validate(truth, &counts)
        .with_context(|| format!("checking the labels {} against the decoded videos", truth.source.display()))?;
    Ok(Some((truth, frame_labels)))
}

/// Box regions and fused scores of each scored frame, keyed by (scored video, frame).
type FrameBoxes = std::collections::HashMap<(usize, usize), (Vec<[f32; 4]>, Vec<f32>)>;

/// The [`FrameBoxes`] of a run.
fn frame_boxes(o: &Outputs) -> FrameBoxes {
    let mut position = vec![usize::MAX; o.videos.len()];
    for (i, &v) in o.scored.videos.iter().enumerate() {
        position[v] = i;
    }
    let mut map = FrameBoxes::default();
    for (&cube, &score) in o.scored.cubes.iter().zip(&o.scored.box_scores) {
        let r = &o.records[cube];
        let b = &r.frame_box;
        let entry = map.entry((position[r.video as usize], b.frame as usize)).or_default();
        entry.0.push([b.x1, b.y1, b.x2, b.y2]);
        entry.1.push(score);
    }
    map
}

/// `None` when the masks mark no pixel (or every pixel) anomalous.
fn pixel_auroc(o: &Outputs, truth: &vigil_datasets::GroundTruth, boxes: &FrameBoxes) -> Result<Option<f64>> {
    // Pixels outside every box rank below all box scores.
    let floor = o.scored.box_scores.iter().copied().fold(f32::INFINITY, f32::min) - 1.0;
    let mut auroc = PixelAuroc::new();
    for (i, &v) in o.scored.videos.iter().enumerate() {
        let (h, w) = (o.videos[v].height, o.videos[v].width);
        for frame in 0..o.videos[v].frames {
            let Some(mask) = truth.mask(i, frame)? else { continue };
            let (regions, scores) = boxes.get(&(i, frame)).cloned().unwrap_or_default();
            let map = ScoreMap::paint(h as u32, w as u32, &regions, &scores)?;
            let truth_pixels: Vec<bool> = (0..h * w).map(|p| mask.get(p % w, p / w)).collect();
            auroc.add_frame(&map.filled(floor), &truth_pixels)?;
        }
    }
    if !auroc.has_both_classes() {
        return Ok(None);
    }
    Ok(Some(auroc.auroc()?))
}

/// Writes everything; returns the metrics when labels were given.
pub fn write(o: &Outputs, read_frame: &mut dyn FnMut(usize, usize) -> Result<Vec<u8>>) -> Result<Option<Metrics>> {
    let plots = o.out.join("plots");
    std::fs::create_dir_all(&plots).with_context(|| format!("creating {}", plots.display()))?;
    let labels = load_labels(o)?;
    let series: Vec<VideoSeries> = o
        .scored
        .videos
        .iter()
        .enumerate()
        .map(|(i, &v)| VideoSeries {
            name: &o.videos[v].name,
            scores: &o.scored.scores[i],
            labels: labels.as_ref().map(|(_, l)| l[i].as_slice()),
        })
        .collect();
    let boxes = frame_boxes(o);
    let mut roc = None;
    let metrics = match &labels {
        Some((truth, _)) => {
            let mut metrics = vigil_eval::frame_metrics(&series)?;
            if truth.has_masks() {
                metrics.pixel_auroc = pixel_auroc(o, truth, &boxes)?;
                if metrics.pixel_auroc.is_none() {
                    metrics.add_note("The pixel masks have one class only: pixel AUROC is not defined.");
                }
            }
            if let Some(auroc) = metrics.auroc {
                let scores: Vec<f32> = series.iter().flat_map(|s| s.scores.iter().copied()).collect();
                let flags: Vec<bool> = series.iter().flat_map(|s| s.labels.unwrap_or(&[]).iter().copied()).collect();
                let curve = RankedCounts::from_samples(&scores, &flags)?.roc_curve()?;
                vigil_eval::plot_roc(plots.join("roc.png"), &format!("{}: frame-level ROC", o.pipeline.name), &curve, auroc)?;
                roc = Some(RocPlot::new(&curve, auroc));
            }
            if let Some(note) = &metrics.note {
                tracing::warn!("{note}");
            }
            Some(metrics)
        }
        None => None,
    };
    for s in &series {
        let title = format!("{}: video {}", o.pipeline.name, s.name);
        vigil_eval::plot_timeline(plots.join(format!("timeline-{}.png", file_safe(s.name))), &title, s.scores, s.labels)?;
    }
    write_heatmaps(o, &series, &boxes, &plots, read_frame)?;
    vigil_eval::write_scores_csv(o.out.join("scores.csv"), &series)?;
    let error_names: Vec<&str> = o.scored.errors.iter().map(|(id, _)| id.as_str()).collect();
    vigil_eval::write_boxes_csv(o.out.join("boxes.csv"), &box_rows(o), &error_names)?;
    write_events_and_page(o, &series, &boxes, metrics.clone(), roc, read_frame)?;
    // Last, so that it marks a complete run: the run cleared the earlier
    // run's outputs before it began, so a folder without report.json holds
    // the partial outputs of an interrupted run, never a mix of two.
    vigil_eval::write_report(o.out.join("report.json"), metrics.as_ref(), report_fields(o))?;
    Ok(metrics)
}

/// `events.jsonl` and `report.html`.
fn write_events_and_page(
    o: &Outputs,
    series: &[VideoSeries],
    boxes: &FrameBoxes,
    metrics: Option<Metrics>,
    roc: Option<RocPlot>,
    read_frame: &mut dyn FnMut(usize, usize) -> Result<Vec<u8>>,
) -> Result<()> {
    let scores: Vec<f32> = series.iter().flat_map(|s| s.scores.iter().copied()).collect();
    let threshold = vigil_events::calibrate(&scores, crate::model::DEFAULT_QUANTILE)
        .map_err(|e| anyhow::anyhow!("calibrating the event threshold: {e}"))?;
    let mut grouper = EventGrouper::new(threshold.value);
    let mut events = Vec::new();
    for (i, s) in series.iter().enumerate() {
        for (frame, &score) in s.scores.iter().enumerate() {
            let event_boxes = || {
                let (regions, scores) = boxes.get(&(i, frame)).cloned().unwrap_or_default();
                regions.iter().zip(scores).map(|(r, score)| EventBox { x1: r[0], y1: r[1], x2: r[2], y2: r[3], score }).collect()
            };
            events.extend(grouper.push(s.name, frame as u32, score, event_boxes));
        }
    }
    events.extend(grouper.finish());
    let mut lines = String::new();
    for event in &events {
        lines.push_str(&serde_json::to_string(event)?);
        lines.push('\n');
    }
    let path = o.out.join("events.jsonl");
    vigil_eval::write_atomic(&path, lines.as_bytes()).with_context(|| format!("writing {}", path.display()))?;

    let mut timelines: Vec<Timeline> = series.iter().map(|s| Timeline::of_scores(s.name, s.scores, s.labels)).collect();
    let index: std::collections::HashMap<&str, usize> = series.iter().enumerate().map(|(i, s)| (s.name, i)).collect();
    let mut gallery = Gallery::new(EVENTS_LISTED, EVENT_FRAMES);
    // Highest peak first, so that only the frames shown are decoded again.
    events.sort_by(|a, b| b.peak_score.total_cmp(&a.peak_score));
    for event in events {
        let i = index[event.video.as_str()];
        timelines[i].mark_event(event.start, event.end, event.peak_frame);
        let v = o.scored.videos[i];
        let pixels = if gallery.wants_snapshot(event.peak_score) { Some(read_frame(v, event.peak_frame as usize)?) } else { None };
        let (width, height) = (o.videos[v].width as u32, o.videos[v].height as u32);
        gallery.add(event, pixels.as_deref().map(|pixels| RgbFrame { width, height, pixels }))?;
    }
    for t in &mut timelines {
        t.events.sort();
    }
    let frames: usize = o.videos.iter().map(|v| v.frames).sum();
    let p = o.pipeline;
    let facts = vec![
        ("Pipeline".to_string(), p.file.display().to_string()),
        ("Data".to_string(), p.data.test.as_ref().map_or("-".to_string(), |t| t.path.display().to_string())),
        ("Videos".to_string(), format!("{} ({} scored), {frames} frames", o.videos.len(), series.len())),
        ("Cubes".to_string(), o.records.len().to_string()),
        ("Fit".to_string(), format!("{} epochs, seed {}", o.fit.epochs.len(), p.seed)),
        ("Time".to_string(), format!("{:.1} s", o.started.elapsed().as_secs_f64())),
    ];
    let report = HtmlReport {
        title: p.name.clone(),
        command: "vigil run".into(),
        facts,
        metrics,
        roc,
        threshold: threshold.value,
        threshold_rule: format!(
            "the {} quantile of the {} scored frames' scores, as `vigil fit` calibrates it",
            threshold.quantile, threshold.frames
        ),
        timelines,
        gallery,
        complete: true,
    };
    write_html(o.out.join("report.html"), &report)?;
    Ok(())
}

/// Every scored box with its score, in cube order.
fn box_rows<'a>(o: &'a Outputs) -> Vec<vigil_eval::BoxRow<'a>> {
    o.scored
        .cubes
        .iter()
        .zip(&o.scored.box_scores)
        .enumerate()
        .map(|(row, (&cube, &score))| {
            let r = &o.records[cube];
            let b = &r.frame_box;
            vigil_eval::BoxRow {
                video: &o.videos[r.video as usize].name,
                frame: b.frame,
                region: [b.x1, b.y1, b.x2, b.y2],
                class: b.class,
                confidence: b.score,
                band: r.band,
                score,
                errors: o.scored.errors.iter().map(|(_, e)| e[row]).collect(),
            }
        })
        .collect()
}

fn file_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn write_heatmaps(
    o: &Outputs,
    series: &[VideoSeries],
    boxes: &FrameBoxes,
    plots: &Path,
    read_frame: &mut dyn FnMut(usize, usize) -> Result<Vec<u8>>,
) -> Result<()> {
    let count = o.pipeline.report.heatmaps as usize;
    if count == 0 || o.scored.box_scores.is_empty() {
        return Ok(());
    }
    let low = o.scored.box_scores.iter().copied().fold(f32::INFINITY, f32::min);
    let high = o.scored.box_scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (rank, (i, frame, score)) in vigil_eval::most_anomalous_frames(series, count).into_iter().enumerate() {
        let v = o.scored.videos[i];
        let (h, w) = (o.videos[v].height as u32, o.videos[v].width as u32);
        let pixels = read_frame(v, frame)?;
        let (regions, scores) = boxes.get(&(i, frame)).cloned().unwrap_or_default();
        let map = ScoreMap::paint(h, w, &regions, &scores)?;
        let name = format!("heatmap-{:02}-{}-{frame:04}.png", rank + 1, file_safe(&o.videos[v].name));
        let title = format!("video {} frame {frame}: score {score:.2}", o.videos[v].name);
        vigil_eval::plot_heatmap(plots.join(name), &title, RgbFrame { width: w, height: h, pixels: &pixels }, &map, (low, high))?;
    }
    Ok(())
}

fn report_fields(o: &Outputs) -> Map<String, Value> {
    let p = o.pipeline;
    let data = json!({
        "test": p.data.test.as_ref().map(|t| &t.path),
        "extra": p.data.extra.iter().map(|e| &e.path).collect::<Vec<_>>(),
        "labels": p.data.labels.as_ref().map(|l| &l.path),
        "videos": o.videos,
    });
    let c = o.cube_config;
    let cubes = json!({
        "count": o.records.len(),
        "skipped_empty_boxes": o.skipped,
        "bytes": o.cube_bytes,
        "spilled": o.spilled,
        "context": c.context, "size": c.size, "h_block": c.h_block, "w_block": c.w_block,
    });
    let mut timings = o.timings.seconds();
    timings.insert("total".into(), o.started.elapsed().as_secs_f64());
    let mut fields = Map::new();
    fields.insert("pipeline".into(), json!({ "name": p.name, "file": p.file, "device": p.device }));
    fields.insert("seed".into(), json!(p.seed));
    fields.insert("vigil_version".into(), json!(env!("CARGO_PKG_VERSION")));
    fields.insert("stages".into(), o.plugins.clone());
    fields.insert("data".into(), data);
    fields.insert("cubes".into(), cubes);
    fields.insert("cache".into(), serde_json::to_value(o.cache_use).unwrap_or_default());
    fields.insert("timings_s".into(), serde_json::to_value(timings).unwrap_or_default());
    fields.insert(
        "fit".into(),
        json!({
            "members": o.fit.members,
            "resumed_after_epoch": o.fit.resumed_after,
            "epochs": o.fit.epochs,
            "statistics": o.fit.statistics.iter().map(|s| s.iter().map(|m| json!({
                "model": m.model, "count": m.count, "mean": m.mean, "std": m.std
            })).collect::<Vec<_>>()).collect::<Vec<_>>(),
        }),
    );
    fields
}

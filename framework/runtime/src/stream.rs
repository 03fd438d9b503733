//! `vigil score`: a fitted model (`bundle.rs`) on new footage, chunk by
//! chunk, so memory is bounded by the chunk and not by the input's length.
//!
//! Per video, frames are decoded `chunk` at a time into a [`Window`]. Flow,
//! localizer and cube builder then run as far as the frames decoded allow,
//! each lagging the decoder by what it needs to see: flow one frame (the
//! pair (t, t+1)), the localizer a whole batch of `CHUNK` frames, the cube
//! of a box at frame t the frames up to t + context. Flow and localizer
//! calls stay aligned to `CHUNK` from the video's start, so they see the
//! batches `vigil run` gives them; a cube cut from the window equals the one
//! cut from the whole video, since its context frames are all in the window
//! (or clamped at the video's real ends). Frames nobody needs any more are
//! dropped.
//!
//! Each chunk's cubes get their errors from the loaded models
//! (`Reconstructor::errors_of`) and go to the scorer with the frames of
//! context its `reach` asks for ([`ScoreQueue`]): a frame is final once the
//! frames after it that it depends on have been scored with it, so chunked
//! scores equal whole-video scores. Final frames are appended to
//! `scores.csv` and `boxes.csv` (flushed per chunk) and grouped into events
//! that go to every sink as soon as they close. `report.html` is rewritten
//! every [`PAGE_EVERY`] and at the end, from bounded summaries: a
//! [`Timeline`] per video and a [`Gallery`] of the top events, each with
//! its peak frame, kept while its event is open.

use crate::bundle::OpenBundle;
use crate::extract::{decoded_frames, localize, pair_flows, Clip, CHUNK};
use crate::fit::share_batch;
use crate::latency::LatencyHistogram;
use crate::roles::{roles, Roles};
use crate::score::{call_scorer, stats_table, MemberErrors, ScorerRows};
use crate::stage::{call, Stage};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vigil_cubes::{CubeConfig, CubeSet, FrameBox};
use vigil_eval::html::{write_html, Gallery, HtmlReport, Timeline};
use vigil_eval::RgbFrame;
use vigil_events::{Event, EventBox, EventGrouper, EventSink};
use vigil_stage_api::height::HeightLine;
use vigil_stage_api::{FrameId, FrameReach, ModelStats, ReconstructorBox, StageObject, VideoInfo};

/// How often `report.html` is rewritten while scoring.
pub const PAGE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

pub struct ScoreOptions {
    /// Where `scores.csv`, `boxes.csv` and `events.jsonl` go (and `work/`).
    pub out: PathBuf,
    /// Frames decoded per step; rounded up to a multiple of `CHUNK`.
    pub chunk: usize,
    /// The event threshold; `None`: the one calibrated at fit time.
    pub threshold: Option<f32>,
    pub progress: bool,
}

pub struct ScoreOutcome {
    pub videos: usize,
    pub frames: usize,
    pub events: usize,
    pub threshold: f32,
    pub seconds: f64,
    /// From the decoder handing a frame over to its score being written
    /// (for a live stream, add the time it waited in the decoder's queue).
    pub latency: LatencyHistogram,
    /// The first input's frame rate, when its container says it.
    pub input_fps: Option<f64>,
    /// The signal that stopped scoring before the inputs ended, if any.
    pub stopped_by: Option<&'static str>,
}

/// Scores every video of `inputs` (each a video file, a frame folder or a
/// folder of either, as `data.test` takes them) with the opened bundle, and
/// sends each event to every sink.
pub fn score_inputs(
    bundle: &mut OpenBundle,
    inputs: &[PathBuf],
    options: &ScoreOptions,
    sinks: &mut [Box<dyn EventSink>],
) -> Result<ScoreOutcome> {
    let started = Instant::now();
    let mut sources = Vec::new();
    for input in inputs {
        let videos = vigil_datasets::resolve(input).with_context(|| format!("reading the input {}", input.display()))?;
        sources.extend(videos);
    }
    std::fs::create_dir_all(&options.out).with_context(|| format!("creating the output folder {}", options.out.display()))?;
    let record = &bundle.record;
    let g = &record.geometry;
    let config = CubeConfig {
        context: g.context as usize,
        size: g.size as usize,
        h_block: g.h_block,
        w_block: g.w_block,
        memory_budget: usize::MAX,
        spill_dir: options.out.join("work"),
    };
    let models = (g.h_block * g.w_block) as usize;
    let statistics = record.statistics()?;
    let height_lines = record.height_lines()?;
    let threshold = options.threshold.unwrap_or(record.threshold.value);
    let frame_sizes = g.frame_sizes.clone();
    let bundle_dir = bundle.dir.clone();
    let member_ids: Vec<String> = record.members.iter().map(|(id, _)| id.clone()).collect();
    let page = Page {
        path: options.out.join("report.html"),
        title: record.pipeline.clone(),
        model: bundle_dir.display().to_string(),
        inputs: inputs.iter().map(|i| i.display().to_string()).collect::<Vec<_>>().join(", "),
        threshold_rule: match options.threshold {
            Some(_) => "given with --threshold".to_string(),
            None => format!(
                "calibrated when the model was fitted: the {} quantile of {} training frames' scores",
                record.threshold.quantile, record.threshold.frames
            ),
        },
    };

    let motion_cubes = crate::check::wants_motion_cubes(&bundle.checked.stages);
    let stages = roles(&mut bundle.checked.stages)?;
    let reach = scorer_reach(stages.scorer)?;
    let mut outputs = Outputs::create(&options.out, &member_ids)?;
    let mut scoring = Scoring {
        stages,
        config,
        statistics,
        height_lines,
        models,
        queue: ScoreQueue::new(reach),
        names: Vec::new(),
        grouper: EventGrouper::new(threshold),
        events: 0,
        arrivals: VecDeque::new(),
        latency: LatencyHistogram::default(),
        motion_cubes,
        timelines: Vec::new(),
        gallery: Gallery::new(crate::report::EVENTS_LISTED, crate::report::EVENT_FRAMES),
        peak: None,
    };
    let mut page_written = Instant::now();
    let chunk = options.chunk.max(1).div_ceil(CHUNK) * CHUNK;
    let bar = crate::progress::bar(options.progress, sources.len() as u64, "score");
    let mut frames = 0usize;
    // A decoder error (a live stream that broke off) ends the scoring: what
    // was decoded before it is scored and written first.
    let mut broke: Option<anyhow::Error> = None;
    let mut input_fps = None;
    crate::interrupt::stop_softly();
    let mut stopped_by = None;
    'sources: for (index, source) in sources.iter().enumerate() {
        bar.set_message(source.name.clone());
        scoring.names.push(source.name.clone());
        scoring.timelines.push(Timeline::new(&source.name));
        let video_started = Instant::now();
        let mut window = Window::new(index as u32);
        let info = open_video(scoring.stages.decoder, &source.path, index as u32)?;
        if index == 0 {
            input_fps = info.fps.into_option();
        }
        loop {
            // A signal ends the input here: what was decoded is scored as if the video ended.
            stopped_by = crate::interrupt::stop_requested();
            let next = match stopped_by {
                Some(_) => None,
                None => next_batch(scoring.stages.decoder, chunk, &source.path, window.decoded).unwrap_or_else(|e| {
                    broke = Some(e);
                    None
                }),
            };
            match next {
                Some(batch) => {
                    let label = scoring.stages.decoder.label();
                    let (n, pixels) = decoded_frames(&label, &batch, &source.path, window.decoded, &mut window.size)?;
                    if window.decoded == 0 {
                        check_frame_size(&source.path, window.size.unwrap_or_default(), &frame_sizes, &bundle_dir)?;
                    }
                    window.frames.extend_from_slice(pixels);
                    window.decoded += n;
                    let now = Instant::now();
                    scoring.arrivals.extend(std::iter::repeat_n(now, n));
                }
                None => window.ended = true,
            }
            if window.ended && window.decoded == 0 {
                if broke.is_some() || stopped_by.is_some() {
                    break 'sources;
                }
                bail!("{}: no frames could be decoded", source.path.display());
            }
            scoring.advance(&mut window)?;
            // Scorers score each video on its own (`FrameReach` is within a
            // video), so a video's end makes all its frames final.
            let scored = scoring.flush(&mut window, &mut outputs, sinks)?;
            frames += scored;
            let seconds = started.elapsed().as_secs_f64();
            bar.set_message(format!(
                "{}: {frames} frames, {:.1} frames/s, {} events",
                source.name,
                frames as f64 / seconds,
                scoring.events
            ));
            if page_written.elapsed() >= PAGE_EVERY {
                page.write(&scoring, frames, started, false)?;
                page_written = Instant::now();
            }
            if window.ended {
                break;
            }
        }
        let elapsed = video_started.elapsed().as_secs_f64();
        tracing::info!(
            "scored {}: {} frames in {elapsed:.1} s ({:.1} frames/s); {} events so far",
            source.name,
            window.decoded,
            window.decoded as f64 / elapsed.max(1e-9),
            scoring.events
        );
        bar.inc(1);
        if broke.is_some() || stopped_by.is_some() {
            break;
        }
    }
    bar.finish_and_clear();
    if let Some(event) = scoring.grouper.finish() {
        scoring.close(event, sinks)?;
    }
    page.write(&scoring, frames, started, true)?;
    // Sinks that buffer deliver what they hold, also when scoring broke.
    let undelivered: Vec<String> =
        sinks.iter_mut().filter_map(|sink| sink.finish().err().map(|e| format!("{}: {e}", sink.name()))).collect();
    if let Some(error) = broke {
        return Err(error.context(format!(
            "scoring stopped after {frames} frames; scores.csv, boxes.csv, events.jsonl and report.html in {} hold \
             everything scored until then (an event still open was closed at the last scored frame)",
            options.out.display()
        )));
    }
    if !undelivered.is_empty() {
        bail!(
            "scoring finished and its outputs are written in {}, but events were not delivered: {}",
            options.out.display(),
            undelivered.join("; ")
        );
    }
    Ok(ScoreOutcome {
        videos: sources.len(),
        frames,
        events: scoring.events,
        threshold,
        seconds: started.elapsed().as_secs_f64(),
        latency: scoring.latency,
        input_fps,
        stopped_by,
    })
}

/// Refuses frames of a size the model was not fitted on: the bands and the
/// crops depend on it.
fn check_frame_size(source: &Path, (h, w): (usize, usize), fitted: &[(usize, usize)], bundle: &Path) -> Result<()> {
    if fitted.contains(&(h, w)) {
        return Ok(());
    }
    let sizes: Vec<String> = fitted.iter().map(|(h, w)| format!("{w}x{h}")).collect();
    bail!(
        "{}: frames are {w}x{h}, but the model {} was fitted on {} frames; cubes and bands depend on the frame size: \
         fit a model on footage of this size",
        source.display(),
        bundle.display(),
        sizes.join(", ")
    )
}

fn open_video(decoder: &mut Stage, source: &Path, video: u32) -> Result<VideoInfo> {
    let label = decoder.label();
    let StageObject::Decoder(object) = &mut decoder.object else { bail!("{label} is not a decoder") };
    let path = source.display().to_string();
    Stage::call(&label, object.open(path.as_str().into(), video)).with_context(|| format!("opening {}", source.display()))
}

/// The next at most `max` frames of the open video; `None` at its end.
fn next_batch(decoder: &mut Stage, max: usize, source: &Path, seen: usize) -> Result<Option<vigil_stage_api::Batch>> {
    let label = decoder.label();
    let StageObject::Decoder(object) = &mut decoder.object else { bail!("{label} is not a decoder") };
    let next =
        Stage::call(&label, object.next_batch(max as u32)).with_context(|| format!("decoding {} after frame {seen}", source.display()))?;
    Ok(next.into_option())
}

fn scorer_reach(scorer: &mut Stage) -> Result<FrameReach> {
    let label = scorer.label();
    let StageObject::Scorer(object) = &scorer.object else { bail!("{label} is not a scorer") };
    Stage::call(&label, object.reach())
}

fn emit(event: &Event, sinks: &mut [Box<dyn EventSink>]) -> Result<()> {
    for sink in sinks.iter_mut() {
        sink.emit(event).map_err(|e| anyhow!("writing an event to {}: {e}", sink.name()))?;
    }
    Ok(())
}

/// What `report.html` says besides the scores: written from the bounded
/// summaries of [`Scoring`], so a long stream costs the same page.
struct Page {
    path: PathBuf,
    title: String,
    model: String,
    inputs: String,
    threshold_rule: String,
}

impl Page {
    fn write(&self, scoring: &Scoring, frames: usize, started: Instant, complete: bool) -> Result<()> {
        let seconds = started.elapsed().as_secs_f64();
        let delay = |q| scoring.latency.quantile(q).map_or("-".to_string(), |s| format!("{s:.3} s"));
        let facts = vec![
            ("Model".to_string(), self.model.clone()),
            ("Input".to_string(), self.inputs.clone()),
            (
                "Scored".to_string(),
                format!(
                    "{frames} frames of {} in {seconds:.1} s ({:.1} frames/s)",
                    vigil_eval::count(scoring.names.len(), "video", "videos"),
                    frames as f64 / seconds.max(1e-9)
                ),
            ),
            ("Delay from decoding to score".to_string(), format!("median {}, 99th percentile {}", delay(0.5), delay(0.99))),
        ];
        let report = HtmlReport {
            title: self.title.clone(),
            command: "vigil score".into(),
            facts,
            metrics: None,
            roc: None,
            threshold: scoring.grouper.threshold(),
            threshold_rule: self.threshold_rule.clone(),
            timelines: scoring.timelines.clone(),
            gallery: scoring.gallery.clone(),
            complete,
        };
        write_html(&self.path, &report).with_context(|| format!("writing {}", self.path.display()))
    }
}

/// The frames of one video still needed, and how far each step has come
/// (all in video frame numbers).
struct Window {
    video: u32,
    size: Option<(usize, usize)>,
    /// Frame number of the first frame held.
    first: usize,
    frames: Vec<u8>,
    decoded: usize,
    ended: bool,
    /// Pair flows (t, t+1) held, from pair `pairs_first`; pairs computed so far.
    pairs_first: usize,
    pairs: Vec<f32>,
    pairs_done: usize,
    /// Frames localized so far, and their boxes not yet cut into cubes.
    localized: usize,
    boxes: Vec<FrameBox>,
    /// Frames whose boxes have been cubed and handed to the scorer.
    cubed: usize,
    /// Frames scored (their pixels are kept until then, for event snapshots).
    scored: usize,
}

impl Window {
    fn new(video: u32) -> Window {
        Window {
            video,
            size: None,
            first: 0,
            frames: Vec::new(),
            decoded: 0,
            ended: false,
            pairs_first: 0,
            pairs: Vec::new(),
            pairs_done: 0,
            localized: 0,
            boxes: Vec::new(),
            cubed: 0,
            scored: 0,
        }
    }

    fn shape(&self) -> (usize, usize) {
        self.size.unwrap_or((0, 0))
    }

    /// Frame `frame`'s pixels, when still held.
    fn frame(&self, frame: usize) -> Option<RgbFrame<'_>> {
        let (height, width) = self.shape();
        let len = height * width * 3;
        let at = frame.checked_sub(self.first)? * len;
        let pixels = self.frames.get(at..at + len)?;
        Some(RgbFrame { width: width as u32, height: height as u32, pixels })
    }

    /// Frames `start..end` (all held) as a clip.
    fn clip(&self, start: usize, end: usize) -> Clip<'_> {
        let (height, width) = self.shape();
        let frame_len = height * width * 3;
        let frames = &self.frames[(start - self.first) * frame_len..(end - self.first) * frame_len];
        Clip { frames, video: self.video, first: start, count: end - start, height, width }
    }

    /// The per-frame flow of frames `start..end`, by the border rule of
    /// `vigil_cubes::per_frame_flow`: frame 0 has none, the video's last
    /// frame takes the pair before it, every other frame t the pair (t, t+1).
    fn frame_flows(&self, start: usize, end: usize) -> Vec<f32> {
        let (height, width) = self.shape();
        let field = height * width * 2;
        let mut out = vec![0f32; (end - start) * field];
        for t in start.max(1)..end {
            let pair = if self.ended && t + 1 == self.decoded { t - 1 } else { t };
            let from = (pair - self.pairs_first) * field;
            out[(t - start) * field..(t - start + 1) * field].copy_from_slice(&self.pairs[from..from + field]);
        }
        out
    }

    /// Drops frames and pairs that no step needs any more: the flow stage
    /// starts at frame `pairs_done`, the localizer at `localized`, the next
    /// cubes reach back `context` frames before `cubed`, and a frame not yet
    /// scored may become an event's peak.
    fn trim(&mut self, context: usize, with_flow: bool) {
        let flow_start = if with_flow { self.pairs_done } else { usize::MAX };
        let keep = self.cubed.saturating_sub(context).min(flow_start).min(self.localized).min(self.scored);
        let (height, width) = self.shape();
        if keep > self.first {
            self.frames.drain(..(keep - self.first) * height * width * 3);
            self.first = keep;
        }
        // Without a flow stage no pairs are held, and none are dropped.
        let keep_pairs = keep.saturating_sub(1);
        if with_flow && keep_pairs > self.pairs_first {
            self.pairs.drain(..(keep_pairs - self.pairs_first) * height * width * 2);
            self.pairs_first = keep_pairs;
        }
    }
}

/// One frame handed to the scorer: its size and its boxes, each with its
/// band and every member's error.
struct FrameRow {
    id: FrameId,
    size: (usize, usize),
    boxes: Vec<(FrameBox, u32, Vec<f32>)>,
}

/// A frame with its final scores.
struct ScoredFrame {
    row: FrameRow,
    score: f32,
    box_scores: Vec<f32>,
}

/// Frames waiting for the scorer, after the frames of context it needs.
struct ScoreQueue {
    reach: FrameReach,
    rows: VecDeque<FrameRow>,
    /// How many rows at the front are final already (kept as context).
    done: usize,
}

impl ScoreQueue {
    fn new(reach: FrameReach) -> ScoreQueue {
        ScoreQueue { reach, rows: VecDeque::new(), done: 0 }
    }

    /// How many of the `n` rows are final: each pending row whose `after`
    /// frames are in the queue, or all of them at the end of the input.
    /// (Every pending row has its `before` frames ahead of it, or the queue
    /// starts at the start of the input.)
    fn final_rows(&self, ended: bool) -> usize {
        let n = self.rows.len();
        if ended {
            return n;
        }
        n.saturating_sub(self.reach.after as usize).max(self.done)
    }

    /// Keeps only the `before` final rows the next pending ones need.
    fn trim(&mut self) {
        while self.done > self.reach.before as usize {
            self.rows.pop_front();
            self.done -= 1;
        }
    }
}

/// The stages and state of one `vigil score`.
struct Scoring<'a> {
    stages: Roles<'a>,
    config: CubeConfig,
    /// Each member's training statistics.
    statistics: Vec<Vec<ModelStats>>,
    /// Each member's height line per band, when the bundle records them.
    height_lines: Vec<Option<Vec<HeightLine>>>,
    models: usize,
    queue: ScoreQueue,
    /// Name of each video so far, by video index.
    names: Vec<String>,
    grouper: EventGrouper,
    events: usize,
    /// When each decoded frame not yet scored came from the decoder, in order.
    arrivals: VecDeque<Instant>,
    latency: LatencyHistogram,
    /// Whether cubes get their flow (`check::wants_motion_cubes`).
    motion_cubes: bool,
    /// Per video, for report.html.
    timelines: Vec<Timeline>,
    gallery: Gallery,
    /// The peak frame of the open event, while it may get a snapshot.
    peak: Option<PeakFrame>,
}

/// A copy of an open event's peak frame.
struct PeakFrame {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Scoring<'_> {
    /// Runs flow, localizer and cube builder as far as the decoded frames
    /// allow, and queues the frames whose boxes got their errors.
    fn advance(&mut self, window: &mut Window) -> Result<()> {
        let context = self.config.context;
        let flows_ready = match self.stages.flow.as_deref_mut() {
            Some(flow) => {
                // Clips of CHUNK + 1 frames from frame `pairs_done`, as many as are whole (all at the end).
                let end = if window.ended {
                    window.decoded
                } else {
                    window.pairs_done + (window.decoded.saturating_sub(window.pairs_done + 1) / CHUNK) * CHUNK + 1
                };
                if end > window.pairs_done + 1 {
                    let pairs = pair_flows(flow, window.clip(window.pairs_done, end), Vec::new())?;
                    window.pairs.extend_from_slice(&pairs);
                    window.pairs_done = end - 1;
                }
                if window.ended {
                    window.decoded
                } else {
                    window.pairs_done
                }
            }
            None => window.decoded,
        };
        let localize_end = if window.ended { window.decoded } else { flows_ready / CHUNK * CHUNK };
        if localize_end > window.localized {
            let flows = self.stages.flow.is_some().then(|| window.frame_flows(window.localized, localize_end));
            let boxes = localize(self.stages.localizer, window.clip(window.localized, localize_end), flows.as_deref())?;
            window.boxes.extend(boxes);
            window.localized = localize_end;
        }
        let cube_end = if window.ended { window.decoded } else { window.localized.min(flows_ready.saturating_sub(context)) };
        if cube_end > window.cubed {
            let rows = self.cube(window, cube_end)?;
            self.queue.rows.extend(rows);
            window.cubed = cube_end;
        }
        window.trim(context, self.stages.flow.is_some());
        Ok(())
    }

    /// Cuts the boxes of frames `cubed..end` into cubes and asks every
    /// member for their errors; one row per frame.
    fn cube(&mut self, window: &mut Window, end: usize) -> Result<Vec<FrameRow>> {
        let context = self.config.context;
        let (start, first) = (window.cubed, window.cubed.saturating_sub(context));
        let last = if window.ended { window.decoded } else { end + context };
        let (height, width) = window.shape();
        let boxes: Vec<FrameBox> =
            window.boxes.iter().filter(|b| (b.frame as usize) < end).map(|b| FrameBox { frame: b.frame - first as u32, ..*b }).collect();
        window.boxes.retain(|b| b.frame as usize >= end);
        let mut rows: Vec<FrameRow> = (start..end)
            .map(|frame| FrameRow { id: FrameId { video: window.video, frame: frame as u32 }, size: (height, width), boxes: Vec::new() })
            .collect();
        if boxes.is_empty() {
            return Ok(rows);
        }
        let mut cubes = CubeSet::new(self.config.clone())?;
        let flows = (self.stages.flow.is_some() && self.motion_cubes).then(|| window.frame_flows(first, last));
        let clip = window.clip(first, last);
        cubes.add_video(window.video, clip.frames, flows.as_deref(), (last - first, height, width), &boxes)?;
        if cubes.is_empty() {
            return Ok(rows);
        }
        let (batch, records) = cubes.into_tensors()?.into_batch();
        let errors = member_errors(&mut self.stages.reconstructors, batch, records.len())?;
        for (i, r) in records.iter().enumerate() {
            let frame_box = FrameBox { frame: r.frame_box.frame + first as u32, ..r.frame_box };
            let errors_of_box = errors.iter().map(|e| e[i]).collect();
            rows[frame_box.frame as usize - start].boxes.push((frame_box, r.band, errors_of_box));
        }
        Ok(rows)
    }

    /// Scores the queue and writes out the frames that are final.
    fn flush(&mut self, window: &mut Window, outputs: &mut Outputs, sinks: &mut [Box<dyn EventSink>]) -> Result<usize> {
        let done = self.queue.final_rows(window.ended);
        if done <= self.queue.done {
            return Ok(0);
        }
        let scored = self.score_queue(done)?;
        let count = scored.len();
        let mut last_of_window = None;
        for frame in scored {
            let name = &self.names[frame.row.id.video as usize];
            outputs.add(name, &frame);
            let boxes = || {
                frame
                    .row
                    .boxes
                    .iter()
                    .zip(&frame.box_scores)
                    .map(|((b, _, _), &score)| EventBox { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, score })
                    .collect()
            };
            let mut is_peak = false;
            let closed = self.grouper.push(name, frame.row.id.frame, frame.score, || {
                is_peak = true;
                boxes()
            });
            self.timelines[frame.row.id.video as usize].push(frame.score);
            if frame.row.id.video == window.video {
                last_of_window = Some(frame.row.id.frame as usize);
            }
            if let Some(event) = closed {
                self.close(event, sinks)?;
            }
            if is_peak && self.gallery.wants_snapshot(frame.score) {
                self.peak = window.frame(frame.row.id.frame as usize).map(|f| PeakFrame {
                    width: f.width,
                    height: f.height,
                    pixels: f.pixels.to_vec(),
                });
            }
        }
        if let Some(frame) = last_of_window {
            window.scored = window.scored.max(frame + 1);
        }
        outputs.flush()?;
        let written = Instant::now();
        for arrived in self.arrivals.drain(..count.min(self.arrivals.len())) {
            self.latency.record(written.duration_since(arrived).as_secs_f64());
        }
        self.queue.trim();
        Ok(count)
    }

    /// Sends a closed event to the sinks, marks it on its timeline, and
    /// offers it (with its peak frame, when kept) to the gallery.
    fn close(&mut self, event: Event, sinks: &mut [Box<dyn EventSink>]) -> Result<()> {
        emit(&event, sinks)?;
        self.events += 1;
        if let Some(video) = self.names.iter().rposition(|n| *n == event.video) {
            self.timelines[video].mark_event(event.start, event.end, event.peak_frame);
        }
        let peak = self.peak.take();
        let frame = peak.as_ref().map(|p| RgbFrame { width: p.width, height: p.height, pixels: &p.pixels });
        self.gallery.add(event, frame)?;
        Ok(())
    }

    /// Calls the scorer on every queued row; returns rows `done..final_end`
    /// with their scores (they move out of pending).
    fn score_queue(&mut self, final_end: usize) -> Result<Vec<ScoredFrame>> {
        let mut rows = ScorerRows::default();
        let mut errors: Vec<Vec<f32>> = vec![Vec::new(); self.statistics.len()];
        for (position, row) in self.queue.rows.iter().enumerate() {
            rows.push_frame(row.id, row.size.0, row.size.1);
            for (b, band, member) in &row.boxes {
                rows.push_box(position, b, *band);
                for (k, e) in member.iter().enumerate() {
                    errors[k].push(*e);
                }
            }
        }
        let members = self
            .stages
            .reconstructors
            .iter()
            .zip(errors)
            .zip(&self.statistics)
            .zip(&self.height_lines)
            .map(|((((id, _), errors), stats), lines)| MemberErrors {
                id,
                errors,
                stats: stats_table(stats, self.models),
                height_lines: lines.as_deref(),
            })
            .collect();
        let out = call_scorer(self.stages.scorer, rows, members, self.models)?;
        // Box scores are in row order; find where each final row's boxes start.
        let mut box_start = 0;
        let mut finals = Vec::new();
        let first_final = self.queue.done;
        for (position, row) in self.queue.rows.iter().enumerate().take(final_end) {
            let n = row.boxes.len();
            if position >= first_final {
                finals.push((position, box_start, n));
            }
            box_start += n;
        }
        let mut scored = Vec::with_capacity(finals.len());
        for (position, box_start, n) in finals {
            let row = FrameRow {
                id: self.queue.rows[position].id,
                size: self.queue.rows[position].size,
                boxes: self.queue.rows[position].boxes.clone(),
            };
            scored.push(ScoredFrame { row, score: out.scores[position], box_scores: out.box_scores[box_start..box_start + n].to_vec() });
        }
        self.queue.done = final_end;
        Ok(scored)
    }
}

/// Every member's errors of the cubes in `batch` (`count` cubes), each
/// member handed the same tensors.
fn member_errors(members: &mut [(String, &mut ReconstructorBox)], batch: vigil_stage_api::Batch, count: usize) -> Result<Vec<Vec<f32>>> {
    let batches = share_batch(batch, members.len());
    let mut out = Vec::with_capacity(members.len());
    for ((id, stage), cubes) in members.iter_mut().zip(batches) {
        let errors = call(id, "errors_of", stage.errors_of(cubes))?.into_vec();
        if errors.len() != count {
            bail!("stage `{id}`: errors_of returned {} errors for {count} cubes", errors.len());
        }
        out.push(errors);
    }
    Ok(out)
}

/// `scores.csv` and `boxes.csv`, appended and flushed per chunk.
struct Outputs {
    scores: (PathBuf, std::fs::File),
    boxes: (PathBuf, std::fs::File),
    /// Text not yet written.
    score_text: String,
    box_text: String,
}

impl Outputs {
    fn create(out: &Path, member_ids: &[String]) -> Result<Outputs> {
        let open = |name: &str| -> Result<(PathBuf, std::fs::File)> {
            let path = out.join(name);
            let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            Ok((path, file))
        };
        let ids: Vec<&str> = member_ids.iter().map(String::as_str).collect();
        let mut outputs = Outputs {
            scores: open("scores.csv")?,
            boxes: open("boxes.csv")?,
            score_text: vigil_eval::SCORES_HEADER.to_string(),
            box_text: vigil_eval::boxes_header(&ids),
        };
        outputs.flush()?;
        Ok(outputs)
    }

    fn add(&mut self, video: &str, frame: &ScoredFrame) {
        vigil_eval::push_score_row(&mut self.score_text, video, frame.row.id.frame as usize, frame.score, "");
        for ((b, band, errors), &score) in frame.row.boxes.iter().zip(&frame.box_scores) {
            let row = vigil_eval::BoxRow {
                video,
                frame: b.frame,
                region: [b.x1, b.y1, b.x2, b.y2],
                class: b.class,
                confidence: b.score,
                band: *band,
                score,
                errors: errors.clone(),
            };
            vigil_eval::push_box_row(&mut self.box_text, &row);
        }
    }

    fn flush(&mut self) -> Result<()> {
        for ((path, file), text) in [(&mut self.scores, &mut self.score_text), (&mut self.boxes, &mut self.box_text)] {
            file.write_all(text.as_bytes()).and_then(|()| file.flush()).with_context(|| format!("writing {}", path.display()))?;
            text.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_flows_follow_the_border_rule_of_whole_videos() {
        // 5 frames of 1x1; pair t has u = t + 1.
        let pairs: Vec<f32> = (0..4).flat_map(|t| [t as f32 + 1.0, 0.0]).collect();
        let whole = vigil_cubes::per_frame_flow(pairs.clone(), 5, 1, 1).unwrap();
        let mut window = Window::new(0);
        window.size = Some((1, 1));
        window.decoded = 5;
        window.pairs = pairs[2..].to_vec(); // pairs 1.. held, pair 0 dropped
        window.pairs_first = 1;
        window.pairs_done = 4;
        // Before the end is known, frame 4 would be an inner frame; at the end it takes pair 3.
        window.ended = true;
        assert_eq!(window.frame_flows(1, 5), whole[2..]);
        assert_eq!(window.frame_flows(0, 2), whole[..4], "frame 0 has no flow");
    }

    /// Frames scored and cubed are dropped; a pipeline without flow holds
    /// no pairs (scoring a `detector` model without a flow stage panicked
    /// here, draining pairs it never had).
    #[test]
    fn trimming_drops_what_no_step_needs_with_and_without_flow() {
        for with_flow in [false, true] {
            let mut window = Window::new(0);
            window.size = Some((1, 2));
            window.frames = (0..10 * 6).map(|v| v as u8).collect();
            window.decoded = 10;
            (window.localized, window.cubed, window.scored) = (10, 8, 7);
            if with_flow {
                window.pairs = vec![0.0; 9 * 4];
                window.pairs_done = 9;
            }
            window.trim(2, with_flow);
            assert_eq!(window.first, 6, "cubes of frame 8 on reach back 2 frames (with flow {with_flow})");
            assert_eq!(window.frames.len(), 4 * 6);
            assert_eq!(window.frame(6).unwrap().pixels, &[36, 37, 38, 39, 40, 41][..]);
            assert_eq!((window.pairs_first, window.pairs.len()), if with_flow { (5, 4 * 4) } else { (0, 0) });
        }
    }

    #[test]
    fn rows_are_final_once_the_frames_after_them_are_queued() {
        let row = |frame| FrameRow { id: FrameId { video: 0, frame }, size: (1, 1), boxes: Vec::new() };
        let mut queue = ScoreQueue::new(FrameReach { before: 2, after: 3 });
        queue.rows.extend((0..10).map(row));
        assert_eq!(queue.final_rows(false), 7, "rows 7, 8, 9 wait for 3 more frames");
        assert_eq!(queue.final_rows(true), 10, "at the end of the input every row is final");
        queue.done = 7;
        queue.trim();
        assert_eq!((queue.rows.len(), queue.done), (5, 2), "two final rows stay as context");
        assert_eq!(queue.rows[0].id.frame, 5);
        assert_eq!(queue.final_rows(false), 2, "nothing new is final");
    }
}

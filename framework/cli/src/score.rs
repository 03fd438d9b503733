//! `vigil score MODEL INPUT... --out DIR`: open the bundle, score the inputs
//! chunk by chunk, write events to `events.jsonl` (and stdout with `--events -`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vigil_events::{EventSink, JsonLines};
use vigil_runtime::bundle::Decoding;
use vigil_runtime::decoders::{decoder_for, is_stream};
use vigil_runtime::stream::{score_inputs, ScoreOptions, ScoreOutcome};

/// What `vigil score` is asked to do.
pub struct ScoreArgs<'a> {
    pub model: &'a Path,
    pub inputs: &'a [PathBuf],
    pub out: &'a Path,
    /// `None`: [`default_chunk`].
    pub chunk: Option<usize>,
    pub threshold: Option<f32>,
    pub events: Option<&'a str>,
    pub sets: &'a [String],
}

pub fn run(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let outcome = score(args)?;
    // The summary goes to stderr: stdout may be carrying the events.
    if let Some(signal) = outcome.stopped_by {
        eprintln!("stopped by {signal} before the input ended; everything decoded until then was scored");
    }
    eprintln!("{}", summary(&outcome));
    eprintln!("scores: {}", args.out.join("scores.csv").display());
    eprintln!("events: {}", args.out.join("events.jsonl").display());
    eprintln!("open:   {}", args.out.join("report.html").display());
    Ok(ExitCode::SUCCESS)
}

/// Opens the bundle and scores the inputs into `args.out`.
pub fn score(args: &ScoreArgs) -> anyhow::Result<ScoreOutcome> {
    let ScoreArgs { model, inputs, out, chunk, threshold, events, sets } = *args;
    if let Some(other) = events.filter(|e| *e != "-") {
        anyhow::bail!("--events {other}: only `-` (standard output) is supported; events.jsonl is always written to --out");
    }
    if let Some(t) = threshold.filter(|t| !t.is_finite()) {
        anyhow::bail!("--threshold {t}: expected a finite number");
    }
    let decoding = Decoding { plugin: decoder_for(inputs)?, sets: sets.to_vec() };
    std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("--out {}: cannot create the folder: {e}", out.display()))?;
    let mut bundle = vigil_runtime::bundle::open(model, &out.join("work"), &decoding)?;
    let events_path = out.join("events.jsonl");
    let file = JsonLines::create(&events_path).map_err(|e| anyhow::anyhow!("creating {}: {e}", events_path.display()))?;
    let mut sinks: Vec<Box<dyn EventSink>> = vec![Box::new(file)];
    if events == Some("-") {
        sinks.push(Box::new(JsonLines::stdout()));
    }
    let chunk = chunk.unwrap_or_else(|| default_chunk(inputs));
    let options = ScoreOptions { out: out.to_path_buf(), chunk, threshold, progress: true };
    score_inputs(&mut bundle, inputs, &options, &mut sinks)
}

/// Frames per step: 16 when an input is a live stream, where every frame
/// of a step waits for the step's last (vtest.avi at 25 frames/s, `motion`:
/// median delay 0.8 s against 3.2 s at 64, docs/benchmarks.md), else 64.
fn default_chunk(inputs: &[PathBuf]) -> usize {
    if inputs.iter().any(|i| i.to_str().is_some_and(is_stream)) {
        16
    } else {
        64
    }
}

/// Frames, speed (against the input's own rate when known), delays, events.
pub fn summary(outcome: &ScoreOutcome) -> String {
    let fps = outcome.frames as f64 / outcome.seconds.max(1e-9);
    let realtime = outcome.input_fps.map(|input| format!(", {:.2}x the input's {input:.1} frames/s", fps / input)).unwrap_or_default();
    let delay = |q| outcome.latency.quantile(q).map_or("-".to_string(), |s| format!("{s:.3} s"));
    format!(
        "scored {} frames of {} in {:.1} s ({fps:.1} frames/s{realtime}); delay from decoding to score: \
         median {}, 99th percentile {}; {} above {}",
        outcome.frames,
        vigil_eval::count(outcome.videos, "video", "videos"),
        outcome.seconds,
        delay(0.5),
        delay(0.99),
        vigil_eval::count(outcome.events, "event", "events"),
        outcome.threshold
    )
}

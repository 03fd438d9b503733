//! `vigil score MODEL INPUT... --out DIR`: open the bundle, score the inputs
//! chunk by chunk, write events to `events.jsonl` (and stdout with `--events -`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vigil_events::{EventSink, JsonLines};
use vigil_runtime::bundle::Decoding;
use vigil_runtime::stream::{decoder_for, score_inputs, ScoreOptions};

pub fn run(
    model: &Path,
    inputs: &[PathBuf],
    out: &Path,
    chunk: usize,
    threshold: Option<f32>,
    events: Option<&str>,
    sets: &[String],
) -> anyhow::Result<ExitCode> {
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
    let options = ScoreOptions { out: out.to_path_buf(), chunk, threshold, progress: true };
    let outcome = score_inputs(&mut bundle, inputs, &options, &mut sinks)?;
    // The summary goes to stderr: stdout may be carrying the events.
    eprintln!(
        "scored {} frames of {} videos in {:.1} s ({:.1} frames/s): {} events above {}",
        outcome.frames,
        outcome.videos,
        outcome.seconds,
        outcome.frames as f64 / outcome.seconds.max(1e-9),
        outcome.events,
        outcome.threshold
    );
    eprintln!("scores: {}", out.join("scores.csv").display());
    eprintln!("events: {}", events_path.display());
    Ok(ExitCode::SUCCESS)
}

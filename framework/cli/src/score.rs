//! `vigil score MODEL INPUT... --out DIR`: open the bundle, score the inputs
//! chunk by chunk, write events to `events.jsonl` (and to stdout or NATS
//! JetStream with `--events`). `vigil score --manifest CAMERAS --models
//! FLEET` scores one camera of a manifest.

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
    /// Where events go besides events.jsonl: `-` or `nats://...`.
    pub events: &'a [String],
    /// The camera's name in events sent to NATS; `None`: the model folder's.
    pub camera: Option<&'a str>,
    pub sets: &'a [String],
}

/// What a `vigil score` command line names itself; with `--manifest`, the
/// camera's entry supplies the model, the input and the decoder overrides.
pub struct Target {
    pub model: Option<PathBuf>,
    pub inputs: Vec<PathBuf>,
    pub out: PathBuf,
    pub camera: Option<String>,
    pub sets: Vec<String>,
}

/// `vigil score`, of a bundle or of a manifest's camera.
pub fn run_target(
    target: Target,
    cameras: &crate::fleet::CameraArgs,
    models: Option<&Path>,
    chunk: Option<usize>,
    threshold: Option<f32>,
    events: &[String],
) -> anyhow::Result<ExitCode> {
    let Some(manifest) = &cameras.manifest else {
        let model = target.model.as_deref().ok_or_else(|| anyhow::anyhow!("give a MODEL folder or --manifest CAMERAS"))?;
        let camera = target.camera.as_deref();
        return run(&ScoreArgs { model, inputs: &target.inputs, out: &target.out, chunk, threshold, events, camera, sets: &target.sets });
    };
    if !target.inputs.is_empty() {
        anyhow::bail!("with --manifest, the input is the camera's `live` entry: drop {}", target.inputs[0].display());
    }
    let models = models.ok_or_else(|| anyhow::anyhow!("--manifest needs --models FLEET: the folder `vigil fit --manifest` wrote"))?;
    let camera = match crate::fleet::scoring(manifest, cameras, models, &target.out)? {
        Ok(camera) => camera,
        Err(code) => return Ok(code),
    };
    let mut sinks = events.to_vec();
    sinks.extend(camera.nats.iter().filter(|url| !events.contains(url)).cloned());
    let mut sets = camera.sets;
    sets.extend(target.sets);
    run(&ScoreArgs {
        model: &camera.model,
        inputs: std::slice::from_ref(&camera.input),
        out: &camera.out,
        chunk,
        threshold,
        events: &sinks,
        camera: Some(&camera.name),
        sets: &sets,
    })
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
    let ScoreArgs { model, inputs, out, chunk, threshold, events, camera, sets } = *args;
    if let Some(other) = events.iter().find(|e| *e != "-" && !e.starts_with("nats://")) {
        anyhow::bail!("--events {other}: expected `-` (standard output) or a nats:// URL; events.jsonl is always written to --out");
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
    for destination in events {
        if destination == "-" {
            sinks.push(Box::new(JsonLines::stdout()));
        } else {
            let camera = match camera {
                Some(name) => name.to_string(),
                None => camera_of(model)?,
            };
            sinks.push(Box::new(nats_sink(destination, &camera)?));
        }
    }
    let chunk = chunk.unwrap_or_else(|| default_chunk(inputs));
    let options = ScoreOptions { out: out.to_path_buf(), chunk, threshold, progress: true };
    score_inputs(&mut bundle, inputs, &options, &mut sinks)
}

/// The camera a model folder is for: its name (`FLEET/<camera>/`).
fn camera_of(model: &Path) -> anyhow::Result<String> {
    let name = std::path::absolute(model)?.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match vigil_runtime::manifest::name_problem(&name) {
        None => Ok(name),
        Some(problem) => anyhow::bail!("the model folder's name `{name}` cannot name the camera in events: {problem}; give --camera-name"),
    }
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

/// Events to NATS JetStream at `url`, on `vigil.events.<camera>`.
fn nats_sink(url: &str, camera: &str) -> anyhow::Result<vigil_events_nats::JetStreamSink> {
    vigil_events_nats::JetStreamSink::connect(vigil_events_nats::NatsSettings::new(url, camera))
        .map_err(|e| anyhow::anyhow!("--events {url}: {e}"))
}

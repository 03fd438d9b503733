//! Camera manifests (`cameras.toml`): many cameras that run one pipeline,
//! each with its own footage to fit on, its own live input to score and its
//! own overrides of the pipeline. LBR-SPR fits one model per camera, so a
//! manifest is all an engine (a Slurm array, a Kubernetes Indexed Job) needs
//! to split the work: task I fits camera I.
//!
//! ```toml
//! pipeline = "pipelines/ped2-fast.toml"      # relative to this file
//! set = { "stage.appearance.options.epochs" = 4 }   # every camera
//! [events]
//! nats = "nats://127.0.0.1:4222"             # besides events.jsonl
//! [[camera]]
//! name = "gate-north"                        # letters, digits, - and _
//! fit = { input = "footage/gate-north.mp4", from = "00:10:00", to = "01:10:00" }
//! live = "rtsp://10.0.0.5/stream1"
//! set = { "stage.boxes.options.score_threshold" = 0.3 }
//! ```
//!
//! A camera's overrides become `--set`s of the pipeline that remember their
//! line in the manifest, so a wrong one is reported there
//! (`cameras.toml:9:9: error: camera `gate-north`: ...`).

use crate::decoders::STOCK_DECODERS;
use crate::diagnostic::{Diagnostic, Origin, Place, Report, Setting};
use crate::document::{self, Node, Val};
use crate::pipeline::{path_of, Fields, Pipeline};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The longest camera name: it names a folder and a NATS subject token.
const MAX_NAME: usize = 64;

const TOP_LEVEL: [&str; 4] = ["pipeline", "set", "events", "camera"];

/// A parsed camera manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub file: PathBuf,
    pub source: Arc<str>,
    /// The pipeline every camera runs (resolved against the manifest's folder).
    pub pipeline: PathBuf,
    /// Overrides for every camera, applied before each camera's own.
    pub sets: Vec<Setting>,
    /// A NATS server to publish every camera's events to (JetStream).
    pub nats: Option<String>,
    pub cameras: Vec<Camera>,
}

/// One camera of a manifest.
#[derive(Debug, Clone)]
pub struct Camera {
    pub name: String,
    /// What the camera's model is fitted on.
    pub fit: Option<Footage>,
    /// What `vigil score` watches: a stream URL, a device or a file.
    pub live: Option<String>,
    pub sets: Vec<Setting>,
    /// The camera's `[[camera]]` table, for errors about the camera as a whole.
    place: Arc<Place>,
}

/// Recorded footage to fit on, optionally a time range of it.
#[derive(Debug, Clone)]
pub struct Footage {
    pub input: PathBuf,
    /// Seconds from the start of the input.
    pub from: Option<f64>,
    pub to: Option<f64>,
    place: Arc<Place>,
}

/// Which cameras a command works on.
#[derive(Debug, Clone, PartialEq)]
pub enum Which {
    Name(String),
    /// The camera's position in the manifest, from 0, and where it came from.
    Index(usize, &'static str),
    Every,
}

/// What the camera's settings are for: fitting its model, or scoring with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Purpose {
    Fit,
    Score,
}

/// Environment variables that hold an array task's index, in the order
/// they are consulted: Slurm job arrays, Kubernetes Indexed Jobs.
pub const INDEX_VARIABLES: [&str; 2] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

impl Which {
    /// `--camera` or `--index` when given, else the first of
    /// [`INDEX_VARIABLES`] that is set, else every camera.
    pub fn from_args(camera: Option<&str>, index: Option<usize>) -> Result<Which> {
        if let Some(name) = camera {
            return Ok(Which::Name(name.to_string()));
        }
        if let Some(index) = index {
            return Ok(Which::Index(index, "--index"));
        }
        for variable in INDEX_VARIABLES {
            if let Ok(text) = std::env::var(variable) {
                let index = text.trim().parse().map_err(|_| anyhow::anyhow!("{variable}={text}: expected a camera index (0, 1, ...)"))?;
                return Ok(Which::Index(index, variable));
            }
        }
        Ok(Which::Every)
    }
}

impl Manifest {
    /// Reads a manifest; every problem in it is reported at once.
    pub fn load(file: &Path) -> Result<Manifest, Report> {
        let source = std::fs::read_to_string(file).map_err(|e| Report {
            file: file.to_path_buf(),
            source: String::new(),
            diagnostics: vec![Diagnostic::new(&Origin::Unknown, format!("cannot read the camera manifest: {e}"))],
        })?;
        Self::parse(file, source)
    }

    /// Parses manifest text read from `file`.
    pub fn parse(file: &Path, source: String) -> Result<Manifest, Report> {
        let fail = |source: String, diagnostics| Report { file: file.to_path_buf(), source, diagnostics };
        let root = match document::parse(&source) {
            Ok(root) => root,
            Err(d) => return Err(fail(source, vec![d])),
        };
        let shared: Arc<str> = Arc::from(source.as_str());
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let place = |origin: &Origin, about: String| {
            let span = match origin {
                Origin::File(span) => span.clone(),
                _ => 0..0,
            };
            Arc::new(Place { file: file.to_path_buf(), source: shared.clone(), span, about })
        };
        let mut diags = Vec::new();
        for entry in root.entries().iter().filter(|e| !TOP_LEVEL.contains(&e.key.as_str())) {
            diags.push(Diagnostic::new(
                &entry.key_origin,
                format!("unknown key `{}` (expected one of: {})", entry.key, TOP_LEVEL.join(", ")),
            ));
        }
        let pipeline = match root.get("pipeline") {
            Some(node) => path_of(node, "pipeline", &base, &mut diags).map(|p| p.path),
            None => {
                diags.push(Diagnostic::new(&Origin::Unknown, "`pipeline` is required: the pipeline file every camera runs"));
                None
            }
        };
        let sets = root.get("set").map(|node| settings(node, &|o| place(o, "set".into()), &mut diags)).unwrap_or_default();
        let nats = root.get("events").and_then(|node| {
            let mut events = Fields::new(node, "events", &mut diags);
            let nats = events.string("nats", &mut diags);
            events.finish(&mut diags);
            let (url, origin) = nats?;
            if url.starts_with("nats://") {
                Some(url)
            } else {
                diags.push(Diagnostic::new(&origin, format!("`events.nats` must be a nats:// URL, found `{url}`")));
                None
            }
        });
        let mut cameras: Vec<Camera> = Vec::new();
        match root.get("camera").map(|n| &n.val) {
            Some(Val::Array(tables)) => {
                for table in tables {
                    if let Some(camera) = read_camera(table, &base, &place, &mut diags) {
                        if let Some(first) = cameras.iter().find(|c| c.name == camera.name) {
                            let (line, _) = Report::line_col(&source, first.place.span.start);
                            diags.push(Diagnostic::new(
                                &table.origin,
                                format!("camera `{}` is listed twice (first on line {line}); names must be unique", camera.name),
                            ));
                        }
                        cameras.push(camera);
                    }
                }
            }
            Some(_) => diags.push(Diagnostic::new(
                &root.get("camera").unwrap().origin,
                "`camera` must be an array of tables: write each camera as [[camera]]",
            )),
            None => diags.push(Diagnostic::new(&Origin::Unknown, "no cameras: add one [[camera]] table per camera")),
        }
        match pipeline {
            Some(pipeline) if diags.is_empty() => Ok(Manifest { file: file.to_path_buf(), source: shared, pipeline, sets, nats, cameras }),
            _ => Err(fail(source, diags)),
        }
    }

    /// The cameras `which` selects, in manifest order.
    pub fn select(&self, which: &Which) -> Result<Vec<&Camera>> {
        let listed = || self.cameras.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
        match which {
            Which::Every => Ok(self.cameras.iter().collect()),
            Which::Name(name) => match self.cameras.iter().find(|c| &c.name == name) {
                Some(camera) => Ok(vec![camera]),
                None => bail!("{}: no camera named `{name}` (it lists {})", self.file.display(), listed()),
            },
            Which::Index(index, from) => match self.cameras.get(*index) {
                Some(camera) => Ok(vec![camera]),
                None => bail!(
                    "{from} gives camera index {index}, but {} lists {} (indices 0 to {}): {}",
                    self.file.display(),
                    vigil_eval::count(self.cameras.len(), "camera", "cameras"),
                    self.cameras.len() - 1,
                    listed()
                ),
            },
        }
    }

    /// The pipeline overrides that make `camera`'s pipeline for `purpose`:
    /// the manifest's `set`, the camera's own, and, to fit, its footage.
    /// A model is fixed once fitted, so to score only the overrides of the
    /// decoder (`stage.<decoder>.options.*`) apply.
    pub fn settings(&self, camera: &Camera, purpose: Purpose) -> Result<Vec<Setting>> {
        let decoder = decoder_stage(&self.pipeline)?;
        let mut all: Vec<Setting> = self.sets.iter().chain(&camera.sets).cloned().collect();
        match purpose {
            Purpose::Score => {
                let prefix = decoder.as_ref().map(|id| format!("stage.{id}.options."));
                all.retain(|s| prefix.as_ref().is_some_and(|p| s.assignment.starts_with(p.as_str())));
            }
            Purpose::Fit => {
                let footage = camera
                    .fit
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("{}", camera.place.render("has no `fit` footage to fit on (add fit = \"PATH\")")))?;
                let setting = |assignment: String| Setting { assignment, place: Some(footage.place.clone()) };
                all.push(setting(format!("data.test={}", quoted(&footage.input.display().to_string()))));
                if footage.from.is_some() || footage.to.is_some() {
                    let Some(id) = decoder.filter(|_| !footage.input.is_dir()) else {
                        bail!(
                            "{}",
                            footage.place.render(
                                "a time range (`from`, `to`) needs a video file or stream read by the stock `video` decoder; \
                                 frame folders have no clock: list only the frames to fit on"
                            )
                        );
                    };
                    let from = footage.from.unwrap_or(0.0);
                    all.push(setting(format!("stage.{id}.options.start_s={from}")));
                    if let Some(to) = footage.to {
                        all.push(setting(format!("stage.{id}.options.duration_s={}", to - from)));
                    }
                }
            }
        }
        Ok(all)
    }
}

impl Camera {
    /// `FILE:LINE:COL: error: camera `NAME`: message`, at the camera's table.
    pub fn error(&self, message: &str) -> String {
        self.place.render(message)
    }
}

/// The id of the pipeline's stock decoder stage, if it has one.
fn decoder_stage(pipeline: &Path) -> Result<Option<String>> {
    let loaded = Pipeline::load(pipeline, &[]).map_err(|report| anyhow::anyhow!("{report}"))?;
    Ok(loaded.stages.iter().find(|s| STOCK_DECODERS.contains(&s.plugin.as_str())).map(|s| s.id.clone()))
}

fn quoted(text: &str) -> String {
    Node { val: Val::Str(text.to_string()), origin: Origin::Unknown }.to_toml()
}

fn read_camera(table: &Node, base: &Path, place: &dyn Fn(&Origin, String) -> Arc<Place>, diags: &mut Vec<Diagnostic>) -> Option<Camera> {
    let mut fields = Fields::new(table, "camera", diags);
    let name = match fields.string("name", diags) {
        None => {
            diags.push(Diagnostic::new(&table.origin, "a camera needs a `name` (letters, digits, - and _)"));
            None
        }
        Some((name, origin)) => match name_problem(&name) {
            Some(problem) => {
                diags.push(Diagnostic::new(&origin, format!("camera name `{name}`: {problem}")));
                None
            }
            None => Some(name),
        },
    };
    let about = format!("camera `{}`", name.as_deref().unwrap_or("?"));
    let fit = fields.get("fit").and_then(|node| read_footage(node, base, &|o| place(o, about.clone()), diags));
    let live = fields.get("live").and_then(|node| input_of(node, "live", base, diags)).map(|p| p.display().to_string());
    let sets = fields.get("set").map(|node| settings(node, &|o| place(o, about.clone()), diags)).unwrap_or_default();
    fields.finish(diags);
    Some(Camera { name: name?, fit, live, sets, place: place(&table.origin, about) })
}

/// Why `name` cannot name a camera: it becomes a folder name and a NATS
/// subject token (`vigil.events.<name>`).
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Some(format!("must have 1 to {MAX_NAME} characters"));
    }
    if name.starts_with(['-', '.']) {
        return Some("must not start with - or .".into());
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        .map(|c| format!("`{c}` is not allowed: use letters, digits, - and _ (it names a folder and a NATS subject)"))
}

fn read_footage(node: &Node, base: &Path, place: &dyn Fn(&Origin) -> Arc<Place>, diags: &mut Vec<Diagnostic>) -> Option<Footage> {
    let at = place(&node.origin);
    if let Val::Str(_) = node.val {
        let input = input_of(node, "fit", base, diags)?;
        return Some(Footage { input, from: None, to: None, place: at });
    }
    let mut fields = Fields::new(node, "fit", diags);
    let input = fields.get("input").and_then(|node| input_of(node, "fit.input", base, diags));
    if input.is_none() && node.get("input").is_none() {
        diags.push(Diagnostic::new(&node.origin, "`fit` needs an `input`: a video file, stream URL or frame folder"));
    }
    let mut time = |key: &'static str| {
        let node = fields.get(key)?;
        match seconds(node) {
            Ok(s) => Some((s, node.origin.clone())),
            Err(problem) => {
                diags.push(Diagnostic::new(&node.origin, format!("`fit.{key}`: {problem}")));
                None
            }
        }
    };
    let (from, to) = (time("from"), time("to"));
    if let (Some((from, _)), Some((to, origin))) = (&from, &to) {
        if to <= from {
            diags.push(Diagnostic::new(origin, format!("`fit.to` ({to} s) must come after `fit.from` ({from} s)")));
        }
    }
    fields.finish(diags);
    Some(Footage { input: input?, from: from.map(|f| f.0), to: to.map(|t| t.0), place: at })
}

/// A path (relative to the manifest's folder) or a stream URL, kept as is.
fn input_of(node: &Node, what: &str, base: &Path, diags: &mut Vec<Diagnostic>) -> Option<PathBuf> {
    match &node.val {
        Val::Str(s) if crate::decoders::is_stream(s) => Some(PathBuf::from(s)),
        _ => path_of(node, what, base, diags).map(|p| p.path),
    }
}

/// Seconds from `"HH:MM:SS"`, `"MM:SS"` (each part may have a fraction on
/// the last) or a number of seconds.
fn seconds(node: &Node) -> Result<f64, String> {
    let value = match &node.val {
        Val::Int(i) => *i as f64,
        Val::Float(f) => *f,
        Val::Str(text) => {
            let parts: Vec<&str> = text.split(':').collect();
            if parts.len() > 3 {
                return Err(format!("`{text}` is not HH:MM:SS"));
            }
            let mut total = 0.0;
            for (i, part) in parts.iter().enumerate() {
                let last = i + 1 == parts.len();
                let value: f64 = part.trim().parse().map_err(|_| format!("`{text}` is not HH:MM:SS, MM:SS or seconds"))?;
                if !value.is_finite() || value < 0.0 || (!last && value.fract() != 0.0) || (i > 0 && value >= 60.0) {
                    return Err(format!("`{text}` is not HH:MM:SS, MM:SS or seconds"));
                }
                total = total * 60.0 + value;
            }
            total
        }
        _ => return Err(format!("expected a time (\"HH:MM:SS\" or seconds), found {}", node.type_name())),
    };
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("expected a time of at least 0 s, found {value}"))
    }
}

/// A `set` table as pipeline overrides: keys are dotted paths, quoted
/// (`"stage.boxes.options.x" = 1`) or not (`stage.boxes.options.x = 1`).
fn settings(node: &Node, place: &dyn Fn(&Origin) -> Arc<Place>, diags: &mut Vec<Diagnostic>) -> Vec<Setting> {
    fn flatten(prefix: &str, node: &Node, place: &dyn Fn(&Origin) -> Arc<Place>, out: &mut Vec<Setting>) {
        for entry in node.entries() {
            let path = if prefix.is_empty() { entry.key.clone() } else { format!("{prefix}.{}", entry.key) };
            match &entry.node.val {
                Val::Table(_) => flatten(&path, &entry.node, place, out),
                _ => out.push(Setting { assignment: format!("{path}={}", entry.node.to_toml()), place: Some(place(&entry.node.origin)) }),
            }
        }
    }
    if !matches!(node.val, Val::Table(_)) {
        diags.push(Diagnostic::new(&node.origin, format!("`set` must be a table of dotted.path = value, found {}", node.type_name())));
        return Vec::new();
    }
    let mut out = Vec::new();
    flatten("", node, place, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = r#"
[data]
test = "frames"
[[stage]]
id = "decode"
plugin = "video"
[[stage]]
id = "boxes"
plugin = "motion"
"#;

    const CAMERAS: &str = r#"
pipeline = "demo.toml"
set = { "stage.boxes.options.min_area" = 40 }
[events]
nats = "nats://127.0.0.1:4222"

[[camera]]
name = "gate-north"
fit = { input = "footage/gate.mp4", from = "00:01:30", to = "2:00" }
live = "rtsp://10.0.0.5/stream1"
set = { "pipeline.seed" = 8, stage.boxes.options.threshold = 0.5 }

[[camera]]
name = "lobby_2"
fit = "/data/lobby"
"#;

    /// A manifest and its pipeline in a temporary folder.
    fn written(cameras: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("demo.toml"), PIPELINE).unwrap();
        let file = dir.path().join("cameras.toml");
        std::fs::write(&file, cameras).unwrap();
        (dir, file)
    }

    #[test]
    fn a_manifest_reads_cameras_footage_ranges_and_overrides() {
        let (dir, file) = written(CAMERAS);
        let m = Manifest::load(&file).unwrap();
        assert_eq!(m.pipeline, dir.path().join("demo.toml"));
        assert_eq!(m.nats.as_deref(), Some("nats://127.0.0.1:4222"));
        assert_eq!(m.cameras.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["gate-north", "lobby_2"]);
        let gate = &m.cameras[0];
        let fit = gate.fit.as_ref().unwrap();
        assert_eq!((fit.input.clone(), fit.from, fit.to), (dir.path().join("footage/gate.mp4"), Some(90.0), Some(120.0)));
        assert_eq!(gate.live.as_deref(), Some("rtsp://10.0.0.5/stream1"));
        let sets: Vec<&str> = gate.sets.iter().map(|s| s.assignment.as_str()).collect();
        assert_eq!(sets, ["pipeline.seed=8", "stage.boxes.options.threshold=0.5"], "quoted and bare dotted keys");
        assert_eq!(m.cameras[1].fit.as_ref().unwrap().input, PathBuf::from("/data/lobby"));
        assert!(m.cameras[1].live.is_none());
    }

    #[test]
    fn fitting_sets_the_footage_its_range_and_the_overrides_in_order() {
        let (dir, file) = written(CAMERAS);
        let m = Manifest::load(&file).unwrap();
        let fit: Vec<String> = m.settings(&m.cameras[0], Purpose::Fit).unwrap().into_iter().map(|s| s.assignment).collect();
        let input = dir.path().join("footage/gate.mp4").display().to_string();
        assert_eq!(
            fit,
            [
                "stage.boxes.options.min_area=40".to_string(),
                "pipeline.seed=8".into(),
                "stage.boxes.options.threshold=0.5".into(),
                format!("data.test=\"{input}\""),
                "stage.decode.options.start_s=90".into(),
                "stage.decode.options.duration_s=30".into(),
            ]
        );
        // To score, a fitted model is fixed: only the decoder's options apply.
        assert!(m.settings(&m.cameras[0], Purpose::Score).unwrap().is_empty());
        let pipeline = Pipeline::load(&m.pipeline, &m.settings(&m.cameras[0], Purpose::Fit).unwrap()).unwrap();
        assert_eq!(pipeline.data.test.unwrap().path, PathBuf::from(input));
        assert_eq!(pipeline.seed, 8);
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let bad = r#"
pipeline = "demo.toml"
colour = "blue"
[events]
nats = "http://x"
[[camera]]
name = "gate north"
fit = { input = "a.mp4", from = "1:00", to = "0:30" }
[[camera]]
name = "lobby"
fit = { input = "b.mp4", from = "1:75" }
wat = 1
[[camera]]
name = "lobby"
fit = "c.mp4"
"#;
        let (_dir, file) = written(bad);
        let report = Manifest::load(&file).unwrap_err().to_string();
        for expected in [
            "cameras.toml:3:1: error: unknown key `colour`",
            "cameras.toml:5:8: error: `events.nats` must be a nats:// URL",
            "cameras.toml:7:8: error: camera name `gate north`: ` ` is not allowed",
            "cameras.toml:8:46: error: `fit.to` (30 s) must come after `fit.from` (60 s)",
            "cameras.toml:11:33: error: `fit.from`: `1:75` is not HH:MM:SS",
            "cameras.toml:12:1: error: unknown key `wat` in `camera`",
            "error: camera `lobby` is listed twice (first on line 9)",
        ] {
            assert!(report.contains(expected), "missing `{expected}` in:\n{report}");
        }
    }

    #[test]
    fn a_wrong_override_is_reported_at_its_line_in_the_manifest() {
        let (_dir, file) = written(&CAMERAS.replace("\"pipeline.seed\" = 8", "\"stage.nope.options.x\" = 8"));
        let m = Manifest::load(&file).unwrap();
        let settings = m.settings(&m.cameras[0], Purpose::Fit).unwrap();
        let pipeline = Pipeline::load(&m.pipeline, &settings).unwrap();
        let report = pipeline.report(pipeline.problems.clone()).to_string();
        assert!(
            report.contains("cameras.toml:11:34: error: camera `gate-north`: `stage` has no element with id or index `nope`"),
            "{report}"
        );
    }

    #[test]
    fn a_time_range_on_a_frame_folder_is_refused() {
        let (dir, file) = written(&CAMERAS.replace("footage/gate.mp4", "frames"));
        std::fs::create_dir(dir.path().join("frames")).unwrap();
        let m = Manifest::load(&file).unwrap();
        let error = m.settings(&m.cameras[0], Purpose::Fit).unwrap_err().to_string();
        assert!(error.contains("cameras.toml:9:7: error: camera `gate-north`: a time range") && error.contains("frame folders"), "{error}");
    }

    #[test]
    fn cameras_are_chosen_by_name_or_index() {
        let (_dir, file) = written(CAMERAS);
        let m = Manifest::load(&file).unwrap();
        let names = |which: &Which| m.select(which).map(|cs| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
        assert_eq!(names(&Which::Every).unwrap(), ["gate-north", "lobby_2"]);
        assert_eq!(names(&Which::Index(1, "--index")).unwrap(), ["lobby_2"]);
        assert_eq!(names(&Which::Name("gate-north".into())).unwrap(), ["gate-north"]);
        let past = names(&Which::Index(2, "SLURM_ARRAY_TASK_ID")).unwrap_err().to_string();
        assert!(past.contains("SLURM_ARRAY_TASK_ID gives camera index 2") && past.contains("indices 0 to 1"), "{past}");
        let unknown = names(&Which::Name("roof".into())).unwrap_err().to_string();
        assert!(unknown.contains("no camera named `roof`") && unknown.contains("gate-north, lobby_2"), "{unknown}");
        assert_eq!(Which::from_args(Some("x"), Some(1)).unwrap(), Which::Name("x".into()));
        assert_eq!(Which::from_args(None, Some(1)).unwrap(), Which::Index(1, "--index"));
    }

    #[test]
    fn times_read_as_clock_or_seconds() {
        let node = |text: &str| document::parse(&format!("v = {text}")).unwrap().get("v").unwrap().clone();
        assert_eq!(seconds(&node("\"01:02:03.5\"")), Ok(3723.5));
        assert_eq!(seconds(&node("\"2:30\"")), Ok(150.0));
        assert_eq!(seconds(&node("45")), Ok(45.0));
        assert_eq!(seconds(&node("12.5")), Ok(12.5));
        for bad in ["\"1:2:3:4\"", "\"x\"", "\"1:60\"", "-3", "\"1.5:00\"", "true"] {
            assert!(seconds(&node(bad)).is_err(), "{bad}");
        }
        assert!(name_problem("gate.north").is_some() && name_problem("").is_some() && name_problem("-x").is_some());
        assert_eq!(name_problem("Gate_2-b"), None);
    }
}

//! `vigil`: a thin binary over vigil-runtime.

mod accuracy;
mod bench;
mod demo;
mod fleet;
mod plugins;
mod score;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vigil_runtime::check::check;
use vigil_runtime::diagnostic::Setting;
use vigil_runtime::pipeline::Pipeline;
use vigil_runtime::registry::{Registry, SearchPath};

#[derive(Parser)]
#[command(name = "vigil", version, about = "Find anomalies in unlabeled surveillance video (LBR-SPR) with plugin pipelines")]
struct Cli {
    /// Show debug logs and full error reports (e.g. abi_stable's layout report).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// What `run` and `fit` train on.
#[derive(clap::Args)]
struct DataArgs {
    /// Override any value by dotted path, e.g. `--set data.test=/videos`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Recompute flow and boxes instead of reusing the extraction cache.
    #[arg(long)]
    no_cache: bool,
}

#[derive(Subcommand)]
enum Command {
    /// List plugin stages, or show one stage's options (like gst-inspect).
    Plugins {
        /// A stage name, e.g. `detector`: show its options, types, defaults and docs.
        name: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Extra folders or library files to search (after VIGIL_PLUGIN_PATH).
        #[arg(long = "plugin-path", value_name = "PATH")]
        plugin_paths: Vec<PathBuf>,
    },
    /// Validate a pipeline file: plugins, options and tensor contracts. Exit 0 when valid, 1 when not.
    Check {
        file: PathBuf,
        /// Override any value by dotted path, e.g. `--set data.test=/videos`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Run a pipeline: extract, fit, score, evaluate; writes report.json, scores.csv and plots.
    Run {
        file: PathBuf,
        /// Output folder (created if missing). An interrupted fit resumes from its checkpoints here,
        /// if the data, cube settings, stage options and seed are unchanged (else an error).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        data: DataArgs,
        /// Start the fit over: discard the checkpoint in --out (and the earlier run's outputs there).
        #[arg(long)]
        fresh: bool,
    },
    /// Fit a model on a pipeline's data and save it as a bundle folder for `vigil score`;
    /// with --manifest, one model per camera.
    Fit {
        /// The pipeline file (or --manifest).
        #[arg(required_unless_present = "manifest", conflicts_with = "manifest")]
        file: Option<PathBuf>,
        /// The model bundle folder (replaced atomically when the fit is done). With --manifest:
        /// the folder of every camera's bundle, OUT/<camera>/.
        #[arg(long, value_name = "MODEL")]
        out: PathBuf,
        #[command(flatten)]
        cameras: fleet::CameraArgs,
        #[command(flatten)]
        data: DataArgs,
        /// Start the fit over: discard the checkpoint of an interrupted fit in MODEL.work.
        #[arg(long)]
        fresh: bool,
        /// The default event threshold: this quantile of the training frames' scores.
        #[arg(long, value_name = "Q", default_value_t = vigil_runtime::model::DEFAULT_QUANTILE)]
        threshold_quantile: f64,
    },
    /// Score new footage with a model from `vigil fit`: scores.csv, boxes.csv, events.jsonl.
    Score {
        /// The model bundle folder written by `vigil fit` (or --manifest and --models).
        #[arg(required_unless_present = "manifest", conflicts_with = "manifest")]
        model: Option<PathBuf>,
        /// Video files, frame folders, folders of either, or live streams (a URL FFmpeg opens:
        /// rtsp://, udp://, http://, ...; or a capture device such as /dev/video0).
        #[arg(required_unless_present = "manifest")]
        inputs: Vec<PathBuf>,
        /// Output folder (created if missing); its scores.csv, boxes.csv and events.jsonl are replaced.
        /// With --manifest: DIR/<camera>/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Score one camera of this manifest: its live input, with its model from --models.
        #[command(flatten)]
        cameras: fleet::CameraArgs,
        /// With --manifest: the folder of the cameras' bundles (`vigil fit --manifest ... --out FLEET`).
        #[arg(long, value_name = "FLEET", requires = "manifest")]
        models: Option<PathBuf>,
        /// Frames decoded per step (rounded up to a multiple of 16); memory and the delay to a
        /// frame's score grow with it. Default: 16 for live streams, 64 otherwise.
        #[arg(long, value_name = "FRAMES")]
        chunk: Option<usize>,
        /// Event threshold on the frame score (scores are z-scores: it may be negative);
        /// default: the one calibrated when the model was fitted.
        #[arg(long, value_name = "SCORE", allow_negative_numbers = true)]
        threshold: Option<f32>,
        /// Also send each event to `-` (standard output, one JSON line each) or to NATS JetStream
        /// (`nats://HOST:PORT`, subject `vigil.events.<camera>`); repeatable.
        #[arg(long, value_name = "-|nats://HOST:PORT")]
        events: Vec<String>,
        /// The camera's name in the events sent to NATS (default: the model folder's name).
        #[arg(long = "camera-name", value_name = "NAME", conflicts_with = "manifest")]
        camera_name: Option<String>,
        /// Set an option of the decoder, e.g. `stage.decode.options.read_timeout_s=2` (repeatable);
        /// the other stages are the fitted model and cannot change.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Measure stage throughput through the plugin ABI (see docs/benchmarks.md).
    #[command(subcommand)]
    Bench(bench::Bench),
    /// Camera manifests: list the cameras, or fit them all on Slurm.
    #[command(subcommand)]
    Manifest(fleet::ManifestCommand),
    /// Generate a synthetic scene with known anomalies (frame folders, pixel
    /// masks, labels.csv) without running anything: test data of any size,
    /// e.g. `--videos 80 --frames 500` for a ShanghaiTech-sized set.
    Scene(demo::SceneArgs),
    /// Generate a synthetic scene with known anomalies and run pipelines/demo.toml on it.
    Demo {
        /// Output folder for the scene, the report and the plots.
        #[arg(long, value_name = "DIR", default_value = "vigil-demo")]
        out: PathBuf,
        /// Seed of the scene and of training.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    vigil_runtime::allocator::tune();
    let cli = Cli::parse();
    let default_level = if cli.verbose { "debug" } else { "info" };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colour only for a person at a terminal: log files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).with_target(false).without_time().init();

    vigil_runtime::interrupt::install();
    let result = match cli.command {
        Command::Plugins { name, json, plugin_paths } => plugins::run(name.as_deref(), json, &plugin_paths, cli.verbose),
        Command::Check { file, sets } => run_check(&file, &sets),
        Command::Run { file, out, data, fresh } => run_pipeline(&file, &out, &data.sets, !data.no_cache, fresh),
        Command::Fit { file, out, cameras, data, fresh, threshold_quantile } => match (&file, &cameras.manifest) {
            (_, Some(manifest)) => fleet::fit(
                manifest,
                &fleet::FitArgs {
                    cameras: &cameras,
                    out: &out,
                    sets: &data.sets,
                    cache: !data.no_cache,
                    fresh,
                    quantile: threshold_quantile,
                },
            ),
            (Some(file), None) => {
                let fit = ModelFit { out: &out, cache: !data.no_cache, fresh, quantile: threshold_quantile };
                fit_settings(file, &Setting::from_cli(&data.sets), &fit, |_| Ok(false))
            }
            (None, None) => Err(anyhow::anyhow!("give a pipeline file or --manifest CAMERAS")),
        },
        Command::Score { model, inputs, out, cameras, models, chunk, threshold, events, camera_name, sets } => {
            let target = score::Target { model, inputs, out, camera: camera_name, sets };
            score::run_target(target, &cameras, models.as_deref(), chunk, threshold, &events)
        }
        Command::Demo { out, seed } => demo::run(&out, seed),
        Command::Scene(args) => demo::scene(&args),
        Command::Bench(what) => bench::run(what),
        Command::Manifest(what) => fleet::run(what),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads a pipeline, finds its plugins and checks it; prints every problem.
pub fn load_checked(
    file: &std::path::Path,
    sets: &[String],
    work_dir: &std::path::Path,
) -> Result<vigil_runtime::check::Checked, ExitCode> {
    load_settings_checked(file, &Setting::from_cli(sets), work_dir, Labels::Use)
}

/// [`load_checked`] with overrides that may come from a camera manifest,
/// reading the pipeline's `data.labels` or not.
pub fn load_settings_checked(
    file: &std::path::Path,
    settings: &[Setting],
    work_dir: &std::path::Path,
    labels: Labels,
) -> Result<vigil_runtime::check::Checked, ExitCode> {
    let mut pipeline = Pipeline::load(file, settings).map_err(|report| {
        eprintln!("{report}");
        ExitCode::FAILURE
    })?;
    if labels == Labels::Ignore {
        if let Some(ignored) = pipeline.data.labels.take() {
            tracing::debug!("data.labels ({}) is not used to fit", ignored.path.display());
        }
    }
    check_loaded(file, pipeline, work_dir)
}

fn check_loaded(
    file: &std::path::Path,
    mut pipeline: Pipeline,
    work_dir: &std::path::Path,
) -> Result<vigil_runtime::check::Checked, ExitCode> {
    if let Err(error) = vigil_runtime::decoders::follow_data(&mut pipeline) {
        eprintln!("{}: error: {error:#}", file.display());
        return Err(ExitCode::FAILURE);
    }
    let extra: Vec<PathBuf> = pipeline.plugin_paths.iter().map(|p| p.path.clone()).collect();
    let registry = Registry::discover(SearchPath::standard(&extra));
    check(pipeline, &registry, work_dir).map_err(|report| {
        eprintln!("{report}");
        let count = report.diagnostics.len();
        eprintln!("{}: {count} error{}", file.display(), if count == 1 { "" } else { "s" });
        ExitCode::FAILURE
    })
}

/// Runs a pipeline file and prints where the results are. `fresh`: discard
/// a checkpoint in `out` instead of resuming it.
pub fn run_pipeline(file: &std::path::Path, out: &std::path::Path, sets: &[String], cache: bool, fresh: bool) -> anyhow::Result<ExitCode> {
    let checked = match prepare(file, &Setting::from_cli(sets), out, &out.join("work"), Labels::Use)? {
        Ok(checked) => checked,
        Err(code) => return Ok(code),
    };
    let options = vigil_runtime::run::RunOptions { out_dir: out.to_path_buf(), cache: cache_choice(cache), progress: true, fresh };
    let existed = out.exists();
    let outcome = vigil_runtime::run::run(checked, &options).inspect_err(|_| {
        if !existed {
            // A run that failed before writing anything leaves no empty folder behind.
            vigil_runtime::out_dir::remove_if_empty(out);
        }
    })?;
    let frames: usize = outcome.videos.iter().filter(|v| v.scored).map(|v| v.frames).sum();
    println!("scored {frames} frames of {} videos from {} cubes", outcome.videos.iter().filter(|v| v.scored).count(), outcome.cubes);
    if let Some(m) = &outcome.metrics {
        let pixel = m.pixel_auroc.map(|p| format!(", pixel AUROC {:.4}", p)).unwrap_or_default();
        let video_mean = m.auroc_video_mean.map(|a| format!(", mean per video {a:.4}")).unwrap_or_default();
        let value = |v: Option<f64>| v.map_or("undefined".to_string(), |v| format!("{v:.4}"));
        println!("frame AUROC {}{video_mean}, EER {}, PR-AUC {}{pixel}", value(m.auroc), value(m.eer), value(m.pr_auc));
        if let Some(note) = &m.note {
            println!("note: {note}");
        }
    }
    println!("open:   {}", outcome.out_dir.join("report.html").display());
    println!("report: {}", outcome.out_dir.join("report.json").display());
    println!("plots:  {}", outcome.out_dir.join("plots").display());
    Ok(ExitCode::SUCCESS)
}

/// Whether a command reads the pipeline's `data.labels`.
#[derive(PartialEq)]
pub enum Labels {
    Use,
    /// `vigil fit` learns without labels: a pipeline's labels (demo.toml
    /// names the scene's) are neither read nor required.
    Ignore,
}

/// The checked pipeline of a command that writes to `out` (refused when it
/// lies inside the data); `Ok(Err(code))` when the pipeline has problems,
/// which are printed.
fn prepare(
    file: &std::path::Path,
    sets: &[Setting],
    out: &std::path::Path,
    work_dir: &std::path::Path,
    labels: Labels,
) -> anyhow::Result<Result<vigil_runtime::check::Checked, ExitCode>> {
    let checked = match load_settings_checked(file, sets, work_dir, labels) {
        Ok(checked) => checked,
        Err(code) => return Ok(Err(code)),
    };
    vigil_runtime::out_dir::check(out, &checked.pipeline)?;
    Ok(Ok(checked))
}

fn cache_choice(enabled: bool) -> vigil_runtime::cache::Cache {
    if enabled {
        vigil_runtime::cache::Cache::default_location()
    } else {
        vigil_runtime::cache::Cache::disabled()
    }
}

/// Where and how `vigil fit` saves a model.
pub struct ModelFit<'a> {
    /// The bundle folder.
    pub out: &'a std::path::Path,
    pub cache: bool,
    pub fresh: bool,
    /// The training-score quantile that becomes the event threshold.
    pub quantile: f64,
}

/// Fits the pipeline `file` with `settings` and saves the bundle. `done`
/// is asked first, with the checked pipeline, whether the bundle already
/// there is this very fit (then nothing is fitted).
pub fn fit_settings(
    file: &std::path::Path,
    settings: &[Setting],
    fit: &ModelFit,
    done: impl FnOnce(&vigil_runtime::check::Checked) -> anyhow::Result<bool>,
) -> anyhow::Result<ExitCode> {
    let work = vigil_runtime::bundle::sibling(fit.out, "work")?;
    let checked = match prepare(file, settings, fit.out, &work.join("work"), Labels::Ignore)? {
        Ok(checked) => checked,
        Err(code) => return Ok(code),
    };
    if done(&checked)? {
        return Ok(ExitCode::SUCCESS);
    }
    let options = vigil_runtime::model::FitModelOptions {
        out: fit.out.to_path_buf(),
        cache: cache_choice(fit.cache),
        progress: true,
        fresh: fit.fresh,
        quantile: fit.quantile,
    };
    let outcome = vigil_runtime::model::fit_model(checked, &options)?;
    let t = &outcome.threshold;
    println!("fitted on {} frames of {} videos ({} cubes)", outcome.frames, outcome.videos, outcome.cubes);
    println!("event threshold {} (the {} quantile of {} training frame scores)", t.value, t.quantile, t.frames);
    println!("model: {}", outcome.bundle.display());
    Ok(ExitCode::SUCCESS)
}

fn run_check(file: &std::path::Path, sets: &[String]) -> anyhow::Result<ExitCode> {
    if fleet::is_manifest(file) {
        return fleet::check(file, sets);
    }
    let work = std::env::temp_dir().join(format!("vigil-check-{}", std::process::id()));
    let result = load_checked(file, sets, &work);
    let _ = std::fs::remove_dir_all(&work);
    Ok(match result {
        Ok(checked) => {
            let order = checked.execution_order();
            println!("{}: ok: {} stages, run in this order: {}", file.display(), order.len(), order.join(" -> "));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    })
}

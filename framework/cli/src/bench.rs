//! `vigil bench`: stage throughput through the plugin ABI, next to the
//! reference tools when they are installed (ratios, measured in the same run).

use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Bench {
    /// Frame AUROC of a pipeline over several seeds: per seed, mean ± sd, per video and per group of videos.
    Accuracy {
        file: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// How many seeds to run (`pipeline.seed` = first, first + 1, ...).
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        first_seed: u64,
        /// Output folder: one run per seed in `seed-N/`, and `accuracy.json`.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Also report the pooled AUROC of these videos alone, e.g.
        /// `--group tuned=01,02,03,04,05,06 --group held-out=07,08,09,10,11,12`.
        #[arg(long = "group", value_name = "NAME=VIDEOS")]
        groups: Vec<crate::accuracy::Group>,
        /// Recompute flow and boxes instead of reusing the extraction cache.
        #[arg(long)]
        no_cache: bool,
        /// Start every seed's fit over, discarding checkpoints and outputs already in `--out`.
        #[arg(long)]
        fresh: bool,
    },
    /// Decode, flow, localize and cube frames/s of a pipeline's `data.test` (no cache).
    Extract {
        file: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Use only the first N videos.
        #[arg(long)]
        videos: Option<usize>,
    },
    /// Endpoint error and ms per pair of the pipeline's flow stage on pairs with ground truth.
    Flow {
        file: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Folder of FlyingChairs-style pairs (`N-img0.ppm`, `N-img1.ppm`, `N-gt.flo`).
        /// Default: `$VIGIL_DATA/flow/flyingchairs` when VIGIL_DATA is set.
        #[arg(long, value_name = "DIR")]
        pairs: Option<PathBuf>,
        /// Timed passes per pair after one warm-up pass; the median is reported.
        #[arg(long, default_value_t = 5)]
        passes: usize,
        /// An OpenCV reference script printing `NAME EPE E px ... T ms/pair` lines, run
        /// alongside when cv2 is importable; the ratios to each of its methods are printed.
        #[arg(long, value_name = "SCRIPT")]
        reference: Option<PathBuf>,
        /// Python interpreter for the reference.
        #[arg(long, default_value = "python3")]
        python: String,
    },
    /// Seconds per training step and per eval forward of the pipeline's first reconstructor, at batch 64 and 256,
    /// beside the PyTorch reference's for the same network when `--reference` is given.
    Fit {
        file: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Steps timed per batch size (the median is reported).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// A PyTorch reference script (benches/cae_pytorch.py) printing `batch B: train step T s, eval forward E s`
        /// lines; run with the network's shape and thread count when torch is importable.
        #[arg(long, value_name = "SCRIPT")]
        reference: Option<PathBuf>,
        /// Python interpreter for the reference.
        #[arg(long, default_value = "python3")]
        python: String,
    },
    /// Frames/s and the delay from decoding to score (median, 99th percentile) of `vigil score`
    /// on the inputs (files, folders or live streams), into a temporary folder.
    Score {
        /// The model bundle folder written by `vigil fit`.
        model: PathBuf,
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Frames decoded per step, as for `vigil score`.
        #[arg(long, value_name = "FRAMES")]
        chunk: Option<usize>,
        /// Decoder options, as for `vigil score`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
}

pub fn run(bench: Bench) -> anyhow::Result<ExitCode> {
    match bench {
        Bench::Accuracy { file, sets, seeds, first_seed, out, groups, no_cache, fresh } => {
            let seeds: Vec<u64> = (first_seed..first_seed + seeds).collect();
            return crate::accuracy::run(&file, &sets, &seeds, &out, &groups, !no_cache, fresh);
        }
        Bench::Extract { file, sets, videos } => {
            let Ok(mut checked) = crate::load_checked(&file, &sets, &std::env::temp_dir().join("vigil-bench")) else {
                return Ok(ExitCode::FAILURE);
            };
            let result = vigil_runtime::bench::extract(&mut checked, videos)?;
            println!("{} videos, {} frames, {} cubes", result.videos, result.frames, result.cubes);
            println!("{:<12} {:<10} {:>9} {:>10}", "stage", "plugin", "seconds", "frames/s");
            for (id, plugin, seconds, fps) in &result.stages {
                println!("{id:<12} {plugin:<10} {seconds:>9.2} {fps:>10.1}");
            }
            println!(
                "{:<12} {:<10} {:>9.2} {:>10.1}",
                "cubes",
                "(runtime)",
                result.cube_seconds,
                result.frames as f64 / result.cube_seconds
            );
            println!("{:<12} {:<10} {:>9.2} {:>10.1}", "overall", "", result.total_seconds, result.overall_fps());
        }
        Bench::Flow { file, sets, pairs, passes, reference, python } => {
            let pairs = flow_pairs_dir(pairs)?;
            let Ok(mut checked) = crate::load_checked(&file, &sets, &std::env::temp_dir().join("vigil-bench")) else {
                return Ok(ExitCode::FAILURE);
            };
            let results = vigil_runtime::bench::flow_pairs(&mut checked, &pairs, passes)?;
            for (name, epe, ms) in &results {
                println!("{name}: EPE {epe:.3} px, {ms:.1} ms (median of {passes} passes after a warm-up)");
            }
            let n = results.len() as f64;
            let epe = results.iter().map(|r| r.1).sum::<f64>() / n;
            let ms = results.iter().map(|r| r.2).sum::<f64>() / n;
            println!("vigil flow: mean EPE {epe:.3} px, {ms:.1} ms/pair");
            if let Some(script) = reference {
                match std::process::Command::new(&python).arg(&script).env("THREADS", "2").output() {
                    Ok(out) if out.status.success() => {
                        let text = String::from_utf8_lossy(&out.stdout);
                        println!("reference ({}):", script.display());
                        print!("{text}");
                        println!("{:<16} {:>10} {:>10}", "vigil against", "EPE ratio", "time ratio");
                        for (method, their_epe, their_ms) in opencv_rows(&text) {
                            println!("{method:<16} {:>10.2} {:>10.2}", epe / their_epe, ms / their_ms);
                        }
                    }
                    _ => println!("(the OpenCV reference did not run: is cv2 installed for {python}?)"),
                }
            }
        }
        Bench::Fit { file, sets, steps, reference, python } => {
            let Ok(mut checked) = crate::load_checked(&file, &sets, &std::env::temp_dir().join("vigil-bench")) else {
                return Ok(ExitCode::FAILURE);
            };
            let network = reference_network(&checked);
            let ours = vigil_runtime::bench::fit_steps(&mut checked, &[64, 256], steps)?;
            let ran = reference.as_deref().map(|script| pytorch_reference(&python, script, &network));
            let theirs = ran.as_ref().and_then(|r| r.as_ref().ok());
            if let Some(reference) = theirs {
                println!("reference: {}", reference.header);
            }
            println!(
                "{:<6} {:>12} {:>12} {:>6} {:>12} {:>12} {:>6}",
                "batch", "vigil step", "torch step", "ratio", "vigil eval", "torch eval", "ratio"
            );
            for ours in ours {
                let (step, eval) = match theirs.and_then(|t| t.rows.iter().find(|r| r.batch == ours.batch)) {
                    Some(r) => (r.train_step, r.eval_forward),
                    None => (f64::NAN, f64::NAN),
                };
                let seconds = |s: f64| if s.is_nan() { "-".to_string() } else { format!("{s:.3}") };
                let ratio = |a: f64, b: f64| if b.is_nan() { "-".to_string() } else { format!("{:.2}", a / b) };
                println!(
                    "{:<6} {:>12.3} {:>12} {:>6} {:>12.3} {:>12} {:>6}",
                    ours.batch,
                    ours.train_step,
                    seconds(step),
                    ratio(ours.train_step, step),
                    ours.eval_forward,
                    seconds(eval),
                    ratio(ours.eval_forward, eval)
                );
            }
            if let Some(Err(why)) = &ran {
                println!("(the PyTorch reference did not run: {why})");
            }
        }
        Bench::Score { model, inputs, chunk, sets } => {
            let out = std::env::temp_dir().join(format!("vigil-bench-score-{}", std::process::id()));
            let args = crate::score::ScoreArgs {
                model: &model,
                inputs: &inputs,
                out: &out,
                chunk,
                threshold: None,
                events: &[],
                camera: None,
                sets: &sets,
            };
            let outcome = crate::score::score(&args);
            let _ = std::fs::remove_dir_all(&out);
            println!("{}", crate::score::summary(&outcome?));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--pairs`, else `$VIGIL_DATA/flow/flyingchairs`, else an error naming both.
fn flow_pairs_dir(pairs: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = pairs {
        return Ok(dir);
    }
    match std::env::var_os("VIGIL_DATA") {
        Some(root) => Ok(PathBuf::from(root).join("flow").join("flyingchairs")),
        None => anyhow::bail!(
            "`vigil bench flow` needs pairs with ground truth: pass --pairs DIR, a folder of FlyingChairs-style \
             `N-img0.ppm`, `N-img1.ppm`, `N-gt.flo` files, or set VIGIL_DATA to a data folder holding flow/flyingchairs"
        ),
    }
}

/// The reference's `NAME EPE E px ... T ms/pair` lines as (name, EPE, ms),
/// leaving out the zero-flow baseline.
fn opencv_rows(text: &str) -> Vec<(String, f64, f64)> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(" EPE ")?;
            let epe = rest.split_whitespace().next()?.parse().ok()?;
            let ms = rest.strip_suffix(" ms/pair")?.rsplit(' ').next()?.parse().ok()?;
            let name = name.trim();
            (name != "zero").then(|| (name.to_string(), epe, ms))
        })
        .collect()
}

/// The reference's command-line arguments for the pipeline's first
/// reconstructor: the network's shape (`--features` only for the `cae`
/// plugin, whose option it is; the reference's default is the plugin's),
/// the thread count of Vigil's own kernels, and CUDA for a stage on the GPU.
fn reference_network(checked: &vigil_runtime::check::Checked) -> Vec<String> {
    let cubes = &checked.pipeline.cubes;
    let depth = 2 * cubes.context as usize + 1;
    let mut args = vec!["--in-channels".to_string(), (3 * depth).to_string(), "--size".into(), cubes.size.to_string()];
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    args.extend(["--threads".to_string(), threads.to_string()]);
    let reconstructor = checked.stages.iter().find(|s| s.kind() == vigil_stage_api::StageKind::Reconstructor);
    if let Some(stage) = reconstructor.filter(|s| s.spec.plugin == "cae") {
        let options = stage.spec.options.to_json();
        let flow = options.get("target").and_then(|t| t.as_str()) == Some("flow");
        args.extend(["--out-channels".to_string(), (if flow { 2 * depth } else { 3 * depth }).to_string()]);
        if let Some(f) = options.get("features_root").and_then(|f| f.as_u64()) {
            args.extend(["--features".to_string(), f.to_string()]);
        }
        // A stage on the GPU is compared with PyTorch on a GPU (CUDA, when its torch has it).
        let device = options.get("device").and_then(|d| d.as_str()).filter(|d| *d != "pipeline").unwrap_or(&checked.pipeline.device);
        if device == "gpu" {
            args.extend(["--device".to_string(), "cuda".to_string()]);
        }
    }
    args
}

/// What the PyTorch reference printed.
#[derive(Debug)]
struct TorchFigures {
    /// Its first line: torch version, threads and the network it built.
    header: String,
    rows: Vec<vigil_runtime::bench::StepTimes>,
}

/// Runs the reference script with `args` and reads its lines
/// "batch B: train step T s (...), eval forward E s (...)"; when it gives
/// none, why: its last line of stderr, or that it could not start.
fn pytorch_reference(python: &str, script: &Path, args: &[String]) -> Result<TorchFigures, String> {
    let out = std::process::Command::new(python).arg(script).args(args).output().map_err(|e| format!("{python} could not start: {e}"))?;
    torch_figures(&String::from_utf8_lossy(&out.stdout)).filter(|_| out.status.success()).ok_or_else(|| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("it printed no figures");
        format!("{python} {} {}: {last}", script.display(), args.join(" "))
    })
}

fn torch_figures(text: &str) -> Option<TorchFigures> {
    let rows: Vec<_> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("batch ")?;
            let (batch, rest) = rest.split_once(": train step ")?;
            let seconds_after = |marker: &str| rest.split(marker).nth(1)?.split_whitespace().next()?.parse::<f64>().ok();
            let train_step = rest.split_whitespace().next()?.parse().ok()?;
            let eval_forward = seconds_after("eval forward ").unwrap_or(f64::NAN);
            Some(vigil_runtime::bench::StepTimes { batch: batch.trim().parse().ok()?, train_step, eval_forward })
        })
        .collect();
    let header = text.lines().next().unwrap_or_default().to_string();
    (!rows.is_empty()).then_some(TorchFigures { header, rows })
}

#[cfg(test)]
mod tests {
    #[test]
    fn pytorch_reference_lines_are_read() {
        let text = "torch 2.15.0, threads 2, features 16, channels 15 -> 15, size 32, params 636047\n\
                    batch 64: train step 0.245 s (261 cubes/s), eval forward 0.065 s (978 cubes/s)\n\
                    batch 256: train step 1.134 s (226 cubes/s)\n";
        let figures = super::torch_figures(text).unwrap();
        assert_eq!(figures.header, "torch 2.15.0, threads 2, features 16, channels 15 -> 15, size 32, params 636047");
        let rows: Vec<_> = figures.rows.iter().map(|r| (r.batch, r.train_step, r.eval_forward)).collect();
        assert_eq!(&rows[..1], [(64, 0.245, 0.065)]);
        assert_eq!((rows[1].0, rows[1].1), (256, 1.134));
        assert!(rows[1].2.is_nan(), "a line without an eval figure leaves it unknown");
        assert!(super::torch_figures("no figures\n").is_none());
    }

    #[test]
    fn opencv_reference_lines_are_read() {
        let text = "opencv 4.10.0, threads 2, 3 pairs\n\
                    zero           EPE 4.971 px  per pair [6.05, 4.51, 4.35]  0.1 ms/pair\n\
                    dis-fast       EPE 4.063 px  per pair [6.58, 1.95, 3.66]  3.8 ms/pair\n\
                    farneback      EPE 4.964 px  per pair [7.77, 2.75, 4.38]  111.2 ms/pair\n";
        assert_eq!(super::opencv_rows(text), [("dis-fast".to_string(), 4.063, 3.8), ("farneback".to_string(), 4.964, 111.2)]);
    }
}

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
    /// Seconds per training step of the pipeline's first reconstructor, at batch 64 and 256.
    Fit {
        file: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Steps timed per batch size (the median is reported).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// A PyTorch reference script printing `batch B: train step T s` lines; run when torch is importable.
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
            let ours = vigil_runtime::bench::fit_steps(&mut checked, &[64, 256], steps)?;
            let theirs = reference.as_deref().and_then(|script| pytorch_reference(&python, script));
            println!("{:<8} {:>14} {:>14} {:>8}", "batch", "vigil s/step", "pytorch s/step", "ratio");
            for (batch, seconds) in ours {
                match theirs.as_ref().and_then(|t| t.iter().find(|(b, _)| *b == batch)) {
                    Some((_, reference)) => println!("{batch:<8} {seconds:>14.3} {reference:>14.3} {:>8.2}", seconds / reference),
                    None => println!("{batch:<8} {seconds:>14.3} {:>14} {:>8}", "-", "-"),
                }
            }
            if reference.is_some() && theirs.is_none() {
                println!("(the PyTorch reference did not run: is torch installed for {python}?)");
            }
        }
        Bench::Score { model, inputs, chunk, sets } => {
            let out = std::env::temp_dir().join(format!("vigil-bench-score-{}", std::process::id()));
            let args =
                crate::score::ScoreArgs { model: &model, inputs: &inputs, out: &out, chunk, threshold: None, events: None, sets: &sets };
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

/// Runs the reference script and reads its "batch B: train step T s" lines.
fn pytorch_reference(python: &str, script: &Path) -> Option<Vec<(usize, f64)>> {
    let out = std::process::Command::new(python).arg(script).env("THREADS", "2").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<(usize, f64)> = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("batch ")?;
            let (batch, rest) = rest.split_once(": train step ")?;
            let seconds = rest.split_whitespace().next()?;
            Some((batch.trim().parse().ok()?, seconds.parse().ok()?))
        })
        .collect();
    (!rows.is_empty()).then_some(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn opencv_reference_lines_are_read() {
        let text = "opencv 4.10.0, threads 2, 3 pairs\n\
                    zero           EPE 4.971 px  per pair [6.05, 4.51, 4.35]  0.1 ms/pair\n\
                    dis-fast       EPE 4.063 px  per pair [6.58, 1.95, 3.66]  3.8 ms/pair\n\
                    farneback      EPE 4.964 px  per pair [7.77, 2.75, 4.38]  111.2 ms/pair\n";
        assert_eq!(super::opencv_rows(text), [("dis-fast".to_string(), 4.063, 3.8), ("farneback".to_string(), 4.964, 111.2)]);
    }
}

//! Many cameras from one camera manifest (`cameras.toml`, see
//! vigil_runtime::manifest): `vigil fit --manifest`, `vigil check` of a
//! manifest, and `vigil manifest list|slurm`.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vigil_runtime::manifest::{Camera, Manifest, Purpose, Which};

/// Which cameras of a manifest a command works on.
#[derive(clap::Args, Clone, Default)]
pub struct CameraArgs {
    /// A camera manifest (cameras.toml): work on its cameras, each with its own model.
    #[arg(long, value_name = "CAMERAS")]
    pub manifest: Option<PathBuf>,
    /// With --manifest: only the camera of this name.
    #[arg(long, value_name = "NAME", requires = "manifest", conflicts_with = "index")]
    pub camera: Option<String>,
    /// With --manifest: only the camera at this position (from 0). Default: $SLURM_ARRAY_TASK_ID or
    /// $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs) when set, so one command line serves a whole array.
    #[arg(long, value_name = "I", requires = "manifest")]
    pub index: Option<usize>,
}

#[derive(Subcommand)]
pub enum ManifestCommand {
    /// List a manifest's cameras with their index, footage and live input.
    List { manifest: PathBuf },
    /// Fit every camera on a Slurm cluster: one array task per camera (deploy/slurm/fit-array.sbatch).
    Slurm {
        manifest: PathBuf,
        /// The folder of the cameras' bundles, on storage every node sees.
        #[arg(long, value_name = "FLEET")]
        out: PathBuf,
        /// Submit the array with sbatch (else only print the command).
        #[arg(long)]
        submit: bool,
        /// Extra sbatch options, e.g. `--sbatch-arg=--partition=gpu` (repeatable).
        #[arg(long = "sbatch-arg", value_name = "OPTION", allow_hyphen_values = true)]
        sbatch_args: Vec<String>,
    },
}

/// Loads a manifest, printing its problems (`FILE:LINE:COL: error: ...`).
pub fn load(file: &Path) -> Result<Manifest, ExitCode> {
    Manifest::load(file).map_err(|report| {
        eprintln!("{report}");
        let count = report.diagnostics.len();
        eprintln!("{}: {count} error{}", file.display(), if count == 1 { "" } else { "s" });
        ExitCode::FAILURE
    })
}

/// Whether `file` is a camera manifest rather than a pipeline: it has
/// `[[camera]]` tables.
pub fn is_manifest(file: &Path) -> bool {
    let Ok(source) = std::fs::read_to_string(file) else { return false };
    vigil_runtime::document::parse(&source).is_ok_and(|root| root.get("camera").is_some())
}

/// The cameras the arguments select.
fn selected<'m>(manifest: &'m Manifest, args: &CameraArgs) -> Result<Vec<&'m Camera>> {
    manifest.select(&Which::from_args(args.camera.as_deref(), args.index)?)
}

/// `vigil check CAMERAS`: the manifest, then each camera's pipeline with
/// its overrides (scoring uses a subset of them: the decoder's).
pub fn check(file: &Path, sets: &[String]) -> Result<ExitCode> {
    let manifest = match load(file) {
        Ok(manifest) => manifest,
        Err(code) => return Ok(code),
    };
    let mut failed = 0;
    for camera in &manifest.cameras {
        let work = std::env::temp_dir().join(format!("vigil-check-{}-{}", std::process::id(), camera.name));
        let ok = match camera_settings(&manifest, camera, Purpose::Fit, sets) {
            Ok(settings) => crate::load_settings_checked(&manifest.pipeline, &settings, &work, crate::Labels::Ignore).is_ok(),
            Err(error) => {
                eprintln!("{error:#}");
                false
            }
        };
        let _ = std::fs::remove_dir_all(&work);
        if ok {
            let live = camera.live.as_deref().unwrap_or("no live input");
            println!("{}: camera `{}`: ok (live: {live})", file.display(), camera.name);
        } else {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!("{}: {} of {} have problems", file.display(), failed, vigil_eval::count(manifest.cameras.len(), "camera", "cameras"));
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "{}: ok: {}, pipeline {}",
        file.display(),
        vigil_eval::count(manifest.cameras.len(), "camera", "cameras"),
        manifest.pipeline.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The manifest's overrides for `camera`, then the command line's `--set`s.
fn camera_settings(
    manifest: &Manifest,
    camera: &Camera,
    purpose: Purpose,
    sets: &[String],
) -> Result<Vec<vigil_runtime::diagnostic::Setting>> {
    let mut settings = manifest.settings(camera, purpose)?;
    settings.extend(vigil_runtime::diagnostic::Setting::from_cli(sets));
    Ok(settings)
}

/// What `vigil fit --manifest` is asked to do.
pub struct FitArgs<'a> {
    pub cameras: &'a CameraArgs,
    pub out: &'a Path,
    pub sets: &'a [String],
    pub cache: bool,
    pub fresh: bool,
    pub quantile: f64,
}

/// Fits the selected cameras in turn, each into `OUT/<camera>/`; a camera
/// whose bundle there was fitted on the same data with the same settings is
/// skipped. A camera that fails does not stop the others.
pub fn fit(manifest_file: &Path, args: &FitArgs) -> Result<ExitCode> {
    let manifest = match load(manifest_file) {
        Ok(manifest) => manifest,
        Err(code) => return Ok(code),
    };
    let cameras = selected(&manifest, args.cameras)?;
    std::fs::create_dir_all(args.out).with_context(|| format!("--out {}: cannot create the folder", args.out.display()))?;
    let mut failed = Vec::new();
    for (i, camera) in cameras.iter().enumerate() {
        if let Some(signal) = vigil_runtime::interrupt::stop_requested() {
            eprintln!("stopped by {signal}: {} not fitted", vigil_eval::count(cameras.len() - i, "camera", "cameras"));
            return Ok(ExitCode::FAILURE);
        }
        tracing::info!("camera `{}` ({} of {})", camera.name, i + 1, cameras.len());
        match fit_camera(&manifest, camera, args) {
            Ok(code) if code == ExitCode::SUCCESS => {}
            Ok(_) => failed.push(camera.name.as_str()),
            Err(error) => {
                eprintln!("error: camera `{}`: {error:#}", camera.name);
                failed.push(camera.name.as_str());
            }
        }
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{} of {} failed: {}", failed.len(), vigil_eval::count(cameras.len(), "camera", "cameras"), failed.join(", "));
    Ok(ExitCode::FAILURE)
}

fn fit_camera(manifest: &Manifest, camera: &Camera, args: &FitArgs) -> Result<ExitCode> {
    let settings = camera_settings(manifest, camera, Purpose::Fit, args.sets)?;
    let bundle = args.out.join(&camera.name);
    let fit = crate::ModelFit { out: &bundle, cache: args.cache, fresh: args.fresh, quantile: args.quantile };
    crate::fit_settings(&manifest.pipeline, &settings, &fit, |checked| {
        let fitted = !args.fresh && vigil_runtime::model::is_fitted(checked, &bundle, args.quantile)?;
        if fitted {
            println!(
                "camera `{}`: {} is already fitted on the same footage with the same settings: skipped",
                camera.name,
                bundle.display()
            );
        }
        Ok(fitted)
    })
}

/// What `vigil score --manifest` scores: the model, input, output folder
/// and decoder overrides of the one camera selected. Each start of the
/// scorer writes into a folder of its own, `OUT/<camera>/<UTC start time>/`,
/// so a restarted worker never overwrites what it scored before.
pub struct CameraScoring {
    pub name: String,
    pub model: PathBuf,
    pub input: PathBuf,
    pub out: PathBuf,
    pub sets: Vec<String>,
    pub nats: Option<String>,
}

/// The camera `vigil score --manifest` watches: one per process.
pub fn scoring(manifest_file: &Path, cameras: &CameraArgs, models: &Path, out: &Path) -> Result<Result<CameraScoring, ExitCode>> {
    let manifest = match load(manifest_file) {
        Ok(manifest) => manifest,
        Err(code) => return Ok(Err(code)),
    };
    let selected = selected(&manifest, cameras)?;
    let [camera] = selected.as_slice() else {
        bail!(
            "{} lists {}; a `vigil score` process watches one: choose it with --camera, --index, \
             $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX",
            manifest_file.display(),
            vigil_eval::count(selected.len(), "camera", "cameras")
        );
    };
    let Some(live) = &camera.live else {
        bail!("{}", camera.error("has no `live` input to score (add live = \"rtsp://...\" or a path)"));
    };
    let settings = manifest.settings(camera, Purpose::Score)?;
    Ok(Ok(CameraScoring {
        name: camera.name.clone(),
        model: models.join(&camera.name),
        input: PathBuf::from(live),
        out: out.join(&camera.name).join(utc_stamp(std::time::SystemTime::now())),
        sets: settings.into_iter().map(|s| s.assignment).collect(),
        nats: manifest.nats.clone(),
    }))
}

/// The Slurm batch script that fits one camera per array task.
const FIT_ARRAY_SCRIPT: &str = include_str!("../../../deploy/slurm/fit-array.sbatch");

pub fn run(command: ManifestCommand) -> Result<ExitCode> {
    match command {
        ManifestCommand::List { manifest } => {
            let manifest = match load(&manifest) {
                Ok(manifest) => manifest,
                Err(code) => return Ok(code),
            };
            println!("pipeline: {}", manifest.pipeline.display());
            for (i, camera) in manifest.cameras.iter().enumerate() {
                let fit = camera.fit.as_ref().map_or("-".to_string(), |f| {
                    let range = match (f.from, f.to) {
                        (None, None) => String::new(),
                        (from, to) => format!(" [{} s, {}]", from.unwrap_or(0.0), to.map_or("end".into(), |t| format!("{t} s"))),
                    };
                    format!("{}{range}", f.input.display())
                });
                println!("{i}\t{}\tfit: {fit}\tlive: {}", camera.name, camera.live.as_deref().unwrap_or("-"));
            }
            Ok(ExitCode::SUCCESS)
        }
        ManifestCommand::Slurm { manifest, out, submit, sbatch_args } => slurm(&manifest, &out, submit, &sbatch_args),
    }
}

/// Writes the batch script into `FLEET/.slurm/` and prints (or runs) the
/// sbatch command for one array task per camera.
fn slurm(manifest_file: &Path, out: &Path, submit: bool, sbatch_args: &[String]) -> Result<ExitCode> {
    let manifest = match load(manifest_file) {
        Ok(manifest) => manifest,
        Err(code) => return Ok(code),
    };
    let absolute = |p: &Path| std::path::absolute(p).with_context(|| format!("{}: cannot make the path absolute", p.display()));
    let (manifest_path, fleet) = (absolute(manifest_file)?, absolute(out)?);
    let scripts = fleet.join(".slurm");
    std::fs::create_dir_all(&scripts).with_context(|| format!("creating {}", scripts.display()))?;
    let script = scripts.join("fit-array.sbatch");
    vigil_eval::write_atomic(&script, FIT_ARRAY_SCRIPT.as_bytes()).with_context(|| format!("writing {}", script.display()))?;
    let vigil = std::env::current_exe().context("finding the vigil program")?;
    let mut command = vec![
        "sbatch".to_string(),
        "--parsable".to_string(),
        format!("--array=0-{}", manifest.cameras.len() - 1),
        format!("--output={}/%x-%A_%a.out", scripts.display()),
        format!("--export=ALL,VIGIL={},VIGIL_MANIFEST={},VIGIL_FLEET={}", vigil.display(), manifest_path.display(), fleet.display()),
    ];
    command.extend(sbatch_args.iter().cloned());
    command.push(script.display().to_string());
    if !submit {
        println!("{}", command.join(" "));
        return Ok(ExitCode::SUCCESS);
    }
    let output = std::process::Command::new(&command[0])
        .args(&command[1..])
        .output()
        .with_context(|| "running sbatch (is Slurm installed, and SLURM_CONF set?)".to_string())?;
    if !output.status.success() {
        bail!("sbatch failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    let job = String::from_utf8_lossy(&output.stdout).trim().split(';').next().unwrap_or_default().to_string();
    println!("{job}");
    eprintln!(
        "submitted job array {job}: {} fitting into {}; logs in {}",
        vigil_eval::count(manifest.cameras.len(), "camera", "cameras"),
        fleet.display(),
        scripts.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `YYYYMMDDTHHMMSSZ`: a folder name that sorts in time order.
fn utc_stamp(time: std::time::SystemTime) -> String {
    let seconds = time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // The proleptic Gregorian date of a day count, in 400-year eras of 146,097 days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", of_day / 3600, of_day % 3600 / 60, of_day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_stamps_name_the_calendar_time() {
        let at = |seconds: u64| utc_stamp(UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_796_000_000), "20261130T005320Z");
        assert_eq!(at(4_107_542_399), "21000228T235959Z");
    }
}

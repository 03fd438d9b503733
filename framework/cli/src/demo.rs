//! `vigil demo`: a synthetic scene with known anomalies, run through the
//! demo pipeline (built into the binary, so no other file is needed);
//! `vigil scene`: such a scene alone, of any size.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vigil_scene::SceneConfig;

const DEMO_PIPELINE: &str = include_str!("../../../pipelines/demo.toml");

pub fn run(out: &Path, seed: u64) -> anyhow::Result<ExitCode> {
    if out.exists() && !out.is_dir() {
        anyhow::bail!(
            "--out {}: is a file; the demo needs a folder for its scene, report and plots (it is created if missing)",
            out.display()
        );
    }
    std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("--out {}: cannot create the folder: {e}", out.display()))?;
    let config = vigil_scene::SceneConfig { seed, ..vigil_scene::SceneConfig::default() };
    let scene = vigil_scene::generate(&config, &out.join("scene"))?;
    println!(
        "generated a synthetic scene: {} videos, {} frames, {} anomalous ({})",
        scene.videos,
        scene.frames,
        scene.anomalous_frames,
        scene.frames_root.display()
    );
    let pipeline = out.join("demo.toml");
    vigil_eval::write_atomic(&pipeline, DEMO_PIPELINE.as_bytes())?;
    let sets = vec![
        format!("data.test={}", scene.frames_root.display()),
        format!("data.labels={}", scene.masks_root.display()),
        format!("pipeline.seed={seed}"),
    ];
    // The scene was just written again, so an earlier demo's fit does not apply.
    crate::run_pipeline(&pipeline, &out.join("run"), &sets, true, true)
}

/// `vigil scene`'s options; the defaults are the demo's scene.
#[derive(clap::Args)]
pub struct SceneArgs {
    /// Folder to write (replaced only if it is empty or an earlier scene).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, default_value_t = SceneConfig::default().seed)]
    seed: u64,
    /// Number of videos (1-99).
    #[arg(long, default_value_t = SceneConfig::default().videos)]
    videos: usize,
    /// Frames per video (40-999).
    #[arg(long, default_value_t = SceneConfig::default().frames_per_video)]
    frames_per_video: usize,
    /// Frame width in pixels (at least 96).
    #[arg(long, default_value_t = SceneConfig::default().width)]
    width: u32,
    /// Frame height in pixels (at least 64).
    #[arg(long, default_value_t = SceneConfig::default().height)]
    height: u32,
    /// Normal walkers in view at any time.
    #[arg(long, default_value_t = SceneConfig::default().walkers)]
    walkers: usize,
}

pub fn scene(args: &SceneArgs) -> anyhow::Result<ExitCode> {
    let config = SceneConfig {
        seed: args.seed,
        videos: args.videos,
        frames_per_video: args.frames_per_video,
        width: args.width,
        height: args.height,
        walkers: args.walkers,
    };
    let bar = vigil_runtime::progress::bar(true, config.videos as u64, "scene");
    let scene = vigil_scene::generate_with_progress(&config, &args.out, &|done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    println!(
        "generated a synthetic scene: {} videos, {} frames, {} anomalous\n  frames: {}\n  masks:  {}\n  labels: {}",
        scene.videos,
        scene.frames,
        scene.anomalous_frames,
        scene.frames_root.display(),
        scene.masks_root.display(),
        scene.labels.display()
    );
    println!("run a pipeline on it with --set data.test={} --set data.labels={}", scene.frames_root.display(), scene.masks_root.display());
    Ok(ExitCode::SUCCESS)
}

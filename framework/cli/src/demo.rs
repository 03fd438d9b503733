//! `vigil demo`: a synthetic scene with known anomalies, run through the
//! demo pipeline (built into the binary, so no other file is needed).

use std::path::Path;
use std::process::ExitCode;

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

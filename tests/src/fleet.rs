//! A fleet of cameras for the many-camera tests: one small synthetic scene
//! per camera (each its own seed) and a camera manifest over them that runs
//! pipelines/demo.toml for one epoch.

use std::path::{Path, PathBuf};

/// Cameras, their scenes and their manifest, under `work`.
pub struct Fleet {
    pub work: PathBuf,
    pub manifest: PathBuf,
    pub cameras: Vec<String>,
    pub scenes: Vec<vigil_scene::SceneSummary>,
}

/// Writes `cameras` scenes of one 40-frame video each and `cameras.toml`;
/// camera i is `cam-i`, fitted with `pipeline.seed = i`, and its live input
/// is its own footage again. `extra` is appended to the manifest.
pub fn fleet(work: &Path, cameras: usize, extra: &str) -> Fleet {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).expect("create the fleet's folder");
    let mut manifest = format!(
        "pipeline = {:?}\nset = {{ \"stage.appearance.options.epochs\" = 1, \"stage.motion.options.epochs\" = 1, \"report.heatmaps\" = 0 }}\n{extra}\n",
        crate::repo_root().join("pipelines/demo.toml").display().to_string()
    );
    let mut names = Vec::new();
    let mut scenes = Vec::new();
    for i in 0..cameras {
        let config = vigil_scene::SceneConfig { seed: 20 + i as u64, videos: 1, frames_per_video: 40, ..Default::default() };
        let scene = vigil_scene::generate(&config, &work.join(format!("scene-{i}"))).expect("generate a scene");
        let frames = scene.frames_root.display().to_string();
        let name = format!("cam-{i}");
        manifest.push_str(&format!(
            "\n[[camera]]\nname = \"{name}\"\nfit = {frames:?}\nlive = {frames:?}\nset = {{ \"pipeline.seed\" = {i} }}\n"
        ));
        names.push(name);
        scenes.push(scene);
    }
    let path = work.join("cameras.toml");
    std::fs::write(&path, manifest).expect("write cameras.toml");
    Fleet { work: work.to_path_buf(), manifest: path, cameras: names, scenes }
}

impl Fleet {
    /// `vigil ARGS` with the fleet's extraction cache and `env`.
    pub fn vigil(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let cache = self.work.join("cache").display().to_string();
        let mut all = vec![("VIGIL_CACHE_DIR", cache.as_str()), ("VIGIL_LOG", "info")];
        all.extend_from_slice(env);
        crate::vigil_with_env(args, &all)
    }

    /// The `bundle.json` of camera `name` in `fleet`, parsed.
    pub fn bundle(fleet: &Path, name: &str) -> serde_json::Value {
        let path = fleet.join(name).join("bundle.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).expect("bundle.json is JSON")
    }
}

//! Helpers for Vigil's end-to-end tests: find the `vigil` binary built by
//! `cargo build --release --workspace`, build the plugin libraries that live
//! outside the workspace, and run commands.

pub mod browser;
pub mod fleet;
pub mod nats;
pub mod stream;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// `target/<profile>`, the folder of the running test binary's parent.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary>
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// The `vigil` binary next to the stock plugins.
pub fn vigil_bin() -> PathBuf {
    let bin = profile_dir().join(format!("vigil{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (`cargo build --release --workspace`), as scripts/test.sh does",
        bin.display()
    );
    bin
}

pub fn vigil(args: &[&str]) -> Output {
    vigil_with_env(args, &[])
}

pub fn vigil_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    vigil_command(args, env).output().expect("run vigil")
}

/// `vigil ARGS` with `env`, not yet started.
pub fn vigil_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(vigil_bin());
    // NO_COLOR is left as it is: output to a pipe must be plain text by itself.
    command.args(args).env_remove("VIGIL_PLUGIN_PATH").env_remove("NO_COLOR");
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

static CARGO_LOCK: Mutex<()> = Mutex::new(());

/// Builds a cargo project outside the workspace (release) into a target
/// folder shared by all tests, and returns `<that target>/release`.
pub fn build_external(manifest_dir: &Path) -> PathBuf {
    let _guard = CARGO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let target = profile_dir().parent().expect("target dir").join("external");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release", "--quiet"])
        .current_dir(manifest_dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run cargo");
    assert!(output.status.success(), "building {} failed:\n{}", manifest_dir.display(), text(&output.stderr));
    target.join("release")
}

/// A dynamic library's file name on this platform: `lib<name>.so` on Linux.
pub fn dylib(dir: &Path, crate_name: &str) -> PathBuf {
    dir.join(format!("{}{}{}", std::env::consts::DLL_PREFIX, crate_name.replace('-', "_"), std::env::consts::DLL_SUFFIX))
}

/// The fixture plugins (probe, old-api, not-a-plugin), built once.
pub fn fixture_plugins() -> PathBuf {
    build_external(&repo_root().join("tests/fixtures/plugins"))
}

/// The third-party example plugin, built once.
pub fn third_party_plugin() -> PathBuf {
    dylib(&build_external(&repo_root().join("docs/examples/third-party-plugin")), "vigil-framediff")
}

/// A synthetic scene and a model bundle fitted on it with
/// `pipelines/demo.toml` (one epoch), under a fresh work folder.
pub struct FittedScene {
    pub work: PathBuf,
    pub scene: vigil_scene::SceneSummary,
    pub model: PathBuf,
}

/// Generates the scene `config` under a work folder named after `name` and
/// fits a bundle on it (`work/model`).
pub fn fit_scene(name: &str, config: &vigil_scene::SceneConfig) -> FittedScene {
    let work = PathBuf::from(vigil_stage_testkit::context(name).work_dir.to_string());
    let _ = std::fs::remove_dir_all(&work);
    let scene = vigil_scene::generate(config, &work.join("scene")).expect("generate the scene");
    let model = work.join("model");
    succeeded(&demo_command("fit", &work, &scene, &["--out", model.to_str().expect("UTF-8 path")]));
    FittedScene { work, scene, model }
}

/// `vigil <command> pipelines/demo.toml` on `scene`, one epoch of each
/// reconstructor, no heatmaps.
pub fn demo_command(command: &str, work: &Path, scene: &vigil_scene::SceneSummary, extra: &[&str]) -> Output {
    let mut args: Vec<String> = vec![command.into(), repo_root().join("pipelines/demo.toml").display().to_string()];
    for set in [
        format!("data.test={}", scene.frames_root.display()),
        format!("data.labels={}", scene.labels.display()),
        "stage.appearance.options.epochs=1".to_string(),
        "stage.motion.options.epochs=1".to_string(),
        "report.heatmaps=0".to_string(),
    ] {
        args.extend(["--set".to_string(), set]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    vigil_in(work, &args)
}

/// `vigil ARGS` with its extraction cache under `work` and info logging.
pub fn vigil_in(work: &Path, args: &[String]) -> Output {
    vigil_command_in(work, args).output().expect("run vigil")
}

/// What [`vigil_in`] runs, not yet started.
pub fn vigil_command_in(work: &Path, args: &[String]) -> Command {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let cache = work.join("cache").display().to_string();
    vigil_command(&refs, &[("VIGIL_CACHE_DIR", &cache), ("VIGIL_LOG", "info")])
}

/// The stderr of a command that succeeded.
pub fn succeeded(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", text(&out.stdout));
    stderr
}

/// The stderr of a command that failed with one clear error and no panic.
pub fn failed(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected a failure; stdout:\n{}\nstderr:\n{stderr}", text(&out.stdout));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "one error:\n{stderr}");
    stderr
}

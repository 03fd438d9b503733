//! Issue 15, end to end on a small synthetic scene: reusing `--out` with
//! other settings is refused (and `--fresh` starts over without stale
//! outputs), cubes spill to disk under a small memory budget, and labels are
//! checked before any work, by `run` and by `check`; one-class labels still
//! give scores and a report.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use vigil_tests::*;

fn scene(name: &str) -> (PathBuf, vigil_scene::SceneSummary) {
    let work = PathBuf::from(vigil_stage_testkit::context(name).work_dir.to_string());
    let _ = std::fs::remove_dir_all(&work);
    let config = vigil_scene::SceneConfig { seed: 3, videos: 2, frames_per_video: 40, ..Default::default() };
    let scene = vigil_scene::generate(&config, &work.join("scene")).unwrap();
    (work, scene)
}

/// The arguments of `vigil <command> pipelines/demo.toml` on the scene, one
/// epoch (a later `--set` overrides), with `extra` arguments.
fn args_on(command: &str, scene: &vigil_scene::SceneSummary, labels: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![command.into(), repo_root().join("pipelines/demo.toml").display().to_string()];
    let sets = [
        format!("data.test={}", scene.frames_root.display()),
        format!("data.labels={}", labels.display()),
        "stage.appearance.options.epochs=1".to_string(),
        "stage.motion.options.epochs=1".to_string(),
        "report.heatmaps=1".to_string(),
    ];
    for set in &sets {
        args.extend(["--set".to_string(), set.clone()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn vigil_on(command: &str, work: &Path, scene: &vigil_scene::SceneSummary, labels: &Path, extra: &[&str]) -> Output {
    let args = args_on(command, scene, labels, extra);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let cache = work.join("cache").display().to_string();
    vigil_with_env(&refs, &[("VIGIL_CACHE_DIR", &cache), ("VIGIL_LOG", "info")])
}

/// Starts `vigil` with `args`, sends `signal` (a `kill` name) once a log line
/// contains `when`, and returns the exit code and everything it logged.
fn signal_when(work: &Path, args: &[String], when: &str, signal: &str) -> (Option<i32>, String) {
    use std::io::{BufRead, Read};
    let mut child = std::process::Command::new(vigil_bin())
        .args(args)
        .env_remove("VIGIL_PLUGIN_PATH")
        .env("VIGIL_CACHE_DIR", work.join("cache"))
        .env("VIGIL_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start vigil");
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        log.push_str(&line);
        if line.contains(when) {
            let sent = std::process::Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
            assert!(sent.success(), "kill -{signal}");
            break;
        }
        line.clear();
    }
    stderr.read_to_string(&mut log).unwrap();
    (child.wait().unwrap().code(), log)
}

fn succeeded(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", text(&out.stdout));
    assert!(!stderr.contains('\u{1b}'), "log lines to a pipe carry no ANSI colour codes:\n{stderr}");
    stderr
}

fn failed(out: &Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected a failure; stdout:\n{}\nstderr:\n{stderr}", text(&out.stdout));
    stderr
}

fn report(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn reusing_out_with_other_settings_is_refused_and_fresh_starts_over() {
    let (work, scene) = scene("reliability-resume");
    let out = work.join("out");
    let out_arg = out.display().to_string();
    // A 1 MiB budget spills the cubes to out/work (the folder did not exist).
    let first = vigil_on("run", &work, &scene, &scene.labels, &["--out", &out_arg, "--set", "cubes.memory_budget_mb=1"]);
    let log = succeeded(&first);
    assert!(log.contains(&format!("on disk in {} (more than `cubes.memory_budget_mb` = 1)", out.join("work").display())), "{log}");
    let cubes = &report(&out)["cubes"];
    assert_eq!(cubes["spilled"], true, "{cubes}");
    // Per cube (context 2: 5 frames) u8 pixels [15, 32, 32] and f16 flow [10, 32, 32].
    assert_eq!(cubes["bytes"].as_u64(), cubes["count"].as_u64().map(|n| n * (15 * 32 * 32 + 10 * 32 * 32 * 2)), "{cubes}");
    let before = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert!(out.join("checkpoints/ckpt/fit.json").exists());
    let stale = out.join("plots/heatmap-09-stale-0000.png");
    std::fs::write(&stale, b"an earlier run's heatmap").unwrap();

    // Other options and cube geometry: refused before any work, outputs untouched.
    let changed = ["--out", &out_arg, "--set", "stage.appearance.options.lr=0.01", "--set", "cubes.context=1"];
    let refused = failed(&vigil_on("run", &work, &scene, &scene.labels, &changed));
    assert!(refused.contains(&format!("{} holds the checkpoint of a different fit", out.join("checkpoints").display())), "{refused}");
    assert!(refused.contains("cubes: was context 2, size 32, h_block 1, w_block 1, now context 1, size 32"), "{refused}");
    assert!(refused.contains("stage `appearance` (cae): option `lr` was 0.001, now 0.01"), "{refused}");
    assert!(refused.contains("run again with --fresh"), "{refused}");
    assert!(!refused.contains("extracted"), "refused before extraction:\n{refused}");
    assert_eq!(std::fs::read_to_string(out.join("report.json")).unwrap(), before);

    // --fresh: a new fit, and no file of the earlier run is left.
    let fresh: Vec<&str> = changed.iter().copied().chain(["--fresh"]).collect();
    succeeded(&vigil_on("run", &work, &scene, &scene.labels, &fresh));
    assert!(!stale.exists(), "the earlier run's heatmap is removed");
    let r = report(&out);
    assert!(r["fit"]["resumed_after_epoch"].is_null(), "{}", r["fit"]);
    assert_eq!(r["cubes"]["context"], 1);

    // The same settings again: the checkpoint is of this fit and is resumed.
    let again = succeeded(&vigil_on("run", &work, &scene, &scene.labels, &changed));
    assert!(again.contains("is resumed"), "{again}");
    assert_eq!(report(&out)["fit"]["resumed_after_epoch"], 1);

    // report.json is written last, so that its presence marks a complete run
    // (a run stopped while writing leaves its partial outputs without it).
    let written = |name: &str| std::fs::metadata(out.join(name)).unwrap().modified().unwrap();
    for name in ["scores.csv", "boxes.csv", "events.jsonl", "report.html", "plots/roc.png"] {
        assert!(written(name) <= written("report.json"), "{name} was written after report.json");
    }
}

#[test]
fn labels_are_checked_before_any_work_and_one_class_still_reports() {
    let (work, scene) = scene("reliability-labels");
    let rows: Vec<String> = std::fs::read_to_string(&scene.labels).unwrap().lines().map(str::to_string).collect();

    // `check` validates labels against the data when the data is there.
    succeeded(&vigil_on("check", &work, &scene, &scene.labels, &[]));
    let missing = work.join("no-such-labels.csv");
    let e = failed(&vigil_on("check", &work, &scene, &missing, &[]));
    let expected =
        format!("error: --set data.labels={}: reading the labels (data.labels): {}: No such file", missing.display(), missing.display());
    assert!(e.contains(&expected), "{e}");
    let e = failed(&vigil_on("check", &work, &scene, &scene.frames_root, &[]));
    assert!(e.contains(&format!("data.labels {} is the video data", scene.frames_root.display())), "{e}");
    let corrupt = work.join("corrupt.csv");
    std::fs::write(&corrupt, "video,frame,label\n01,0,maybe\n").unwrap();
    let e = failed(&vigil_on("check", &work, &scene, &corrupt, &[]));
    assert!(e.contains("corrupt.csv: line 2: label `maybe` is not 0 or 1"), "{e}");
    let short = work.join("short.csv");
    std::fs::write(&short, rows[..rows.len() - 1].join("\n")).unwrap();
    let e = failed(&vigil_on("check", &work, &scene, &short, &[]));
    assert!(e.contains("video 02: the ground truth has 39 frames but 40 frames are in its frame folder"), "{e}");

    // `run` stops there too, before extracting anything.
    let out = work.join("out");
    let e = failed(&vigil_on("run", &work, &scene, &short, &["--out", &out.display().to_string()]));
    assert!(e.contains("the ground truth has 39 frames") && !e.contains("extracted"), "{e}");
    assert!(!out.exists(), "a run that failed before writing anything leaves no empty --out behind");

    // All frames normal: scores and a report, with the undefined metrics null.
    let normal = work.join("normal.csv");
    let all_normal: Vec<String> =
        rows.iter().enumerate().map(|(i, r)| if i == 0 { r.clone() } else { format!("{},0", &r[..r.rfind(',').unwrap()]) }).collect();
    std::fs::write(&normal, all_normal.join("\n")).unwrap();
    let run = vigil_on("run", &work, &scene, &normal, &["--out", &out.display().to_string()]);
    succeeded(&run);
    assert!(text(&run.stdout).contains("frame AUROC undefined"), "{}", text(&run.stdout));
    let m = &report(&out)["metrics"];
    assert!(m["auroc"].is_null() && m["eer"].is_null() && m["pr_auc"].is_null(), "{m}");
    assert_eq!((m["frames"].as_u64(), m["anomalous_frames"].as_u64()), (Some(80), Some(0)));
    assert!(m["note"].as_str().unwrap().starts_with("no frame is labeled anomalous (80 frames)"), "{m}");
    assert_eq!(std::fs::read_to_string(out.join("scores.csv")).unwrap().lines().count(), 81);
}

#[test]
fn an_interrupted_run_says_where_it_stopped_and_a_rerun_resumes_there() {
    let (work, scene) = scene("reliability-interrupt");
    let out = work.join("out");
    let checkpoints = out.join("checkpoints").display().to_string();
    let args = args_on(
        "run",
        &scene,
        &scene.labels,
        &["--out", &out.display().to_string(), "--set", "stage.appearance.options.epochs=40", "--set", "stage.motion.options.epochs=40"],
    );

    // After the second epoch's log line the first epoch's checkpoint is whole
    // (the second's may be half-written: it is not the one resumed).
    let (code, log) = signal_when(&work, &args, "epoch done epoch=1", "INT");
    assert_eq!(code, Some(130), "128 + SIGINT:\n{log}");
    assert!(log.contains("vigil: interrupted (SIGINT) during the fit, in epoch "), "{log}");
    assert!(
        log.contains(&format!("whole epoch(s) are checkpointed in {checkpoints}; run the same command again to resume from there")),
        "{log}"
    );
    assert!(!out.join("report.json").exists(), "no report of a run that did not finish");

    // The same command resumes; a scheduler's SIGTERM is reported the same way.
    let (code, log) = signal_when(&work, &args, "is resumed", "TERM");
    assert_eq!(code, Some(143), "128 + SIGTERM:\n{log}");
    assert!(log.contains("vigil: stopped by SIGTERM "), "{log}");
}

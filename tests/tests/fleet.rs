//! Issue 17, many cameras from one manifest: `vigil check` validates a
//! manifest and each camera's pipeline (errors at the manifest's lines);
//! `vigil fit --manifest` fits every camera into FLEET/<camera>/, or only
//! the one an array index selects, and skips cameras already fitted alike;
//! `vigil score --manifest` scores one camera's live input with its model.

use std::path::Path;
use vigil_tests::fleet::{fleet, Fleet};
use vigil_tests::*;

fn work(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(vigil_stage_testkit::context(name).work_dir.to_string())
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn a_manifest_fits_each_camera_once_and_scores_one_camera() {
    let f = fleet(&work("fleet-fit"), 2, "");
    let manifest = path(&f.manifest);
    let checked = f.vigil(&["check", manifest], &[]);
    succeeded(&checked);
    let listing = text(&checked.stdout);
    assert!(
        listing.contains("camera `cam-0`: ok") && listing.contains("camera `cam-1`: ok") && listing.contains("ok: 2 cameras"),
        "{listing}"
    );

    let fleet_dir = f.work.join("fleet");
    let first = f.vigil(&["fit", "--manifest", manifest, "--out", path(&fleet_dir)], &[]);
    succeeded(&first);
    for (i, name) in f.cameras.iter().enumerate() {
        let record = Fleet::bundle(&fleet_dir, name);
        assert_eq!(record["fingerprint"]["parts"]["seed"], i.to_string(), "{name}: its own override of the pipeline");
        assert!(!fleet_dir.join(format!("{name}.work")).exists(), "{name}: the work folder is removed once the bundle is written");
    }
    let written = std::fs::metadata(fleet_dir.join("cam-0/bundle.json")).unwrap().modified().unwrap();

    // Again, unchanged: nothing is fitted.
    let again = f.vigil(&["fit", "--manifest", manifest, "--out", path(&fleet_dir)], &[]);
    succeeded(&again);
    let said = text(&again.stdout);
    assert_eq!(said.matches("already fitted on the same footage with the same settings: skipped").count(), 2, "{said}");
    assert_eq!(std::fs::metadata(fleet_dir.join("cam-0/bundle.json")).unwrap().modified().unwrap(), written);

    // An array task fits only the camera of its index.
    let array_dir = f.work.join("array");
    succeeded(&f.vigil(&["fit", "--manifest", manifest, "--out", path(&array_dir)], &[("SLURM_ARRAY_TASK_ID", "1")]));
    assert!(array_dir.join("cam-1/bundle.json").is_file() && !array_dir.join("cam-0").exists(), "only cam-1 is fitted");
    let past = failed(&f.vigil(&["fit", "--manifest", manifest, "--out", path(&array_dir)], &[("JOB_COMPLETION_INDEX", "2")]));
    assert!(past.contains("JOB_COMPLETION_INDEX gives camera index 2") && past.contains("indices 0 to 1"), "{past}");

    // Scoring: one camera per process, into a folder of its own per start.
    let scores = f.work.join("scores");
    let many = failed(&f.vigil(&["score", "--manifest", manifest, "--models", path(&fleet_dir), "--out", path(&scores)], &[]));
    assert!(many.contains("lists 2 cameras; a `vigil score` process watches one"), "{many}");
    succeeded(&f.vigil(&["score", "--manifest", manifest, "--models", path(&fleet_dir), "--camera", "cam-1", "--out", path(&scores)], &[]));
    let runs: Vec<_> = std::fs::read_dir(scores.join("cam-1")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let rows = std::fs::read_to_string(runs[0].join("scores.csv")).unwrap().lines().count();
    assert_eq!(rows, 41, "a header and the 40 frames of cam-1's live input");
}

#[test]
fn manifest_problems_point_at_the_manifest_line() {
    let f = fleet(&work("fleet-check"), 1, "");
    let text_of = |p: &Path| std::fs::read_to_string(p).unwrap();
    // An override of an option the stage does not have, on camera 0's line.
    std::fs::write(&f.manifest, text_of(&f.manifest).replace("\"pipeline.seed\" = 0", "\"stage.appearance.options.epochz\" = 2")).unwrap();
    let line = text_of(&f.manifest).lines().position(|l| l.contains("epochz")).unwrap() + 1;
    let report = failed(&f.vigil(&["check", path(&f.manifest)], &[]));
    let at = format!("cameras.toml:{line}:");
    assert!(report.contains(&at) && report.contains("camera `cam-0`: stage `appearance` (cae)") && report.contains("epochz"), "{report}");
    assert!(report.contains("1 of 1 camera have problems"), "{report}");

    // Structural problems: all at once, each at its line.
    std::fs::write(&f.manifest, "pipeline = 3\n[[camera]]\nname = \"a.b\"\n").unwrap();
    let out = f.vigil(&["check", path(&f.manifest)], &[]);
    let report = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("cameras.toml:1:12: error: `pipeline` must be a non-empty path string"), "{report}");
    assert!(report.contains("cameras.toml:3:8: error: camera name `a.b`"), "{report}");
    assert!(report.contains("cameras.toml: 2 errors"), "{report}");
}

#[test]
fn the_kubernetes_sample_manifest_reads() {
    let manifest = repo_root().join("deploy/k8s/cameras.toml");
    let listed = vigil(&["manifest", "list", path(&manifest)]);
    succeeded(&listed);
    let lines = text(&listed.stdout);
    assert!(lines.contains("0\tgate-north\tfit: /footage/gate-north.mp4 [0 s, 60 s]\tlive: rtsp://"), "{lines}");
    assert_eq!(lines.lines().filter(|l| l.contains("\tlive: ")).count(), 3, "{lines}");
}

/// A camera fitted on a time range of its footage: the fit reads only the
/// range, and scoring reads all of the input, since the range was the
/// fit's and the decoder holds no part of the model.
#[test]
fn a_time_range_selects_the_fit_footage_but_not_what_is_scored() {
    use vigil_tests::stream::{encode, have_ffmpeg};
    if !have_ffmpeg() {
        vigil_stage_testkit::skip("the `ffmpeg` program is not installed (scripts/deps.sh installs it)");
        return;
    }
    let f = fleet(&work("fleet-range"), 1, "");
    let video = f.work.join("cam-0.mkv");
    encode(&f.scenes[0].frames_root.join("01"), &video);
    let frames = f.scenes[0].frames_root.display().to_string();
    let manifest = std::fs::read_to_string(&f.manifest).unwrap();
    // 25 frames/s: 0.4 s to 1.2 s is frames 10 to 29 of the 40.
    let ranged = manifest
        .replace(&format!("fit = {frames:?}"), &format!("fit = {{ input = {:?}, from = 0.4, to = 1.2 }}", video.display().to_string()))
        .replace(&format!("live = {frames:?}"), &format!("live = {:?}", video.display().to_string()));
    std::fs::write(&f.manifest, ranged).unwrap();
    let fleet_dir = f.work.join("fleet");
    succeeded(&f.vigil(&["fit", "--manifest", path(&f.manifest), "--out", path(&fleet_dir)], &[]));
    assert_eq!(Fleet::bundle(&fleet_dir, "cam-0")["training"]["frames"], 20, "the fit read the range only");
    let scores = f.work.join("scores");
    succeeded(&f.vigil(&["score", "--manifest", path(&f.manifest), "--models", path(&fleet_dir), "--out", path(&scores)], &[]));
    let run = std::fs::read_dir(scores.join("cam-0")).unwrap().next().unwrap().unwrap().path();
    assert_eq!(std::fs::read_to_string(run.join("scores.csv")).unwrap().lines().count(), 41, "all 40 frames scored");
}

//! Issue 12, live input: `vigil score` on a real stream over the loopback
//! interface. The `ffmpeg` program (scripts/deps.sh installs it) serves one
//! video of the demo scene as MPEG-TS over UDP in real time, looped; the
//! stream stops, comes back, and stops for good. Scoring reconnects once,
//! then ends with one clear error, and what it scored before stays: scores
//! for contiguous frames, events as valid JSON Lines (the same on stdout).

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use vigil_stage_testkit::skip;
use vigil_tests::stream::{encode, free_udp_port, have_ffmpeg, serve, stop, Watched};
use vigil_tests::*;

/// A bundle fitted on a one-video demo scene, that video as MPEG-TS, and a
/// free UDP URL to serve it on; `None` (said) without the `ffmpeg` program.
fn stream_fixture(name: &str, seed: u64) -> Option<(FittedScene, PathBuf, String)> {
    if !have_ffmpeg() {
        skip("the `ffmpeg` program is not installed (scripts/deps.sh installs it)");
        return None;
    }
    let fitted = fit_scene(name, &vigil_scene::SceneConfig { seed, videos: 1, frames_per_video: 40, ..Default::default() });
    let video = fitted.work.join("scene.ts");
    encode(&fitted.scene.frames_root.join("01"), &video);
    let url = format!("udp://127.0.0.1:{}", free_udp_port());
    Some((fitted, video, url))
}

#[test]
fn a_live_stream_that_stalls_reconnects_then_ends_with_one_error_and_keeps_what_was_scored() {
    let Some((fitted, video, url)) = stream_fixture("live-e2e", 5) else { return };
    let out: PathBuf = fitted.work.join("live");

    let sender = serve(&video, &url);
    std::thread::sleep(Duration::from_millis(300));
    let args: Vec<String> = [
        "score",
        fitted.model.to_str().unwrap(),
        &url,
        "--out",
        out.to_str().unwrap(),
        "--events",
        "-",
        "--set",
        "stage.decode.options.read_timeout_s=1",
        "--set",
        "stage.decode.options.reconnects=2",
    ]
    .map(String::from)
    .to_vec();
    // Up until the scorer has read a few seconds, down until it reports the
    // silence and starts its first try (the sender comes back during that
    // try's 1 s wait or, on a slow machine, by the second), up for 4 s after
    // it reconnects, then gone: its two tries fail. Driven by what the
    // scorer says, not by a clock: a loaded machine scores late.
    let mut scoring = Watched::spawn(vigil_command_in(&fitted.work, &args));
    scoring.wait_for("the input is read with plugin `video`", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(5));
    stop(sender);
    scoring.wait_for("reconnecting in 1 s (try 1 of 2)", Duration::from_secs(60));
    let sender = serve(&video, &url);
    scoring.wait_for("reconnected after", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(4));
    stop(sender);
    let output = scoring.finish();

    let stderr = failed(&output);
    assert!(stderr.contains("stage `decode`: the input is read with plugin `video` instead of `frames`"), "{stderr}");
    assert!(stderr.contains("reconnected after"), "the stream came back once:\n{stderr}");
    assert!(stderr.contains("2 reconnection tries failed"), "{stderr}");
    assert!(stderr.contains("scoring stopped after") && stderr.contains("hold everything scored until then"), "{stderr}");

    let scores = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    let mut lines = scores.lines();
    assert_eq!(lines.next(), Some("video,frame,score,label"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // 9 s of a 25 frames/s stream, less the joins: well over 100 frames.
    assert!(rows.len() > 100, "{} frames scored:\n{stderr}", rows.len());
    let name = url.replace("://", "-").replace(':', "-");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!((row[0], row[1].parse::<usize>().unwrap()), (name.as_str(), i), "contiguous frames of the stream");
        assert!(row[2].parse::<f32>().unwrap().is_finite());
    }
    assert!(stderr.contains(&format!("scoring stopped after {} frames", rows.len())), "{stderr}");

    let events = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    for line in events.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert_eq!(event["video"], name.as_str(), "{event}");
    }
    assert_eq!(text(&output.stdout), events, "--events - prints exactly the events of events.jsonl");
    let page = std::fs::read_to_string(out.join("report.html")).expect("report.html is written when the stream ends");
    assert!(page.contains(&format!("Scored</th><td>{} frames of 1 video in", rows.len())), "the page covers every scored frame");
}

#[test]
fn fit_reads_a_video_file_without_labels_and_its_model_scores_frame_folders() {
    if !have_ffmpeg() {
        return skip("the `ffmpeg` program is not installed (scripts/deps.sh installs it)");
    }
    let work = PathBuf::from(vigil_stage_testkit::context("fit-video-e2e").work_dir.to_string());
    let _ = std::fs::remove_dir_all(&work);
    let config = vigil_scene::SceneConfig { seed: 6, videos: 1, frames_per_video: 40, ..Default::default() };
    let scene = vigil_scene::generate(&config, &work.join("scene")).unwrap();
    let video = work.join("footage.mkv");
    encode(&scene.frames_root.join("01"), &video);
    let model = work.join("model");
    // demo.toml names labels (scene/masks next to it) that do not exist here: fitting needs none.
    let fit: Vec<String> = [
        "fit",
        repo_root().join("pipelines/demo.toml").to_str().unwrap(),
        "--set",
        &format!("data.test={}", video.display()),
        "--set",
        "stage.appearance.options.epochs=1",
        "--set",
        "stage.motion.options.epochs=1",
        "--out",
        model.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let stderr = succeeded(&vigil_in(&work, &fit));
    assert!(stderr.contains("stage `decode`: the input is read with plugin `video` instead of `frames`"), "{stderr}");
    let out = work.join("scored");
    let score: Vec<String> =
        ["score", model.to_str().unwrap(), scene.frames_root.to_str().unwrap(), "--out", out.to_str().unwrap()].map(String::from).to_vec();
    let stderr = succeeded(&vigil_in(&work, &score));
    assert!(stderr.contains("the input is read with plugin `frames` instead of `video`"), "{stderr}");
    let scores = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    assert_eq!(scores.lines().count(), 1 + 40, "a header and every frame:\n{scores}");
}

#[test]
fn ctrl_c_stops_watching_a_stream_and_keeps_every_output_whole() {
    let Some((fitted, video, url)) = stream_fixture("live-stop-e2e", 8) else { return };
    let out = fitted.work.join("watch");
    let sender = serve(&video, &url);
    std::thread::sleep(Duration::from_millis(300));
    // A low threshold, so that an event is open when the signal comes.
    let scoring = Command::new(vigil_bin())
        .args(["score", fitted.model.to_str().unwrap(), &url, "--out", out.to_str().unwrap(), "--threshold", "-100"])
        .env("VIGIL_CACHE_DIR", fitted.work.join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vigil score");
    std::thread::sleep(Duration::from_secs(5));
    let status = Command::new("kill").args(["-INT", &scoring.id().to_string()]).status().expect("run kill");
    assert!(status.success());
    let output = scoring.wait_with_output().expect("wait for vigil score");
    stop(sender);

    let stderr = text(&output.stderr);
    assert!(output.status.success(), "a requested stop is a normal end:\n{stderr}");
    assert!(stderr.contains("stopped by SIGINT before the input ended"), "{stderr}");
    let frames = std::fs::read_to_string(out.join("scores.csv")).unwrap().lines().count() - 1;
    assert!(frames > 25, "{frames} frames scored in 5 s of a 25 frames/s stream:\n{stderr}");
    let events: Vec<Value> = std::fs::read_to_string(out.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(!events.is_empty(), "the event open at the stop was closed and written");
    let last_end = events.iter().map(|e| e["end"].as_u64().unwrap() as usize).max().unwrap();
    assert_eq!(last_end + 1, frames, "the open event ends at the last scored frame");
    let page = std::fs::read_to_string(out.join("report.html")).expect("report.html is written on a requested stop");
    assert!(page.contains(&format!("Scored</th><td>{frames} frames of 1 video in")), "the page covers every scored frame");
}

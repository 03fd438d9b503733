use super::*;
use vigil_datasets::{list_frame_files, load_ground_truth, resolve, LabelFormat};

fn files_under(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_frames() {
    let dir = tempfile::tempdir().unwrap();
    let config = SceneConfig { videos: 2, frames_per_video: 40, ..SceneConfig::default() };
    let start = std::time::Instant::now();
    generate(&config, &dir.path().join("a")).unwrap();
    println!("2 x 40 frames generated in {:.2} s", start.elapsed().as_secs_f64());
    generate(&config, &dir.path().join("b")).unwrap();
    let a = files_under(&dir.path().join("a"));
    assert_eq!(a.len(), 2 * 40 * 2 + 2);
    assert!(a == files_under(&dir.path().join("b")), "same seed gave different files");
    generate(&SceneConfig { seed: 1, ..config }, &dir.path().join("c")).unwrap();
    let c = files_under(&dir.path().join("c"));
    let frame = |files: &[(PathBuf, Vec<u8>)]| files.iter().find(|(p, _)| p.ends_with("frames/01/010.png")).unwrap().1.clone();
    assert_ne!(frame(&a), frame(&c));
}

/// Centroid x and pixel count of a mask.
fn mask_stats(path: &Path) -> (f32, usize) {
    let mask = image::open(path).unwrap().into_luma8();
    let (mut sum, mut n) = (0.0, 0);
    for (x, _, p) in mask.enumerate_pixels() {
        if p[0] != 0 {
            sum += x as f32;
            n += 1;
        }
    }
    (sum / n.max(1) as f32, n)
}

#[test]
fn default_scene_has_rare_labelled_anomalies_that_differ_from_walkers() {
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let summary = generate(&SceneConfig::default(), &dir.path().join("scene")).unwrap();
    println!("default scene ({} frames) generated in {:.2} s", summary.frames, start.elapsed().as_secs_f64());
    let fraction = summary.anomalous_frames as f32 / summary.frames as f32;
    assert!((0.10..=0.25).contains(&fraction), "{} of {} frames anomalous", summary.anomalous_frames, summary.frames);

    let videos = resolve(&summary.frames_root).unwrap();
    assert_eq!(videos.len(), 6);
    let counts: Vec<usize> = videos.iter().map(|v| list_frame_files(&v.path).unwrap().len()).collect();
    assert_eq!(counts, [80; 6]);
    let csv = load_ground_truth(&summary.labels, &videos).unwrap();
    let masks = load_ground_truth(&summary.masks_root, &videos).unwrap();
    assert_eq!((csv.format, masks.format), (LabelFormat::Csv, LabelFormat::MaskImages));
    let labels = csv.frame_labels(&counts).unwrap();
    assert_eq!(labels, masks.frame_labels(&counts).unwrap());
    assert_eq!(labels.iter().flatten().filter(|&&l| l).count(), summary.anomalous_frames);
    for (i, video) in labels.iter().enumerate() {
        assert_eq!(video.iter().any(|&l| l), i % 2 == 1, "video {} anomalous?", i + 1);
    }

    // Known answers: the cyclist moves ~7.5 px/frame with the flow, the
    // wrong-way walker ~2 px/frame against it, the cart covers far more
    // pixels than a walker does.
    let kinds: Vec<AnomalyKind> = summary.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [AnomalyKind::FastMover, AnomalyKind::AgainstFlow, AnomalyKind::OddShape]);
    let masks_of = |e: &AnomalyEvent| summary.masks_root.join(&e.video);
    for e in &summary.events {
        let mid = (e.first_frame + e.last_frame) / 2;
        let (x0, n0) = mask_stats(&masks_of(e).join(format!("{:03}.png", mid)));
        let (x1, _) = mask_stats(&masks_of(e).join(format!("{:03}.png", mid + 1)));
        match e.kind {
            AnomalyKind::FastMover => assert!((6.0..9.0).contains(&(x1 - x0)), "cyclist moved {}", x1 - x0),
            AnomalyKind::AgainstFlow => assert!((-2.6..-1.2).contains(&(x1 - x0)), "walker moved {}", x1 - x0),
            AnomalyKind::OddShape => assert!(n0 > 200, "cart covers {n0} pixels"),
        }
    }
}

#[test]
fn refuses_to_replace_a_folder_that_is_not_a_scene() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mine");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("thesis.tex"), "precious").unwrap();
    let config = SceneConfig { videos: 1, frames_per_video: 40, ..SceneConfig::default() };
    let err = generate(&config, &out).unwrap_err().to_string();
    assert!(err.contains("refusing to replace") && err.contains("mine"), "{err}");
    assert!(out.join("thesis.tex").exists());

    let scene = dir.path().join("scene");
    generate(&config, &scene).unwrap();
    generate(&config, &scene).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "temporary folders left behind: {leftovers:?}");

    let err = generate(&SceneConfig { width: 20, ..config }, &scene).unwrap_err().to_string();
    assert!(err.contains("at least 96x64"), "{err}");
}

//! Cubes from small videos made by code, checked by hand-computed values.

use vigil_cubes::{per_frame_flow, CubeConfig, CubeError, CubeSet, FrameBox};
use vigil_stage_api::{f16, names};

const T: usize = 4;
const H: usize = 6;
const W: usize = 10;

/// Frame f, pixel (x, y): R = 8x + f, G = 8y, B = 100 + f.
fn video() -> Vec<u8> {
    let mut v = Vec::new();
    for f in 0..T {
        for y in 0..H {
            for x in 0..W {
                v.extend([(8 * x + f) as u8, (8 * y) as u8, (100 + f) as u8]);
            }
        }
    }
    v
}

/// Flow of frame f at (x, y): u = x, v = -f.
fn flows() -> Vec<f32> {
    (0..T).flat_map(|f| (0..H * W).flat_map(move |i| [(i % W) as f32, -(f as f32)])).collect()
}

fn frame_box(frame: u32, x1: f32, y1: f32, x2: f32, y2: f32) -> FrameBox {
    FrameBox { frame, x1, y1, x2, y2, score: 0.9, class: 0 }
}

fn config(size: usize) -> CubeConfig {
    CubeConfig { size, ..CubeConfig::default() }
}

#[test]
fn appearance_cube_is_the_resized_crop_of_each_context_frame() {
    let mut set = CubeSet::new(config(8)).unwrap();
    // Columns 0..4, rows 0..2 of frame 0; context frames 0, 0, 0, 1, 2.
    let report = set.add_video(3, &video(), None, (T, H, W), &[frame_box(0, 0.0, 0.0, 4.0, 2.0)]).unwrap();
    assert_eq!((report.added, report.skipped), (1, 0));
    let tensors = set.into_tensors().unwrap();
    assert!(tensors.motion.is_none());
    assert_eq!(tensors.appearance.shape(), vec![1, 15, 8, 8]);
    let cube = tensors.appearance.as_slice::<u8>().unwrap();
    let plane = |ch: usize| &cube[ch * 64..(ch + 1) * 64];
    // 4 columns of 8x to 8: centres at -0.25 (clamped), 0.25, ..., 3.25 (clamped).
    let red_row = [0u8, 2, 6, 10, 14, 18, 22, 24];
    for (k, frame) in [0u8, 0, 0, 1, 2].into_iter().enumerate() {
        let red = plane(3 * k);
        for row in 0..8 {
            let expected: Vec<u8> = red_row.iter().map(|v| v + frame).collect();
            assert_eq!(&red[row * 8..row * 8 + 8], &expected[..], "frame slot {k}, row {row}");
        }
        assert!(plane(3 * k + 2).iter().all(|&b| b == 100 + frame), "blue of slot {k}");
    }
    // 2 rows of 8y to 8: 0, 0, 1, 3, 5, 7, 8, 8.
    let green: Vec<u8> = (0..8).map(|row| plane(1)[row * 8]).collect();
    assert_eq!(green, [0, 0, 1, 3, 5, 7, 8, 8]);
    assert_eq!(tensors.records[0].id(), vigil_stage_api::FrameId { video: 3, frame: 0 });
}

#[test]
fn motion_cube_crops_the_flow_without_rescaling_it() {
    let mut set = CubeSet::new(config(4)).unwrap();
    // Last frame: context frames 1, 2, 3, 3, 3. Crop columns 2..6 (ceil of 1.5, 5.2).
    set.add_video(0, &video(), Some(&flows()), (T, H, W), &[frame_box(3, 1.5, 1.0, 5.2, 5.0)]).unwrap();
    let tensors = set.into_tensors().unwrap();
    let motion = tensors.motion.unwrap();
    assert_eq!(motion.shape(), vec![1, 10, 4, 4]);
    let cube: Vec<f32> = motion.as_slice::<f16>().unwrap().iter().map(|v| v.to_f32()).collect();
    for (k, frame) in [1.0f32, 2.0, 3.0, 3.0, 3.0].into_iter().enumerate() {
        let u = &cube[2 * k * 16..(2 * k + 1) * 16];
        let v = &cube[(2 * k + 1) * 16..(2 * k + 2) * 16];
        // Same-size resize: the crop itself, u = column index 2..6.
        assert_eq!(&u[..4], &[2.0, 3.0, 4.0, 5.0], "slot {k}");
        assert!(v.iter().all(|&x| x == -frame), "slot {k}");
    }
    let blue: Vec<u8> = (0..5).map(|k| tensors.appearance.as_slice::<u8>().unwrap()[(3 * k + 2) * 16]).collect();
    assert_eq!(blue, [101, 102, 103, 103, 103]);
}

#[test]
fn degenerate_boxes_are_skipped_and_counted() {
    let mut set = CubeSet::new(config(4)).unwrap();
    let boxes = [
        frame_box(1, 2.2, 1.0, 2.9, 4.0), // ceil(2.2) == ceil(2.9): no column
        frame_box(1, 5.0, 3.0, 1.0, 4.0), // inverted
        frame_box(1, f32::NAN, 0.0, 3.0, 3.0),
        frame_box(1, 20.0, 0.0, 30.0, 3.0), // outside the frame
        frame_box(2, 0.0, 0.0, 3.0, 3.0),
    ];
    let report = set.add_video(0, &video(), None, (T, H, W), &boxes).unwrap();
    assert_eq!((report.added, report.skipped), (1, 4));
    assert_eq!((set.len(), set.skipped()), (1, 4));
}

#[test]
fn bad_input_is_an_error_naming_what_was_expected() {
    let mut set = CubeSet::new(config(4)).unwrap();
    let err = set.add_video(7, &video()[1..], None, (T, H, W), &[]).unwrap_err().to_string();
    assert_eq!(err, "video 7: frames: expected u8 [4, 6, 10, 3] = 720 values, found 719");
    let err = set.add_video(7, &video(), None, (T, H, W), &[frame_box(4, 0.0, 0.0, 2.0, 2.0)]).unwrap_err();
    assert!(err.to_string().contains("a box is on frame 4, but the video has 4 frames"), "{err}");
    set.add_video(1, &video(), None, (T, H, W), &[]).unwrap();
    let err = set.add_video(2, &video(), Some(&flows()), (T, H, W), &[]).unwrap_err();
    assert!(matches!(err, CubeError::Invalid(ref m) if m.contains("for every video or for none")), "{err}");
    assert!(CubeSet::new(CubeConfig { h_block: 0, ..CubeConfig::default() }).is_err());
}

#[test]
fn bands_follow_the_box_centre() {
    // Ped1: 4 horizontal bands of 39.5 px over H = 158.
    let config = CubeConfig { h_block: 4, w_block: 1, ..CubeConfig::default() };
    let band = |y1: f32, y2: f32| config.band(&frame_box(0, 10.0, y1, 20.0, y2), 238, 158);
    assert_eq!([band(0.0, 20.0), band(30.0, 50.0), band(90.0, 110.0), band(140.0, 158.0)], [0, 1, 2, 3]);
    assert_eq!(band(150.0, 170.0), 3, "a centre below the frame stays in the last band");
    let grid = CubeConfig { h_block: 2, w_block: 3, ..CubeConfig::default() };
    assert_eq!(grid.band(&frame_box(0, 250.0, 130.0, 270.0, 150.0), 300, 200), 5);
}

#[test]
fn spilled_set_hands_over_the_same_cubes_through_a_mapping() {
    let boxes: Vec<FrameBox> = (0..T as u32).map(|f| frame_box(f, 1.0, 1.0, 7.0, 5.0)).collect();
    let build = |budget: usize| {
        let mut set = CubeSet::new(CubeConfig { size: 6, h_block: 2, memory_budget: budget, ..CubeConfig::default() }).unwrap();
        set.add_video(0, &video(), Some(&flows()), (T, H, W), &boxes).unwrap();
        set.add_video(1, &video(), Some(&flows()), (T, H, W), &boxes[..2]).unwrap();
        assert_eq!(set.is_spilled(), budget == 0);
        set.into_tensors().unwrap()
    };
    let (memory, spilled) = (build(usize::MAX), build(0));
    assert_eq!(spilled.appearance.shape(), vec![6, 15, 6, 6]);
    assert_eq!(memory.appearance.as_slice::<u8>().unwrap(), spilled.appearance.as_slice::<u8>().unwrap());
    let (a, b) = (memory.motion.as_ref().unwrap(), spilled.motion.as_ref().unwrap());
    assert_eq!(a.as_slice::<f16>().unwrap(), b.as_slice::<f16>().unwrap());
    let (batch, records) = spilled.into_batch();
    assert_eq!(batch.names().collect::<Vec<_>>(), ["appearance", "band", "motion"]);
    // Centre row 3 of 6 with 2 bands: 3 / 3 = 1, the lower band.
    assert_eq!(batch.get(names::BAND).unwrap().as_slice::<u32>().unwrap(), &[1; 6]);
    assert_eq!(batch.ids.len(), 6);
    assert_eq!(records[5].id(), vigil_stage_api::FrameId { video: 1, frame: 1 });
}

/// Issue 15: with a small budget the run's spill folder did not exist yet,
/// and the error named no path.
#[test]
fn a_missing_spill_folder_is_created_and_an_unusable_one_is_named() {
    let root = tempfile::tempdir().unwrap();
    let boxes: Vec<FrameBox> = (0..T as u32).map(|f| frame_box(f, 1.0, 1.0, 7.0, 5.0)).collect();
    let spill = |dir: std::path::PathBuf| {
        let mut set = CubeSet::new(CubeConfig { size: 6, memory_budget: 0, spill_dir: dir, ..CubeConfig::default() }).unwrap();
        set.add_video(0, &video(), None, (T, H, W), &boxes).map(|_| set)
    };
    let dir = root.path().join("out/work");
    let set = spill(dir.clone()).unwrap();
    assert!(set.is_spilled() && dir.is_dir());
    assert_eq!(set.into_tensors().unwrap().appearance.shape(), vec![4, 15, 6, 6]);

    // A folder that cannot be made: a file stands where it would go.
    std::fs::write(root.path().join("file"), b"x").unwrap();
    let blocked = root.path().join("file/work");
    let message = match spill(blocked.clone()) {
        Err(e @ CubeError::Spill { .. }) => e.to_string(),
        other => panic!("expected a spill error, got {:?}", other.map(|s| s.len())),
    };
    assert!(message.starts_with(&format!("cube storage in {}", blocked.display())), "{message}");
}

#[test]
fn per_frame_flow_feeds_the_cubes() {
    // Pair flows of a 4-frame video: pair i has u = 10 + i; frame 0 gets 0,
    // frames 1, 2 their own pair, frame 3 the pair (2, 3).
    let field = H * W * 2;
    let pairs: Vec<f32> = (0..T - 1).flat_map(|i| (0..field).map(move |j| if j % 2 == 0 { 10.0 + i as f32 } else { 0.0 })).collect();
    let frames = per_frame_flow(pairs, T, H, W).unwrap();
    let mut set = CubeSet::new(config(2)).unwrap();
    set.add_video(0, &video(), Some(&frames), (T, H, W), &[frame_box(1, 0.0, 0.0, 2.0, 2.0)]).unwrap();
    let motion = set.into_tensors().unwrap().motion.unwrap();
    let u: Vec<f32> = (0..5).map(|k| motion.as_slice::<f16>().unwrap()[2 * k * 4].to_f32()).collect();
    // Context of frame 1: frames 0, 0, 1, 2, 3.
    assert_eq!(u, [0.0, 0.0, 11.0, 12.0, 12.0]);
}

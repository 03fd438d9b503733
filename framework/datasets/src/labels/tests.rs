use super::*;
use crate::layout::{list_frame_files, resolve, SourceKind};
use crate::mat::write::{file as mat_file, Value};
use vigil_stage_testkit::shared_data;

fn video(name: &str) -> VideoSource {
    VideoSource { name: name.into(), path: PathBuf::from(name), kind: SourceKind::FrameFolder }
}

#[test]
fn ped2_ground_truth_agrees_across_m_mat_and_masks() {
    let Some(ped2) = shared_data("ped2") else { return };
    let videos = resolve(&ped2.join("testing/frames")).unwrap();
    assert_eq!(videos.len(), 12);
    let counts: Vec<usize> = videos.iter().map(|v| list_frame_files(&v.path).unwrap().len()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 2010);

    let from_m = load_ground_truth(&ped2.join("UCSDped2.m"), &videos).unwrap();
    let from_mat = load_ground_truth(&ped2.join("ped2.mat"), &videos).unwrap();
    let from_masks = load_ground_truth(&ped2.join("UCSDped2/Test"), &videos).unwrap();
    assert_eq!((from_m.format, from_mat.format, from_masks.format), (LabelFormat::UcsdM, LabelFormat::MatRanges, LabelFormat::MaskImages));
    let m = from_m.frame_labels(&counts).unwrap();
    let mat = validate(&from_mat, &counts).unwrap();
    let masks = from_masks.frame_labels(&counts).unwrap();
    assert_eq!(m, mat);
    assert_eq!(m, masks);
    let anomalous: usize = m.iter().flatten().filter(|&&a| a).count();
    assert_eq!(anomalous, 1648);
    assert_eq!(m[0].iter().position(|&a| a), Some(60), "video 01 starts at frame 61 (1-based)");

    // Masks are read one frame at a time; 01/070.jpg shows the bicycle.
    assert!(!from_m.has_masks() && from_masks.has_masks());
    let bike = from_masks.mask(0, 70).unwrap().unwrap();
    assert_eq!((bike.width, bike.height), (360, 240));
    assert!(bike.count() > 50);
    assert!(!from_masks.mask(0, 0).unwrap().unwrap().any());

    // A frame count that disagrees names the video and both counts.
    let mut wrong = counts.clone();
    wrong[2] = 149;
    let err = from_masks.frame_labels(&wrong).unwrap_err().to_string();
    assert!(err.contains("video 03") && err.contains("150") && err.contains("149"), "{err}");
    let err = from_m.frame_labels(&[100; 12]).unwrap_err().to_string();
    assert!(err.contains("video 01") && err.contains("180") && err.contains("100"), "{err}");
}

/// A 3x4 (height x width) mask with pixel (x, y) set, stored column-major.
fn matlab_mask(x: usize, y: usize) -> Vec<u8> {
    let (h, w) = (3, 4);
    let mut data = vec![0u8; h * w];
    data[x * h + y] = 1;
    data
}

#[test]
fn avenue_label_mats_match_videos_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let masks = dir.path().join("testing_label_mask");
    std::fs::create_dir(&masks).unwrap();
    // Video 1: frame 1 anomalous, uint8 logical masks, compressed.
    let cells = vec![
        Value::U8 { dims: vec![3, 4], data: vec![0; 12], logical: true },
        Value::U8 { dims: vec![3, 4], data: matlab_mask(3, 1), logical: true },
    ];
    let vol = Value::Cell { dims: vec![1, 2], cells };
    std::fs::write(masks.join("1_label.mat"), mat_file(&[("volLabel", vol)], true)).unwrap();
    // Video 8: double masks, uncompressed, three frames, frame 2 anomalous.
    let double = |d: Vec<u8>| Value::F64 { dims: vec![3, 4], data: d.into_iter().map(f64::from).collect() };
    let vol = Value::Cell { dims: vec![1, 3], cells: vec![double(vec![0; 12]), double(vec![0; 12]), double(matlab_mask(0, 2))] };
    std::fs::write(masks.join("8_label.mat"), mat_file(&[("volLabel", vol)], false)).unwrap();

    let videos = [video("01.avi"), video("08.avi")];
    let truth = load_ground_truth(&masks, &videos).unwrap();
    assert_eq!(truth.format, LabelFormat::AvenueMat);
    assert_eq!(truth.frame_labels(&[2, 3]).unwrap(), [vec![false, true], vec![false, false, true]]);
    let m = truth.mask(0, 1).unwrap().unwrap();
    assert_eq!((m.width, m.height, m.count()), (4, 3, 1));
    assert!(m.get(3, 1), "column-major MATLAB data must land on x=3, y=1");
    assert!(truth.mask(1, 2).unwrap().unwrap().get(0, 2));
    assert!(truth.mask(1, 3).unwrap_err().to_string().contains("no mask for frame 3"));

    let err = load_ground_truth(&masks, &[video("01.avi"), video("02.avi")]).unwrap_err().to_string();
    assert!(err.contains("no ground truth for video(s) 02.avi"), "{err}");
}

#[test]
fn shanghaitech_npy_frame_and_pixel_masks() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("test_frame_mask");
    let pixels = dir.path().join("test_pixel_mask");
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::create_dir_all(&pixels).unwrap();
    let labels: Vec<u8> = [0i64, 1, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
    crate::npy::write(&frames.join("01_0014.npy"), "<i8", &[3], &labels);
    crate::npy::write(&frames.join("01_0015.npy"), "<i8", &[1], &0i64.to_le_bytes());
    let mut px = vec![0u8; 3 * 2 * 5];
    px[2 * 10 + 5 + 4] = 1; // frame 2, y 1, x 4
    crate::npy::write(&pixels.join("01_0014.npy"), "|u1", &[3, 2, 5], &px);

    let videos = [video("01_0014"), video("01_0015")];
    for path in [dir.path().to_path_buf(), frames.clone()] {
        let truth = load_ground_truth(&path, &videos).unwrap();
        assert_eq!(truth.format, LabelFormat::ShanghaiTechNpy);
        assert_eq!(truth.frame_labels(&[3, 1]).unwrap(), [vec![false, true, true], vec![false]]);
        assert!(truth.mask(0, 2).unwrap().unwrap().get(4, 1));
        assert!(truth.mask(1, 0).unwrap().is_none(), "01_0015 has no pixel masks");
    }
}

#[test]
fn ucsd_test_folder_with_ped1_style_m_file_and_partial_masks() {
    let dir = tempfile::tempdir().unwrap();
    let test = dir.path().join("Test");
    for v in ["Test001", "Test002"] {
        std::fs::create_dir_all(test.join(v)).unwrap();
        for f in 1..=4 {
            image::GrayImage::new(6, 4).save(test.join(v).join(format!("{f:03}.tif"))).unwrap();
        }
    }
    std::fs::write(
        test.join("UCSDped1.m"),
        "TestVideoFile = {};\nTestVideoFile{end+1}.gt_frame = [2:2, 4:4];\nTestVideoFile{end+1}.gt_frame = [1:2];\n",
    )
    .unwrap();
    std::fs::create_dir_all(test.join("Test002_gt")).unwrap();
    for f in 1..=4 {
        let mut m = image::GrayImage::new(6, 4);
        if f <= 2 {
            m.put_pixel(5, 3, image::Luma([255]));
        }
        m.save(test.join("Test002_gt").join(format!("{f:03}.bmp"))).unwrap();
    }
    let videos = resolve(&test).unwrap();
    assert_eq!(videos.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["Test001", "Test002"]);
    let truth = load_ground_truth(&test, &videos).unwrap();
    assert_eq!(truth.format, LabelFormat::UcsdM);
    let labels = truth.frame_labels(&[4, 4]).unwrap();
    assert_eq!(labels, [vec![false, true, false, true], vec![true, true, false, false]]);
    assert!(truth.mask(0, 0).unwrap().is_none());
    assert!(truth.mask(1, 1).unwrap().unwrap().get(5, 3));

    let err = load_ground_truth(&test.join("UCSDped1.m"), &videos[..1]).unwrap_err().to_string();
    assert!(err.contains("ground truth for 2 videos, but the data holds 1"), "{err}");
}

#[test]
fn csv_labels_and_their_validation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("labels.csv");
    std::fs::write(&path, "video,frame,label\n01,0,0\n01,1,1\n02,0,0\n").unwrap();
    let videos = [video("01"), video("02")];
    let labels = load_frame_labels(&path, &videos, &[2, 1]).unwrap();
    assert_eq!(labels, [vec![false, true], vec![false]]);
    let err = load_frame_labels(&path, &videos, &[3, 1]).unwrap_err().to_string();
    assert!(err.contains("video 01") && err.contains("2 frames") && err.contains("3 frames"), "{err}");
    let err = load_ground_truth(&dir.path().join("labels.txt"), &videos).unwrap_err().to_string();
    assert!(err.contains("labels.txt"), "{err}");
}

/// Issue 15: counts known before decoding are checked early; unknown ones wait.
#[test]
fn frame_counts_known_before_decoding_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("labels.csv");
    std::fs::write(&path, "video,frame,label\n01,0,0\n01,1,1\n02,0,0\n").unwrap();
    let truth = load_ground_truth(&path, &[video("01"), video("02")]).unwrap();
    truth.check_frame_counts(&[Some(2), None], "are in its frame folder").unwrap();
    let err = truth.check_frame_counts(&[None, Some(5)], "are in its frame folder").unwrap_err().to_string();
    assert!(err.ends_with("video 02: the ground truth has 1 frames but 5 frames are in its frame folder"), "{err}");
}

/// Issue 15: a labels path that is a folder of video frames was read as
/// pixel masks (every frame "anomalous").
#[test]
fn video_frames_are_not_taken_for_pixel_masks() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames/01");
    std::fs::create_dir_all(&frames).unwrap();
    for f in 0..3u32 {
        let frame = image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([(60 + 10 * x + f) as u8, (80 + 5 * y) as u8, 120]));
        frame.save(frames.join(format!("{f:03}.jpg"))).unwrap();
    }
    let err = load_ground_truth(&dir.path().join("frames"), &[video("01")]).unwrap_err().to_string();
    assert!(err.contains("000.jpg does not look like a pixel mask") && err.contains("folder of video frames"), "{err}");
}

//! Every reader of ground truth under mutation (vigil_stage_testkit::fuzz):
//! MAT v5 (plain and compressed), UCSD `.m`, CSV, `.npy` and mask images,
//! from samples made here and, where ../shared/data is present, Ped2's own
//! files. A reader may refuse a mutant with an error; it must not panic or
//! allocate by a header's claim.

use crate::labels::load_ground_truth;
use crate::layout::{SourceKind, VideoSource};
use crate::mat::write::{file as mat_file, Value};
use crate::npy::NpyArray;
use std::path::{Path, PathBuf};
use vigil_stage_testkit::fuzz::{fuzz, image_bound, Fuzz, FuzzFile, Sample, TrackingAllocator};
use vigil_stage_testkit::optional_shared_data;

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

fn videos(names: &[&str]) -> Vec<VideoSource> {
    names.iter().map(|n| VideoSource { name: n.to_string(), path: PathBuf::from(n), kind: SourceKind::FrameFolder }).collect()
}

/// Loads the ground truth at `path` and asks it everything a run asks:
/// frame labels for the given lengths and the first masks of each video.
fn use_ground_truth(path: &Path, videos: &[VideoSource], frames: &[usize]) -> crate::Result<()> {
    let truth = load_ground_truth(path, videos)?;
    let _ = truth.frame_labels(frames);
    if truth.has_masks() {
        for video in 0..videos.len() {
            for frame in 0..2 {
                let _ = truth.mask(video, frame);
            }
        }
    }
    Ok(())
}

/// Adds `file` of ../shared/data to the samples when it is there.
fn with_real(mut samples: Vec<Sample>, file: &str) -> Vec<Sample> {
    if let Some(path) = optional_shared_data(file) {
        samples.push(Sample::new(file, std::fs::read(path).unwrap()));
    }
    samples
}

fn ranges_cell(ranges: &[(f64, f64)]) -> Value {
    let cells = ranges.iter().map(|&(a, b)| Value::F64 { dims: vec![2, 1], data: vec![a, b] }).collect();
    Value::Cell { dims: vec![1, ranges.len()], cells }
}

#[test]
fn mat_ranges_survive_mutation() {
    let ranges = [(61.0, 180.0), (95.0, 180.0), (1.0, 146.0)];
    let samples = with_real(
        vec![
            Sample::new("3 ranges", mat_file(&[("gt", ranges_cell(&ranges))], false)),
            Sample::new("3 ranges, compressed", mat_file(&[("gt", ranges_cell(&ranges))], true)),
            Sample::new("another variable first", mat_file(&[("x", ranges_cell(&ranges[..1])), ("gt", ranges_cell(&ranges))], false)),
        ],
        "ped2/ped2.mat",
    );
    let file = FuzzFile::new("ped2.mat");
    let videos = videos(&["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"]);
    fuzz("MAT ranges", &samples, |bytes| use_ground_truth(file.write(bytes), &videos, &[180; 12]));
}

#[test]
fn avenue_mask_mats_survive_mutation() {
    let mask = |on: bool| Value::U8 { dims: vec![3, 4], data: (0..12).map(|i| u8::from(on && i == 5)).collect(), logical: true };
    let double = Value::F64 { dims: vec![3, 4], data: (0..12).map(|i| f64::from(i == 7)).collect() };
    let volume = |compress| {
        mat_file(&[("volLabel", Value::Cell { dims: vec![1, 3], cells: vec![mask(false), mask(true), double.clone()] })], compress)
    };
    let samples = [Sample::new("3 masks", volume(false)), Sample::new("3 masks, compressed", volume(true))];
    let file = FuzzFile::new("testing_label_mask/1_label.mat");
    let videos = videos(&["01.avi"]);
    fuzz("Avenue volLabel", &samples, |bytes| {
        file.write(bytes);
        use_ground_truth(&file.dir().join("testing_label_mask"), &videos, &[3])
    });
}

#[test]
fn ucsd_m_survives_mutation() {
    let generated = "TestVideoFile = {};\nTestVideoFile{end+1}.gt_frame = [61:180];\nTestVideoFile{end+1}.gt_frame = [2:2, 4:40];\n";
    let samples = with_real(vec![Sample::new("2 videos", generated)], "ped2/UCSDped2.m");
    let file = FuzzFile::new("UCSDped2.m");
    let videos = videos(&[
        "Test001", "Test002", "Test003", "Test004", "Test005", "Test006", "Test007", "Test008", "Test009", "Test010", "Test011", "Test012",
    ]);
    fuzz("UCSD .m", &samples, |bytes| use_ground_truth(file.write(bytes), &videos, &[180; 12]));
}

#[test]
fn csv_labels_survive_mutation() {
    let samples = [Sample::new("2 videos", "video,frame,label\n01,0,0\n01,1,1\n02,0,1\n02,2,0\n02,1,0\n")];
    let file = FuzzFile::new("labels.csv");
    let videos = videos(&["01", "02"]);
    fuzz("label CSV", &samples, |bytes| use_ground_truth(file.write(bytes), &videos, &[2, 3]));
}

#[test]
fn npy_masks_survive_mutation() {
    let labels: Vec<u8> = [0i64, 1, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let pixels: Vec<u8> = (0..3 * 2 * 5).map(|i| u8::from(i == 29)).collect();
    let floats: Vec<u8> = [0f32, 0.5, 1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let samples = [
        Sample::new("frame labels <i8", crate::npy::bytes("<i8", &[3], &labels)),
        Sample::new("pixel masks |u1", crate::npy::bytes("|u1", &[3, 2, 5], &pixels)),
        Sample::new("frame labels <f4", crate::npy::bytes("<f4", &[3], &floats)),
    ];
    let file = FuzzFile::new("test_frame_mask/01_0014.npy");
    let videos = videos(&["01_0014"]);
    fuzz(".npy", &samples, |bytes| {
        let path = file.write(bytes);
        let array = NpyArray::open(path)?;
        let _ = array.nonzero();
        let _ = array.frame_mask(0);
        use_ground_truth(file.dir(), &videos, &[3])
    });
}

#[test]
fn mask_images_survive_mutation() {
    let mut mask = image::GrayImage::new(6, 4);
    mask.put_pixel(5, 3, image::Luma([255]));
    let encode = |format| {
        let mut bytes = std::io::Cursor::new(Vec::new());
        mask.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    };
    let samples = [Sample::new("6x4 bmp", encode(image::ImageFormat::Bmp)), Sample::new("6x4 png", encode(image::ImageFormat::Png))];
    let file = FuzzFile::new("Test001_gt/001.bmp");
    let videos = videos(&["Test001"]);
    let folder = file.dir().to_path_buf();
    Fuzz::new("mask images").bound(image_bound).run(&samples, |bytes| {
        file.write(bytes);
        use_ground_truth(&folder, &videos, &[1])
    });
}

use super::*;
use serde_json::json;
use vigil_stage_api::names;
use vigil_stage_testkit::{assert_contract, capture_warnings, create, into_decoder, shared_data};

struct Decoded {
    info: VideoInfo,
    /// Every frame's pixels, in order.
    frames: Vec<Vec<u8>>,
    warnings: String,
}

fn decode_all(folder: &Path, batch: u32) -> Result<Decoded, StageError> {
    let instance = create::<FramesStage>(json!({})).unwrap();
    let io = instance.io.clone();
    let mut decoder = into_decoder(instance);
    let (result, warnings) = capture_warnings(|| {
        let info = decoder.open(folder.to_str().unwrap().into(), 7).into_result()?;
        let mut frames = Vec::new();
        while let Some(b) = decoder.next_batch(batch).into_result()?.into_option() {
            assert_contract(&io, &b);
            let t = b.get(names::FRAMES).unwrap();
            let n = t.shape()[0];
            for (i, id) in b.ids.iter().enumerate() {
                assert_eq!(*id, FrameId { video: 7, frame: (frames.len() + i) as u32 });
            }
            frames.extend(t.as_slice::<u8>().unwrap().chunks(t.len() / n).map(<[u8]>::to_vec));
        }
        Ok((info, frames))
    });
    result.map(|(info, frames)| Decoded { info, frames, warnings })
}

fn grey_png(path: &Path, value: u8) {
    image::GrayImage::from_pixel(5, 4, image::Luma([value])).save(path).unwrap();
}

#[test]
fn natural_order_and_grey_replicated_to_rgb() {
    let dir = tempfile::tempdir().unwrap();
    for v in [10u8, 2, 1, 33] {
        grey_png(&dir.path().join(format!("{v}.png")), v);
    }
    let d = decode_all(dir.path(), 3).unwrap();
    assert_eq!((d.info.width, d.info.height, d.info.frame_count.into_option()), (5, 4, Some(4)));
    let firsts: Vec<u8> = d.frames.iter().map(|f| f[0]).collect();
    assert_eq!(firsts, [1, 2, 10, 33]);
    assert!(d.frames.iter().all(|f| f.len() == 5 * 4 * 3 && f.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2])));
}

#[test]
fn corrupt_image_mid_folder_ends_the_video_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5u8 {
        grey_png(&dir.path().join(format!("{i:03}.png")), i * 10);
    }
    let bad = dir.path().join("002.png");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    for batch in [1, 2, 10] {
        let d = decode_all(dir.path(), batch).unwrap();
        assert_eq!(d.frames.len(), 2, "batch {batch}");
        assert!(d.warnings.contains("002.png") && d.warnings.contains("frame 2 of 5"), "{}", d.warnings);
    }
}

/// Issue 15: a JPEG cut in half decoded silently (its lower part grey).
#[test]
fn truncated_jpeg_is_kept_with_a_warning_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3u32 {
        // Large enough that half the file is entropy-coded data, not headers.
        let frame = image::RgbImage::from_fn(240, 160, |x, y| image::Rgb([(x * 7 + i) as u8, (y * 9 + x * x / 5) as u8, (x ^ y) as u8]));
        frame.save(dir.path().join(format!("{i:03}.jpg"))).unwrap();
    }
    let d = decode_all(dir.path(), 8).unwrap();
    assert_eq!(d.frames.len(), 3);
    assert!(d.warnings.is_empty(), "complete JPEGs decode quietly: {}", d.warnings);

    let bad = dir.path().join("001.jpg");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    for batch in [1, 8] {
        let d = decode_all(dir.path(), batch).unwrap();
        assert_eq!(d.frames.len(), 3, "the frame is kept (batch {batch})");
        assert!(
            d.warnings.contains("001.jpg") && d.warnings.contains("truncated") && d.warnings.contains("frame 1 of 3"),
            "{}",
            d.warnings
        );
        assert!(!d.warnings.contains("000.jpg") && !d.warnings.contains("002.jpg"), "{}", d.warnings);
    }
}

#[test]
fn bad_folders_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = decode_all(&dir.path().join("absent"), 4).err().unwrap();
    assert!(err.message.contains("absent") && err.message.contains("does not exist"), "{err}");

    let err = decode_all(dir.path(), 4).err().unwrap();
    assert!(err.message.contains("holds no image files"), "{err}");

    grey_png(&dir.path().join("000.png"), 1);
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let err = decode_all(dir.path(), 4).err().unwrap();
    assert!(err.message.contains("notes.txt is not an image file"), "{err}");
    std::fs::remove_file(dir.path().join("notes.txt")).unwrap();

    image::GrayImage::new(9, 9).save(dir.path().join("001.png")).unwrap();
    let err = decode_all(dir.path(), 4).err().unwrap();
    assert!(err.message.contains("001.png is 9x9") && err.message.contains("5x4"), "{err}");
}

#[test]
fn decodes_a_ped2_video() {
    let Some(folder) = shared_data("ped2/testing/frames/09") else { return };
    let d = decode_all(&folder, 32).unwrap();
    assert_eq!((d.info.width, d.info.height, d.info.frame_count.into_option()), (360, 240, Some(120)));
    assert_eq!(d.frames.len(), 120);
}

/// UCSD ships `Test/Test001/001.tif`; no original TIFs are available, so
/// this writes a few Ped2 JPEGs as grey TIFFs named and numbered as UCSD does.
#[test]
fn ucsd_tif_layout_resolves_and_decodes() {
    let Some(jpegs) = shared_data("ped2/testing/frames/01") else { return };
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("Test/Test001");
    std::fs::create_dir_all(&video).unwrap();
    let mut expected = Vec::new();
    for i in 0..12 {
        let rgb = image::open(jpegs.join(format!("{i:03}.jpg"))).unwrap().into_rgb8();
        let grey = image::GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| image::Luma([rgb.get_pixel(x, y)[0]]));
        grey.save(video.join(format!("{:03}.tif", i + 1))).unwrap();
        expected.push(rgb.into_raw());
    }
    std::fs::create_dir_all(dir.path().join("Test/Test001_gt")).unwrap();
    let sources = vigil_datasets::resolve(&dir.path().join("Test")).unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!((sources[0].name.as_str(), sources[0].kind), ("Test001", vigil_datasets::SourceKind::FrameFolder));
    let d = decode_all(&sources[0].path, 5).unwrap();
    assert_eq!((d.info.width, d.info.height), (360, 240));
    // Ped2 is grey (R = G = B), so the grey TIFFs decode to the same RGB.
    assert_eq!(d.frames, expected);
}

#[global_allocator]
static ALLOCATOR: vigil_stage_testkit::fuzz::TrackingAllocator = vigil_stage_testkit::fuzz::TrackingAllocator;

/// Issue 15: frames as outside bytes (vigil_stage_testkit::fuzz). A folder
/// of three frames with the first or the second one mutated must decode to
/// an error or fewer frames, never a panic; one frame per batch, so the
/// largest buffer is one frame, bounded by the `image` crate's limit.
#[test]
fn mutated_frames_are_errors_or_warnings_not_panics() {
    use vigil_stage_testkit::fuzz::{image_bound, Fuzz, FuzzFile, Sample};
    let frame = image::RgbImage::from_fn(48, 32, |x, y| image::Rgb([(x * 5) as u8, (y * 7 + x) as u8, (x ^ y) as u8]));
    let encode = |format| {
        let mut bytes = std::io::Cursor::new(Vec::new());
        frame.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    };
    let mut samples = vec![
        Sample::new("48x32 jpg", encode(image::ImageFormat::Jpeg)),
        Sample::new("48x32 png", encode(image::ImageFormat::Png)),
        Sample::new("48x32 bmp", encode(image::ImageFormat::Bmp)),
    ];
    if let Some(ped2) = vigil_stage_testkit::optional_shared_data("ped2/testing/frames/01/070.jpg") {
        samples.push(Sample::new("Ped2 01/070.jpg", std::fs::read(ped2).unwrap()));
    }
    for (mutated, target) in [(0, "first frame"), (1, "second frame")] {
        for sample in &samples {
            // The other frames are the sample unmutated, named as its format.
            let extension = if sample.name.ends_with("png") {
                "png"
            } else if sample.name.ends_with("bmp") {
                "bmp"
            } else {
                "jpg"
            };
            let file = FuzzFile::new(&format!("{mutated:03}.{extension}"));
            for other in (0..3).filter(|&i| i != mutated) {
                std::fs::write(file.dir().join(format!("{other:03}.{extension}")), &sample.bytes).unwrap();
            }
            Fuzz::new(target).bound(image_bound).run(std::slice::from_ref(sample), |bytes| {
                file.write(bytes);
                decode_all(file.dir(), 1).map(|_| ())
            });
        }
    }
}

use super::*;
use serde_json::json;
use vigil_stage_testkit::{assert_contract, capture_warnings, create, into_decoder, shared_data};

/// Decodes all of `path` with the stage in batches of `batch`; returns the
/// video info, the frame count, the first frame's pixels and the warnings.
struct Decoded {
    info: VideoInfo,
    frames: usize,
    first: Vec<u8>,
    warnings: String,
}

fn decode_all(path: &Path, batch: u32) -> Result<Decoded, StageError> {
    let instance = create::<VideoStage>(json!({})).unwrap();
    let io = instance.io.clone();
    let mut decoder = into_decoder(instance);
    let (result, warnings) = capture_warnings(|| {
        let info = decoder.open(path.to_str().unwrap().into(), 3).into_result()?;
        let mut frames = 0usize;
        let mut first = Vec::new();
        while let Some(b) = decoder.next_batch(batch).into_result()?.into_option() {
            assert_contract(&io, &b);
            let t = b.get("frames").unwrap();
            assert_eq!(t.shape()[1..], [info.height as usize, info.width as usize, 3]);
            for (i, id) in b.ids.iter().enumerate() {
                assert_eq!(*id, FrameId { video: 3, frame: (frames + i) as u32 });
            }
            if frames == 0 {
                first = t.as_slice::<u8>().unwrap()[..t.len() / t.shape()[0]].to_vec();
            }
            frames += t.shape()[0];
        }
        Ok(Decoded { info, frames, first, warnings: String::new() })
    });
    result.map(|d| Decoded { warnings, ..d })
}

#[test]
fn decodes_every_frame_of_vtest() {
    let Some(path) = shared_data("videos/vtest.avi") else { return };
    let d = decode_all(&path, 64).unwrap();
    assert_eq!((d.info.width, d.info.height), (768, 576));
    assert_eq!(d.info.frame_count.into_option(), Some(795));
    assert_eq!(d.info.fps.into_option(), Some(10.0));
    assert_eq!(d.frames, 795);
    assert!(!d.warnings.contains("WARN"), "unexpected warnings: {}", d.warnings);
    // A real colour picture: many distinct values and channels that differ.
    let mut seen = [false; 256];
    d.first.iter().for_each(|&v| seen[v as usize] = true);
    assert!(seen.iter().filter(|&&s| s).count() > 100);
    assert!(d.first.chunks(3).any(|p| p[0] != p[2]), "frame looks grey: not RGB");
}

#[test]
fn batch_size_does_not_change_the_frames() {
    let Some(path) = shared_data("videos/vtest.avi") else { return };
    let a = decode_all(&path, 1).unwrap();
    let b = decode_all(&path, 795 + 10).unwrap();
    assert_eq!(a.frames, b.frames);
    assert_eq!(a.first, b.first);
}

#[test]
fn truncated_file_yields_the_frames_before_the_cut_and_warns() {
    let Some(path) = shared_data("videos/vtest.avi") else { return };
    let bytes = std::fs::read(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.avi");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let d = decode_all(&cut, 100).unwrap();
    println!("{}", d.warnings);
    assert!(d.frames > 300 && d.frames < 795, "decoded {} frames of a 60% file", d.frames);
    assert!(d.warnings.contains("cut.avi"), "warning does not name the file: {}", d.warnings);
    assert!(d.warnings.contains(&format!("after {} frames", d.frames)), "{}", d.warnings);
    assert!(d.warnings.contains("795"), "warning does not give the header count: {}", d.warnings);
}

#[test]
fn garbage_in_the_middle_never_crashes() {
    let Some(path) = shared_data("videos/vtest.avi") else { return };
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    let mut x = 0x9e3779b97f4a7c15u64;
    for b in &mut bytes[mid..mid + 100 * 1024] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("garbage.avi");
    std::fs::write(&bad, &bytes).unwrap();
    let d = decode_all(&bad, 64).unwrap();
    println!("{} frames; {}", d.frames, d.warnings);
    assert!(d.frames >= 300, "decoded only {} frames", d.frames);
    if d.frames < 795 {
        assert!(d.warnings.contains("garbage.avi"), "lost frames without a warning: {}", d.warnings);
    }
}

#[test]
fn missing_empty_and_non_video_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here.avi");
    let err = decode_all(&missing, 8).err().unwrap();
    assert!(err.message.contains("nothing-here.avi"), "{err}");

    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let err = decode_all(&empty, 8).err().unwrap();
    assert!(err.message.contains("empty.mp4") && err.message.contains("empty"), "{err}");

    let text = dir.path().join("notes.mkv");
    std::fs::write(&text, "these are not video frames\n".repeat(200)).unwrap();
    let err = decode_all(&text, 8).err().unwrap();
    assert!(err.message.contains("notes.mkv") && err.message.contains("cannot be opened"), "{err}");

    let err = decode_all(dir.path(), 8).err().unwrap();
    assert!(err.message.contains("is a folder"), "{err}");
}

#[test]
fn next_batch_before_open_is_an_error() {
    let mut decoder = into_decoder(create::<VideoStage>(json!({})).unwrap());
    let err = decoder.next_batch(4).into_result().err().unwrap();
    assert!(err.message.contains("before open"), "{err}");
}

#[test]
fn rgb_matches_video_rs_own_conversion() {
    let Some(path) = shared_data("videos/vtest.avi") else { return };
    let mut reference = video_rs::Decoder::new(path.as_path()).unwrap();
    let mut ours = VideoReader::open(&path).unwrap();
    let (w, h) = (768usize, 576usize);
    for frame in 0..5 {
        let raw = reference.decode_raw().unwrap();
        let (stride, data) = (raw.stride(0), raw.data(0));
        let expected: Vec<u8> = (0..h).flat_map(|y| data[y * stride..y * stride + w * 3].to_vec()).collect();
        let mut got = Vec::with_capacity(w * h * 3 + reader::WRITE_SLACK);
        assert!(matches!(ours.read_frame(&mut got), Step::Frame));
        let worst = got.iter().zip(&expected).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(worst <= 2, "frame {frame}: RGB differs from video-rs' by up to {worst}");
    }
}

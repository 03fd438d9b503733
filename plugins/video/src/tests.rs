use super::*;
use serde_json::json;
use vigil_stage_api::names;
use vigil_stage_testkit::{assert_contract, capture_warnings, create, into_decoder, shared_data};

/// Decodes all of `path` with the stage in batches of `batch`; returns the
/// video info, the frame count, the first frame's pixels and the warnings.
struct Decoded {
    info: VideoInfo,
    frames: usize,
    first: Vec<u8>,
    /// A hash of each frame's pixels.
    hashes: Vec<u64>,
    warnings: String,
}

fn decode_all(path: &Path, batch: u32) -> Result<Decoded, StageError> {
    decode_with(path, batch, json!({}))
}

fn decode_with(path: &Path, batch: u32, options: serde_json::Value) -> Result<Decoded, StageError> {
    use std::hash::{Hash, Hasher};
    let instance = create::<VideoStage>(options).unwrap();
    let io = instance.io.clone();
    let mut decoder = into_decoder(instance);
    let (result, warnings) = capture_warnings(|| {
        let info = decoder.open(path.to_str().unwrap().into(), 3).into_result()?;
        let mut frames = 0usize;
        let mut first = Vec::new();
        let mut hashes = Vec::new();
        while let Some(b) = decoder.next_batch(batch).into_result()?.into_option() {
            assert_contract(&io, &b);
            let t = b.get(names::FRAMES).unwrap();
            assert_eq!(t.shape()[1..], [info.height as usize, info.width as usize, 3]);
            for (i, id) in b.ids.iter().enumerate() {
                assert_eq!(*id, FrameId { video: 3, frame: (frames + i) as u32 });
            }
            if frames == 0 {
                first = t.as_slice::<u8>().unwrap()[..t.len() / t.shape()[0]].to_vec();
            }
            for frame in t.as_slice::<u8>().unwrap().chunks(t.len() / t.shape()[0]) {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                frame.hash(&mut hasher);
                hashes.push(hasher.finish());
            }
            frames += t.shape()[0];
        }
        Ok(Decoded { info, frames, first, hashes, warnings: String::new() })
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

/// Writes `frames` frames of a grey left-to-right ramp that drifts right,
/// with FFmpeg's encoder `codec`, into `path` (container from the extension).
fn encode_ramp(path: &Path, codec: &str, pixel: video_rs::ffmpeg::format::Pixel, frames: usize) -> Result<(), video_rs::ffmpeg::Error> {
    use video_rs::ffmpeg as ff;
    let (w, h) = (64u32, 48u32);
    let rate = ff::Rational(25, 1);
    let time_base = ff::Rational(1, 25);
    let codec = ff::encoder::find_by_name(codec).ok_or(ff::Error::EncoderNotFound)?;
    let mut octx = ff::format::output(path)?;
    let global_header = octx.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
    let mut encoder = ff::codec::context::Context::new_with_codec(codec).encoder().video()?;
    encoder.set_width(w);
    encoder.set_height(h);
    encoder.set_format(pixel);
    encoder.set_time_base(time_base);
    encoder.set_frame_rate(Some(rate));
    if global_header {
        encoder.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    let mut encoder = encoder.open_as(codec)?;
    let mut stream = octx.add_stream(codec)?;
    stream.set_parameters(&encoder);
    stream.set_time_base(time_base);
    octx.write_header()?;
    let stream_time_base = octx.stream(0).expect("one stream").time_base();
    let drain = |encoder: &mut ff::encoder::Video, octx: &mut ff::format::context::Output| -> Result<(), ff::Error> {
        let mut packet = ff::Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            // Without a duration the mp4 muxer's edit list ends before the
            // last frame and every reader (OpenCV included) loses it.
            packet.set_duration(1);
            packet.rescale_ts(time_base, stream_time_base);
            packet.write_interleaved(octx)?;
        }
        Ok(())
    };
    for i in 0..frames {
        let mut frame = ff::frame::Video::new(pixel, w, h);
        let stride = frame.stride(0);
        let luma = frame.data_mut(0);
        for y in 0..h as usize {
            for x in 0..w as usize {
                luma[y * stride + x] = (40 + (x + i) * 2).min(235) as u8;
            }
        }
        for plane in 1..3 {
            frame.data_mut(plane).fill(128);
        }
        frame.set_pts(Some(i as i64));
        encoder.send_frame(&frame)?;
        drain(&mut encoder, &mut octx)?;
    }
    encoder.send_eof()?;
    drain(&mut encoder, &mut octx)?;
    octx.write_trailer()
}

#[test]
fn decodes_common_containers_and_codecs() {
    use video_rs::ffmpeg::format::Pixel;
    reader::init_ffmpeg_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("h264.mp4", "libx264", Pixel::YUV420P),
        ("mpeg4.mkv", "mpeg4", Pixel::YUV420P),
        ("mjpeg.mov", "mjpeg", Pixel::YUVJ420P),
        ("mpeg4.avi", "mpeg4", Pixel::YUV420P),
        ("msmpeg4.avi", "msmpeg4", Pixel::YUV420P),
    ];
    for (name, codec, pixel) in cases {
        let path = dir.path().join(name);
        if let Err(e) = encode_ramp(&path, codec, pixel, 30) {
            vigil_stage_testkit::skip(&format!("{name}: this FFmpeg cannot encode {codec}: {e}"));
            continue;
        }
        // One batch for the whole video, however many frames the caller allows.
        let d = decode_all(&path, u32::MAX).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((d.info.width, d.info.height, d.frames), (64, 48, 30), "{name}");
        assert_eq!(d.info.fps.into_option(), Some(25.0), "{name}");
        assert!(!d.warnings.contains("vigil_plugin_video"), "{name}: {}", d.warnings);
        assert!(!d.warnings.contains("deprecated pixel format"), "{name}: {}", d.warnings);
        // Grey, and brighter to the right, as encoded.
        let px = |x: usize| d.first[(24 * 64 + x) * 3..(24 * 64 + x) * 3 + 3].to_vec();
        let (left, right) = (px(4), px(60));
        assert!(right[0] as i32 - left[0] as i32 > 80, "{name}: ramp lost: {left:?} .. {right:?}");
        for p in [&left, &right] {
            assert!(p.iter().all(|&c| c.abs_diff(p[0]) <= 3), "{name}: not grey: {p:?}");
        }
    }
}

#[test]
fn start_s_and_duration_s_select_a_time_range_numbered_from_zero() {
    use video_rs::ffmpeg::format::Pixel;
    reader::init_ffmpeg_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ramp.avi");
    encode_ramp(&path, "mpeg4", Pixel::YUV420P, 30).unwrap();
    let whole = decode_all(&path, 64).unwrap();
    assert_eq!(whole.frames, 30);
    // 25 frames/s: 0.4 s is 10 frames.
    for batch in [1, 4, 64] {
        let tail = decode_with(&path, batch, json!({ "start_s": 0.4 })).unwrap();
        let header = whole.info.frame_count.into_option();
        assert_eq!((tail.frames, tail.info.frame_count.into_option()), (20, header.map(|n| n - 10)), "batch {batch}");
        assert_eq!(tail.hashes, whole.hashes[10..], "batch {batch}");
        let middle = decode_with(&path, batch, json!({ "start_s": 0.4, "duration_s": 0.4 })).unwrap();
        assert_eq!((middle.frames, middle.info.frame_count.into_option()), (10, header.map(|_| 10)), "batch {batch}");
        assert_eq!(middle.hashes, whole.hashes[10..20], "batch {batch}");
        assert!(!middle.warnings.contains("WARN"), "ending at duration_s is not a damaged file: {}", middle.warnings);
    }
    let head = decode_with(&path, 64, json!({ "duration_s": 0.2 })).unwrap();
    assert_eq!(head.hashes, whole.hashes[..5]);
    let past = decode_with(&path, 64, json!({ "start_s": 10.0 })).err().expect("a start past the end is an error");
    assert!(past.to_string().contains("start_s is past the end") && past.to_string().contains("ramp.avi"), "{past}");
    assert!(create::<VideoStage>(json!({ "duration_s": -1.0 })).is_err());
}

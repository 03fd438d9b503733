//! Both localizers run in-process through the testkit: declared tensors,
//! errors at creation, and boxes on hand-made frames.

use serde_json::json;
use vigil_plugin_localize::{DetectorLocalizer, MotionLocalizer};
use vigil_stage_api::{names, Batch, FrameId, StageInstance, Tensor};
use vigil_stage_testkit as kit;

fn input_names(instance: &StageInstance) -> Vec<String> {
    instance.io.inputs.iter().map(|t| t.name.to_string()).collect()
}

/// A flat grey frame batch of one video with the given flow fields.
fn batch_with_flow(video: u32, first: u32, flows: Vec<Vec<f32>>, width: usize, height: usize) -> Batch {
    let n = flows.len();
    let ids = (0..n as u32).map(|i| FrameId { video, frame: first + i }).collect();
    Batch::new(ids)
        .with(names::FRAMES, Tensor::from_vec(vec![90u8; n * height * width * 3], &[n, height, width, 3]))
        .with(names::FLOW, Tensor::from_vec(flows.into_iter().flatten().collect(), &[n, height, width, 2]))
}

/// A flow field that is zero except (u, v) over the inclusive rectangle.
fn flow_rect(width: usize, height: usize, (x0, y0, x1, y1): (usize, usize, usize, usize), uv: [f32; 2]) -> Vec<f32> {
    let mut flow = vec![0.0f32; width * height * 2];
    for y in y0..=y1 {
        for x in x0..=x1 {
            flow[(y * width + x) * 2..(y * width + x) * 2 + 2].copy_from_slice(&uv);
        }
    }
    flow
}

/// The creation error of stage `F` with these options.
fn creation_error<F: vigil_stage_api::StageFactory>(options: serde_json::Value) -> String {
    kit::create::<F>(options).err().expect("creation must fail")
}

fn rows(boxes: &Tensor) -> Vec<[f32; 7]> {
    boxes.as_slice::<f32>().unwrap().chunks_exact(7).map(|c| c.try_into().unwrap()).collect()
}

#[test]
fn motion_boxes_a_moving_square_from_flow() {
    let instance = kit::create::<MotionLocalizer>(json!({})).unwrap();
    assert_eq!(input_names(&instance), ["frames", "flow"]);
    let io = instance.io.clone();
    let mut stage = kit::into_localizer(instance);
    let (w, h) = (64, 48);
    let still = vec![0.0; w * h * 2];
    // |flow|^2 = 1.25 over x 10..=29, y 5..=24; below the threshold (0.81) elsewhere in row 2.
    let moving = flow_rect(w, h, (10, 5, 29, 24), [1.0, 0.5]);
    let slow = flow_rect(w, h, (0, 0, 63, 47), [0.9, 0.0]);
    let out = stage.process(batch_with_flow(0, 0, vec![still, moving, slow], w, h)).into_result().unwrap();
    kit::assert_contract(&io, &out);
    // Rect (10, 5, 20, 20) grown by 2 px.
    assert_eq!(rows(out.get(names::BOXES).unwrap()), vec![[1.0, 8.0, 3.0, 32.0, 27.0, 1.0, -1.0]]);
}

#[test]
fn motion_without_flow_uses_frame_differences_across_batches() {
    let instance = kit::create::<MotionLocalizer>(json!({"motion_source": "frame_difference"})).unwrap();
    assert_eq!(input_names(&instance), ["frames"]);
    let mut stage = kit::into_localizer(instance);
    let (w, h) = (64, 48);
    let plain = vec![60u8; w * h * 3];
    let mut with_square = plain.clone();
    for y in 10..30 {
        for x in 20..40 {
            with_square[(y * w + x) * 3..(y * w + x) * 3 + 3].fill(200);
        }
    }
    let first = stage.process(kit::frames_batch(vec![plain.clone(), plain.clone()], h, w)).into_result().unwrap();
    assert!(rows(first.get(names::BOXES).unwrap()).is_empty());
    // Frame 2 arrives alone; it is compared with frame 1 from the last batch.
    let next = Batch::new(vec![FrameId { video: 0, frame: 2 }]).with(names::FRAMES, Tensor::from_vec(with_square.clone(), &[1, h, w, 3]));
    let boxes = rows(stage.process(next).into_result().unwrap().get(names::BOXES).unwrap());
    // The 20x20 square plus the blur's one-pixel rim, grown by 2 px.
    assert_eq!(boxes, vec![[0.0, 17.0, 7.0, 43.0, 33.0, 1.0, -1.0]]);
    // The first frame of another video has no predecessor: its next frame stands in.
    let other = Batch::new(vec![FrameId { video: 1, frame: 0 }, FrameId { video: 1, frame: 1 }])
        .with(names::FRAMES, Tensor::from_vec([plain, with_square].concat(), &[2, h, w, 3]));
    let boxes = rows(stage.process(other).into_result().unwrap().get(names::BOXES).unwrap());
    assert_eq!(boxes.iter().map(|b| b[0]).collect::<Vec<_>>(), [0.0, 1.0]);
}

#[test]
fn motion_reports_a_missing_flow_tensor() {
    let mut stage = kit::into_localizer(kit::create::<MotionLocalizer>(json!({})).unwrap());
    let err = stage.process(kit::frames_batch(vec![vec![0u8; 12]], 2, 2)).into_result().unwrap_err();
    assert!(err.message.contains("`flow` is missing"), "{err}");
    assert!(err.message.contains("frame_difference"), "{err}");
}

#[test]
fn empty_frames_are_an_error_not_a_panic() {
    let mut stage = kit::into_localizer(kit::create::<MotionLocalizer>(json!({"motion_source": "frame_difference"})).unwrap());
    let err = stage.process(kit::frames_batch(vec![vec![]], 0, 5)).into_result().unwrap_err();
    assert!(err.message.contains("`frames` must have a size"), "{err}");
}

#[test]
fn detector_rejects_missing_and_malformed_model_files_at_creation() {
    let err = creation_error::<DetectorLocalizer>(json!({"model": "/nonexistent/yolox.onnx"}));
    assert!(err.contains("/nonexistent/yolox.onnx") && err.contains("no such file"), "{err}");

    let junk = std::env::temp_dir().join(format!("vigil-localize-junk-{}.onnx", std::process::id()));
    std::fs::write(&junk, b"this is not a protobuf").unwrap();
    let err = creation_error::<DetectorLocalizer>(json!({"model": junk.display().to_string()}));
    std::fs::remove_file(&junk).ok();
    assert!(err.contains(&junk.display().to_string()) && err.contains("not a loadable ONNX model"), "{err}");

    let err = creation_error::<DetectorLocalizer>(json!({}));
    assert!(err.contains("missing required option `model`"), "{err}");
}

fn yolox() -> Option<String> {
    kit::shared_data("models/yolox_nano.onnx").map(|p| p.display().to_string())
}

#[test]
fn detector_declares_flow_only_when_motion_completion_needs_it() {
    let Some(model) = yolox() else { return };
    let with_flow = kit::create::<DetectorLocalizer>(json!({"model": model})).unwrap();
    assert_eq!(input_names(&with_flow), ["frames", "flow"]);
    let without = kit::create::<DetectorLocalizer>(json!({"model": model, "motion_completion": false})).unwrap();
    assert_eq!(input_names(&without), ["frames"]);
    let differencing = kit::create::<DetectorLocalizer>(json!({"model": model, "motion_source": "frame_difference"}));
    assert_eq!(input_names(&differencing.unwrap()), ["frames"]);

    let err = creation_error::<DetectorLocalizer>(json!({"model": model, "classes": [0, 80]}));
    assert!(err.contains("class 80 does not exist (the model has 80)"), "{err}");
    let err = creation_error::<DetectorLocalizer>(json!({"model": model, "score_threshold": 1.5}));
    assert!(err.contains("score_threshold"), "{err}");
}

#[test]
fn detector_completes_with_motion_where_it_finds_nothing() {
    let Some(model) = yolox() else { return };
    let instance = kit::create::<DetectorLocalizer>(json!({"model": model})).unwrap();
    let io = instance.io.clone();
    let mut stage = kit::into_localizer(instance);
    // A flat frame has no objects; the moving region becomes a motion box.
    let (w, h) = (64, 48);
    let moving = flow_rect(w, h, (10, 5, 29, 24), [0.0, -2.0]);
    let out = stage.process(batch_with_flow(3, 7, vec![moving], w, h)).into_result().unwrap();
    kit::assert_contract(&io, &out);
    assert_eq!(rows(out.get(names::BOXES).unwrap()), vec![[0.0, 8.0, 3.0, 32.0, 27.0, 1.0, -1.0]]);
}

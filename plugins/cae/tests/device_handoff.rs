//! A tensor that crosses the plugin boundary on the GPU: the example plugin
//! `examples/device_handoff.rs`, loaded as a dynamic library through the
//! plugin ABI as `vigil` loads plugins, hands its `flow` from one stage to
//! the other as a wgpu buffer. The host holds only the descriptor (host
//! access is refused), the consumer reads the buffer where it lies and
//! brings back one float per pair, and its boxes match the same change
//! computed on the CPU. A copy of the library, with its own wgpu instance,
//! refuses the first one's buffer with a clear error instead of misusing it.
//! On a machine without a GPU this runs on Mesa's software Vulkan driver.

use std::path::{Path, PathBuf};
use vigil_stage_api::open::{open_plugin, PluginModule};
use vigil_stage_api::tensor::TensorAccessError;
use vigil_stage_api::{
    complete_options, names, Batch, DeviceKind, FlowBox, FrameId, LocalizerBox, StageContext, StageInstance, StageIo, StageObject, Tensor,
};
use vigil_stage_testkit::assert_contract;

/// The example's library, which `cargo test --features gpu` builds into the
/// examples folder beside this test's.
fn example_library() -> PathBuf {
    let deps = std::env::current_exe().expect("the test's path").parent().expect("its folder").to_path_buf();
    let library = deps.parent().expect("the profile folder").join("examples").join(format!(
        "{}device_handoff{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        library.exists(),
        "{} is not built: `cargo test -p vigil-plugin-cae --features gpu` builds it with the tests, or \
         `cargo build -p vigil-plugin-cae --features gpu --example device_handoff`",
        library.display()
    );
    library
}

fn create(module: &PluginModule, name: &str) -> StageInstance {
    let stages = (module.stages)().into_result().expect("the stages");
    let info = stages.iter().find(|s| s.name.as_str() == name).unwrap_or_else(|| panic!("no stage {name}"));
    let options = complete_options(&info.options, &serde_json::Map::new()).expect("the default options");
    let context = StageContext { stage_id: name.into(), seed: 0, device: "gpu".into(), work_dir: "/tmp".into() };
    (module.create)(name.into(), options.to_json().as_str().into(), context).into_result().unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The example's two stages, each with its declared tensors.
struct Stages {
    change: (FlowBox, StageIo),
    boxes: (LocalizerBox, StageIo),
}

fn stages(library: &Path) -> Stages {
    let module = open_plugin(library).unwrap_or_else(|e| panic!("{}: {e}", library.display()));
    let (change, boxes) = (create(&module, "gpu-frame-change"), create(&module, "gpu-change-boxes"));
    let StageObject::Flow(flow) = change.stage else { panic!("gpu-frame-change is a flow stage") };
    let StageObject::Localizer(localizer) = boxes.stage else { panic!("gpu-change-boxes is a localizer") };
    Stages { change: (flow, change.io), boxes: (localizer, boxes.io) }
}

/// Four 6 x 8 frames: a still gray scene in which a bright square appears in
/// frame 2 and stays; frame 3 changes by a little noise.
fn frames() -> (Vec<u8>, [usize; 4]) {
    let (n, h, w) = (4, 6, 8);
    let mut pixels = vec![100u8; n * h * w * 3];
    for f in 2..n {
        for y in 1..4 {
            for x in 2..6 {
                pixels[((f * h + y) * w + x) * 3..][..3].copy_from_slice(&[250, 250, 250]);
            }
        }
    }
    pixels[((3 * h + 5) * w) * 3] = 130;
    (pixels, [n, h, w, 3])
}

/// Each pair's mean absolute change of gray level (the mean of R, G, B), on
/// the CPU.
fn mean_changes(pixels: &[u8], [n, h, w, _]: [usize; 4]) -> Vec<f32> {
    let gray = |f: usize, p: usize| pixels[(f * h * w + p) * 3..][..3].iter().map(|&c| f32::from(c)).sum::<f32>() / 3.0;
    (1..n).map(|f| (0..h * w).map(|p| (gray(f, p) - gray(f - 1, p)).abs()).sum::<f32>() / (h * w) as f32).collect()
}

#[test]
fn a_gpu_tensor_crosses_from_stage_to_stage_without_a_host_copy() {
    let library = example_library();
    let Stages { change: (mut change, change_io), boxes: (mut localize, boxes_io) } = stages(&library);
    assert_eq!(change_io.outputs[0].devices.as_slice(), [DeviceKind::Wgpu], "declared on the GPU");
    let (pixels, shape) = frames();
    let expected = mean_changes(&pixels, shape);
    let ids = (0..shape[0] as u32).map(|frame| FrameId { video: 0, frame }).collect();
    let batch = Batch::new(ids).with(names::FRAMES, Tensor::from_vec(pixels, &shape));

    let with_flow = change.process(batch).into_result().expect("gpu-frame-change");
    assert_contract(&change_io, &with_flow);
    let flow = with_flow.require(names::FLOW).expect("flow");
    assert_eq!(flow.device().kind, DeviceKind::Wgpu);
    assert_eq!(flow.shape(), [3, 6, 8, 2]);
    assert_eq!(flow.as_slice::<f32>().unwrap_err(), TensorAccessError::NotOnCpu(flow.device()), "the host holds no copy to read");

    let out = localize.process(with_flow).into_result().expect("gpu-change-boxes");
    assert_contract(&boxes_io, &out);
    let boxes = out.require(names::BOXES).unwrap().as_slice::<f32>().unwrap().to_vec();
    // The square appears in frame 2; frame 3's noise stays under the threshold of 1.
    assert!(expected[1] > 10.0 && expected[0] == 0.0 && expected[2] < 1.0, "{expected:?}");
    assert_eq!(boxes.len(), 7, "{boxes:?}");
    assert_eq!(boxes[..5], [2.0, 0.0, 0.0, 8.0, 6.0]);
    assert!((boxes[5] - expected[1]).abs() < 1e-3 * expected[1], "GPU {} against CPU {}", boxes[5], expected[1]);
    // One f32 per pair came back to the host, not the 3 x 6 x 8 x 2 floats of `flow`.
    assert_eq!(out.require("readback_bytes").unwrap().as_slice::<u32>().unwrap(), [12]);
    vigil_stage_testkit::note(&format!(
        "flow crossed on the GPU ({} bytes of f32 never copied to the host); the localizer read back 12 bytes",
        3 * 6 * 8 * 2 * 4
    ));
}

#[test]
fn another_library_refuses_a_gpu_tensor_it_did_not_make() {
    let library = example_library();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(library.file_name().unwrap());
    std::fs::copy(&library, &copy).unwrap();
    let (mut change, _) = stages(&library).change;
    let (mut foreign_localize, _) = stages(&copy).boxes;
    let (pixels, shape) = frames();
    let ids = (0..shape[0] as u32).map(|frame| FrameId { video: 0, frame }).collect();
    let with_flow = change.process(Batch::new(ids).with(names::FRAMES, Tensor::from_vec(pixels, &shape))).into_result().unwrap();
    let error = foreign_localize.process(with_flow).into_result().unwrap_err().to_string();
    assert!(
        error.contains("`flow`: tensor lives on wgpu adapter 0 in a buffer another library made, which only that library can read"),
        "{error}"
    );
    // Handed host memory instead, it says so too.
    let host_flow = Tensor::from_vec(vec![0f32; 3 * 6 * 8 * 2], &[3, 6, 8, 2]);
    let error = foreign_localize.process(Batch::new(vec![]).with(names::FLOW, host_flow)).into_result().unwrap_err().to_string();
    assert!(error.contains("`flow`: tensor lives on the CPU, expected a device buffer of this library"), "{error}");
}

//! The detector's ONNX model as outside bytes (vigil_stage_testkit::fuzz):
//! the real YOLOX-Nano file, mutated and loaded as `vigil check` loads it.
//! A broken model must be an error naming the file, never a panic. Each
//! load parses and optimizes the whole graph (up to 0.2 s), so this runs
//! fewer cases than the other readers; most mutations of a 3.7 MB file land
//! in weights, so truncations and header words carry most of the coverage.

use vigil_plugin_localize::model::{Engine, InputSize, YoloxModel};
use vigil_stage_testkit::fuzz::{Fuzz, FuzzFile, Sample, TrackingAllocator};
use vigil_stage_testkit::shared_data;

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

#[test]
fn a_corrupt_detector_model_is_an_error_not_a_panic() {
    let Some(model) = shared_data("models/yolox_nano.onnx") else { return };
    let samples = [Sample::new("yolox_nano.onnx", std::fs::read(model).unwrap())];
    let file = FuzzFile::new("model.onnx");
    Fuzz::new("detector ONNX")
        .cases(150)
        .run(&samples, |bytes| YoloxModel::load(file.write(bytes), InputSize::Fit, Engine::Tract, None).map(drop));
}

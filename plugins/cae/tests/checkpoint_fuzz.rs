//! A saved model read back after corruption (vigil_stage_testkit::fuzz):
//! each of a checkpoint's files (state.json, the safetensors weights, burn's
//! optimizer record) mutated in turn, then loaded. A bad file must be an
//! error naming it: no panic, no allocation sized by a corrupt field.
//! (Each save draws a fresh save id, so the samples, and with them the
//! mutants, differ between runs; a failing input is saved for replay.)

use serde_json::json;
use vigil_plugin_cae::Cae;
use vigil_stage_api::{names, Batch, FrameId, ReconstructorBox, Tensor};
use vigil_stage_testkit::fuzz::{fuzz, FuzzFile, Sample, TrackingAllocator};
use vigil_stage_testkit::{create, into_reconstructor};

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

const CUBE: [usize; 3] = [15, 32, 32];

fn stage() -> ReconstructorBox {
    into_reconstructor(create::<Cae>(json!({"features_root": 4, "batch_size": 8})).expect("valid options"))
}

/// The files of a checkpoint after one step of a tiny model.
fn saved_files() -> Vec<(String, Vec<u8>)> {
    let count = 8;
    let cubes: Vec<u8> = (0..count * CUBE.iter().product::<usize>()).map(|i| (i * 7919 % 251) as u8).collect();
    let ids = (0..count as u32).map(|frame| FrameId { video: 0, frame }).collect();
    let batch = Batch::new(ids)
        .with(names::APPEARANCE, Tensor::from_vec(cubes, &[count, CUBE[0], CUBE[1], CUBE[2]]))
        .with(names::BAND, Tensor::from_vec(vec![0u32; count], &[count]));
    let mut model = stage();
    model.fit_begin(batch).unwrap();
    let all: Vec<u32> = (0..count as u32).collect();
    model.step(all.as_slice().into(), vec![1.0f32; count].as_slice().into()).unwrap();
    model.statistics().unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path().to_str().unwrap().into()).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_corrupt_checkpoint_is_refused_not_panicked() {
    let files = saved_files();
    assert_eq!(files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["optimizer-band0.bpk", "state.json", "weights.safetensors"]);
    for (name, bytes) in &files {
        let checkpoint = FuzzFile::new(name);
        for (other, other_bytes) in files.iter().filter(|(other, _)| other != name) {
            std::fs::write(checkpoint.dir().join(other), other_bytes).unwrap();
        }
        let target: &'static str = Box::leak(format!("cae checkpoint {name}").into_boxed_str());
        let dir = checkpoint.dir().to_str().unwrap().to_string();
        fuzz(target, &[Sample::new(name.clone(), bytes.clone())], |mutant| {
            checkpoint.write(mutant);
            stage().load(dir.as_str().into()).into_result().map(|_| ())
        });
    }
}

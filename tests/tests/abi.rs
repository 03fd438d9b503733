//! What crosses the plugin boundary: tensors move without copies, a
//! panicking plugin becomes an error naming plugin and stage, and a plugin
//! says which stage-api it was built against.

use vigil_runtime::registry::load_library;
use vigil_runtime::stage::Stage;
use vigil_stage_api::{complete_options, names, Batch, FrameId, StageContext, StageObject, Tensor};
use vigil_tests::*;

fn probe(panic: bool) -> vigil_stage_api::FlowBox {
    let library = load_library(&dylib(&fixture_plugins(), "vigil-probe")).unwrap_or_else(|e| panic!("{e}"));
    let info = library.stages.iter().find(|s| s.name.as_str() == "probe").unwrap();
    let mut given = serde_json::Map::new();
    given.insert("panic".into(), panic.into());
    let options = complete_options(&info.options, &given).unwrap();
    let context = StageContext { stage_id: "p".into(), seed: 0, device: "cpu".into(), work_dir: "/tmp".into() };
    let instance = Stage::call("probe", (library.module.create)("probe".into(), options.to_json().as_str().into(), context)).unwrap();
    match instance.stage {
        StageObject::Flow(flow) => flow,
        _ => panic!("probe is a flow stage"),
    }
}

#[test]
fn a_batch_round_trips_through_a_plugin_without_a_copy() {
    let mut flow = probe(false);
    let frames = vec![7u8; 3 * 4 * 5 * 3];
    let pointer = frames.as_ptr() as usize;
    let ids = (0..3).map(|frame| FrameId { video: 0, frame }).collect();
    let batch = Batch::new(ids).with(names::FRAMES, Tensor::from_vec(frames, &[3, 4, 5, 3]));
    let back = Stage::call("probe", flow.process(batch)).unwrap();
    let frames = back.get(names::FRAMES).unwrap();
    assert_eq!(frames.data_ptr() as usize, pointer, "the frames were copied");
    assert_eq!(frames.as_slice::<u8>().unwrap()[17], 7);
    assert_eq!(back.get(names::FLOW).unwrap().shape(), vec![2, 4, 5, 2]);
    assert_eq!(back.ids.len(), 3);
    // Dropping the returned batch frees the memory through the host's deleter.
    drop(back);
}

#[test]
fn a_panicking_plugin_becomes_an_error_naming_plugin_and_stage() {
    let mut flow = probe(true);
    let batch = Batch::new(vec![]).with(names::FRAMES, Tensor::from_vec(vec![0u8; 3], &[1, 1, 1, 3]));
    let error = Stage::call("stage `p` (plugin `probe`)", flow.process(batch)).unwrap_err().to_string();
    assert_eq!(error, "stage `p` (plugin `probe`): panicked: probe was asked to panic");
}

#[test]
fn a_plugin_built_against_this_stage_api_describes_itself() {
    let library = load_library(&dylib(&fixture_plugins(), "vigil-probe")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(library.api_version, vigil_stage_api::API_VERSION);
    assert_eq!(library.description.as_deref(), Some("Test probe plugin: a flow stage that hands its batch back"));
}

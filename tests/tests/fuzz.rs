//! Pipeline files as outside bytes (vigil_stage_testkit::fuzz): every
//! pipeline this repository ships, mutated, read and checked against the
//! real plugins, and the report rendered with its source lines. A bad file
//! must give a report, never a panic or an allocation sized by an option.

use std::path::PathBuf;
use vigil_runtime::check::check;
use vigil_runtime::diagnostic::Setting;
use vigil_runtime::pipeline::Pipeline;
use vigil_runtime::registry::{Registry, SearchPath};
use vigil_stage_testkit::built_plugin;
use vigil_stage_testkit::fuzz::{fuzz, FuzzFile, Sample, TrackingAllocator};

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// The folder of the built plugins, as `vigil` finds them beside itself.
fn plugins() -> Registry {
    let folder = built_plugin("vigil-plugin-cae").parent().expect("a folder").to_path_buf();
    Registry::discover(SearchPath { entries: vec![folder] })
}

#[test]
fn mutated_pipelines_are_reported_not_panicked() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let folders = ["pipelines", "tests/fixtures/pipelines", "tests/fixtures/pipelines/invalid"];
    let mut samples: Vec<Sample> = folders
        .iter()
        .flat_map(|folder| std::fs::read_dir(root.join(folder)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| Sample::new(p.file_name().unwrap().to_string_lossy(), std::fs::read(&p).unwrap()))
        .collect();
    samples.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(samples.len() >= 9, "the repository's pipelines");
    let registry = plugins();
    assert!(
        registry.failures.is_empty() && registry.find("cae").is_some() && registry.find("detector").is_some(),
        "the built plugins load"
    );
    let file = FuzzFile::new("pipelines/mutant.toml");
    let work = tempfile::tempdir().unwrap();
    fuzz("pipeline TOML", &samples, |bytes| {
        let source = String::from_utf8_lossy(bytes).into_owned();
        let path = file.write(bytes);
        let pipeline = Pipeline::read(path, source, &[Setting::cli("pipeline.seed=3")]).map_err(|report| report.to_string())?;
        check(pipeline, &registry, work.path()).map(drop).map_err(|report| report.to_string())
    });
}

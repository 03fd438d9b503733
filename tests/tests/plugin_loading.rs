//! Loading plugin libraries: good ones list their stages; broken ones fail
//! with a short error that names the library and what was wrong.

use vigil_tests::*;

#[test]
fn stock_plugins_are_found_next_to_the_binary() {
    let out = vigil(&["plugins", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    for stage in ["frames", "video", "flow", "motion", "detector", "cae", "spr", "zscore"] {
        assert!(listing.contains(&format!("\"name\": \"{stage}\"")), "stage {stage} missing from:\n{listing}");
    }
}

#[test]
fn a_third_party_plugin_is_listed_and_inspectable() {
    let lib = third_party_plugin();
    let lib = lib.to_str().unwrap();
    let out = vigil(&["plugins", "--plugin-path", lib]);
    assert!(text(&out.stdout).contains("framediff"), "{}", text(&out.stdout));
    let out = vigil(&["plugins", "framediff", "--plugin-path", lib]);
    let shown = text(&out.stdout);
    assert!(out.status.success());
    assert!(shown.contains("threshold") && shown.contains("default 20"), "{shown}");
    assert!(shown.contains("boxes f32[rank 2]"), "{shown}");
}

fn load_error(library: &std::path::Path) -> String {
    let out = vigil(&["plugins", "--plugin-path", library.to_str().unwrap()]);
    assert!(out.status.success(), "listing must still work with a broken library");
    let stderr = text(&out.stderr);
    let start = stderr.find("warning: cannot load plugin library").unwrap_or_else(|| panic!("no load error in:\n{stderr}"));
    let error: String = stderr[start..].lines().take_while(|l| !l.is_empty()).collect::<Vec<_>>().join("\n");
    assert!(error.lines().count() <= 10, "error longer than 10 lines:\n{error}");
    assert!(error.contains(&library.display().to_string()), "error does not name the path:\n{error}");
    error
}

#[test]
fn a_plugin_built_against_another_stage_api_is_refused_with_both_versions() {
    let error = load_error(&dylib(&fixture_plugins(), "vigil-old-api"));
    assert!(error.contains("built against stage-api 0.0.7"), "{error}");
    assert!(error.contains(&format!("this vigil has stage-api {}", vigil_stage_api::API_VERSION)), "{error}");
    let range = vigil_stage_api::version::ApiVersion::current().loads_range();
    assert!(error.contains(&format!("loads plugins built against {range}")), "{error}");
}

#[test]
fn a_stage_shows_its_library_and_the_stage_api_it_was_built_against() {
    let probe = dylib(&fixture_plugins(), "vigil-probe");
    let out = vigil(&["plugins", "probe", "--plugin-path", probe.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("Library:  vigil-probe 0.1.0"), "{shown}");
    assert!(shown.contains(&format!("built against stage-api {}", vigil_stage_api::API_VERSION)), "{shown}");
    let out = vigil(&["plugins", "cae", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["stage_api"], vigil_stage_api::API_VERSION);
    assert!(json["library_description"].as_str().is_some_and(|d| d.contains("autoencoder")), "{json}");
    // Where each tensor lives (stage-api 2.0): the stock stages keep theirs in host memory.
    assert_eq!(json["inputs"][0]["devices"], serde_json::json!(["cpu"]), "{json}");
}

#[test]
fn a_library_that_is_not_a_plugin_is_refused() {
    let error = load_error(&dylib(&fixture_plugins(), "vigil-not-a-plugin"));
    assert!(error.contains("not a Vigil plugin"), "{error}");
}

#[test]
fn a_missing_library_file_is_refused() {
    let error = load_error(std::path::Path::new("/nonexistent/libvigil_gone.so"));
    assert!(error.contains("does not exist"), "{error}");
}

#[test]
fn a_pipeline_needing_a_broken_plugin_says_why_it_is_missing() {
    let dir = vigil_stage_testkit::context("broken-pipeline").work_dir.to_string();
    let file = std::path::Path::new(&dir).join("p.toml");
    let old = dylib(&fixture_plugins(), "vigil-old-api");
    std::fs::write(
        &file,
        format!("[data]\ntest = \"v\"\n[plugins]\npaths = [{:?}]\n[[stage]]\nid = \"d\"\nplugin = \"old\"\n", old.display().to_string()),
    )
    .unwrap();
    let out = vigil(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("p.toml:7:10: error: stage `d`: no plugin provides a stage named `old`"), "{stderr}");
    assert!(stderr.contains("libvigil_old_api.so failed to load: built against stage-api 0.0.7"), "{stderr}");
}

#[test]
fn a_stage_exported_by_two_libraries_is_warned_about_naming_both() {
    // A copy of the stock `spr` library under another path exports the same stage.
    let dir = std::path::PathBuf::from(vigil_stage_testkit::context("duplicate-stage").work_dir.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let stock = dylib(&profile_dir(), "vigil-plugin-spr");
    let copy = dir.join(stock.file_name().unwrap());
    std::fs::copy(&stock, &copy).unwrap();
    let file = repo_root().join("tests/fixtures/pipelines/valid.toml");
    let out = vigil(&["check", file.to_str().unwrap(), "--set", &format!("plugins.paths=[{:?}]", copy.display().to_string())]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("stage `spr` is exported by {} and also by {}; using the first", stock.display(), copy.display())),
        "{stderr}"
    );
}

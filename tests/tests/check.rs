//! `vigil check` on fixture pipelines: the valid one passes; each invalid
//! one fails with exit code 1 and an error at the line and column of the
//! field it breaks, using the user's own stage ids.

use vigil_tests::*;

fn fixture(name: &str) -> String {
    repo_root().join("tests/fixtures/pipelines").join(name).display().to_string()
}

/// Runs `vigil check` on an invalid fixture and returns its stderr.
fn check_fails(name: &str, sets: &[&str]) -> String {
    let file = fixture(&format!("invalid/{name}"));
    let mut args = vec!["check", file.as_str()];
    for set in sets {
        args.extend(["--set", set]);
    }
    let out = vigil(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{name} should be invalid; stderr:\n{stderr}");
    stderr
}

fn assert_error(stderr: &str, file: &str, line_col: &str, needle: &str) {
    let prefix = format!("{}:{line_col}: error: ", fixture(&format!("invalid/{file}")));
    let found = stderr.lines().any(|l| l.starts_with(&prefix) && l.contains(needle));
    assert!(found, "expected an error at {line_col} containing `{needle}`, got:\n{stderr}");
}

#[test]
fn the_valid_pipeline_passes() {
    let file = fixture("valid.toml");
    let out = vigil(&["check", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ok: 6 stages, run in this order: decode (frames) -> flow (flow) -> boxes (motion) -> appearance (cae, guides spr) -> spr (spr) -> score (zscore)"),
        "{stdout}"
    );
}

/// Every pipeline shipped in `pipelines/` passes `vigil check`: its options
/// exist, have their types and pass their plugins' checks (what changing a
/// plugin's options could break). A pipeline with a detector needs the
/// YOLOX model of the shared data; without it only the others are checked.
#[test]
fn every_shipped_pipeline_passes_the_check() {
    let model = vigil_stage_testkit::optional_shared_data("models/yolox_nano.onnx");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(repo_root().join("pipelines"))
        .expect("pipelines/")
        .map(|entry| entry.expect("a pipelines/ entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let mut checked = Vec::new();
    for file in &files {
        let text_of_file = std::fs::read_to_string(file).expect("a pipeline file");
        let mut args = vec!["check".to_string(), file.display().to_string()];
        if text_of_file.contains("plugin = \"detector\"") {
            let Some(model) = &model else { continue };
            args.extend(["--set".to_string(), format!("stage.boxes.options.model={}", model.display())]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = vigil(&refs);
        assert!(out.status.success(), "{}:\n{}", file.display(), text(&out.stderr));
        checked.push(file.file_name().expect("a file name").to_string_lossy().into_owned());
    }
    assert!(checked.iter().any(|f| f == "demo.toml"), "{checked:?}");
    if model.is_some() {
        assert_eq!(checked.len(), files.len());
    }
}

#[test]
fn the_order_printed_is_the_runtimes_not_the_files() {
    // The same stages listed scorer first and with the motion model before
    // the appearance one: the runtime orders by kind, and the first
    // reconstructor in the file guides the refiner.
    let valid = std::fs::read_to_string(fixture("valid.toml")).unwrap();
    let (head, stages) = valid.split_at(valid.find("[[stage]]").unwrap());
    let mut tables: Vec<String> = stages.split("[[stage]]").filter(|t| !t.trim().is_empty()).map(|t| format!("[[stage]]{t}")).collect();
    tables.reverse();
    tables.insert(2, "[[stage]]\nid = \"motion\"\nplugin = \"cae\"\noptions = { epochs = 2, target = \"flow\" }\n\n".to_string());
    let dir = std::path::PathBuf::from(vigil_stage_testkit::context("check-order").work_dir.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("reordered.toml");
    std::fs::write(&file, format!("{head}{}", tables.concat())).unwrap();
    let out = vigil(&["check", &file.display().to_string()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("ok: 7 stages, run in this order: decode (frames) -> flow (flow) -> boxes (motion) -> motion (cae, guides spr) -> appearance (cae) -> spr (spr) -> score (zscore)"),
        "{stdout}"
    );
}

#[test]
fn an_unknown_key_is_named() {
    let e = check_fails("unknown-key.toml", &[]);
    assert_error(&e, "unknown-key.toml", "3:1", "unknown key `tset` in `data`");
}

#[test]
fn an_unknown_plugin_is_named_with_what_exists() {
    let e = check_fails("unknown-plugin.toml", &[]);
    assert_error(&e, "unknown-plugin.toml", "6:10", "stage `decode`: no plugin provides a stage named `framez` (available: ");
}

#[test]
fn an_option_of_the_wrong_type_is_named() {
    let e = check_fails("option-type.toml", &[]);
    assert_error(&e, "option-type.toml", "19:13", "stage `appearance` (cae): option `epochs`: expected int, found string \"thirty\"");
}

#[test]
fn an_unknown_option_is_named_with_the_known_ones() {
    let e = check_fails("unknown-option.toml", &[]);
    assert_error(&e, "unknown-option.toml", "19:13", "unknown option `epoch` (expected one of: ");
}

#[test]
fn a_missing_required_option_is_named() {
    let e = check_fails("missing-model.toml", &[]);
    assert_error(&e, "missing-model.toml", "9:6", "stage `boxes` (detector): missing required option `model`");
}

#[test]
fn a_missing_input_tensor_names_the_stage_and_tensor() {
    let e = check_fails("missing-flow.toml", &[]);
    assert_error(&e, "missing-flow.toml", "11:10", "stage `boxes` (motion) needs input `flow`");
}

#[test]
fn a_pipeline_without_a_decoder_is_refused() {
    let e = check_fails("no-decoder.toml", &[]);
    let expected = format!("{}: error: the pipeline needs a decoder stage", fixture("invalid/no-decoder.toml"));
    assert!(e.contains(&expected), "{e}");
}

#[test]
fn a_syntax_error_points_at_the_text() {
    let e = check_fails("syntax.toml", &[]);
    assert_error(&e, "syntax.toml", "2:15", "invalid TOML: invalid basic string");
}

#[test]
fn a_duplicate_stage_id_is_named() {
    let e = check_fails("duplicate-id.toml", &[]);
    assert_error(&e, "duplicate-id.toml", "9:6", "duplicate stage id `decode`");
}

#[test]
fn overrides_can_fix_or_break_a_pipeline() {
    let valid = fixture("valid.toml");
    let out = vigil(&["check", &valid, "--set", "stage.appearance.options.epochs=many"]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("error: --set stage.appearance.options.epochs=many: stage `appearance` (cae): option `epochs`: expected int"),
        "{e}"
    );
    // Problems in the file's structure and in stages come out together.
    let out = vigil(&["check", &valid, "--set", "data.tset=x", "--set", "stage.boxes.options.min_aera=3"]);
    let e = text(&out.stderr);
    assert!(e.contains("--set data.tset=x: unknown key `tset` in `data`"), "{e}");
    assert!(e.contains("--set stage.boxes.options.min_aera=3: stage `boxes` (motion): unknown option `min_aera`"), "{e}");
    let out = vigil(&["check", &valid, "--set", "stage.nothing.options.x=1"]);
    assert!(text(&out.stderr).contains("`stage` has no element with id or index `nothing`"), "{}", text(&out.stderr));
    // Fixing the unknown plugin from the command line makes the file pass that check.
    let broken = fixture("invalid/unknown-plugin.toml");
    let out = vigil(&["check", &broken, "--set", "stage.decode.plugin=frames"]);
    assert!(!text(&out.stderr).contains("framez"), "{}", text(&out.stderr));
}

/// Issue 15: `nan` and `inf` (valid TOML floats) were reported as "expected float, found nothing".
#[test]
fn a_non_finite_float_option_is_named() {
    let valid = fixture("valid.toml");
    for (value, shown) in [("nan", "NaN"), ("inf", "inf"), ("-inf", "-inf")] {
        let set = format!("stage.appearance.options.lr={value}");
        let out = vigil(&["check", &valid, "--set", &set]);
        assert_eq!(out.status.code(), Some(1));
        let e = text(&out.stderr);
        let expected = format!("error: --set {set}: stage `appearance` (cae): option `lr`: expected a finite number, found {shown}");
        assert!(e.contains(&expected), "{e}");
    }
}

#[test]
fn sizes_no_machine_could_hold_fail_the_check_naming_each_option() {
    // Each of these used to pass `check` and abort the run on a failed allocation (exit 134).
    let file = fixture("valid.toml");
    let sets = ["cubes.size=1000000000000", "cubes.context=5000", "stage.appearance.options.features_root=100000"];
    let mut args = vec!["check", file.as_str()];
    for set in &sets {
        args.extend(["--set", set]);
    }
    let out = vigil(&args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: --set cubes.size=1000000000000: `cubes.size` must be at most 1024"), "{stderr}");
    assert!(stderr.contains("error: --set cubes.context=5000: `cubes.context` must be at most 50"), "{stderr}");
    if vigil_stage_api::memory::machine_memory().is_some() {
        assert!(stderr.contains("option `features_root` = 100000 (the weights alone) needs at least"), "{stderr}");
    }
}

/// A missing `data.extra` folder was reported at `data.test`'s line, with
/// the operating system's reason twice.
#[test]
fn an_unreadable_data_folder_is_named_at_its_own_setting() {
    let dir = std::path::PathBuf::from(vigil_stage_testkit::context("check-data").work_dir.to_string());
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    // The check lists frame files by name; it does not decode them.
    std::fs::write(frames.join("000.png"), b"").unwrap();
    let missing = dir.join("missing");
    let (test, extra) = (format!("data.test={}", frames.display()), format!("data.extra={}", missing.display()));
    let out = vigil(&["check", &fixture("valid.toml"), "--set", &test, "--set", &extra]);
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    let line = e.lines().find(|l| l.contains("error:")).unwrap_or_default();
    assert!(line.contains(&format!("error: --set {extra}: cannot read the data: {}: ", missing.display())), "{e}");
    assert_eq!(line.matches("(os error").count(), 1, "the reason once: {line}");
    assert!(!e.contains(&format!("--set {test}:")), "{e}");
}

/// A stage that puts its flow on a GPU, before a localizer that reads flow
/// on the CPU only (`motion`): `vigil check` refuses the pipeline, naming
/// both stages and the device, and says that the runtime itself reads the
/// flow in host memory. The same pipeline with the flow on the CPU passes.
#[test]
fn a_device_tensor_handed_to_a_stage_that_reads_it_on_the_cpu_only_is_refused() {
    let dir = std::path::PathBuf::from(vigil_stage_testkit::context("device-check").work_dir.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let probe = dylib(&fixture_plugins(), "vigil-probe");
    let valid = std::fs::read_to_string(fixture("valid.toml")).unwrap();
    let check_with_flow_on = |device: &str| {
        let stock_flow = "id = \"flow\"\nplugin = \"flow\"\n";
        assert!(valid.contains(stock_flow));
        let text = valid.replace(stock_flow, &format!("id = \"flow\"\nplugin = \"probe\"\noptions = {{ flow_device = \"{device}\" }}\n"));
        let file = dir.join(format!("flow-on-{device}.toml"));
        std::fs::write(&file, format!("{text}\n[plugins]\npaths = [{:?}]\n", probe.display().to_string())).unwrap();
        (file.display().to_string(), vigil(&["check", file.to_str().unwrap()]))
    };
    let (_, on_cpu) = check_with_flow_on("cpu");
    assert!(on_cpu.status.success(), "{}", text(&on_cpu.stderr));
    let (file, on_gpu) = check_with_flow_on("wgpu");
    let stderr = text(&on_gpu.stderr);
    assert_eq!(on_gpu.status.code(), Some(1), "{stderr}");
    let at_line = |line: usize, needle: &str| {
        let prefix = format!("{file}:{line}:");
        assert!(stderr.lines().any(|l| l.starts_with(&prefix) && l.contains(needle)), "expected `{needle}` at line {line}:\n{stderr}");
    };
    at_line(
        25,
        "stage `boxes` (motion) reads `flow` on cpu only, but stage `flow` puts it on wgpu: a device tensor would reach a stage that cannot read it",
    );
    at_line(20, "stage `flow` (probe) puts `flow` on wgpu, but `vigil run` reads it in host memory");
}

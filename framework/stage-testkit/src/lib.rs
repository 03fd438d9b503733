//! Run a Vigil stage in-process, without building or loading its library:
//! what plugin unit tests use. Options go through the same validation the
//! host applies, and outputs can be checked against the stage's declared
//! tensor contract.

use serde_json::Value;
use vigil_stage_api::{
    complete_options, names, Batch, DecoderBox, FlowBox, FrameId, LocalizerBox, ReconstructorBox, RefinerBox, ScorerBox, StageContext,
    StageFactory, StageInstance, StageIo, StageObject, Tensor,
};

pub mod fuzz;

/// A context like the host's, with a fresh temporary work folder.
pub fn context(stage_id: &str) -> StageContext {
    let dir = std::env::temp_dir().join(format!("vigil-testkit-{}-{stage_id}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create testkit work dir");
    StageContext { stage_id: stage_id.into(), seed: 0, device: "cpu".into(), work_dir: dir.display().to_string().into() }
}

/// Creates stage `F` from a JSON object of options, validated and completed
/// with defaults exactly as the host does.
pub fn create<F: StageFactory>(options: Value) -> Result<StageInstance, String> {
    let map = options.as_object().cloned().unwrap_or_default();
    let info = F::info();
    let opts =
        complete_options(&info.options, &map).map_err(|problems| problems.into_iter().map(|p| p.message).collect::<Vec<_>>().join("; "))?;
    F::create(&opts, &context(info.name.as_str())).map_err(|e| e.to_string())
}

macro_rules! accessor {
    ($fn:ident, $variant:ident, $ty:ty) => {
        /// The stage object, when the instance is of this kind.
        pub fn $fn(instance: StageInstance) -> $ty {
            match instance.stage {
                StageObject::$variant(s) => s,
                other => panic!("expected a {} stage, got a {}", stringify!($variant), other.kind()),
            }
        }
    };
}
accessor!(into_decoder, Decoder, DecoderBox);
accessor!(into_flow, Flow, FlowBox);
accessor!(into_localizer, Localizer, LocalizerBox);
accessor!(into_reconstructor, Reconstructor, ReconstructorBox);
accessor!(into_refiner, Refiner, RefinerBox);
accessor!(into_scorer, Scorer, ScorerBox);

/// A batch of RGB frames `frames` u8 [N, H, W, 3] from video 0.
pub fn frames_batch(frames: Vec<Vec<u8>>, height: usize, width: usize) -> Batch {
    let n = frames.len();
    let ids = (0..n as u32).map(|frame| FrameId { video: 0, frame }).collect();
    let data: Vec<u8> = frames.into_iter().flatten().collect();
    Batch::new(ids).with(names::FRAMES, Tensor::from_vec(data, &[n, height, width, 3]))
}

/// Checks that `batch` holds every output `io` declares, with its dtype,
/// rank and device; returns a description of each mismatch.
pub fn contract_violations(io: &StageIo, batch: &Batch) -> Vec<String> {
    io.outputs
        .iter()
        .filter_map(|spec| match batch.get(spec.name.as_str()) {
            None => Some(format!("output `{}` is missing", spec.name)),
            Some(t) if t.dtype() != spec.dtype || t.rank() != spec.rank as usize => Some(format!(
                "output `{}`: declared {} rank {}, produced {} rank {}",
                spec.name,
                spec.dtype,
                spec.rank,
                t.dtype(),
                t.rank()
            )),
            Some(t) if !spec.devices.contains(&t.device().kind) => {
                Some(format!("output `{}`: declared on {}, produced on {}", spec.name, spec.devices_text(), t.device()))
            }
            Some(_) => None,
        })
        .collect()
}

/// Panics with every contract violation, for use in tests.
pub fn assert_contract(io: &StageIo, batch: &Batch) {
    let problems = contract_violations(io, batch);
    assert!(problems.is_empty(), "stage broke its declared contract: {}", problems.join("; "));
}

/// The shared real-data folder (`../shared/data` beside the checkout, or
/// `$VIGIL_DATA`), or `None` with the reason printed, so a test can skip
/// loudly: `let Some(data) = shared_data("ped2/testing") else { return };`
///
/// The reason goes straight to the process's stderr, past the test
/// harness's capture, so a skipped test shows in the output of a passing
/// run (as `SKIPPED: <test>: ...`; scripts/test.sh counts them) instead of
/// passing silently.
pub fn shared_data(needed: &str) -> Option<std::path::PathBuf> {
    let path = data_root().join(needed);
    if path.exists() {
        Some(path)
    } else {
        skip(&format!("real data {} is not present (set VIGIL_DATA to the shared data folder)", path.display()));
        None
    }
}

/// Like [`shared_data`], for a test that runs either way and only adds the
/// real file when it is there (a fuzz target's extra sample): when absent it
/// says so as `NOTE: <test>: ...` on stderr, not as a skipped test.
pub fn optional_shared_data(needed: &str) -> Option<std::path::PathBuf> {
    let path = data_root().join(needed);
    if path.exists() {
        return Some(path);
    }
    note(&format!("real data {} is not present; it runs without it", path.display()));
    None
}

/// Says something a passing test wants seen (what it ran on, what it left
/// out) as `NOTE: <test>: <what>` on the process's stderr, past the
/// harness's capture.
pub fn note(what: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("NOTE: {test}: {what}\n").as_bytes());
}

fn data_root() -> std::path::PathBuf {
    std::env::var_os("VIGIL_DATA").map(std::path::PathBuf::from).unwrap_or_else(default_data_root)
}

/// `../shared/data` beside the workspace of the package under test. Cargo
/// gives a test process its package's folder at run time; the folder
/// compiled in is only the fallback, since a test binary built in another
/// checkout that shares the target folder may run unrebuilt from this one.
fn default_data_root() -> std::path::PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let workspace = package.ancestors().find(|dir| dir.join("Cargo.lock").is_file()).unwrap_or(&package);
    workspace.join("../shared/data")
}

/// Says that the calling test skips its checks and why, as
/// `SKIPPED: <test>: <reason>` on the process's stderr (past the harness's
/// capture, so it shows in a passing run).
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let line = format!("SKIPPED: {test}: {reason}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// Runs `f` with a `tracing` subscriber that records warnings and errors
/// as text, for tests that check what a stage warns about.
pub fn capture_warnings<R>(f: impl FnOnce() -> R) -> (R, String) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber =
        tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).with_max_level(tracing::Level::WARN).finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&sink.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    (result, text)
}

/// Decodes every source with a fresh stage `F` in batches of `batch`,
/// `runs` times; returns the frame count and the best wall time in seconds.
/// What the decode benchmark examples of the decoder plugins measure.
pub fn time_decoder<F: StageFactory>(sources: &[std::path::PathBuf], batch: u32, runs: usize) -> Result<(u64, f64), String> {
    let mut best = f64::INFINITY;
    let mut frames = 0;
    for _ in 0..runs.max(1) {
        let mut decoder = into_decoder(create::<F>(serde_json::json!({}))?);
        let start = std::time::Instant::now();
        frames = 0;
        for (i, source) in sources.iter().enumerate() {
            let path = source.to_str().ok_or_else(|| format!("{} is not UTF-8", source.display()))?;
            decoder.open(path.into(), i as u32).into_result().map_err(|e| format!("{path}: {e}"))?;
            while let Some(batch) = decoder.next_batch(batch).into_result().map_err(|e| format!("{path}: {e}"))?.into_option() {
                frames += batch.ids.len() as u64;
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok((frames, best))
}

/// "N cores (nproc), CPU model" of this machine, for benchmark reports.
pub fn machine_description() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())))
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores (nproc), {model}")
}

/// Runs a Python snippet with `$VIGIL_BENCH_PYTHON` (else `python3`) and
/// returns its stdout, or why it could not (e.g. no cv2), for benchmarks
/// that compare against the established tools in the same run.
pub fn run_python(script: &str, args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let python = std::env::var("VIGIL_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let output =
        std::process::Command::new(&python).arg("-c").arg(script).args(args).output().map_err(|e| format!("cannot run {python}: {e}"))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{python} failed: {}", err.lines().last().unwrap_or("")));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The dynamic library of a workspace plugin as `cargo build` leaves it
/// next to the test binary's profile folder (`target/<profile>/lib<name>.so`).
/// Two plugin rlibs cannot be linked into one test binary (each exports the
/// same root-module symbol), so tests that need a second plugin load it
/// like the host does.
pub fn built_plugin(crate_name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe.parent().and_then(std::path::Path::parent).expect("target/<profile>/deps");
    let file = format!("{}{}{}", std::env::consts::DLL_PREFIX, crate_name.replace('-', "_"), std::env::consts::DLL_SUFFIX);
    let path = profile.join(file);
    assert!(path.exists(), "{} is missing: run `cargo build --release --workspace` first", path.display());
    path
}

/// Creates stage `stage` from a plugin library file, with options completed
/// and validated as the host does.
pub fn create_from_library(library: &std::path::Path, stage: &str, options: Value) -> Result<StageInstance, String> {
    let module = vigil_stage_api::open::open_plugin(library).map_err(|e| format!("loading {}: {e}", library.display()))?;
    let infos = (module.stages)().into_result().map_err(|e| e.to_string())?;
    let info = infos.iter().find(|i| i.name.as_str() == stage).ok_or_else(|| format!("no stage `{stage}`"))?;
    let map = options.as_object().cloned().unwrap_or_default();
    let opts =
        complete_options(&info.options, &map).map_err(|problems| problems.into_iter().map(|p| p.message).collect::<Vec<_>>().join("; "))?;
    (module.create)(stage.into(), opts.to_json().as_str().into(), context(stage)).into_result().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_stage_api::{DType, Device, DeviceContext, DeviceKind, TensorSpec};

    #[test]
    fn an_output_on_another_device_than_declared_breaks_the_contract() {
        static BUFFERS: DeviceContext<u32> = DeviceContext::new();
        let io = StageIo::new(vec![], vec![TensorSpec::new("flow", DType::F32, 1, "")]);
        let on_gpu = Batch::new(vec![]).with("flow", Tensor::from_device_buffer(0u32, &BUFFERS, Device::wgpu(0), DType::F32, &[3]));
        assert_eq!(contract_violations(&io, &on_gpu), ["output `flow`: declared on cpu, produced on wgpu adapter 0"]);
        let io = StageIo::new(vec![], vec![TensorSpec::new("flow", DType::F32, 1, "").on(&[DeviceKind::Wgpu])]);
        assert!(contract_violations(&io, &on_gpu).is_empty());
        let on_cpu = Batch::new(vec![]).with("flow", Tensor::from_vec(vec![0f32; 3], &[3]));
        assert_eq!(contract_violations(&io, &on_cpu), ["output `flow`: declared on wgpu, produced on the CPU"]);
    }
}

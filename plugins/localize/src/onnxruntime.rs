//! The `detector`'s optional engine: ONNX Runtime's shared library, loaded
//! at run time from the path the user names (`onnxruntime_library`, else
//! `ORT_DYLIB_PATH`). Nothing is downloaded or linked at build time, and a
//! pipeline that does not ask for it never touches it. `pip install
//! onnxruntime` is one way to get the library (it ships
//! `onnxruntime/capi/libonnxruntime.so.1.*`).
//!
//! ONNX Runtime holds its API and environment once per process, so the
//! first library loaded serves every stage; a second stage naming another
//! file is refused rather than silently given the first. A session runs one
//! call at a time, so there is one per worker thread of [`crate::rows`],
//! each on one intra-op thread: frames go to cores, as with tract.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::logging::LogLevel;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use prost::Message;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as Dim;
use tract_onnx::pb::{type_proto, ModelProto};

/// The environment variable naming the library when the option is empty
/// (the name the `ort` crate and other tools read).
pub const LIBRARY_VARIABLE: &str = "ORT_DYLIB_PATH";

/// The library this process loaded and the environment built on it.
static RUNTIME: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The library named by the option, else by [`LIBRARY_VARIABLE`].
pub fn library_path(option: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = option {
        return Ok(path.to_path_buf());
    }
    match std::env::var_os(LIBRARY_VARIABLE) {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(format!(
            "engine = \"onnxruntime\" needs ONNX Runtime's shared library (1.17 or newer): set option \
             `onnxruntime_library` or {LIBRARY_VARIABLE} to its path (`pip install onnxruntime` puts one in \
             site-packages/onnxruntime/capi/)"
        )),
    }
}

/// The process's ONNX Runtime environment, loading `library` on first use.
fn environment(library: &Path) -> Result<Environment, String> {
    let shown = library.display();
    if !library.is_file() {
        return Err(format!("ONNX Runtime library {shown}: no such file"));
    }
    let wanted = library.canonicalize().map_err(|e| format!("ONNX Runtime library {shown}: {e}"))?;
    let mut runtime = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((loaded, environment)) = runtime.as_ref() {
        return if *loaded == wanted {
            Ok(environment.clone())
        } else {
            Err(format!(
                "ONNX Runtime library {shown}: this process already loaded {} (one library per process); \
                 name the same file in every detector stage",
                loaded.display()
            ))
        };
    }
    let environment = ort::init_from(&wanted)
        .map_err(|e| format!("ONNX Runtime library {shown}: {e}"))?
        .with_name("vigil")
        .with_telemetry(false)
        .build()
        .map_err(|e| format!("ONNX Runtime library {shown}: {e}"))?;
    // Its info lines (every arena extension) would bury the run's own.
    environment.set_log_level(LogLevel::Warning);
    *runtime = Some((wanted, environment.clone()));
    Ok(environment)
}

/// One ONNX Runtime session per worker thread, all of the same network.
pub struct OrtSessions {
    sessions: Vec<Mutex<Session>>,
}

impl OrtSessions {
    /// `count` sessions of the ONNX model `bytes`, from `library`.
    pub fn new(library: &Path, bytes: &[u8], count: usize) -> Result<OrtSessions, String> {
        let environment = environment(library)?;
        let cannot_load = |e: &dyn std::fmt::Display| format!("ONNX Runtime cannot load the model: {e}");
        let session = || -> Result<Session, String> {
            Session::builder(&environment)
                .map_err(|e| cannot_load(&e))?
                .with_optimization_level(GraphOptimizationLevel::All)
                .map_err(|e| cannot_load(&e))?
                .with_intra_threads(1)
                .map_err(|e| cannot_load(&e))?
                .commit_from_memory(bytes)
                .map_err(|e| cannot_load(&e))
        };
        let sessions = (0..count.max(1)).map(|_| session().map(Mutex::new)).collect::<Result<_, _>>()?;
        Ok(OrtSessions { sessions })
    }

    /// Runs one letterboxed frame, planar BGR [3, `height`, `width`], on a
    /// free session; returns output 0's rows.
    pub fn run(&self, width: usize, height: usize, input: &[f32]) -> Result<Vec<f32>, String> {
        let mut session = self
            .sessions
            .iter()
            .find_map(|s| s.try_lock().ok())
            .unwrap_or_else(|| self.sessions[0].lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let tensor = TensorRef::from_array_view(([1usize, 3, height, width], input)).map_err(|e| e.to_string())?;
        let outputs = session.run(ort::inputs![tensor]).map_err(|e| format!("ONNX Runtime: {e}"))?;
        let (_, rows) = outputs[0].try_extract_tensor::<f32>().map_err(|e| format!("ONNX Runtime output 0: {e}"))?;
        Ok(rows.to_vec())
    }
}

/// The model with its declared input height and width, and its outputs'
/// shapes, left free, and the intermediate shapes it records dropped (they
/// hold only at the declared size): ONNX Runtime enforces declared sizes,
/// and `input_size = "fit"` runs others.
pub fn with_free_input_size(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut model = ModelProto::decode(bytes).map_err(|e| format!("not an ONNX model: {e}"))?;
    let graph = model.graph.as_mut().ok_or("not an ONNX model: no graph")?;
    graph.value_info.clear();
    let free = |value: &mut tract_onnx::pb::ValueInfoProto, from: usize| {
        let name = value.name.clone();
        if let Some(type_proto::Value::TensorType(tensor)) = value.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            for (axis, dim) in tensor.shape.iter_mut().flat_map(|s| s.dim.iter_mut()).enumerate().skip(from) {
                dim.value = Some(Dim::DimParam(format!("{name}_{axis}")));
            }
        }
    };
    // Input axes 2 and 3 (height, width); every output axis.
    graph.input.iter_mut().take(1).for_each(|input| free(input, 2));
    graph.output.iter_mut().for_each(|output| free(output, 0));
    Ok(model.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::tensor_shape_proto::Dimension;
    use tract_onnx::pb::{GraphProto, TensorShapeProto, TypeProto, ValueInfoProto};

    fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
        let dim = dims.iter().map(|&d| Dimension { value: Some(Dim::DimValue(d)), ..Default::default() }).collect();
        let tensor = type_proto::Tensor { elem_type: 1, shape: Some(TensorShapeProto { dim }) };
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }),
            ..Default::default()
        }
    }

    fn dims(value: &ValueInfoProto) -> Vec<String> {
        let Some(type_proto::Value::TensorType(tensor)) = value.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            panic!("not a tensor")
        };
        tensor.shape.as_ref().unwrap().dim.iter().map(|d| format!("{:?}", d.value.as_ref().unwrap())).collect()
    }

    #[test]
    fn the_input_size_and_output_shapes_are_freed_and_recorded_shapes_dropped() {
        let graph = GraphProto {
            input: vec![value("images", &[1, 3, 416, 416])],
            output: vec![value("output", &[1, 3549, 85])],
            value_info: vec![value("inner", &[1, 16, 208, 208])],
            ..Default::default()
        };
        let bytes = ModelProto { graph: Some(graph), ..Default::default() }.encode_to_vec();
        let freed = ModelProto::decode(&with_free_input_size(&bytes).unwrap()[..]).unwrap();
        let graph = freed.graph.unwrap();
        assert!(graph.value_info.is_empty());
        assert_eq!(dims(&graph.input[0]), ["DimValue(1)", "DimValue(3)", "DimParam(\"images_2\")", "DimParam(\"images_3\")"]);
        assert_eq!(dims(&graph.output[0]), ["DimParam(\"output_0\")", "DimParam(\"output_1\")", "DimParam(\"output_2\")"]);
        assert!(with_free_input_size(b"\xff\xff not protobuf").is_err());
    }

    #[test]
    fn the_library_is_the_option_else_the_variable_else_an_error_saying_how_to_get_one() {
        assert_eq!(library_path(Some(Path::new("/opt/ort/libonnxruntime.so"))).unwrap(), Path::new("/opt/ort/libonnxruntime.so"));
        if std::env::var_os(LIBRARY_VARIABLE).is_none() {
            let err = library_path(None).unwrap_err();
            assert!(
                err.contains("onnxruntime_library") && err.contains(LIBRARY_VARIABLE) && err.contains("pip install onnxruntime"),
                "{err}"
            );
        }
        let err = environment(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
        assert!(err.contains("/nonexistent/libonnxruntime.so: no such file"), "{err}");
    }
}

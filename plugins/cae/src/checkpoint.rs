//! Checkpoints: weights (with BatchNorm running statistics) of every band
//! as one safetensors file, Adam state per band (burn's record format), and
//! `state.json` (shape, step counts, training-error statistics). Every file
//! is written to a temporary name and renamed; `state.json` goes last and
//! names the save's id, which the weights file repeats, so a checkpoint cut
//! short by a crash is reported instead of half-loaded.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use vigil_stage_api::{ResultExt, StageError};

pub const STATE_FILE: &str = "state.json";
pub const WEIGHTS_FILE: &str = "weights.safetensors";
const FORMAT: &str = "vigil-cae/1";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SavedStats {
    pub count: u64,
    #[serde(with = "exact_f64")]
    pub mean: f64,
    #[serde(with = "exact_f64")]
    pub std: f64,
}

/// f64 as its shortest exact decimal text: serde_json's own float parsing
/// may be off by one ulp, and a reloaded checkpoint must give identical
/// statistics.
mod exact_f64 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct State {
    pub format: String,
    pub save_id: String,
    pub target: String,
    pub features_root: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Band -> optimizer steps taken.
    pub steps: BTreeMap<u32, u64>,
    /// Band -> training-error statistics, when they were computed.
    pub statistics: BTreeMap<u32, SavedStats>,
}

pub fn optimizer_file(band: u32) -> String {
    format!("optimizer-band{band}.bpk")
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StageError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).stage_context(format_args!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(name)).stage_context(format_args!("renaming {} into place", tmp.display()))
}

/// A temporary path in `dir` for writers that want a path, and its final name.
pub fn temp_path(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!(".{name}.tmp")), dir.join(name))
}

pub fn new_save_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

/// Every float parameter and running statistic of a module, by path.
#[derive(Default)]
struct Collector {
    prefix: String,
    path: Vec<String>,
    out: Vec<(String, ParamId, Vec<usize>, Vec<f32>)>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let data = param.val().into_data();
        let shape = data.shape().to_vec();
        let values = data.try_into_vec::<f32>().expect("model parameters are f32");
        self.out.push((format!("{}.{}", self.prefix, self.path.join(".")), param.id, shape, values));
    }
}

/// Collects `module` (call on the `valid()` copy, whose running statistics are synced).
pub fn collect<M: Module>(module: &M, prefix: &str, out: &mut Vec<(String, ParamId, Vec<usize>, Vec<f32>)>) {
    let mut c = Collector { prefix: prefix.to_string(), ..Default::default() };
    module.visit(&mut c);
    out.append(&mut c.out);
}

/// Serializes collected tensors; parameter ids go into the metadata so that
/// the optimizer state (keyed by id) matches the weights after loading.
pub fn to_safetensors(tensors: &[(String, ParamId, Vec<usize>, Vec<f32>)], save_id: &str) -> Result<Vec<u8>, StageError> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| t.3.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let mut views = Vec::new();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("save_id".to_string(), save_id.to_string());
    for ((name, id, shape, _), data) in tensors.iter().zip(&bytes) {
        views.push((name.clone(), TensorView::new(Dtype::F32, shape.clone(), data).stage_context(name)?));
        meta.insert(format!("id:{name}"), id.val().to_string());
    }
    safetensors::serialize(views, Some(meta)).stage_context("serializing weights")
}

/// Weights read back from a safetensors file.
pub struct LoadedWeights {
    pub save_id: String,
    tensors: HashMap<String, (ParamId, Vec<usize>, Vec<f32>)>,
}

pub fn from_safetensors(bytes: &[u8], file: &Path) -> Result<LoadedWeights, StageError> {
    let what = || format!("reading {}", file.display());
    let (_, metadata) = SafeTensors::read_metadata(bytes).stage_context(what())?;
    let meta = metadata.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(StageError::invalid(format!("{}: not a {FORMAT} weights file", file.display())));
    }
    let st = SafeTensors::deserialize(bytes).stage_context(what())?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(StageError::invalid(format!("{}: tensor {name} is {:?}, expected F32", file.display(), view.dtype())));
        }
        let id: u64 = meta
            .get(&format!("id:{name}"))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| StageError::invalid(format!("{}: no parameter id for {name}", file.display())))?;
        let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        tensors.insert(name, (ParamId::from(id), view.shape().to_vec(), values));
    }
    Ok(LoadedWeights { save_id: meta.get("save_id").cloned().unwrap_or_default(), tensors })
}

impl LoadedWeights {
    /// How many values the tensors whose names start with `prefix` hold.
    pub fn values_under(&self, prefix: &str) -> usize {
        self.tensors.iter().filter(|(name, _)| name.starts_with(prefix)).map(|(_, (_, _, values))| values.len()).sum()
    }
}

/// Puts loaded tensors into a module built with the same shape, restoring ids.
struct Loader<'a> {
    prefix: String,
    path: Vec<String>,
    weights: &'a mut LoadedWeights,
    problems: Vec<String>,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = format!("{}.{}", self.prefix, self.path.join("."));
        let expected = param.lazy_shape().to_vec();
        match self.weights.tensors.remove(&name) {
            None => {
                self.problems.push(format!("{name} is missing"));
                param
            }
            Some((_, shape, _)) if shape != expected => {
                self.problems.push(format!("{name}: checkpoint shape {shape:?}, model shape {expected:?}"));
                param
            }
            Some((id, shape, values)) => {
                let tensor = Tensor::from_data(TensorData::new(values, shape), &param.lazy_device());
                param.transform_for_load(tensor, id)
            }
        }
    }
}

pub fn apply<M: Module>(module: M, prefix: &str, weights: &mut LoadedWeights) -> Result<M, StageError> {
    let mut loader = Loader { prefix: prefix.to_string(), path: Vec::new(), weights, problems: Vec::new() };
    let module = module.map(&mut loader);
    if loader.problems.is_empty() {
        Ok(module)
    } else {
        Err(StageError::invalid(format!("checkpoint does not fit the model: {}", loader.problems.join("; "))))
    }
}

//! A created stage as the host holds it. Every call into a plugin goes
//! through [`Stage::call`], which names the stage and plugin in any error
//! (including a panic the plugin's guard caught).

use crate::out_dir::absolute;
use crate::pipeline::StageSpec;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use vigil_stage_api::{OptionType, Options, RResult, StageError, StageInfo, StageIo, StageKind, StageObject};

pub struct Stage {
    pub spec: StageSpec,
    pub info: StageInfo,
    pub library: PathBuf,
    pub library_version: String,
    pub options: Options,
    pub io: StageIo,
    pub object: StageObject,
}

impl Stage {
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn kind(&self) -> StageKind {
        self.info.kind
    }

    /// Describes this stage for messages: ``stage `boxes` (plugin `detector`)``.
    pub fn label(&self) -> String {
        format!("stage `{}` (plugin `{}`)", self.spec.id, self.spec.plugin)
    }

    /// The complete options with every path option absolute and its links
    /// resolved: what a bundle's pipeline.toml records and what fingerprints
    /// compare. A pipeline names files relative to itself or to the working
    /// folder (`pipelines/../models/x.onnx`), its bundle by absolute path;
    /// both must read as the same fit.
    pub fn options_with_absolute_paths(&self) -> Map<String, Value> {
        let is_path = |name: &str| self.info.options.iter().any(|o| o.name.as_str() == name && o.ty == OptionType::Path);
        let mut options = self.options.map().clone();
        for (name, value) in options.iter_mut() {
            if let Value::String(text) = value {
                if is_path(name) && !text.is_empty() {
                    *text = absolute(Path::new(text.as_str())).display().to_string();
                }
            }
        }
        options
    }

    /// Turns a plugin's result into an error that says which stage failed.
    pub fn call<T>(label: &str, result: RResult<T, StageError>) -> anyhow::Result<T> {
        match result {
            RResult::ROk(value) => Ok(value),
            RResult::RErr(error) => Err(anyhow::anyhow!("{label}: {error}")),
        }
    }
}

/// Turns a plugin's result into an error that names the stage by its id and
/// the call that failed (for stages held by id, outside a [`Stage`]).
pub fn call<T>(id: &str, what: &str, result: RResult<T, StageError>) -> anyhow::Result<T> {
    result.into_result().map_err(|e| anyhow::anyhow!("stage `{id}`: {what}: {e}"))
}

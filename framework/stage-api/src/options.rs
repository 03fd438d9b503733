//! Stage options: each stage declares its options (name, type, default, doc);
//! the host validates a pipeline's TOML table against them, fills defaults and
//! hands the plugin a JSON object that is known to match.
//!
//! ```
//! use vigil_stage_api::{complete_options, OptionSpec, Options};
//!
//! // What a stage declares in `StageFactory::info`.
//! let specs = [
//!     OptionSpec::int("threshold", 20, "grey-level change (0-255) that makes a pixel foreground"),
//!     OptionSpec::choice("mode", &["hard", "mixture"], "mixture", "weighting scheme"),
//!     OptionSpec::path("model", None, "ONNX file"), // no default: required
//! ];
//! assert!(specs[2].is_required());
//!
//! // What the host does with the pipeline's table before `create` runs.
//! let given = serde_json::json!({"threshold": 10, "model": "m.onnx"});
//! let options = complete_options(&specs, given.as_object().unwrap()).unwrap();
//!
//! // What `create` reads: every declared option is there, typed.
//! assert_eq!(options.int("threshold")?, 10);
//! assert_eq!(options.string("mode")?, "mixture"); // filled from the default
//!
//! let problems = complete_options(&specs, serde_json::json!({"mode": "soft"}).as_object().unwrap()).unwrap_err();
//! assert_eq!(problems.len(), 2); // `mode` is not a choice, `model` is missing
//! # Ok::<(), vigil_stage_api::StageError>(())
//! ```

use crate::StageError;
use abi_stable::{
    std_types::{RString, RVec},
    StableAbi,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The type of an option's value, as written in a pipeline's TOML table.
#[repr(u8)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub enum OptionType {
    /// `true` or `false`.
    Bool,
    /// A whole number (i64).
    Int,
    /// A number (f64); ints are accepted and converted.
    Float,
    /// Any string.
    String,
    /// A file or folder; relative paths are resolved against the pipeline file.
    Path,
    /// One of a fixed set of strings.
    Choice(RVec<RString>),
    /// A table of name = number (e.g. fusion weights per stage id).
    FloatTable,
    /// A list of strings.
    StringList,
    /// A list of integers.
    IntList,
}

impl std::fmt::Display for OptionType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionType::Bool => f.write_str("bool"),
            OptionType::Int => f.write_str("int"),
            OptionType::Float => f.write_str("float"),
            OptionType::String => f.write_str("string"),
            OptionType::Path => f.write_str("path"),
            OptionType::Choice(c) => {
                let names: Vec<String> = c.iter().map(|s| format!("\"{s}\"")).collect();
                write!(f, "one of {}", names.join(" | "))
            }
            OptionType::FloatTable => f.write_str("table of floats"),
            OptionType::StringList => f.write_str("list of strings"),
            OptionType::IntList => f.write_str("list of ints"),
        }
    }
}

/// One declared option. `default` is JSON text; empty means required.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct OptionSpec {
    /// The key in the pipeline's `[[stage]]` table.
    pub name: RString,
    /// What values are accepted.
    pub ty: OptionType,
    /// The default as JSON text (`20`, `"mixture"`); empty when required.
    pub default: RString,
    /// One line for `vigil plugins NAME` and error messages; give the unit.
    pub doc: RString,
}

impl OptionSpec {
    fn make(name: &str, ty: OptionType, default: Option<Value>, doc: &str) -> OptionSpec {
        OptionSpec { name: name.into(), ty, default: default.map(|v| v.to_string()).unwrap_or_default().into(), doc: doc.into() }
    }
    /// A [`OptionType::Bool`] option.
    pub fn bool(name: &str, default: bool, doc: &str) -> OptionSpec {
        Self::make(name, OptionType::Bool, Some(default.into()), doc)
    }
    /// An [`OptionType::Int`] option.
    pub fn int(name: &str, default: i64, doc: &str) -> OptionSpec {
        Self::make(name, OptionType::Int, Some(default.into()), doc)
    }
    /// A [`OptionType::Float`] option.
    pub fn float(name: &str, default: f64, doc: &str) -> OptionSpec {
        Self::make(name, OptionType::Float, Some(default.into()), doc)
    }
    /// A [`OptionType::String`] option.
    pub fn string(name: &str, default: &str, doc: &str) -> OptionSpec {
        Self::make(name, OptionType::String, Some(default.into()), doc)
    }
    /// A path option; `None` makes it required.
    pub fn path(name: &str, default: Option<&str>, doc: &str) -> OptionSpec {
        Self::make(name, OptionType::Path, default.map(Value::from), doc)
    }
    /// An [`OptionType::Choice`] among `choices`; `default` should be one of
    /// them (it is not checked here).
    pub fn choice(name: &str, choices: &[&str], default: &str, doc: &str) -> OptionSpec {
        let ty = OptionType::Choice(choices.iter().map(|&c| RString::from(c)).collect());
        Self::make(name, ty, Some(default.into()), doc)
    }
    /// An [`OptionType::FloatTable`] option; `default` lists its entries.
    pub fn float_table(name: &str, default: &[(&str, f64)], doc: &str) -> OptionSpec {
        let map: Map<String, Value> = default.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
        Self::make(name, OptionType::FloatTable, Some(Value::Object(map)), doc)
    }
    /// An [`OptionType::StringList`] option.
    pub fn string_list(name: &str, default: &[&str], doc: &str) -> OptionSpec {
        Self::make(name, OptionType::StringList, Some(default.to_vec().into()), doc)
    }
    /// An [`OptionType::IntList`] option.
    pub fn int_list(name: &str, default: &[i64], doc: &str) -> OptionSpec {
        Self::make(name, OptionType::IntList, Some(default.to_vec().into()), doc)
    }

    /// Whether the option has no default, so a pipeline must set it.
    pub fn is_required(&self) -> bool {
        self.default.is_empty()
    }

    /// The default as a JSON value (`None` when the option is required).
    pub fn default_value(&self) -> Option<Value> {
        serde_json::from_str(&self.default).ok()
    }

    /// Checks `value` against the declared type and returns it normalised
    /// (ints accepted where floats are expected).
    pub fn check(&self, value: &Value) -> Result<Value, String> {
        let expected = || format!("expected {}, found {}", self.ty, describe(value));
        match (&self.ty, value) {
            (OptionType::Bool, Value::Bool(_)) => Ok(value.clone()),
            (OptionType::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(value.clone()),
            (OptionType::Float, Value::Number(n)) => Ok(Value::from(n.as_f64().unwrap_or(f64::NAN))),
            (OptionType::String | OptionType::Path, Value::String(_)) => Ok(value.clone()),
            (OptionType::Choice(choices), Value::String(s)) => {
                if choices.iter().any(|c| c.as_str() == s) {
                    Ok(value.clone())
                } else {
                    Err(expected())
                }
            }
            (OptionType::FloatTable, Value::Object(map)) => {
                let mut out = Map::new();
                for (k, v) in map {
                    let n = v.as_f64().ok_or_else(|| format!("`{k}`: expected a number, found {}", describe(v)))?;
                    out.insert(k.clone(), Value::from(n));
                }
                Ok(Value::Object(out))
            }
            (OptionType::StringList, Value::Array(items)) if items.iter().all(Value::is_string) => Ok(value.clone()),
            (OptionType::IntList, Value::Array(items)) if items.iter().all(|v| v.is_i64()) => Ok(value.clone()),
            _ => Err(expected()),
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Number(n) if n.is_f64() => format!("float {n}"),
        Value::Number(n) => format!("int {n}"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a table".into(),
    }
}

/// One problem with a stage's options: the option's name and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionProblem {
    /// The option's name as written (an unknown name is reported as given).
    pub option: String,
    /// A full sentence naming the option, e.g. "option `epochs`: expected
    /// int, found string \"many\"".
    pub message: String,
}

/// Checks `given` against `specs`: unknown names, wrong types and missing
/// required options are all reported; defaults fill the rest.
pub fn complete_options(specs: &[OptionSpec], given: &Map<String, Value>) -> Result<Options, Vec<OptionProblem>> {
    let mut problems = Vec::new();
    let mut out = Map::new();
    for (name, value) in given {
        match specs.iter().find(|s| s.name.as_str() == name) {
            None => {
                let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                let message = if known.is_empty() {
                    format!("unknown option `{name}` (this stage takes no options)")
                } else {
                    format!("unknown option `{name}` (expected one of: {})", known.join(", "))
                };
                problems.push(OptionProblem { option: name.clone(), message });
            }
            Some(spec) => match spec.check(value) {
                Ok(v) => {
                    out.insert(name.clone(), v);
                }
                Err(e) => problems.push(OptionProblem { option: name.clone(), message: format!("option `{name}`: {e}") }),
            },
        }
    }
    for spec in specs {
        if out.contains_key(spec.name.as_str()) || given.contains_key(spec.name.as_str()) {
            continue;
        }
        match spec.default_value() {
            Some(v) => {
                out.insert(spec.name.to_string(), v);
            }
            None => problems.push(OptionProblem {
                option: spec.name.to_string(),
                message: format!("missing required option `{}` ({}: {})", spec.name, spec.ty, spec.doc),
            }),
        }
    }
    if problems.is_empty() {
        Ok(Options(out))
    } else {
        Err(problems)
    }
}

/// The validated options a stage receives: every declared option is present.
#[derive(Debug, Clone, Default)]
pub struct Options(Map<String, Value>);

impl Options {
    /// Parses the JSON object the host passes to `create`. The plugin side of
    /// the boundary calls this; an error (kind `Invalid`) means the text is
    /// not a JSON object.
    ///
    /// ```
    /// use vigil_stage_api::Options;
    ///
    /// let options = Options::from_json(r#"{"epochs": 30, "lr": 1e-3, "mode": "hard", "bands": [1, 2]}"#)?;
    /// assert_eq!(options.int("epochs")?, 30);
    /// assert_eq!(options.float("lr")?, 0.001);
    /// assert_eq!(options.string("mode")?, "hard");
    /// assert_eq!(options.int_list("bands")?, [1, 2]);
    ///
    /// // A wrong type or a missing name is an `Invalid` error naming the option.
    /// let error = options.bool("mode").unwrap_err();
    /// assert_eq!(error.message.as_str(), "option `mode`: expected a bool, found \"hard\"");
    /// assert!(Options::from_json("[1, 2]").is_err());
    /// # Ok::<(), vigil_stage_api::StageError>(())
    /// ```
    pub fn from_json(text: &str) -> Result<Options, StageError> {
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(Options(map)),
            Ok(other) => Err(StageError::invalid(format!("options must be a table, found {other}"))),
            Err(e) => Err(StageError::invalid(format!("options are not valid JSON: {e}"))),
        }
    }
    /// Wraps a JSON object as options without checking it against any specs
    /// (for hosts and tests; [`complete_options`] is the checked way).
    pub fn from_map(map: Map<String, Value>) -> Options {
        Options(map)
    }
    /// The options as JSON object text, the form that crosses the boundary.
    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }
    /// The underlying JSON object.
    pub fn map(&self) -> &Map<String, Value> {
        &self.0
    }
    /// Sets (or replaces) one option, unchecked.
    pub fn set(&mut self, name: &str, value: impl Into<Value>) {
        self.0.insert(name.to_string(), value.into());
    }

    fn value(&self, name: &str) -> Result<&Value, StageError> {
        self.0.get(name).ok_or_else(|| StageError::invalid(format!("option `{name}` is missing")))
    }
    fn typed<T>(&self, name: &str, what: &str, get: impl Fn(&Value) -> Option<T>) -> Result<T, StageError> {
        let v = self.value(name)?;
        get(v).ok_or_else(|| StageError::invalid(format!("option `{name}`: expected {what}, found {v}")))
    }
    /// Option `name` as a bool.
    ///
    /// Like every getter below, an error (kind `Invalid`) names the option
    /// and means it is missing or of another type: for options the host
    /// validated against the stage's specs, a mismatch between the name or
    /// type read here and the one declared.
    pub fn bool(&self, name: &str) -> Result<bool, StageError> {
        self.typed(name, "a bool", Value::as_bool)
    }
    /// Option `name` as an int; a float such as `3.0` is refused.
    pub fn int(&self, name: &str) -> Result<i64, StageError> {
        self.typed(name, "an int", Value::as_i64)
    }
    /// Option `name` as a float; ints are accepted.
    pub fn float(&self, name: &str) -> Result<f64, StageError> {
        self.typed(name, "a number", Value::as_f64)
    }
    /// Option `name` as a string. Path options arrive already resolved
    /// against the pipeline file.
    pub fn string(&self, name: &str) -> Result<String, StageError> {
        self.typed(name, "a string", |v| v.as_str().map(str::to_owned))
    }
    /// Option `name` as (key, number) pairs, e.g. fusion weights per stage id.
    pub fn float_table(&self, name: &str) -> Result<Vec<(String, f64)>, StageError> {
        self.typed(name, "a table of numbers", |v| v.as_object()?.iter().map(|(k, v)| Some((k.clone(), v.as_f64()?))).collect())
    }
    /// Option `name` as a list of strings.
    pub fn string_list(&self, name: &str) -> Result<Vec<String>, StageError> {
        self.typed(name, "a list of strings", |v| v.as_array()?.iter().map(|s| s.as_str().map(str::to_owned)).collect())
    }
    /// Option `name` as a list of ints.
    pub fn int_list(&self, name: &str) -> Result<Vec<i64>, StageError> {
        self.typed(name, "a list of ints", |v| v.as_array()?.iter().map(Value::as_i64).collect())
    }
    /// Deserializes all options into a plugin's own struct.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, StageError> {
        serde_json::from_value(Value::Object(self.0.clone())).map_err(|e| StageError::invalid(format!("options: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn check_accepts_ints_as_floats_and_rejects_other_types() {
        let spec = OptionSpec::float("score_threshold", 0.2, "doc");
        assert_eq!(spec.check(&json!(1)).unwrap(), json!(1.0));
        assert_eq!(spec.check(&json!("high")).unwrap_err(), "expected float, found string \"high\"");
        let mode = OptionSpec::choice("mode", &["hard", "mixture"], "mixture", "doc");
        assert!(mode.check(&json!("mixture")).is_ok());
        assert_eq!(mode.check(&json!("soft")).unwrap_err(), "expected one of \"hard\" | \"mixture\", found string \"soft\"");
        assert!(OptionSpec::path("model", None, "doc").is_required());
    }

    #[test]
    fn complete_options_reports_every_problem_and_fills_defaults() {
        let specs = [OptionSpec::int("epochs", 30, "training epochs"), OptionSpec::path("model", None, "ONNX file")];
        let given = json!({"epochs": "many", "epoch": 3}).as_object().unwrap().clone();
        let problems = complete_options(&specs, &given).unwrap_err();
        let names: Vec<&str> = problems.iter().map(|p| p.option.as_str()).collect();
        assert_eq!(names, ["epoch", "epochs", "model"]);
        let ok = complete_options(&specs, json!({"model": "m.onnx"}).as_object().unwrap()).unwrap();
        assert_eq!(ok.int("epochs").unwrap(), 30);
    }

    #[test]
    fn typed_getters_name_the_option() {
        let opts = Options::from_json(r#"{"epochs": 30, "weights": {"appearance": 0.5}}"#).unwrap();
        assert_eq!(opts.int("epochs").unwrap(), 30);
        assert_eq!(opts.float_table("weights").unwrap(), vec![("appearance".to_string(), 0.5)]);
        assert_eq!(opts.string("epochs").unwrap_err().message.as_str(), "option `epochs`: expected a string, found 30");
    }
}

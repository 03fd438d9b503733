//! Plugin discovery and loading. Plugin libraries are searched in the folder
//! next to the `vigil` binary, then in `VIGIL_PLUGIN_PATH`, then in the
//! pipeline's `[plugins] paths`; each is loaded with abi_stable, which checks
//! the root module's layout, and refused unless it was built against a
//! stage-api version this host loads (`vigil_stage_api::version`).

use abi_stable::library::LibraryError;
use std::path::{Path, PathBuf};
use vigil_stage_api::open::{open_plugin, OpenFailure, PluginModule};
use vigil_stage_api::plugin::{HostLogger, LogLevel};
use vigil_stage_api::version::{check_plugin_api, ApiVersion};
use vigil_stage_api::{RStr, StageInfo};

/// A loaded plugin library and the stages it exports.
#[derive(Clone)]
pub struct Library {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    /// The stage-api version it was built against.
    pub api_version: String,
    /// Its one-line description; `None` when it was built against stage-api
    /// 1.0 (which had none) or its crate has none.
    pub description: Option<String>,
    pub module: PluginModule,
    pub stages: Vec<StageInfo>,
}

/// A library that could not be loaded: a short summary, and the full text
/// from abi_stable for `--verbose`.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub summary: String,
    pub detail: String,
}

impl std::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot load plugin library {}\n{}", self.path.display(), self.summary)
    }
}

/// Where plugin libraries are looked for, in order.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    pub entries: Vec<PathBuf>,
}

impl SearchPath {
    /// The folder next to the running binary, then `VIGIL_PLUGIN_PATH`, then
    /// `extra` (a pipeline's `[plugins] paths`).
    pub fn standard(extra: &[PathBuf]) -> SearchPath {
        let mut entries = Vec::new();
        if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
            entries.push(dir);
        }
        if let Some(var) = std::env::var_os("VIGIL_PLUGIN_PATH") {
            entries.extend(std::env::split_paths(&var).filter(|p| !p.as_os_str().is_empty()));
        }
        entries.extend(extra.iter().cloned());
        SearchPath { entries }
    }
}

#[derive(Clone, Default)]
pub struct Registry {
    pub search: SearchPath,
    pub libraries: Vec<Library>,
    pub failures: Vec<LoadFailure>,
}

fn is_dynamic_library(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some(std::env::consts::DLL_EXTENSION)
}

impl Registry {
    /// Loads every plugin library on the search path. A folder contributes
    /// every dynamic library in it; a file entry names one library and must
    /// exist. Nothing here fails as a whole: problems are kept per library.
    pub fn discover(search: SearchPath) -> Registry {
        let mut registry = Registry { search: search.clone(), ..Registry::default() };
        let mut seen = Vec::new();
        for entry in &search.entries {
            let candidates: Vec<PathBuf> = if entry.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(entry)
                    .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_dynamic_library(p)).collect())
                    .unwrap_or_default();
                files.sort();
                files
            } else {
                vec![entry.clone()]
            };
            for path in candidates {
                let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
                if seen.contains(&canonical) {
                    continue;
                }
                seen.push(canonical);
                match load_library(&path) {
                    Ok(library) => registry.libraries.push(library),
                    Err(failure) => registry.failures.push(failure),
                }
            }
        }
        registry
    }

    /// The first library (in search order) exporting a stage called `name`.
    /// When others export it too, a warning names them all: which one wins
    /// depends on the search path, which a user should not have to guess.
    pub fn find(&self, name: &str) -> Option<(&Library, &StageInfo)> {
        let mut found = self.libraries.iter().filter_map(|lib| lib.stages.iter().find(|s| s.name.as_str() == name).map(|s| (lib, s)));
        let first = found.next()?;
        let shadowed: Vec<String> = found.map(|(lib, _)| lib.path.display().to_string()).collect();
        if !shadowed.is_empty() {
            tracing::warn!(
                "stage `{name}` is exported by {} and also by {}; using the first, which comes first on the plugin search path (next to vigil, then VIGIL_PLUGIN_PATH, then [plugins] paths)",
                first.0.path.display(),
                shadowed.join(", ")
            );
        }
        Some(first)
    }

    /// Every stage name available, sorted, for "did you mean" lists.
    pub fn stage_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.libraries.iter().flat_map(|l| l.stages.iter().map(|s| s.name.to_string())).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Explains why `name` was not found: where we looked, what exists, and
    /// which libraries failed to load.
    pub fn explain_missing(&self, name: &str) -> String {
        let mut text = format!("no plugin provides a stage named `{name}`");
        let names = self.stage_names();
        if !names.is_empty() {
            text.push_str(&format!(" (available: {})", names.join(", ")));
        }
        let places: Vec<String> = self.search.entries.iter().map(|p| p.display().to_string()).collect();
        text.push_str(&format!("; searched: {}", if places.is_empty() { "nothing".into() } else { places.join(", ") }));
        for failure in &self.failures {
            text.push_str(&format!("; note: {} failed to load: {}", failure.path.display(), first_line(&failure.summary)));
        }
        text
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

extern "C" fn host_log(level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
    let (target, message) = (target.as_str(), message.as_str());
    match level {
        LogLevel::Error => tracing::error!(target: "vigil::plugin", plugin = target, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "vigil::plugin", plugin = target, "{message}"),
        LogLevel::Info => tracing::info!(target: "vigil::plugin", plugin = target, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "vigil::plugin", plugin = target, "{message}"),
        LogLevel::Trace => tracing::trace!(target: "vigil::plugin", plugin = target, "{message}"),
    }
}

/// Loads one library with [`open_plugin`].
pub fn load_library(path: &Path) -> Result<Library, LoadFailure> {
    let fail = |summary: String, detail: String| LoadFailure { path: path.to_path_buf(), summary, detail };
    if !path.exists() {
        return Err(fail("the file does not exist".into(), String::new()));
    }
    let module = open_plugin(path).map_err(|e| match e {
        OpenFailure::Library(e) => fail(summarize(&e), e.to_string()),
        OpenFailure::Version(why) => fail(why, String::new()),
    })?;
    (module.set_logger)(HostLogger { log: host_log });
    let stages = match (module.stages)() {
        abi_stable::std_types::RResult::ROk(stages) => stages.into_vec(),
        abi_stable::std_types::RResult::RErr(e) => return Err(fail(format!("the library failed to list its stages: {e}"), String::new())),
    };
    Ok(Library {
        path: path.to_path_buf(),
        name: module.name.to_string(),
        version: module.version.to_string(),
        api_version: module.api_version.to_string(),
        description: Some(module.description.to_string()).filter(|d| !d.is_empty()),
        module,
        stages,
    })
}

/// At most ten lines saying what went wrong; abi_stable's own text for a
/// layout mismatch runs to hundreds.
fn summarize(error: &LibraryError) -> String {
    let lines: Vec<String> = match error {
        LibraryError::OpenError { err, .. } => {
            vec![format!("not a loadable dynamic library: {}", first_line(&err.to_string()))]
        }
        LibraryError::GetSymbolError { .. } => vec![
            "not a Vigil plugin: it exports no abi_stable root module".into(),
            "expected: a library built with vigil_stage_api::export_plugin!".into(),
        ],
        LibraryError::IncompatibleVersionNumber { actual_version, .. } => {
            vec![check_plugin_api(ApiVersion::current(), &actual_version.to_string())
                .err()
                .unwrap_or_else(|| format!("abi_stable refused stage-api {actual_version}"))]
        }
        LibraryError::AbiInstability(e) => {
            let text = e.to_string();
            let mut lines = vec![format!(
                "stage-api layout mismatch (this vigil has stage-api {}): the plugin was built against a different stage-api",
                ApiVersion::current()
            )];
            lines.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .filter(|l| l.contains("Error") || l.contains("expected") || l.contains("found"))
                    .take(6)
                    .map(|l| format!("  {}", truncate(l, 160))),
            );
            lines.push("run with --verbose for abi_stable's full report".into());
            lines
        }
        LibraryError::InvalidAbiHeader(header) => {
            vec![format!("built with an incompatible abi_stable (header {header:?}); rebuild the plugin")]
        }
        LibraryError::RootModule { err, .. } => vec![format!("the plugin's root module failed to initialize: {err}")],
        other => vec![truncate(first_line(&other.to_string()), 200)],
    };
    lines.into_iter().take(10).collect::<Vec<_>>().join("\n")
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_a_short_error() {
        let failure = load_library(Path::new("/nonexistent/libvigil_plugin_x.so")).err().unwrap();
        assert_eq!(failure.summary, "the file does not exist");
    }

    #[test]
    fn a_file_that_is_not_a_library_is_a_short_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("libfake.so");
        std::fs::write(&path, b"not an ELF file").unwrap();
        let failure = load_library(&path).err().unwrap();
        assert!(failure.summary.starts_with("not a loadable dynamic library"), "{}", failure.summary);
        assert!(failure.summary.lines().count() <= 10);
        let registry = Registry::discover(SearchPath { entries: vec![dir.path().to_path_buf()] });
        assert_eq!(registry.failures.len(), 1);
        assert!(registry.explain_missing("frames").contains("libfake.so failed to load"));
    }
}

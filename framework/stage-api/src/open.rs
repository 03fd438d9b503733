//! How a host opens a plugin library: it reads which stage-api version the
//! library declares, refuses it unless [`check_plugin_api`] allows it, and
//! only then has abi_stable check its layout, so that a plugin of another
//! major version gets "rebuild it against stage-api X", not a page of
//! layout differences.
//!
//! abi_stable refuses a root module with fewer fields than the host's, so
//! once a minor version appends a field (src/version.rs), a host must keep
//! each earlier minor's root module, frozen, and check a plugin against the
//! layout of the minor it declares. Stage-api 2.0 is the first of its line
//! and has one layout; 1.x hosts kept 1.0's this way (`v1_0` in
//! framework/stage-api/src/open.rs before 2.0), the pattern for 2.1.

use crate::plugin::{CreateFn, HostLogger, StagesFn};
use crate::version::{check_plugin_api, ApiVersion};
use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::RStr;
use std::path::Path;

/// A plugin library's root module.
#[derive(Clone, Copy)]
pub struct PluginModule {
    /// The library's name (its crate name).
    pub name: RStr<'static>,
    /// The library's own version.
    pub version: RStr<'static>,
    /// The stage-api version it was built against.
    pub api_version: RStr<'static>,
    /// Its one-line description.
    pub description: RStr<'static>,
    /// Installs the host's log sink.
    pub set_logger: extern "C" fn(HostLogger),
    /// Describes every stage the library exports.
    pub stages: StagesFn,
    /// Creates a stage.
    pub create: CreateFn,
}

/// Why a library could not be opened.
#[derive(Debug)]
pub enum OpenFailure {
    /// abi_stable could not load it or refused its layout.
    Library(LibraryError),
    /// It was built against a stage-api version this host does not load;
    /// the text says why and what to do.
    Version(String),
}

impl std::fmt::Display for OpenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenFailure::Library(e) => write!(f, "{e}"),
            OpenFailure::Version(why) => f.write_str(why),
        }
    }
}

/// Opens the plugin library at `path` and checks it against the layout of
/// the stage-api version it declares. The library stays loaded for the
/// rest of the process (abi_stable never unloads one).
pub fn open_plugin(path: &Path) -> Result<PluginModule, OpenFailure> {
    let header = lib_header_from_path(path).map_err(OpenFailure::Library)?;
    let declared = header.version_strings().version.as_str();
    check_plugin_api(ApiVersion::current(), declared).map_err(OpenFailure::Version)?;
    let module = header.init_root_module::<crate::VigilPlugin_Ref>().map_err(OpenFailure::Library)?;
    Ok(PluginModule {
        name: module.name(),
        version: module.version(),
        api_version: module.api_version(),
        description: module.description(),
        set_logger: module.set_logger(),
        stages: module.stages(),
        create: module.create(),
    })
}

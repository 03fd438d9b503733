//! How a host opens a plugin library built against any minor version of
//! its major stage-api version.
//!
//! abi_stable checks a root module's layout against the host's and refuses
//! a root module with fewer fields, so a host of 1.1 cannot check a 1.0
//! plugin against its own `VigilPlugin`. The host therefore keeps the
//! layout of every earlier minor's root module, frozen (`v1_0` below), reads
//! which version a library declares, refuses it unless
//! [`check_plugin_api`] allows it, and checks it against that version's
//! layout. Everything else reachable from the root module is frozen within
//! a major version (src/version.rs says what may change).

use crate::plugin::{CreateFn, HostLogger, StagesFn};
use crate::version::{check_plugin_api, ApiVersion};
use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::RStr;
use std::path::Path;

/// A plugin library's root module, whichever minor version laid it out.
#[derive(Clone, Copy)]
pub struct PluginModule {
    /// The library's name (its crate name).
    pub name: RStr<'static>,
    /// The library's own version.
    pub version: RStr<'static>,
    /// The stage-api version it was built against.
    pub api_version: RStr<'static>,
    /// Its one-line description; `None` before stage-api 1.1.
    pub description: Option<RStr<'static>>,
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
    let minor = ApiVersion::parse(declared).map_or(u32::MAX, |v| v.minor);
    // The accessors of the two layouts share names, not a type.
    macro_rules! module_of {
        ($ref:ty, $description:expr) => {{
            let m = header.init_root_module::<$ref>().map_err(OpenFailure::Library)?;
            PluginModule {
                name: m.name(),
                version: m.version(),
                api_version: m.api_version(),
                description: $description(m),
                set_logger: m.set_logger(),
                stages: m.stages(),
                create: m.create(),
            }
        }};
    }
    let module =
        if minor == 0 { module_of!(v1_0::VigilPlugin_Ref, |_| None) } else { module_of!(crate::VigilPlugin_Ref, current_description) };
    Ok(module)
}

#[cfg(not(feature = "abi-1-0"))]
fn current_description(module: crate::VigilPlugin_Ref) -> Option<RStr<'static>> {
    module.description()
}

#[cfg(feature = "abi-1-0")]
fn current_description(_: crate::VigilPlugin_Ref) -> Option<RStr<'static>> {
    None
}

/// The root module of stage-api 1.0, frozen. It must keep the name, field
/// names, order and types `VigilPlugin` had in 1.0, which is what
/// `tests/fixtures/plugin-abi-1-0` (built with the `abi-1-0` feature)
/// exports; `tests/tests/abi.rs` loads that fixture.
mod v1_0 {
    // A frozen copy: its fields are documented on `VigilPlugin`, and the
    // name `VigilPlugin_Ref` is what abi_stable derives.
    #![allow(non_camel_case_types, missing_docs)]
    use crate::plugin::HostLogger;
    use crate::{StageContext, StageError, StageInfo, StageInstance};
    use abi_stable::std_types::{RResult, RStr, RVec};
    use abi_stable::{declare_root_module_statics, library::RootModule, sabi_types::VersionStrings, StableAbi};

    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = VigilPlugin_Ref)))]
    #[sabi(missing_field(option))]
    pub struct VigilPlugin {
        pub name: RStr<'static>,
        pub version: RStr<'static>,
        pub api_version: RStr<'static>,
        pub set_logger: extern "C" fn(HostLogger),
        pub stages: extern "C" fn() -> RResult<RVec<StageInfo>, StageError>,
        #[sabi(last_prefix_field)]
        pub create: extern "C" fn(RStr<'_>, RStr<'_>, StageContext) -> RResult<StageInstance, StageError>,
    }

    impl RootModule for VigilPlugin_Ref {
        declare_root_module_statics! {VigilPlugin_Ref}
        const BASE_NAME: &'static str = "vigil_plugin";
        const NAME: &'static str = "vigil_plugin";
        const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
    }
}

#![allow(non_camel_case_types)]
//! The root module every plugin library exports, the `export_plugin!` macro
//! that builds it, and the bridge that sends a plugin's `tracing` events to
//! the host's log.

pub use crate::version::API_VERSION;
use crate::{Options, StageContext, StageError, StageInfo, StageInstance};
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    prefix_type::PrefixTypeTrait,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RVec},
    StableAbi,
};

/// Log levels as they cross the boundary.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// `tracing::error!`.
    Error,
    /// `tracing::warn!`.
    Warn,
    /// `tracing::info!`.
    Info,
    /// `tracing::debug!`.
    Debug,
    /// `tracing::trace!`.
    Trace,
}

/// The host's log sink: level, target (plugin module path), message.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct HostLogger {
    /// Called once per event, on the plugin's thread that emitted it.
    pub log: extern "C" fn(LogLevel, RStr<'_>, RStr<'_>),
}

/// Lists a library's stages: the root module's `stages`.
pub type StagesFn = extern "C" fn() -> RResult<RVec<StageInfo>, StageError>;
/// Creates a stage by name, options (a JSON object) and context: the root
/// module's `create`.
pub type CreateFn = extern "C" fn(RStr<'_>, RStr<'_>, StageContext) -> RResult<StageInstance, StageError>;

/// The root module of a plugin library, as this stage-api version lays it
/// out. Minor versions only append fields after `description`; the host checks a
/// plugin against the layout of the minor version it declares
/// ([`open_plugin`](crate::open::open_plugin)), since abi_stable refuses a
/// library whose root module has fewer fields than the host's.
#[repr(C)]
#[derive(StableAbi)]
#[allow(non_camel_case_types)]
#[sabi(kind(Prefix(prefix_ref = VigilPlugin_Ref)))]
#[sabi(missing_field(option))]
pub struct VigilPlugin {
    /// The plugin library's name (its crate name by default).
    pub name: RStr<'static>,
    /// The plugin library's own version.
    pub version: RStr<'static>,
    /// The stage-api version the library was built against.
    pub api_version: RStr<'static>,
    /// Installs the host's log sink; called once, right after loading.
    pub set_logger: extern "C" fn(HostLogger),
    /// Describes every stage the library exports.
    pub stages: extern "C" fn() -> RResult<RVec<StageInfo>, StageError>,
    /// Creates stage `name` with validated options (a JSON object).
    pub create: extern "C" fn(RStr<'_>, RStr<'_>, StageContext) -> RResult<StageInstance, StageError>,
    /// The library's one-line description (its crate's `description`).
    /// Fields a minor version appends go after this one.
    #[sabi(last_prefix_field)]
    pub description: RStr<'static>,
}

impl RootModule for VigilPlugin_Ref {
    declare_root_module_statics! {VigilPlugin_Ref}
    const BASE_NAME: &'static str = "vigil_plugin";
    const NAME: &'static str = "vigil_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(API_VERSION);
}

/// What `export_plugin!` reads from the plugin crate's Cargo manifest.
#[doc(hidden)]
pub struct LibraryIdentity {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
}

/// The root module `export_plugin!` exports, laid out as this stage-api
/// version lays it out.
#[doc(hidden)]
pub fn root_module(library: LibraryIdentity, stages: StagesFn, create: CreateFn) -> VigilPlugin_Ref {
    VigilPlugin {
        name: RStr::from_str(library.name),
        version: RStr::from_str(library.version),
        api_version: RStr::from_str(API_VERSION),
        set_logger: crate::log_bridge::set_host_logger,
        stages,
        create,
        description: RStr::from_str(library.description),
    }
    .leak_into_prefix()
}

/// What a plugin author implements for each stage the library exports.
pub trait StageFactory {
    /// The stage's name, kind, description and options, usually built with
    /// [`stage_info!`](crate::stage_info). Called often (listing, lookup by
    /// name), so it should be cheap and do no I/O.
    fn info() -> StageInfo;
    /// Creates the stage. Checking options that need I/O (a model file that
    /// must exist) belongs here: `vigil check` creates every stage.
    fn create(options: &Options, context: &StageContext) -> Result<StageInstance, StageError>;
}

/// One exported stage: its description and constructor.
pub struct StageEntry {
    /// [`StageFactory::info`].
    pub info: fn() -> StageInfo,
    /// [`StageFactory::create`].
    pub create: fn(&Options, &StageContext) -> Result<StageInstance, StageError>,
}

impl StageEntry {
    /// The entry for stage type `F`.
    pub fn of<F: StageFactory>() -> StageEntry {
        StageEntry { info: F::info, create: F::create }
    }
}

/// Implementation of the root module's `stages` entry point.
pub fn list_stages(entries: &[StageEntry]) -> RResult<RVec<StageInfo>, StageError> {
    crate::guard::guard(|| RResult::ROk(entries.iter().map(|e| (e.info)()).collect()))
}

/// Implementation of the root module's `create` entry point.
pub fn create_stage(
    entries: &[StageEntry],
    name: RStr<'_>,
    options: RStr<'_>,
    context: StageContext,
) -> RResult<StageInstance, StageError> {
    crate::guard::guard(|| {
        let Some(entry) = entries.iter().find(|e| (e.info)().name.as_str() == name.as_str()) else {
            let known: Vec<String> = entries.iter().map(|e| (e.info)().name.to_string()).collect();
            return RResult::RErr(StageError::invalid(format!("this library has no stage `{name}` (it has: {})", known.join(", "))));
        };
        let result = Options::from_json(options.as_str()).and_then(|opts| (entry.create)(&opts, &context));
        result.into()
    })
}

/// Exports a plugin library's root module.
///
/// ```ignore
/// vigil_stage_api::export_plugin!(FramesDecoder, VideoDecoder);
/// ```
/// Each type implements [`StageFactory`]. The library is named and
/// described by its crate's Cargo manifest; a library that is not its
/// package's own (a cdylib example) names itself:
///
/// ```ignore
/// vigil_stage_api::export_plugin!(library: "device-handoff", description: "two stages ..."; FrameChange, ChangeBoxes);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($($stage:ty),+ $(,)?) => {
        $crate::export_plugin!(library: env!("CARGO_PKG_NAME"), description: env!("CARGO_PKG_DESCRIPTION"); $($stage),+);
    };
    (library: $name:expr, description: $description:expr; $($stage:ty),+ $(,)?) => {
        fn __vigil_stage_entries() -> ::std::vec::Vec<$crate::plugin::StageEntry> {
            ::std::vec![$($crate::plugin::StageEntry::of::<$stage>()),+]
        }
        extern "C" fn __vigil_stages() -> $crate::abi_stable::std_types::RResult<
            $crate::abi_stable::std_types::RVec<$crate::StageInfo>,
            $crate::StageError,
        > {
            $crate::plugin::list_stages(&__vigil_stage_entries())
        }
        extern "C" fn __vigil_create(
            name: $crate::abi_stable::std_types::RStr<'_>,
            options: $crate::abi_stable::std_types::RStr<'_>,
            context: $crate::StageContext,
        ) -> $crate::abi_stable::std_types::RResult<$crate::StageInstance, $crate::StageError> {
            $crate::plugin::create_stage(&__vigil_stage_entries(), name, options, context)
        }
        fn __vigil_root_module() -> $crate::plugin::VigilPlugin_Ref {
            let library = $crate::plugin::LibraryIdentity { name: $name, version: env!("CARGO_PKG_VERSION"), description: $description };
            $crate::plugin::root_module(library, __vigil_stages, __vigil_create)
        }
        // What abi_stable's `#[export_root_module]` generates, spelled out so
        // that plugin crates need no direct dependency on abi_stable.
        #[no_mangle]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi_stable::library::LibHeader = {
            pub extern "C" fn erased_root_module() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(__vigil_root_module)
            }
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::plugin::VigilPlugin_Ref>(
                    erased_root_module,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn exported_symbol_name_matches_abi_stable() {
        assert_eq!(abi_stable::library::ROOT_MODULE_LOADER_NAME, "_1as_0lib_1header_0root_bmodule_bloader");
    }
}

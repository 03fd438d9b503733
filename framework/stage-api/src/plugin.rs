#![allow(non_camel_case_types)]
//! The root module every plugin library exports, the `export_plugin!` macro
//! that builds it, and the bridge that sends a plugin's `tracing` events to
//! the host's log.

use crate::{Options, StageContext, StageError, StageInfo, StageInstance};
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings,
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

/// The root module of a plugin library. abi_stable checks its layout and
/// the stage-api version (`VERSION_STRINGS`) when the host loads it.
#[repr(C)]
#[derive(StableAbi)]
#[allow(non_camel_case_types)]
#[sabi(kind(Prefix(prefix_ref = VigilPlugin_Ref)))]
#[sabi(missing_field(panic))]
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
    #[sabi(last_prefix_field)]
    pub create: extern "C" fn(RStr<'_>, RStr<'_>, StageContext) -> RResult<StageInstance, StageError>,
}

impl RootModule for VigilPlugin_Ref {
    declare_root_module_statics! {VigilPlugin_Ref}
    const BASE_NAME: &'static str = "vigil_plugin";
    const NAME: &'static str = "vigil_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The stage-api version of this build.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

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
/// Each type implements [`StageFactory`].
#[macro_export]
macro_rules! export_plugin {
    ($($stage:ty),+ $(,)?) => {
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
            use $crate::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::plugin::VigilPlugin {
                name: $crate::abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_NAME")),
                version: $crate::abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_VERSION")),
                api_version: $crate::abi_stable::std_types::RStr::from_str($crate::plugin::API_VERSION),
                set_logger: $crate::log_bridge::set_host_logger,
                stages: __vigil_stages,
                create: __vigil_create,
            }
            .leak_into_prefix()
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

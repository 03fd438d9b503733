//! Vigil's stable plugin ABI.
//!
//! A plugin library depends on this crate alone, implements one of the six
//! stage traits ([`Decoder`], [`Flow`], [`Localizer`], [`Reconstructor`],
//! [`Refiner`], [`Scorer`]) per stage, describes each stage with a
//! [`StageFactory`], and exports them with [`export_plugin!`]. Data crosses
//! the boundary as [`Batch`]es of DLPack-style [`Tensor`]s, moved, never
//! copied; errors cross as [`StageError`] values, never as panics.

pub mod batch;
pub mod error;
pub mod guard;
pub mod log_bridge;
pub mod memory;
pub mod options;
pub mod plugin;
pub mod stage;
pub mod tensor;

pub use abi_stable;
pub use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};
pub use batch::{Batch, FrameId, NamedTensor};
pub use error::{ResultExt, StageError, StageErrorKind};
pub use options::{complete_options, OptionProblem, OptionSpec, OptionType, Options};
pub use plugin::{StageFactory, VigilPlugin_Ref, API_VERSION};
pub use stage::*;
pub use tensor::{DType, Device, DeviceKind, Element, Tensor};

/// Builds a [`StageInfo`] in [`StageFactory::info`]. `version` is the
/// package version of the crate that invokes the macro (the plugin's), and
/// `options` takes any iterable of [`OptionSpec`]s (an array is usual).
#[macro_export]
macro_rules! stage_info {
    (name: $name:expr, kind: $kind:expr, description: $desc:expr, options: $options:expr $(,)?) => {
        $crate::StageInfo {
            name: $name.into(),
            kind: $kind,
            version: env!("CARGO_PKG_VERSION").into(),
            description: $desc.into(),
            options: $options.into_iter().collect(),
        }
    };
}

//! Stage `cae`: the LBR-SPR convolutional autoencoder (docs/method.md section 5) on burn,
//! a [`Reconstructor`](vigil_stage_api::Reconstructor).
//!
//! One model per band; the runtime's fit loop drives it with `fit_begin`,
//! `errors`, `step`, `statistics`, `save` and `load`. Trains on the CPU
//! (burn's `flex` backend) or, built with the `gpu` feature, on wgpu.

pub mod checkpoint;
pub mod columns;
pub mod config;
pub mod cubes;
pub mod init;
pub mod kernels;
pub mod matmul;
pub mod model;
pub mod net;
pub mod stage;
pub mod transfers;

use config::{CaeConfig, Target};
use vigil_stage_api::settings::Settings;
use vigil_stage_api::{
    names, stage_info, DType, Options, StageContext, StageError, StageFactory, StageInfo, StageInstance, StageIo, StageKind, TensorSpec,
};

pub use stage::CaeStage;

/// The factory the plugin exports.
pub struct Cae;

impl StageFactory for Cae {
    fn info() -> StageInfo {
        stage_info!(
            name: "cae",
            kind: StageKind::Reconstructor,
            description: "LBR-SPR convolutional autoencoder (one per band), trained with per-sample weights",
            options: config::CaeSettings::specs(),
        )
    }

    fn create(options: &Options, context: &StageContext) -> Result<StageInstance, StageError> {
        let config = CaeConfig::from_options(options, context)?;
        let io = stage_io(config.settings.target);
        Ok(StageInstance::reconstructor(CaeStage::new(config)?, io))
    }
}

/// Inputs depend on the target: the flow variant also needs the flow cubes.
pub fn stage_io(target: Target) -> StageIo {
    let mut inputs = vec![
        TensorSpec::new(names::APPEARANCE, DType::U8, 4, "appearance cubes [M, 3D, S, S], 0..255"),
        TensorSpec::new(names::BAND, DType::U32, 1, "model (spatial band) of each cube [M]"),
    ];
    if target == Target::Flow {
        inputs.push(TensorSpec::new(names::MOTION, DType::F16, 4, "flow cubes [M, 2D, S, S], the reconstruction target"));
    }
    let outputs = vec![TensorSpec::new(names::ERRORS, DType::F32, 1, "per-cube reconstruction SSE [M], eval mode")];
    StageIo::new(inputs, outputs)
}

vigil_stage_api::export_plugin!(Cae);

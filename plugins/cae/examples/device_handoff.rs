//! Two stages of one plugin library that hand a tensor from one to the
//! other on the GPU, with no host copy between them: the pattern for GPU
//! stages under stage-api 2.0 (docs/plugins.md, "Tensors on a GPU").
//!
//! - `gpu-frame-change` (a flow stage) uploads the frames once and computes,
//!   on the device, each pair's change of gray level as a stand-in for flow
//!   (`flow[..., 0]` = gray(t+1) - gray(t), `flow[..., 1]` = 0). Its `flow`
//!   stays on the GPU: a [`Tensor::from_device_buffer`] of this library's
//!   [`DeviceContext`].
//! - `gpu-change-boxes` (a localizer) reads that `flow` where it lies
//!   ([`Tensor::device_buffer`]), reduces each pair to the mean of
//!   |u| + |v| on the device, reads back one float per pair, and boxes every
//!   frame whose change reaches `threshold` (the whole frame). It reports
//!   the bytes it read back from the device as `readback_bytes`.
//!
//! Both stages share one wgpu device: statics are per library, and a wgpu
//! buffer belongs to the instance that made it. Built as a cdylib by
//! `cargo test -p vigil-plugin-cae --features gpu`, and loaded through the
//! plugin ABI by `tests/device_handoff.rs`.

use burn::tensor::{Device, DeviceKind as BurnDeviceKind, Tensor, TensorData};
use std::sync::OnceLock;
use vigil_stage_api::settings::Settings;
use vigil_stage_api::{
    export_plugin, names, settings, stage_info, Batch, DType, Device as TensorDevice, DeviceContext, DeviceKind, Flow, Localizer, Options,
    RResult, ResultExt, StageContext, StageError, StageFactory, StageInfo, StageInstance, StageIo, StageKind, TensorSpec,
};

/// The device buffers this library's stages hand each other.
static BUFFERS: DeviceContext<Tensor<4>> = DeviceContext::new();

/// The library's one wgpu device: the first adapter wgpu prefers, else a
/// software one (Mesa's lavapipe), set up once per process.
fn gpu() -> Result<Device, StageError> {
    static GPU: OnceLock<Result<Device, String>> = OnceLock::new();
    GPU.get_or_init(|| {
        Device::wgpu_options()
            .init()
            .or_else(|_| Device::wgpu_options().device_kind(BurnDeviceKind::Cpu).init())
            .map_err(|e| format!("no wgpu adapter: {e}"))
    })
    .clone()
    .map_err(StageError::invalid)
}

struct FrameChange {
    device: Device,
}

impl StageFactory for FrameChange {
    fn info() -> StageInfo {
        stage_info! {
            name: "gpu-frame-change",
            kind: StageKind::Flow,
            description: "each pair's change of gray level, computed and kept on the GPU",
            options: [],
        }
    }

    fn create(_options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        let io = StageIo::new(
            vec![TensorSpec::new(names::FRAMES, DType::U8, 4, "RGB frames [N, H, W, 3]")],
            vec![TensorSpec::new(names::FLOW, DType::F32, 4, "[N-1, H, W, 2]: gray change, 0").on(&[DeviceKind::Wgpu])],
        );
        Ok(StageInstance::flow(FrameChange { device: gpu()? }, io))
    }
}

impl Flow for FrameChange {
    fn process(&mut self, mut batch: Batch) -> RResult<Batch, StageError> {
        let change = (|| {
            let frames = batch.require(names::FRAMES)?;
            let [n, h, w, _] = frames.shape()[..] else { return Err(StageError::invalid("frames must be [N, H, W, 3]")) };
            let pixels: Vec<f32> = frames.as_slice::<u8>()?.iter().map(|&p| f32::from(p)).collect();
            let rgb = Tensor::<4>::from_data(TensorData::new(pixels, [n, h, w, 3]), &self.device);
            let gray = rgb.mean_dim(3);
            let pairs = n.saturating_sub(1);
            let later = gray.clone().slice([1..n, 0..h, 0..w, 0..1]);
            let earlier = gray.slice([0..pairs, 0..h, 0..w, 0..1]);
            let difference = later - earlier;
            let flow = Tensor::cat(vec![difference.clone(), difference.zeros_like()], 3);
            Ok(vigil_stage_api::Tensor::from_device_buffer(flow, &BUFFERS, TensorDevice::wgpu(0), DType::F32, &[pairs, h, w, 2]))
        })();
        match change {
            Ok(flow) => {
                batch.insert(names::FLOW, flow);
                RResult::ROk(batch)
            }
            Err(e) => RResult::RErr(e),
        }
    }
}

settings! {
    struct ChangeBoxesSettings {
        /// the mean absolute gray change (0-255) from which a frame is boxed
        threshold: f32 = 1.0 => vigil_stage_api::settings::finite,
    }
}

struct ChangeBoxes {
    threshold: f32,
}

impl StageFactory for ChangeBoxes {
    fn info() -> StageInfo {
        stage_info! {
            name: "gpu-change-boxes",
            kind: StageKind::Localizer,
            description: "boxes frames whose gray level changed, reading the change where it lies on the GPU",
            options: ChangeBoxesSettings::specs(),
        }
    }

    fn create(options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        let io = StageIo::new(
            vec![TensorSpec::new(names::FLOW, DType::F32, 4, "[N-1, H, W, 2] on the GPU, from gpu-frame-change").on(&[DeviceKind::Wgpu])],
            vec![
                TensorSpec::new(names::BOXES, DType::F32, 2, "[M, 7]: row, x1, y1, x2, y2, score, class"),
                TensorSpec::new("readback_bytes", DType::U32, 1, "[1]: bytes read back from the GPU for the batch"),
            ],
        );
        gpu()?;
        Ok(StageInstance::localizer(ChangeBoxes { threshold: ChangeBoxesSettings::from_options(options)?.threshold }, io))
    }
}

impl Localizer for ChangeBoxes {
    fn process(&mut self, batch: Batch) -> RResult<Batch, StageError> {
        let found = (|| {
            let flow = batch.require(names::FLOW)?;
            let shape = flow.shape();
            let change = flow.device_buffer(&BUFFERS).stage_context("`flow`")?;
            let pairs = shape[0];
            // |u| + |v| per pixel, averaged over the frame.
            let per_pair = change.clone().abs().sum_dim(3).mean_dim(2).mean_dim(1).reshape([pairs]);
            let means = per_pair.into_data().try_into_vec::<f32>().map_err(|e| StageError::invalid(format!("reading back: {e:?}")))?;
            let (h, w) = (shape[1] as f32, shape[2] as f32);
            // Pair p changes frame p + 1.
            let rows: Vec<f32> = means
                .iter()
                .enumerate()
                .filter(|(_, &mean)| mean >= self.threshold)
                .flat_map(|(p, &mean)| [(p + 1) as f32, 0.0, 0.0, w, h, mean, -1.0])
                .collect();
            let boxes = vigil_stage_api::Tensor::from_vec(rows.clone(), &[rows.len() / 7, 7]);
            let readback = vigil_stage_api::Tensor::from_vec(vec![(means.len() * std::mem::size_of::<f32>()) as u32], &[1]);
            Ok((boxes, readback))
        })();
        match found {
            Ok((boxes, readback)) => RResult::ROk(batch.with(names::BOXES, boxes).with("readback_bytes", readback)),
            Err(e) => RResult::RErr(e),
        }
    }
}

export_plugin!(
    library: "device-handoff",
    description: "Example: two stages that hand a tensor from one to the other on the GPU";
    FrameChange, ChangeBoxes
);

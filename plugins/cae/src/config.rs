//! The stage's options, read once at creation, and the device they select.

use crate::{kernels, matmul};
use burn::tensor::Device;
use vigil_stage_api::settings::{at_least, positive, Choice, Settings};
use vigil_stage_api::{memory, Options, StageContext, StageError};

vigil_stage_api::choice! {
    /// What the network reconstructs.
    pub enum Target {
        /// The appearance cube itself (15 -> 15 channels).
        Frames = "frames",
        /// The flow cube, predicted from the appearance cube (15 -> 10).
        Flow = "flow",
    }
}

vigil_stage_api::choice! {
    /// How the learning rate moves over the fit.
    pub enum LrSchedule {
        /// `lr` at every step, as the paper trains.
        Constant = "constant",
        /// `lr` decayed along half a cosine to 0 at the fit's last step: a short
        /// fit ends on small steps instead of stopping mid-stride.
        Cosine = "cosine",
    }
}

impl LrSchedule {
    /// The rate of 0-based step `step` of a fit that takes `total` steps.
    pub fn rate(self, lr: f64, step: u64, total: u64) -> f64 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let progress = step.min(total) as f64 / total.max(1) as f64;
                0.5 * lr * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

vigil_stage_api::choice! {
    /// Where the stage trains.
    pub enum DeviceChoice {
        /// Whatever the pipeline's `[pipeline] device` says.
        Pipeline = "pipeline",
        /// The CPU kernels.
        Cpu = "cpu",
        /// burn's wgpu backend (a build with the `gpu` feature).
        Gpu = "gpu",
        /// A real GPU when the build has the `gpu` feature and the machine
        /// has one, else the CPU kernels (a software GPU is never chosen).
        Auto = "auto",
    }
}

vigil_stage_api::choice! {
    /// How the CPU kernels multiply.
    pub enum Precision {
        /// f32 operands and sums.
        F32 = "f32",
        /// Operands rounded to bf16, sums in f32 (on AMX): faster
        /// products, operands with 8 bits of mantissa.
        Bf16 = "bf16",
    }
}

vigil_stage_api::settings! {
    /// The `cae` stage's options.
    pub struct CaeSettings {
        /// what to reconstruct: the appearance cube, or the flow cube predicted from it (needs `motion`)
        pub target: Target = Target::Frames,
        /// channels of the first DoubleConv (F); later blocks use 2F, 4F, 8F
        pub features_root: usize = 32 => at_least(1),
        /// training epochs
        pub epochs: u32 = 30 => at_least(1),
        /// cubes per training step
        pub batch_size: u32 = 256 => at_least(1),
        /// Adam learning rate (betas 0.9/0.999, eps 1e-8)
        pub lr: f64 = 1e-3 => positive,
        /// `constant` (the paper) or `cosine`: lr decays along half a cosine to 0 at the last step of the fit
        pub lr_schedule: LrSchedule = LrSchedule::Constant,
        /// where to train: `pipeline` follows `[pipeline] device`; `gpu` needs a build with the `gpu` feature; `auto` takes a real GPU when there is one, else the CPU
        pub device: DeviceChoice = DeviceChoice::Pipeline,
        /// products on the CPU: `f32`, or `bf16` (operands rounded to bf16, sums in f32, on AMX: `amx_bf16` in /proc/cpuinfo; faster steps and eval, accuracy in docs/benchmarks.md)
        pub precision: Precision = Precision::F32,
    }
}

/// The options and what the stage's context adds to them.
#[derive(Clone, Debug)]
pub struct CaeConfig {
    pub settings: CaeSettings,
    pub seed: u64,
    /// "cpu" or "gpu", resolved from the option and the pipeline (`auto` becomes one of them).
    pub device_name: String,
}

impl CaeConfig {
    pub fn from_options(options: &Options, context: &StageContext) -> Result<CaeConfig, StageError> {
        let settings = CaeSettings::from_options(options)?;
        let asked = match settings.device {
            DeviceChoice::Pipeline => context.device.to_string(),
            explicit => explicit.name().to_string(),
        };
        let device_name = if asked == "auto" { auto_device().to_string() } else { asked };
        let config = CaeConfig { settings, seed: context.seed, device_name };
        config.check_precision()?;
        config.device()?; // fail at creation (what `vigil check` runs), not at the first step
                          // The cube geometry is not known yet: the smallest cubes the network takes
                          // (one RGB frame, 8 x 8) give a lower bound; `fit_begin` checks the real one.
        config.ensure_fits(3, 8, "even the smallest cubes")?;
        Ok(config)
    }

    /// `bf16` needs the CPU kernels and a CPU with AMX-BF16.
    fn check_precision(&self) -> Result<(), StageError> {
        if self.settings.precision != Precision::Bf16 {
            return Ok(());
        }
        if self.device_name != "cpu" {
            return Err(StageError::invalid(format!(
                "option `precision` = \"bf16\" applies to the CPU kernels, but the stage trains on \"{}\": use \"f32\" or `device = \"cpu\"`",
                self.device_name
            )));
        }
        if !matmul::bf16::available() {
            return Err(StageError::invalid(
                "option `precision` = \"bf16\" needs a CPU with AMX-BF16 (`amx_bf16` in /proc/cpuinfo: Intel Xeon from Sapphire Rapids on) and Linux 5.16 or later, and this machine has not both: use \"f32\"",
            ));
        }
        Ok(())
    }

    /// An error naming the option to lower when a training step on cubes of
    /// `in_channels` x `size` x `size` would need more memory than the machine
    /// has; `which` says what those cubes are.
    pub fn ensure_fits(&self, in_channels: usize, size: usize, which: &str) -> Result<(), StageError> {
        let ops = kernels::layers(in_channels, in_channels, self.settings.features_root);
        let f = self.settings.features_root;
        memory::ensure_fits(
            &format!("option `features_root` = {f} (the weights alone)"),
            kernels::training_bytes(&ops, in_channels, size, 0),
        )?;
        memory::ensure_fits(
            &format!(
                "option `batch_size` = {} (with features_root {f}, for {which}: {in_channels} x {size} x {size})",
                self.settings.batch_size
            ),
            kernels::training_bytes(&ops, in_channels, size, self.settings.batch_size as usize),
        )
    }

    /// On a GPU, the largest buffer it allocates (bytes); `None` on the CPU,
    /// where the cubes are read where they lie.
    pub fn largest_device_buffer(&self) -> Result<Option<u64>, StageError> {
        match self.device_name.as_str() {
            "gpu" => gpu_largest_buffer().map(Some),
            _ => Ok(None),
        }
    }

    /// The plain (no autodiff) device the option selects.
    pub fn device(&self) -> Result<Device, StageError> {
        match self.device_name.as_str() {
            "cpu" => Ok(Device::flex()),
            "gpu" => gpu_device(),
            other => Err(StageError::invalid(format!("device: expected \"cpu\" or \"gpu\", found \"{other}\""))),
        }
    }
}

/// The GPU the `gpu` device trains on, initialized once per process (a
/// wgpu runtime cannot be set up twice): the first real adapter (discrete,
/// then integrated, then virtual), else a software one (Mesa's lavapipe,
/// which runs the same shaders on the CPU). Logs the adapter it chose.
#[cfg(feature = "gpu")]
pub(crate) fn gpu_device() -> Result<Device, StageError> {
    gpu_setup().map(|(device, _)| device)
}

/// The largest buffer the GPU allocates, in bytes (what decides whether
/// the cubes stay on it, `Cubes::upload`).
#[cfg(feature = "gpu")]
pub(crate) fn gpu_largest_buffer() -> Result<u64, StageError> {
    gpu_setup().map(|(_, largest)| largest)
}

#[cfg(feature = "gpu")]
fn gpu_setup() -> Result<(Device, u64), StageError> {
    static GPU: std::sync::OnceLock<Result<(Device, u64), String>> = std::sync::OnceLock::new();
    GPU.get_or_init(|| {
        let adapter = gpu::choose_adapter()?;
        tracing::info!("GPU: {}", gpu::describe(&adapter.info));
        if adapter.info.device_type == gpu::DeviceType::Cpu {
            tracing::warn!(
                "the only GPU adapter is a software one ({}): it runs the GPU path on the CPU, for testing, \
                 far slower than device = \"cpu\"",
                adapter.info.name
            );
        }
        let device = Device::wgpu_options()
            .device_kind(gpu::kind_of(&adapter.info))
            .init()
            .map_err(|e| format!("starting {}: {e}", gpu::describe(&adapter.info)))?;
        Ok((device, adapter.largest_buffer))
    })
    .clone()
    .map_err(StageError::invalid)
}

/// Adapters as wgpu lists them, read once per call.
#[cfg(feature = "gpu")]
pub(crate) mod gpu {
    use burn::tensor::wgpu::wgpu;
    use burn::tensor::DeviceKind;
    pub use wgpu::{AdapterInfo, DeviceType};

    /// An adapter: what wgpu says of it, and the largest buffer it allocates.
    #[derive(Clone, Debug)]
    pub struct Adapter {
        pub info: AdapterInfo,
        pub largest_buffer: u64,
    }

    /// Every adapter of every graphics API this build and machine have.
    pub fn adapters() -> Vec<Adapter> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::PRIMARY,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
            .iter()
            .map(|a| {
                let limits = a.limits();
                Adapter { info: a.get_info(), largest_buffer: limits.max_buffer_size.min(limits.max_storage_buffer_binding_size) }
            })
            .collect()
    }

    /// The preference order: real GPUs first, a software one last.
    fn rank(kind: DeviceType) -> Option<u8> {
        match kind {
            DeviceType::DiscreteGpu => Some(0),
            DeviceType::IntegratedGpu => Some(1),
            DeviceType::VirtualGpu => Some(2),
            DeviceType::Cpu => Some(3),
            DeviceType::Other => None,
        }
    }

    /// The adapter `device = "gpu"` trains on, or why there is none.
    pub fn choose_adapter() -> Result<Adapter, String> {
        let all = adapters();
        all.iter().filter_map(|a| Some((rank(a.info.device_type)?, a))).min_by_key(|(r, _)| *r).map(|(_, a)| a.clone()).ok_or_else(|| {
            format!(
                "device \"gpu\": no GPU adapter found ({}); install the GPU's Vulkan driver, or Mesa's software one \
                 (Debian: mesa-vulkan-drivers) to run the GPU path on the CPU",
                if all.is_empty() { "wgpu lists none".to_string() } else { format!("{} unusable", all.len()) }
            )
        })
    }

    /// Whether a real (not software) GPU adapter is present.
    pub fn has_real_gpu() -> bool {
        adapters().iter().any(|a| matches!(rank(a.info.device_type), Some(0..=2)))
    }

    /// burn's device kind for the first adapter of `adapter`'s type.
    pub fn kind_of(adapter: &AdapterInfo) -> DeviceKind {
        match adapter.device_type {
            DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu(0),
            DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu(0),
            DeviceType::VirtualGpu => DeviceKind::VirtualGpu(0),
            _ => DeviceKind::Cpu,
        }
    }

    pub fn describe(a: &AdapterInfo) -> String {
        format!("adapter `{}` ({:?}, {:?}, driver `{} {}`)", a.name, a.device_type, a.backend, a.driver, a.driver_info)
    }
}

/// What `auto` resolves to ("gpu" or "cpu"), decided once per process and logged.
pub fn auto_device() -> &'static str {
    static CHOICE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    CHOICE.get_or_init(|| {
        #[cfg(feature = "gpu")]
        if gpu::has_real_gpu() {
            tracing::info!("device \"auto\": the GPU (a real adapter is present)");
            return "gpu";
        }
        tracing::info!(
            "device \"auto\": the CPU ({})",
            if cfg!(feature = "gpu") { "no real GPU adapter found" } else { "this build of the `cae` plugin has no GPU backend" }
        );
        "cpu"
    })
}

#[cfg(not(feature = "gpu"))]
pub(crate) fn gpu_largest_buffer() -> Result<u64, StageError> {
    gpu_device().map(|_| 0)
}

#[cfg(not(feature = "gpu"))]
pub(crate) fn gpu_device() -> Result<Device, StageError> {
    Err(StageError::invalid(
        "device \"gpu\" asked for, but this build of the `cae` plugin has no GPU backend; \
         rebuild it with `cargo build --release -p vigil-plugin-cae --features gpu`, or set device = \"cpu\"",
    ))
}

#[cfg(test)]
mod tests {
    use super::LrSchedule;

    #[test]
    fn cosine_starts_at_lr_halves_midway_and_ends_near_zero() {
        let rate = |step| LrSchedule::Cosine.rate(1e-3, step, 100);
        assert_eq!(rate(0), 1e-3);
        assert!((rate(50) - 0.5e-3).abs() < 1e-12);
        assert!(rate(99) > 0.0 && rate(99) < 1e-6);
        assert_eq!(rate(100), 0.0);
        assert_eq!(rate(500), 0.0, "steps past the plan (a resumed, longer fit) stay at the floor");
        assert!((1..100).all(|s| rate(s) < rate(s - 1)), "strictly decreasing");
        assert_eq!(LrSchedule::Constant.rate(1e-3, 99, 100), 1e-3);
    }
}

//! The `cae` reconstructor: one autoencoder per band, trained step by step
//! by the runtime's fit loop.

use crate::checkpoint::{self, SavedStats, State};
use crate::config::CaeConfig;
use crate::cubes::Cubes;
use crate::init::model_seed;
use crate::kernels::{self, Op};
use crate::model::{adam, BandModel};
use crate::net::Autoencoder;
use crate::transfers::{TransferTotals, Transfers};
use burn::module::Module;
use burn::optim::OptimizerRecord;
use burn::tensor::Device;
use std::collections::BTreeMap;
use std::path::Path;
use vigil_stage_api::settings::Choice;
use vigil_stage_api::{Batch, FitPlan, ModelStats, RResult, RSlice, RStr, RVec, Reconstructor, ResultExt, StageError};

pub struct CaeStage {
    config: CaeConfig,
    /// Plain device (eval) and its autodiff twin (training).
    device: Device,
    train_device: Device,
    cubes: Option<Cubes>,
    models: BTreeMap<u32, BandModel>,
    /// [in, out] channels of the models in `models`.
    channels: Option<[usize; 2]>,
    statistics: Option<BTreeMap<u32, SavedStats>>,
    /// The eval-mode error of every fit cube under the current weights, as
    /// `statistics` computed them: scoring asks for the same errors next, and
    /// they cost a forward pass over every cube. Dropped when the weights or
    /// the cubes change.
    eval_errors: Option<Vec<f32>>,
    /// Band -> optimizer steps of the whole fit (epochs x mini-batches of
    /// the band's cubes), what the learning-rate schedule runs over.
    planned_steps: BTreeMap<u32, u64>,
    /// On a GPU, the largest buffer it allocates; `None` on the CPU.
    largest_device_buffer: Option<u64>,
    /// Host <-> device copies of the GPU path.
    transfers: Transfers,
    /// The totals when the fit began, for its summary.
    fit_start: TransferTotals,
}

impl CaeStage {
    pub fn new(config: CaeConfig) -> Result<CaeStage, StageError> {
        let device = config.device()?;
        let train_device = device.clone().autodiff();
        let largest_device_buffer = config.largest_device_buffer()?;
        Ok(CaeStage {
            largest_device_buffer,
            transfers: Transfers::default(),
            fit_start: TransferTotals::default(),
            config,
            device,
            train_device,
            cubes: None,
            models: BTreeMap::new(),
            channels: None,
            statistics: None,
            eval_errors: None,
            planned_steps: BTreeMap::new(),
        })
    }

    fn cubes(&self) -> Result<&Cubes, StageError> {
        self.cubes.as_ref().ok_or_else(|| StageError::invalid("no cubes yet: `fit_begin` must come before errors, steps and statistics"))
    }

    fn new_model(&self, band: u32, [cin, cout]: [usize; 2]) -> BandModel {
        let seed = model_seed(self.config.seed, band);
        BandModel::new(Autoencoder::new(cin, cout, self.config.settings.features_root, seed, &self.train_device))
    }

    /// Bytes moved between host and device memory so far (GPU only).
    pub fn transfers(&self) -> TransferTotals {
        self.transfers.totals()
    }

    /// `cubes` as this stage reads them: on a GPU, uploaded once when they
    /// fit its largest buffer.
    fn placed(&self, mut cubes: Cubes) -> Cubes {
        if let Some(largest) = self.largest_device_buffer {
            cubes.upload(&self.device, largest, &self.transfers);
        }
        cubes
    }

    fn fit_begin_impl(&mut self, batch: Batch) -> Result<FitPlan, StageError> {
        self.fit_start = self.transfers.totals();
        let cubes = Cubes::from_batch(batch, self.config.settings.target)?;
        let channels = [cubes.input_shape[0], cubes.target_shape[0]];
        self.config.ensure_fits(channels[0].max(channels[1]), cubes.input_shape[2], "these cubes")?;
        if self.channels.is_some_and(|c| c != channels) {
            // Models loaded from a checkpoint of another shape cannot train on these cubes.
            return Err(StageError::invalid(format!(
                "the loaded models map {:?} channels, these cubes need {:?}",
                self.channels.unwrap(),
                channels
            )));
        }
        let band_cubes = cubes.bands();
        let bands: Vec<u32> = band_cubes.keys().copied().collect();
        // The runtime steps through each band's cubes in mini-batches of
        // `batch_size`, the last one partial (FitPlan below).
        self.planned_steps = band_cubes
            .iter()
            .map(|(&band, indices)| {
                (band, self.config.settings.epochs as u64 * indices.len().div_ceil(self.config.settings.batch_size as usize) as u64)
            })
            .collect();
        // A checkpoint loaded before fit_begin is kept; bands it lacks start fresh.
        for &band in &bands {
            if !self.models.contains_key(&band) {
                let model = self.new_model(band, channels);
                self.models.insert(band, model);
            }
        }
        self.channels = Some(channels);
        self.cubes = Some(self.placed(cubes));
        self.statistics = None;
        self.eval_errors = None;
        tracing::debug!(bands = bands.len(), "cae: fit begins");
        Ok(FitPlan { epochs: self.config.settings.epochs, batch_size: self.config.settings.batch_size, models: bands.len() as u32 })
    }

    /// The layer list for the CPU kernels, when this stage trains on the CPU
    /// (on a GPU, burn's own ops run everything).
    fn kernel_layers(&self) -> Option<Vec<Op>> {
        let [cin, cout] = self.channels?;
        (self.config.device_name == "cpu").then(|| kernels::layers(cin, cout, self.config.settings.features_root))
    }

    fn model(&self, band: u32) -> Result<&BandModel, StageError> {
        self.models.get(&band).ok_or_else(|| StageError::invalid(format!("no model for band {band}")))
    }

    fn errors_impl(&self, indices: &[u32]) -> Result<Vec<f32>, StageError> {
        let cubes = self.cubes()?;
        if let Some(all) = &self.eval_errors {
            cubes.group_by_band(indices)?; // the same range check as a computed answer
            return Ok(indices.iter().map(|&i| all[i as usize]).collect());
        }
        self.errors_in(cubes, indices)
    }

    /// Errors of new cubes with the current models; the cubes are dropped after.
    fn errors_of_impl(&self, batch: Batch) -> Result<Vec<f32>, StageError> {
        let cubes = Cubes::from_batch(batch, self.config.settings.target)?;
        let channels = [cubes.input_shape[0], cubes.target_shape[0]];
        if self.channels != Some(channels) {
            return Err(StageError::invalid(format!(
                "these cubes need models of {channels:?} channels, the fitted or loaded models map {:?}",
                self.channels
            )));
        }
        let cubes = self.placed(cubes);
        let all: Vec<u32> = (0..cubes.len() as u32).collect();
        self.errors_in(&cubes, &all)
    }

    fn errors_in(&self, cubes: &Cubes, indices: &[u32]) -> Result<Vec<f32>, StageError> {
        let mut out = vec![0f32; indices.len()];
        let chunk = self.config.settings.batch_size as usize;
        let layers = self.kernel_layers();
        for (band, (positions, ids)) in cubes.group_by_band(indices)? {
            let model = self.model(band)?;
            for (pos, ids) in positions.chunks(chunk).zip(ids.chunks(chunk)) {
                let errors = match &layers {
                    Some(ops) => {
                        let input = cubes.input_values(ids);
                        let target = cubes.target_values(ids);
                        model.kernel_errors(
                            ops,
                            self.config.settings.precision,
                            &input,
                            target.as_deref().unwrap_or(&input),
                            cubes.dims(),
                        )?
                    }
                    None => {
                        let (input, target) = cubes.batch(ids, &self.device, &self.transfers);
                        model.errors(input, target, &self.transfers)?
                    }
                };
                for (&p, e) in pos.iter().zip(errors) {
                    out[p] = e;
                }
            }
        }
        Ok(out)
    }

    fn step_impl(&mut self, indices: &[u32], weights: &[f32]) -> Result<f32, StageError> {
        if indices.len() != weights.len() {
            return Err(StageError::invalid(format!("{} cube indices but {} weights", indices.len(), weights.len())));
        }
        if let Some(w) = weights.iter().find(|w| !w.is_finite() || **w < 0.0) {
            return Err(StageError::invalid(format!("sample weights must be finite and >= 0, found {w}")));
        }
        let cubes = self.cubes.as_ref().ok_or_else(|| StageError::invalid("`step` before `fit_begin`"))?;
        let band = cubes.single_band(indices)?;
        let layers = self.kernel_layers();
        let model = self.models.get_mut(&band).ok_or_else(|| StageError::invalid(format!("no model for band {band}")))?;
        let lr = self.config.settings.lr_schedule.rate(
            self.config.settings.lr,
            model.steps,
            self.planned_steps.get(&band).copied().unwrap_or(0),
        );
        let loss = match layers {
            Some(ops) => {
                let input = cubes.input_values(indices);
                let target = cubes.target_values(indices);
                let target = target.as_deref().unwrap_or(&input);
                model.kernel_step(
                    &ops,
                    self.config.settings.precision,
                    &input,
                    target,
                    weights,
                    cubes.dims(),
                    lr,
                    &self.device,
                    &self.train_device,
                )
            }
            None => {
                let (input, target) = cubes.batch(indices, &self.train_device, &self.transfers);
                model.step(input, target, weights, lr, &self.train_device, &self.transfers)
            }
        };
        let loss = loss.map_err(|e| StageError::new(format!("band {band}: {}", e.message)))?;
        self.statistics = None;
        self.eval_errors = None;
        Ok(loss)
    }

    fn statistics_impl(&mut self) -> Result<Vec<ModelStats>, StageError> {
        if self.statistics.is_none() {
            let cubes = self.cubes()?;
            let mut stats = BTreeMap::new();
            let mut all = vec![0f32; cubes.len()];
            for (band, indices) in cubes.bands() {
                let errors = self.errors_impl(&indices)?;
                stats.insert(band, population_stats(&errors));
                for (&i, e) in indices.iter().zip(errors) {
                    all[i as usize] = e;
                }
            }
            self.statistics = Some(stats);
            self.eval_errors = Some(all);
            if self.largest_device_buffer.is_some() {
                let fit = self.transfers.totals().since(&self.fit_start);
                let per_step = |bytes: u64| bytes / fit.steps.max(1);
                tracing::info!(
                    "cae: host <-> device copies of this fit: {fit}; per step, {} bytes of cubes, {} other bytes up and {} back \
                     (the refiner's error requests and the statistics included)",
                    per_step(fit.cubes_to_device),
                    per_step(fit.other_to_device),
                    per_step(fit.to_host)
                );
            }
        }
        let stats = self.statistics.as_ref().expect("just computed");
        Ok(stats.iter().map(|(&model, s)| ModelStats { model, count: s.count, mean: s.mean, std: s.std }).collect())
    }

    fn save_impl(&mut self, dir: &Path) -> Result<(), StageError> {
        let channels = self.channels.ok_or_else(|| StageError::invalid("nothing to save: no model was trained or loaded"))?;
        std::fs::create_dir_all(dir).stage_context(format_args!("creating {}", dir.display()))?;
        let save_id = checkpoint::new_save_id();
        let mut tensors = Vec::new();
        for (band, model) in &self.models {
            checkpoint::collect(&model.net.valid(), &format!("band{band}"), &mut tensors);
            let (tmp, dest) = checkpoint::temp_path(dir, &checkpoint::optimizer_file(*band));
            model.optim.save(&tmp).stage_context(format_args!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &dest).stage_context(format_args!("renaming {}", tmp.display()))?;
        }
        checkpoint::write_atomic(dir, checkpoint::WEIGHTS_FILE, &checkpoint::to_safetensors(&tensors, &save_id)?)?;
        let state = State {
            format: "vigil-cae/1".into(),
            save_id,
            target: self.config.settings.target.name().into(),
            features_root: self.config.settings.features_root,
            in_channels: channels[0],
            out_channels: channels[1],
            steps: self.models.iter().map(|(&b, m)| (b, m.steps)).collect(),
            statistics: self.statistics.clone().unwrap_or_default(),
        };
        let json = serde_json::to_vec_pretty(&state).stage_context("encoding state.json")?;
        checkpoint::write_atomic(dir, checkpoint::STATE_FILE, &json)
    }

    fn load_impl(&mut self, dir: &Path) -> Result<bool, StageError> {
        let state_path = dir.join(checkpoint::STATE_FILE);
        if !state_path.exists() {
            return Ok(false);
        }
        let text = std::fs::read(&state_path).stage_context(format_args!("reading {}", state_path.display()))?;
        let state: State = serde_json::from_slice(&text).stage_context(format_args!("parsing {}", state_path.display()))?;
        let mismatch = |what: &str, saved: String, now: String| {
            StageError::invalid(format!("{}: checkpoint has {what} {saved}, this stage is configured with {now}", dir.display()))
        };
        if state.target != self.config.settings.target.name() {
            return Err(mismatch("target", state.target.clone(), self.config.settings.target.name().into()));
        }
        if state.features_root != self.config.settings.features_root {
            return Err(mismatch("features_root", state.features_root.to_string(), self.config.settings.features_root.to_string()));
        }
        let weights_path = dir.join(checkpoint::WEIGHTS_FILE);
        let bytes = std::fs::read(&weights_path).stage_context(format_args!("reading {}", weights_path.display()))?;
        let mut weights = checkpoint::from_safetensors(&bytes, &weights_path)?;
        if weights.save_id != state.save_id {
            return Err(StageError::invalid(format!(
                "{}: weights and state.json come from different saves (an interrupted save?)",
                dir.display()
            )));
        }
        let channels = [state.in_channels, state.out_channels];
        let mut models = BTreeMap::new();
        // state.json is checked against the weights before a model is built
        // from it: channels that the weights do not hold would allocate by a
        // corrupt claim.
        let needed = kernels::parameter_count(&kernels::layers(channels[0], channels[1], self.config.settings.features_root));
        for (&band, &steps) in &state.steps {
            let stored = weights.values_under(&format!("band{band}."));
            if needed > stored as u64 {
                return Err(StageError::invalid(format!(
                    "{}: state.json describes band {band} as a {} -> {} channel model of {needed} weights, but the weights file \
                     holds {stored} values for it: the files do not belong together (corrupt?)",
                    dir.display(),
                    channels[0],
                    channels[1]
                )));
            }
            let fresh = self.new_model(band, channels);
            let net = checkpoint::apply(fresh.net, &format!("band{band}"), &mut weights)?;
            let opt_path = dir.join(checkpoint::optimizer_file(band));
            let record = OptimizerRecord::load(&opt_path).stage_context(format_args!("reading {}", opt_path.display()))?;
            models.insert(band, BandModel { net, optim: adam().load_record(record), steps });
        }
        self.models = models;
        self.channels = Some(channels);
        self.eval_errors = None;
        self.statistics = if state.statistics.is_empty() { None } else { Some(state.statistics) };
        Ok(true)
    }
}

/// Mean and population (ddof 0) standard deviation, accumulated in f64.
pub fn population_stats(errors: &[f32]) -> SavedStats {
    let n = errors.len() as f64;
    let mean = errors.iter().map(|&e| e as f64).sum::<f64>() / n.max(1.0);
    let var = errors.iter().map(|&e| (e as f64 - mean).powi(2)).sum::<f64>() / n.max(1.0);
    SavedStats { count: errors.len() as u64, mean, std: var.sqrt() }
}

impl Reconstructor for CaeStage {
    fn fit_begin(&mut self, cubes: Batch) -> RResult<FitPlan, StageError> {
        self.fit_begin_impl(cubes).into()
    }
    fn errors(&mut self, indices: RSlice<'_, u32>) -> RResult<RVec<f32>, StageError> {
        self.errors_impl(indices.as_slice()).map(RVec::from).into()
    }
    fn step(&mut self, indices: RSlice<'_, u32>, weights: RSlice<'_, f32>) -> RResult<f32, StageError> {
        self.step_impl(indices.as_slice(), weights.as_slice()).into()
    }
    fn statistics(&mut self) -> RResult<RVec<ModelStats>, StageError> {
        self.statistics_impl().map(RVec::from).into()
    }
    fn save(&mut self, dir: RStr<'_>) -> RResult<(), StageError> {
        self.save_impl(Path::new(dir.as_str())).into()
    }
    fn load(&mut self, dir: RStr<'_>) -> RResult<bool, StageError> {
        self.load_impl(Path::new(dir.as_str())).into()
    }
    fn errors_of(&mut self, cubes: Batch) -> RResult<RVec<f32>, StageError> {
        self.errors_of_impl(cubes).map(RVec::from).into()
    }
}

/// The GPU path keeps the cubes on the device (in CI, on Mesa's software
/// Vulkan driver): they go up once per fit, and a step moves its indices,
/// weights and loss, not its cubes.
#[cfg(all(test, feature = "gpu"))]
mod gpu_tests {
    use super::*;
    use crate::config::{CaeSettings, DeviceChoice};
    use vigil_stage_api::{names, FrameId, Tensor as AbiTensor};

    const CUBES: usize = 8;
    const CHANNELS: usize = 15;
    const SIZE: usize = 16;
    const F32: u64 = 4;

    fn gpu_stage() -> CaeStage {
        let settings = CaeSettings { features_root: 4, epochs: 1, batch_size: 4, device: DeviceChoice::Gpu, ..Default::default() };
        CaeStage::new(CaeConfig { settings, seed: 5, device_name: "gpu".into() })
            .expect("a wgpu adapter (scripts/deps.sh installs lavapipe)")
    }

    fn cubes() -> Batch {
        let values: Vec<u8> = (0..CUBES * CHANNELS * SIZE * SIZE).map(|i| (i * 37 % 251) as u8).collect();
        let ids = (0..CUBES as u32).map(|frame| FrameId { video: 0, frame }).collect();
        Batch::new(ids)
            .with(names::APPEARANCE, AbiTensor::from_vec(values, &[CUBES, CHANNELS, SIZE, SIZE]))
            .with(names::BAND, AbiTensor::from_vec(vec![0u32; CUBES], &[CUBES]))
    }

    #[test]
    fn on_the_gpu_cubes_go_up_once_and_a_step_moves_only_indices_weights_and_loss() {
        let cube_bytes = (CHANNELS * SIZE * SIZE) as u64 * F32;
        let mut resident = gpu_stage();
        resident.fit_begin_impl(cubes()).unwrap();
        assert_eq!(resident.transfers().cubes_to_device, CUBES as u64 * cube_bytes, "every cube, once");
        // The same model with cubes uploaded per batch: a device whose
        // largest buffer holds none of them.
        let mut per_batch = gpu_stage();
        per_batch.largest_device_buffer = Some(0);
        per_batch.fit_begin_impl(cubes()).unwrap();
        assert_eq!(per_batch.transfers().cubes_to_device, 0);

        let (indices, weights) = ([6, 0, 3, 5], [1.0, 0.5, 1.0, 0.0]);
        let before = resident.transfers();
        let loss = resident.step_impl(&indices, &weights).unwrap();
        let step = resident.transfers().since(&before);
        vigil_stage_testkit::note(&format!("a step of 4 cubes on the GPU moved {step}"));
        assert_eq!(step, TransferTotals { cubes_to_device: 0, other_to_device: 4 * 4 + 4 * F32, to_host: F32, steps: 1 });
        let before = per_batch.transfers();
        let same = per_batch.step_impl(&indices, &weights).unwrap();
        assert_eq!(per_batch.transfers().since(&before).cubes_to_device, 4 * cube_bytes);
        assert!((loss - same).abs() <= 1e-5 * same.abs(), "gathered on the device: loss {loss}, uploaded: {same}");

        let before = resident.transfers();
        let errors = resident.errors_impl(&[7, 1, 2]).unwrap();
        assert_eq!(
            resident.transfers().since(&before),
            TransferTotals { cubes_to_device: 0, other_to_device: 3 * 4, to_host: 3 * F32, steps: 0 }
        );
        let expected = per_batch.errors_impl(&[7, 1, 2]).unwrap();
        for (a, b) in errors.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-5 * b.abs(), "eval errors: {errors:?} against {expected:?}");
        }
    }
}

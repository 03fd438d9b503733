//! One band's model: network, Adam state and step count; the weighted
//! training step (docs/method.md 5.4) and eval-mode per-sample errors.

use crate::config::Precision;
use crate::kernels::{self, Op, Weights};
use crate::net::{Autoencoder, ParamRef};
use crate::transfers::Transfers;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use vigil_stage_api::StageError;

/// What [`Weights`] borrows: every parameter in `layers` order, and each
/// BatchNorm's running mean and variance.
type KernelValues = (Vec<Vec<f32>>, Vec<(Vec<f32>, Vec<f32>)>);

pub struct BandModel {
    /// Lives on the autodiff device; `valid()` gives the eval-mode copy.
    pub net: Autoencoder,
    pub optim: ModuleOptimizer,
    pub steps: u64,
}

/// Adam as in the reference code: betas (0.9, 0.999), eps 1e-8 (burn's default is 1e-5).
pub fn adam() -> ModuleOptimizer {
    AdamConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).init()
}

/// Per-sample sum of squared errors, [B].
fn sse(output: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let [b, c, h, w] = output.dims();
    (output - target).square().reshape([b, c * h * w]).sum_dim(1).reshape([b])
}

impl BandModel {
    pub fn new(net: Autoencoder) -> BandModel {
        BandModel { net, optim: adam(), steps: 0 }
    }

    /// Eval-mode (running BatchNorm statistics) SSE of each sample, no gradients.
    pub fn errors(&self, input: Tensor<4>, target: Tensor<4>, transfers: &Transfers) -> Result<Vec<f32>, StageError> {
        let eval = self.net.valid();
        let out = eval.forward(input);
        let errors = sse(out, target).into_data().try_into_vec::<f32>().map_err(|e| StageError::new(format!("reading errors: {e:?}")))?;
        transfers.downloaded(std::mem::size_of_val(errors.as_slice()));
        Ok(errors)
    }

    /// L = sum_i w_i * SSE_i / (B * C * H * W) in training mode, on `device`.
    fn loss(&self, input: Tensor<4>, target: Tensor<4>, weights: &[f32], device: &Device, transfers: &Transfers) -> Tensor<1> {
        let [b, c, h, w] = target.dims();
        let per_sample = sse(self.net.forward(input), target);
        transfers.uploaded(std::mem::size_of_val(weights));
        let weights = Tensor::<1>::from_data(TensorData::new(weights.to_vec(), [b]), device);
        (per_sample * weights).sum().div_scalar((b * c * h * w) as f64)
    }

    /// One Adam step on L = sum_i w_i * SSE_i / (B * C * H * W). Returns L.
    /// A non-finite loss is an error and leaves the model untouched.
    pub fn step(
        &mut self,
        input: Tensor<4>,
        target: Tensor<4>,
        weights: &[f32],
        lr: f64,
        device: &Device,
        transfers: &Transfers,
    ) -> Result<f32, StageError> {
        let loss = self.loss(input, target, weights, device, transfers);
        let value: f32 = loss.clone().into_scalar();
        transfers.downloaded(std::mem::size_of::<f32>());
        transfers.step_taken();
        if !value.is_finite() {
            return Err(StageError::new(format!(
                "the loss is {value} (not finite) at model step {}; the model was not updated",
                self.steps + 1
            )));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.net);
        self.net = self.optim.step(lr, self.net.clone(), grads);
        self.steps += 1;
        Ok(value)
    }

    /// The network's values as the CPU kernels take them.
    fn kernel_values(&self) -> Result<KernelValues, StageError> {
        let read = |t: TensorData| t.try_into_vec::<f32>().map_err(|e| StageError::new(format!("reading the model's weights: {e:?}")));
        let params = self
            .net
            .params()
            .into_iter()
            .map(|p| match p {
                ParamRef::Rank1(p) => read(p.val().into_data()),
                ParamRef::Rank4(p) => read(p.val().into_data()),
            })
            .collect::<Result<_, _>>()?;
        let running = self
            .net
            .batch_norms()
            .into_iter()
            .map(|bn| {
                let (mean, var) = bn.running();
                Ok((read(mean.into_data())?, read(var.into_data())?))
            })
            .collect::<Result<_, StageError>>()?;
        Ok((params, running))
    }

    /// [`BandModel::errors`] on the CPU kernels; `input` and `target` are
    /// [B, C, S, S] values, `dims` [input channels, target channels, S].
    pub fn kernel_errors(
        &self,
        ops: &[Op],
        precision: Precision,
        input: &[f32],
        target: &[f32],
        dims: [usize; 3],
    ) -> Result<Vec<f32>, StageError> {
        let (params, running) = self.kernel_values()?;
        Ok(kernels::errors(ops, &Weights { params: &params, running: &running }, precision, input, target, dims))
    }

    /// [`BandModel::step`] with forward and backward on the CPU kernels and
    /// the update by burn's Adam. `device` is the plain device the gradients
    /// live on, `train_device` the model's.
    #[allow(clippy::too_many_arguments)]
    pub fn kernel_step(
        &mut self,
        ops: &[Op],
        precision: Precision,
        input: &[f32],
        target: &[f32],
        weights: &[f32],
        dims: [usize; 3],
        lr: f64,
        device: &Device,
        train_device: &Device,
    ) -> Result<f32, StageError> {
        let (params, running) = self.kernel_values()?;
        let result = kernels::train_step(ops, &Weights { params: &params, running: &running }, precision, input, target, weights, dims);
        if !result.loss.is_finite() {
            return Err(StageError::new(format!(
                "the loss is {} (not finite) at model step {}; the model was not updated",
                result.loss,
                self.steps + 1
            )));
        }
        let mut grads = GradientsParams::new();
        for (param, grad) in self.net.params().into_iter().zip(result.grads) {
            match param {
                ParamRef::Rank1(p) => grads.register(p.id, Tensor::<1>::from_data(TensorData::new(grad, p.val().dims()), device)),
                ParamRef::Rank4(p) => grads.register(p.id, Tensor::<4>::from_data(TensorData::new(grad, p.val().dims()), device)),
            }
        }
        for (bn, stats) in self.net.batch_norms().into_iter().zip(result.batch_stats) {
            let c = stats.mean.len();
            let tensor = |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [c]), train_device);
            bn.update_running(tensor(stats.mean), tensor(stats.var), stats.count);
        }
        self.net = self.optim.step(lr, self.net.clone(), grads);
        free_dropped_graphs(train_device);
        self.steps += 1;
        Ok(result.loss)
    }
}

/// Frees the autodiff graphs of tensors nobody holds any more. burn's
/// autodiff backend (0.22) sweeps them only at the end of a `backward`, and
/// the kernel path computes its gradients without one, while each optimizer
/// step marks every new parameter as requiring grad: a graph per parameter
/// per step stayed behind, about 160 KB a step, a third of a gigabyte over
/// a ped2-fast fit (docs/benchmarks.md, "Memory"). A backward through one
/// value runs the sweep.
fn free_dropped_graphs(train_device: &Device) {
    let _ = Tensor::<1>::zeros([1], train_device).require_grad().sum().backward();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::layers;

    const DIMS: [usize; 3] = [15, 15, 16];
    const F: usize = 4;

    fn model(device: &Device) -> BandModel {
        BandModel::new(Autoencoder::new(DIMS[0], DIMS[1], F, 11, device))
    }

    fn batch(samples: usize, seed: u64) -> Vec<f32> {
        let mut rng = crate::init::Rng::new(seed);
        (0..samples * DIMS[0] * DIMS[2] * DIMS[2]).map(|_| (rng.next_u64() % 256) as f32 / 255.0).collect()
    }

    fn tensor(values: &[f32], device: &Device) -> Tensor<4> {
        let [c, _, s] = DIMS;
        Tensor::from_data(TensorData::new(values.to_vec(), [values.len() / (c * s * s), c, s, s]), device)
    }

    fn max_abs(v: &[f32]) -> f32 {
        v.iter().fold(0f32, |m, x| m.max(x.abs()))
    }

    /// Asserts |a - b| <= tol * max(|b|) element-wise. Values under `floor`
    /// count as noise: the gradient of a convolution bias that a BatchNorm
    /// follows is zero up to rounding.
    fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32, floor: f32) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = max_abs(b).max(floor);
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= tol * scale, "{what}: largest difference {worst} against a largest value of {scale}");
    }

    /// burn's autodiff on `train` against the CPU kernels on the same
    /// weights and batch: the loss to `loss_tol`, every parameter gradient to
    /// `grad_tol` of its largest value or of `noise_floor`, whichever is
    /// larger (see [`assert_close`]). The kernels multiply at `precision`.
    fn assert_gradients_match(train: &Device, precision: Precision, loss_tol: f32, grad_tol: f32, noise_floor: f32) {
        let ops = layers(DIMS[0], DIMS[1], F);
        let (burn_model, kernel_model) = (model(train), model(&Device::flex().autodiff()));
        // Five samples cut into uneven chunks; weights as SPR gives them, zeros included.
        let input = batch(5, 3);
        let weights = [1.0, 0.0, 0.25, 1.0, 0.6];

        let loss = burn_model.loss(tensor(&input, train), tensor(&input, train), &weights, train, &Transfers::default());
        let burn_loss: f32 = loss.clone().into_scalar();
        let burn_grads = GradientsParams::from_grads(loss.backward(), &burn_model.net);
        let (params, running) = kernel_model.kernel_values().unwrap();
        let result = kernels::train_step(&ops, &Weights { params: &params, running: &running }, precision, &input, &input, &weights, DIMS);
        assert!((result.loss - burn_loss).abs() <= loss_tol * burn_loss.abs(), "loss {} against burn's {burn_loss}", result.loss);

        // Chunks may run on any thread; the sums must not depend on which.
        let again = kernels::train_step(&ops, &Weights { params: &params, running: &running }, precision, &input, &input, &weights, DIMS);
        assert!(again.grads == result.grads && again.loss == result.loss, "a repeated step gave other gradients");

        let params = burn_model.net.params();
        assert_eq!(params.len(), result.grads.len());
        for (i, (param, grad)) in params.into_iter().zip(&result.grads).enumerate() {
            let expected = match param {
                ParamRef::Rank1(p) => burn_grads.get::<1>(p.id).unwrap().into_data(),
                ParamRef::Rank4(p) => burn_grads.get::<4>(p.id).unwrap().into_data(),
            };
            assert_close(&format!("gradient of parameter {i}"), grad, &expected.try_into_vec::<f32>().unwrap(), grad_tol, noise_floor);
        }
    }

    /// Three Adam steps of burn on `plain`'s autodiff twin against three of
    /// the kernels: the losses to `tol`, the running statistics after the
    /// first, and the eval errors of the burn-trained model through both paths.
    fn assert_steps_match(plain: &Device, tol: f32) {
        let train = plain.clone().autodiff();
        let (cpu, cpu_train) = (Device::flex(), Device::flex().autodiff());
        let ops = layers(DIMS[0], DIMS[1], F);
        let (mut burn_model, mut kernel_model) = (model(&train), model(&cpu_train));
        let weights = [1.0, 1.0, 0.5, 0.0];
        for step in 0..3 {
            let input = batch(4, 20 + step);
            let a = burn_model.step(tensor(&input, &train), tensor(&input, &train), &weights, 1e-3, &train, &Transfers::default()).unwrap();
            let b = kernel_model.kernel_step(&ops, Precision::F32, &input, &input, &weights, DIMS, 1e-3, &cpu, &cpu_train).unwrap();
            assert!((a - b).abs() <= tol * a.abs(), "step {step}: loss {b} against burn's {a}");
            if step == 0 {
                // Later steps differ in the pre-BatchNorm biases: their gradients are rounding
                // noise, which Adam scales up to full-size steps, so only the first is compared.
                let (_, burn_running) = burn_model.kernel_values().unwrap();
                let (_, kernel_running) = kernel_model.kernel_values().unwrap();
                for (i, (a, b)) in kernel_running.iter().zip(&burn_running).enumerate() {
                    assert_close(&format!("running mean {i}"), &a.0, &b.0, tol, 1e-6);
                    assert_close(&format!("running variance {i}"), &a.1, &b.1, tol, 1e-6);
                }
            }
        }
        // Eval mode (running statistics) through both paths on one model.
        let probe = batch(7, 99);
        let burn_errors = burn_model.errors(tensor(&probe, plain), tensor(&probe, plain), &Transfers::default()).unwrap();
        let kernel_errors = burn_model.kernel_errors(&ops, Precision::F32, &probe, &probe, DIMS).unwrap();
        assert_close("eval errors", &kernel_errors, &burn_errors, tol, 0.0);
    }

    #[test]
    fn kernel_gradients_match_burn_autodiff() {
        // The floor is for the biases of convolutions that a BatchNorm
        // follows: their gradients are zero up to rounding (under 1e-7 here,
        // and off by up to 2.2e-7); every other gradient's largest value is
        // above 2.6e-3.
        assert_gradients_match(&Device::flex().autodiff(), Precision::F32, 1e-5, 2e-3, 1e-3);
    }

    /// bf16 products (operands with 8 bits of mantissa, f32 sums) against
    /// f32 ones on the same weights and batch. Rounding the forward pass's
    /// operands moves the point where the gradient is taken (through
    /// BatchNorm over a small batch, by up to a third of a layer's largest
    /// gradient in this small network), so the gradients are held to their
    /// direction, not their values: the loss to 1%, each weight's gradient
    /// to a cosine of at least 0.9 with f32's, the eval errors to 1%.
    #[test]
    fn bf16_kernel_gradients_and_errors_stay_near_f32() {
        if !crate::matmul::bf16::available() {
            vigil_stage_testkit::note("skipped: this CPU or system has no AMX-BF16 for `precision = \"bf16\"`");
            return;
        }
        let ops = layers(DIMS[0], DIMS[1], F);
        let model = model(&Device::flex().autodiff());
        let (params, running) = model.kernel_values().unwrap();
        let input = batch(8, 3);
        let weights = [1.0, 0.0, 0.25, 1.0, 0.6, 1.0, 1.0, 0.5];
        let step = |precision| {
            kernels::train_step(&ops, &Weights { params: &params, running: &running }, precision, &input, &input, &weights, DIMS)
        };
        let (f32_step, bf16_step) = (step(Precision::F32), step(Precision::Bf16));
        assert!((bf16_step.loss - f32_step.loss).abs() <= 1e-2 * f32_step.loss, "loss {} against {}", bf16_step.loss, f32_step.loss);
        // A convolution's bias that a BatchNorm follows has a zero gradient
        // up to rounding: noise in both, with no direction to compare.
        let mut noise = Vec::new();
        let mut p = 0;
        for (op, next) in ops.iter().zip(ops.iter().skip(1).map(Some).chain([None])) {
            if matches!((op, next), (Op::Conv { .. }, Some(Op::BnRelu { .. }))) {
                noise.push(p + 1);
            }
            p += op.param_shapes().len();
        }
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>();
        for (i, (bf16, f32)) in bf16_step.grads.iter().zip(&f32_step.grads).enumerate().filter(|(i, _)| !noise.contains(i)) {
            let cosine = dot(bf16, f32) / (dot(bf16, bf16) * dot(f32, f32)).sqrt();
            assert!(cosine >= 0.9, "gradient of parameter {i}: cosine {cosine} with the f32 gradient");
        }
        let probe = batch(6, 9);
        let errors = |precision| model.kernel_errors(&ops, precision, &probe, &probe, DIMS).unwrap();
        let (f32_errors, bf16_errors) = (errors(Precision::F32), errors(Precision::Bf16));
        for (bf16, f32) in bf16_errors.iter().zip(&f32_errors) {
            assert!((bf16 - f32).abs() <= 1e-2 * f32, "eval error {bf16} with bf16 products against {f32} with f32");
        }
    }

    #[test]
    fn kernel_steps_train_like_burn_steps() {
        assert_steps_match(&Device::flex(), 1e-4);
    }

    /// The GPU path (burn's wgpu backend; in CI, Mesa's software Vulkan
    /// driver) against the CPU kernels, at the CPU path's own tolerances.
    #[cfg(feature = "gpu")]
    mod gpu {
        use super::*;

        fn device() -> Device {
            let adapter =
                crate::config::gpu::choose_adapter().expect("a wgpu adapter (scripts/deps.sh installs Mesa's software Vulkan driver)");
            vigil_stage_testkit::note(&format!("on the GPU {}", crate::config::gpu::describe(&adapter.info)));
            crate::config::gpu_device().expect("the GPU device starts")
        }

        /// The zero-up-to-rounding bias gradients come out of the GPU's
        /// parallel sums with about twice the CPU's noise (2e-7 on lavapipe),
        /// hence a noise floor of 1e-3 instead of 1e-4; every other gradient
        /// is held to the CPU path's 2e-3 of its largest value.
        #[test]
        fn gpu_loss_and_gradients_match_the_cpu_kernels() {
            assert_gradients_match(&device().autodiff(), Precision::F32, 1e-5, 2e-3, 1e-3);
        }

        #[test]
        fn gpu_steps_running_statistics_and_eval_errors_match_the_cpu_kernels() {
            assert_steps_match(&device(), 1e-4);
        }
    }
}

//! One band's model: network, Adam state and step count; the weighted
//! training step (method.md 3.3) and eval-mode per-sample errors.

use crate::net::Autoencoder;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use vigil_stage_api::StageError;

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
    pub fn errors(&self, input: Tensor<4>, target: Tensor<4>) -> Result<Vec<f32>, StageError> {
        let eval = self.net.valid();
        let out = eval.forward(input);
        sse(out, target).into_data().try_into_vec::<f32>().map_err(|e| StageError::new(format!("reading errors: {e:?}")))
    }

    /// One Adam step on L = sum_i w_i * SSE_i / (B * C * H * W). Returns L.
    /// A non-finite loss is an error and leaves the model untouched.
    pub fn step(&mut self, input: Tensor<4>, target: Tensor<4>, weights: &[f32], lr: f64, device: &Device) -> Result<f32, StageError> {
        let [b, c, h, w] = target.dims();
        let out = self.net.forward(input);
        let per_sample = sse(out, target);
        let weights = Tensor::<1>::from_data(TensorData::new(weights.to_vec(), [b]), device);
        let loss = (per_sample * weights).sum().div_scalar((b * c * h * w) as f64);
        let value: f32 = loss.clone().into_scalar();
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
}

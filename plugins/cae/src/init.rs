//! Seeded weight initialization that does not touch burn's process-wide RNG,
//! so two models (or two tests) never race for it.

use burn::tensor::{Device, Tensor, TensorData};
use vigil_stage_api::SplitMix64;

/// Draws initial weights from stage-api's SplitMix64 (good enough for that,
/// and the same stream for a seed on every platform).
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64(seed))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in [-1, 1).
    fn symmetric(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for conv weights
/// (kaiming_uniform with a = sqrt(5)) and biases.
pub fn pytorch_uniform<const D: usize>(rng: &mut Rng, shape: [usize; D], fan_in: usize, device: &Device) -> Tensor<D> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let count: usize = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| rng.symmetric() * bound).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// A seed for one model of a stage, mixed from the pipeline seed and the band.
pub fn model_seed(seed: u64, band: u32) -> u64 {
    let mut rng = Rng::new(seed ^ ((band as u64) << 32 | 0x5EED));
    rng.next_u64()
}

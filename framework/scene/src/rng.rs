//! The scene's draws, from stage-api's SplitMix64, so a seed gives the same
//! scene on every platform and version (no dependency whose stream could
//! change).

use vigil_stage_api::SplitMix64;

#[derive(Clone)]
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64(seed))
    }

    /// A generator for a sub-stream (one video, one actor) of this seed.
    pub fn fork(&self, stream: u64) -> Rng {
        let mut r = Rng(SplitMix64(self.0 .0 ^ stream.wrapping_mul(0xa076_1d64_78bd_642f)));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

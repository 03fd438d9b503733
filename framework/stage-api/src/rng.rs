//! SplitMix64 (Steele, Lea and Flood 2014): a tiny, well-known generator
//! whose stream depends on nothing but the seed, on every platform and
//! version. The runtime shuffles mini-batches with it, the synthetic scene
//! draws with it, and a plugin may seed its own models with it; a library
//! generator's stream could change with a dependency update, and a seed
//! must keep giving the same fit.

/// The generator; its state is the last value of a Weyl sequence.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn the_stream_is_the_reference_one() {
        // The first outputs for seed 1234567 of the reference C code (prng.di.unimi.it/splitmix64.c).
        let mut rng = SplitMix64(1234567);
        let got: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(got, [6457827717110365317, 3203168211198807973, 9817491932198370423]);
    }
}

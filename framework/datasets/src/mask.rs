//! Bit-packed pixel masks: a 360x240 mask takes 10.8 KB instead of 86 KB of
//! bools, so all 2,010 Ped2 masks would fit in 22 MB; readers still load
//! them one frame at a time.

#[derive(Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    bits: Vec<u64>,
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mask({}x{}, {} set)", self.width, self.height, self.count())
    }
}

impl Mask {
    pub fn empty(width: usize, height: usize) -> Mask {
        Mask { width, height, bits: vec![0; (width * height).div_ceil(64)] }
    }

    /// From row-major pixel states.
    pub fn from_pixels(width: usize, height: usize, pixels: impl IntoIterator<Item = bool>) -> Mask {
        let mut mask = Mask::empty(width, height);
        for (i, on) in pixels.into_iter().take(width * height).enumerate() {
            if on {
                mask.bits[i / 64] |= 1 << (i % 64);
            }
        }
        mask
    }

    pub fn get(&self, x: usize, y: usize) -> bool {
        let i = y * self.width + x;
        x < self.width && y < self.height && self.bits[i / 64] >> (i % 64) & 1 == 1
    }

    pub fn set(&mut self, x: usize, y: usize) {
        if x < self.width && y < self.height {
            let i = y * self.width + x;
            self.bits[i / 64] |= 1 << (i % 64);
        }
    }

    /// Number of anomalous pixels.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn any(&self) -> bool {
        self.bits.iter().any(|&w| w != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_reads_back() {
        let m = Mask::from_pixels(7, 3, (0..21).map(|i| i % 5 == 0));
        assert_eq!(m.count(), 5);
        assert!(m.get(0, 0) && m.get(5, 0) && m.get(3, 1) && !m.get(1, 0));
        assert!(!m.get(9, 0), "outside the mask is not anomalous");
        assert!(!Mask::empty(4, 4).any());
    }
}

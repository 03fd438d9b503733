//! Delays from a frame's arrival to its score, kept as a histogram so that
//! memory stays fixed however long a stream runs: buckets 1% wide from
//! 0.1 ms to about 3 h, so a percentile is read to within 1%.

/// Lower edge of the first bucket, in seconds.
const FLOOR_S: f64 = 1e-4;
/// Each bucket's upper edge over its lower one.
const GROWTH: f64 = 1.01;
/// ln(3 h / 0.1 ms) / ln(1.01) = 1,859: 1,860 buckets; longer delays go in the last.
const BUCKETS: usize = 1860;

#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram { counts: vec![0; BUCKETS], total: 0 }
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, seconds: f64) {
        let bucket = if seconds <= FLOOR_S { 0 } else { ((seconds / FLOOR_S).ln() / GROWTH.ln()) as usize };
        self.counts[bucket.min(BUCKETS - 1)] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The delay that a share `q` (0..=1) of the frames did not exceed: the
    /// upper edge of the bucket where that share is reached. `None` before
    /// any frame.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(FLOOR_S * GROWTH.powi(bucket as i32 + 1));
            }
        }
        unreachable!("the counts add up to the total")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent_of_the_exact_ones() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        // 1, 2, ..., 1000 ms
        for ms in 1..=1000 {
            h.record(ms as f64 / 1000.0);
        }
        assert_eq!(h.count(), 1000);
        for (q, exact) in [(0.5, 0.5), (0.99, 0.99), (1.0, 1.0), (0.001, 0.001)] {
            let got = h.quantile(q).unwrap();
            assert!(got >= exact && got <= exact * 1.0101, "q {q}: {got} vs {exact}");
        }
        h.record(0.0);
        h.record(1e9);
        assert!(h.quantile(0.0).unwrap() <= FLOOR_S * GROWTH);
        assert!(h.quantile(1.0).unwrap() > 3.0 * 3600.0 * 0.99, "a huge delay lands in the last bucket");
    }
}

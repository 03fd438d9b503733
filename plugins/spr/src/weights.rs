//! Self-paced refinement weights (docs/method.md 6.2), as pure functions of one
//! mini-batch's errors and the range k(t).

vigil_stage_api::choice! {
    /// The four weighting modes of the reference code.
    pub enum Mode {
        /// Weight 1 below mu + k sigma, 0 above.
        Hard = "hard",
        /// Falling linearly to 0 at mu + k sigma.
        Linear = "linear",
        /// 1 below mu + k sigma, shrinking as 1/error above.
        Huber = "huber",
        /// 1 below mu + sigma, 0 above mu + k sigma, falling in between.
        Mixture = "mixture",
    }
}

/// The threshold range schedule: k(t) = max(k0 - r * t, k_min).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub k0: f64,
    pub k_min: f64,
    pub shrink_rate: f64,
}

impl Schedule {
    pub fn k(&self, t: u64) -> f64 {
        (self.k0 - self.shrink_rate * t as f64).max(self.k_min)
    }
}

/// Mean and unbiased (n - 1) standard deviation, in f64.
pub fn mean_std(errors: &[f32]) -> (f64, f64) {
    let n = errors.len() as f64;
    let mean = errors.iter().map(|&e| e as f64).sum::<f64>() / n;
    let ss = errors.iter().map(|&e| (e as f64 - mean).powi(2)).sum::<f64>();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// Weights of one mini-batch.
///
/// Degenerate batches, decided here (the reference code has NaN or drops
/// the whole batch in these cases):
/// - fewer than 2 samples: sigma (n - 1) is undefined, so nothing can be
///   called unusual: all weights 1;
/// - sigma = 0 (all errors equal): no sample stands out: all weights 1
///   (the reference would give 0 to all in hard, linear and mixture modes
///   because no error is strictly below mu).
pub fn spr_weights(mode: Mode, errors: &[f32], k: f64) -> Vec<f32> {
    if errors.len() < 2 {
        return vec![1.0; errors.len()];
    }
    let (mu, sigma) = mean_std(errors);
    if sigma == 0.0 {
        return vec![1.0; errors.len()];
    }
    let lambda = mu + k * sigma;
    let lambda1 = mu + sigma;
    errors
        .iter()
        .map(|&e| {
            let s = e as f64;
            let w = match mode {
                Mode::Hard => f64::from(u8::from(s < lambda)),
                Mode::Linear if s < lambda => 1.0 - s / lambda,
                Mode::Linear => 0.0,
                Mode::Huber if s < lambda => 1.0,
                Mode::Huber => lambda / s,
                // Hard assignment after the easy one: at the floor (lambda2 =
                // lambda1) a sample exactly at lambda1 gets 0, as in the code.
                Mode::Mixture if s >= lambda => 0.0,
                Mode::Mixture if s <= lambda1 => 1.0,
                Mode::Mixture => lambda1 * (lambda - s) / (s * (lambda - lambda1)),
            };
            w as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // errors 1, 2, 3, 4, 10: mu = 4, sum of squares 9+4+1+0+36 = 50,
    // sigma = sqrt(50 / 4) = 3.5355339
    const E: [f32; 5] = [1.0, 2.0, 3.0, 4.0, 10.0];
    const SIGMA: f64 = 3.5355339059327378;

    fn close(a: &[f32], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((*x as f64 - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn mean_and_unbiased_std() {
        let (mu, sigma) = mean_std(&E);
        assert_eq!(mu, 4.0);
        assert!((sigma - SIGMA).abs() < 1e-12);
    }

    #[test]
    fn hard_drops_at_and_above_lambda() {
        // k = 1: lambda = 7.5355; only 10 is dropped.
        close(&spr_weights(Mode::Hard, &E, 1.0), &[1.0, 1.0, 1.0, 1.0, 0.0]);
        // k = 0: lambda = mu = 4: 4 itself is dropped (strict <).
        close(&spr_weights(Mode::Hard, &E, 0.0), &[1.0, 1.0, 1.0, 0.0, 0.0]);
        // k = 4: lambda = 18.14: nothing dropped.
        close(&spr_weights(Mode::Hard, &E, 4.0), &[1.0; 5]);
    }

    #[test]
    fn linear_falls_to_zero_at_lambda() {
        let lambda = 4.0 + SIGMA; // k = 1
        let want: Vec<f64> = E.iter().map(|&e| if (e as f64) < lambda { 1.0 - e as f64 / lambda } else { 0.0 }).collect();
        close(&spr_weights(Mode::Linear, &E, 1.0), &want);
        // hand values: 1 - 1/7.5355339 = 0.8672954, 1 - 4/7.5355339 = 0.4691816
        let w = spr_weights(Mode::Linear, &E, 1.0);
        assert!((w[0] - 0.8672954).abs() < 1e-6 && (w[3] - 0.4691816).abs() < 1e-6 && w[4] == 0.0);
    }

    #[test]
    fn huber_never_drops() {
        // k = 1: lambda = 7.5355339; 10 gets lambda / 10.
        close(&spr_weights(Mode::Huber, &E, 1.0), &[1.0, 1.0, 1.0, 1.0, 0.75355339]);
    }

    #[test]
    fn mixture_has_three_zones() {
        // errors 0..=9 plus 30: mu = 6.8181818, sigma = 8.2075353 (unbiased)
        let e: Vec<f32> = (0..10).map(|v| v as f32).chain([30.0]).collect();
        let (mu, sigma) = mean_std(&e);
        assert!((mu - 6.8181818).abs() < 1e-6 && (sigma - 8.2075353).abs() < 1e-6, "{mu} {sigma}");
        // k = 2: lambda1 = 15.025717, lambda2 = 23.233252
        // 30 >= lambda2 -> 0; every other error <= lambda1 -> 1.
        let w = spr_weights(Mode::Mixture, &e, 2.0);
        close(&w, &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        // k = 3: lambda2 = 31.440788: 30 is in the middle zone:
        // w = l1 (l2 - s) / (s (l2 - l1)) = 15.025717 * 1.440788 / (30 * 16.415071) = 0.0439614
        let w = spr_weights(Mode::Mixture, &e, 3.0);
        assert!((w[10] - 0.0439614).abs() < 1e-6, "{}", w[10]);
        assert_eq!(&w[..10], &[1.0; 10]);
    }

    #[test]
    fn mixture_at_the_floor_is_hard_at_mu_plus_sigma() {
        // k = 1: lambda1 = lambda2 = mu + sigma = 7.5355: 10 -> 0, the rest 1, as in hard mode.
        assert_eq!(spr_weights(Mode::Mixture, &E, 1.0), spr_weights(Mode::Hard, &E, 1.0));
        // Errors 1, 3, 5: mu = 3, sigma = sqrt(8 / 2) = 2 exactly, so 5 sits on lambda1.
        // At the floor (lambda2 = lambda1 = 5) the hard assignment wins: 0.
        assert_eq!(spr_weights(Mode::Mixture, &[1.0, 3.0, 5.0], 1.0), vec![1.0, 1.0, 0.0]);
        // Above the floor (k = 1.5, lambda2 = 6) the same sample is easy: 1.
        assert_eq!(spr_weights(Mode::Mixture, &[1.0, 3.0, 5.0], 1.5), vec![1.0, 1.0, 1.0]);
    }

    #[test]
    fn degenerate_batches_keep_everything() {
        for mode in [Mode::Hard, Mode::Linear, Mode::Huber, Mode::Mixture] {
            assert_eq!(spr_weights(mode, &[3.0; 7], 1.0), vec![1.0; 7], "{mode:?}: all equal");
            assert_eq!(spr_weights(mode, &[0.0; 4], 4.0), vec![1.0; 4], "{mode:?}: all zero");
            assert_eq!(spr_weights(mode, &[42.0], 1.0), vec![1.0], "{mode:?}: one sample");
            assert!(spr_weights(mode, &[], 1.0).is_empty());
        }
    }

    #[test]
    fn k_shrinks_linearly_to_the_floor() {
        let s = Schedule { k0: 4.0, k_min: 1.0, shrink_rate: 0.005 };
        assert_eq!(s.k(0), 4.0);
        assert!((s.k(1) - 3.995).abs() < 1e-12);
        assert!((s.k(300) - 2.5).abs() < 1e-12);
        assert_eq!(s.k(600), 1.0);
        assert_eq!(s.k(601), 1.0);
        assert_eq!(s.k(100_000), 1.0);
    }
}

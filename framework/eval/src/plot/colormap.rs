//! A perceptually ordered colour scale for heat maps (an 8-stop linear
//! approximation of Google's "turbo": dark blue, cyan, green, yellow, red).

const STOPS: [(f32, [f32; 3]); 8] = [
    (0.0, [48.0, 18.0, 59.0]),
    (0.14, [70.0, 107.0, 227.0]),
    (0.28, [40.0, 187.0, 236.0]),
    (0.43, [50.0, 242.0, 152.0]),
    (0.57, [164.0, 252.0, 60.0]),
    (0.71, [237.0, 208.0, 58.0]),
    (0.86, [251.0, 128.0, 34.0]),
    (1.0, [122.0, 4.0, 3.0]),
];

/// Colour of `t` in [0, 1] (clamped; NaN maps to the low end).
pub fn turbo(t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let upper = STOPS.iter().position(|&(s, _)| s >= t).unwrap_or(STOPS.len() - 1).max(1);
    let (s0, c0) = STOPS[upper - 1];
    let (s1, c1) = STOPS[upper];
    let f = if s1 > s0 { (t - s0) / (s1 - s0) } else { 0.0 };
    [0, 1, 2].map(|i| (c0[i] + f * (c1[i] - c0[i])).round() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_interpolation() {
        assert_eq!(turbo(0.0), [48, 18, 59]);
        assert_eq!(turbo(1.0), [122, 4, 3]);
        assert_eq!(turbo(2.0), turbo(1.0));
        assert_eq!(turbo(0.14), [70, 107, 227]);
        assert_eq!(turbo(0.5), [107, 247, 106]);
    }
}

//! The flow of each frame from the flows of consecutive pairs, with
//! LBR-SPR's video-border rule (docs/method.md 3.3): the first frame of a video
//! gets zero flow (the original computes the pair (0, 0)), the last frame
//! the flow of (T-2, T-1), every other frame t the flow of (t, t+1).

use crate::CubeError;

/// `pairs` f32 [T-1, H, W, 2] (pair i = flow from frame i to i+1) of one
/// whole video -> f32 [T, H, W, 2].
pub fn per_frame_flow(pairs: &[f32], frames: usize, height: usize, width: usize) -> Result<Vec<f32>, CubeError> {
    let field = height * width * 2;
    let expected = frames.saturating_sub(1) * field;
    if frames == 0 || pairs.len() != expected {
        return Err(CubeError::Invalid(format!(
            "pair flows of a {frames}-frame {width}x{height} video: expected {expected} values ([{}, {height}, {width}, 2]), found {}",
            frames.saturating_sub(1),
            pairs.len()
        )));
    }
    let mut out = vec![0.0f32; frames * field];
    for t in 1..frames {
        let pair = if t + 1 == frames { t - 1 } else { t };
        out[t * field..(t + 1) * field].copy_from_slice(&pairs[pair * field..(pair + 1) * field]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_the_border_rule() {
        // 4 frames of 1x1: pair i has u = i + 1, v = -(i + 1).
        let pairs = [1.0, -1.0, 2.0, -2.0, 3.0, -3.0];
        let frames = per_frame_flow(&pairs, 4, 1, 1).unwrap();
        assert_eq!(frames, vec![0.0, 0.0, 2.0, -2.0, 3.0, -3.0, 3.0, -3.0]);
        assert_eq!(per_frame_flow(&[], 1, 1, 1).unwrap(), vec![0.0, 0.0]);
        let err = per_frame_flow(&pairs, 3, 1, 1).unwrap_err().to_string();
        assert!(err.contains("expected 4 values ([2, 1, 1, 2]), found 6"), "{err}");
    }
}

//! The flow of each frame from the flows of consecutive pairs, with
//! LBR-SPR's video-border rule (docs/method.md 3.3): the first frame of a video
//! gets zero flow (the original computes the pair (0, 0)), the last frame
//! the flow of (T-2, T-1), every other frame t the flow of (t, t+1).

use crate::CubeError;

/// `pairs` f32 [T-1, H, W, 2] (pair i = flow from frame i to i+1) of one
/// whole video -> f32 [T, H, W, 2], in place: frame t's flow is pair t
/// where the rule allows, so only the first field is zeroed and the last
/// pair appended once more (a video's flow is gigabytes at 856x480; a
/// second buffer would double it). Reserve room for `T` fields in `pairs`
/// to avoid the one reallocation.
pub fn per_frame_flow(mut pairs: Vec<f32>, frames: usize, height: usize, width: usize) -> Result<Vec<f32>, CubeError> {
    let field = height * width * 2;
    let expected = frames.saturating_sub(1) * field;
    if frames == 0 || pairs.len() != expected {
        return Err(CubeError::Invalid(format!(
            "pair flows of a {frames}-frame {width}x{height} video: expected {expected} values ([{}, {height}, {width}, 2]), found {}",
            frames.saturating_sub(1),
            pairs.len()
        )));
    }
    if frames == 1 {
        return Ok(vec![0.0; field]);
    }
    // The last frame repeats the last pair; frame 0 has none (zeroed after
    // the copy, as for a 2-frame video they are the same pair).
    pairs.extend_from_within((frames - 2) * field..expected);
    pairs[..field].fill(0.0);
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_the_border_rule() {
        // 4 frames of 1x1: pair i has u = i + 1, v = -(i + 1).
        let pairs = [1.0, -1.0, 2.0, -2.0, 3.0, -3.0];
        let frames = per_frame_flow(pairs.to_vec(), 4, 1, 1).unwrap();
        assert_eq!(frames, vec![0.0, 0.0, 2.0, -2.0, 3.0, -3.0, 3.0, -3.0]);
        assert_eq!(per_frame_flow(Vec::new(), 1, 1, 1).unwrap(), vec![0.0, 0.0]);
        assert_eq!(per_frame_flow(vec![4.0, -4.0], 2, 1, 1).unwrap(), vec![0.0, 0.0, 4.0, -4.0]);
        let err = per_frame_flow(pairs.to_vec(), 3, 1, 1).unwrap_err().to_string();
        assert!(err.contains("expected 4 values ([2, 1, 1, 2]), found 6"), "{err}");
    }
}

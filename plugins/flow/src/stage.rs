//! The `flow` stage: forward flow between consecutive frames of a batch.

use crate::estimate::{flow_between, FramePyramid};
use crate::image::GrayImage;
use crate::params::{FlowParams, Preset};
use rayon::prelude::*;
use vigil_stage_api::settings::Settings;
use vigil_stage_api::{
    names, settings, stage_info, Batch, DType, Flow, Options, RResult, StageContext, StageError, StageFactory, StageInfo, StageInstance,
    StageIo, StageKind, Tensor, TensorSpec,
};

settings! {
    /// The `flow` stage's options.
    pub struct FlowSettings {
        /// speed/quality preset, as OpenCV's DIS presets
        pub preset: Preset = Preset::Fast,
        /// width of the grid the flow is computed on; vectors stay in grid pixels (0 = native)
        pub grid_width: usize = 512 => grid_side,
        /// height of the grid the flow is computed on (0 = native)
        pub grid_height: usize = 384 => grid_side,
    }
}

/// A grid side: 0 means the frames' own size.
fn grid_side(side: &usize) -> Result<(), String> {
    if *side == 0 || *side >= 2 {
        Ok(())
    } else {
        Err(format!("expected 0 (native size) or at least 2, found {side}"))
    }
}

impl FlowSettings {
    /// (width, height) the flow is computed on; `None` = each video's own size.
    pub fn grid(&self) -> Result<Option<(usize, usize)>, StageError> {
        match (self.grid_width, self.grid_height) {
            (0, 0) => Ok(None),
            (w, h) if w > 0 && h > 0 => Ok(Some((w, h))),
            (w, h) => Err(StageError::invalid(format!(
                "options `grid_width` and `grid_height` must both be 0 (native size) or both set, found {w} and {h}"
            ))),
        }
    }
}

pub struct FlowStage {
    params: FlowParams,
    /// (width, height) the flow is computed on; `None` = each video's own size.
    grid: Option<(usize, usize)>,
}

impl FlowStage {
    pub fn new(params: FlowParams, grid: Option<(usize, usize)>) -> FlowStage {
        FlowStage { params, grid }
    }

    fn run(&self, mut batch: Batch) -> Result<Batch, StageError> {
        let frames = batch.require(names::FRAMES)?;
        let shape = frames.shape();
        if frames.dtype() != DType::U8 || shape.len() != 4 || shape[3] != 3 || shape[1] == 0 || shape[2] == 0 {
            return Err(StageError::invalid(format!(
                "input `frames`: expected u8 [N, H, W, 3] with H, W >= 1, found {} {:?}",
                frames.dtype(),
                shape
            )));
        }
        let (n, h, w) = (shape[0], shape[1], shape[2]);
        if n < 2 {
            return Err(StageError::invalid(format!("input `frames`: flow needs at least 2 consecutive frames, the batch has {n}")));
        }
        let pixels = frames.as_slice::<u8>()?;
        // Each frame is prepared once (grey, grid, pyramid, gradients), then
        // paired with the frames before and after it.
        let frames: Vec<FramePyramid> = pixels
            .par_chunks_exact(h * w * 3)
            .map(|rgb| FramePyramid::new(&GrayImage::from_rgb(rgb, w, h), self.grid, &self.params))
            .collect::<Result<_, _>>()
            .map_err(|e| StageError::new(format!("flow: {e}")))?;
        let mut data = vec![0.0f32; (n - 1) * h * w * 2];
        data.par_chunks_mut(h * w * 2).enumerate().for_each(|(i, out)| flow_between(&frames[i], &frames[i + 1], &self.params, out));
        batch.insert(names::FLOW, Tensor::from_vec(data, &[n - 1, h, w, 2]));
        Ok(batch)
    }
}

impl Flow for FlowStage {
    fn process(&mut self, batch: Batch) -> RResult<Batch, StageError> {
        self.run(batch).into()
    }
}

fn io() -> StageIo {
    StageIo::new(
        vec![TensorSpec::new(names::FRAMES, DType::U8, 4, "consecutive RGB frames of one video [N, H, W, 3], N >= 2")],
        vec![TensorSpec::new(names::FLOW, DType::F32, 4, "forward flow frame i -> i+1 [N-1, H, W, 2], (u, v) in grid pixels")],
    )
}

impl StageFactory for FlowStage {
    fn info() -> StageInfo {
        stage_info!(
            name: "flow",
            kind: StageKind::Flow,
            description: "dense optical flow (DIS: inverse-search patches, densification, variational refinement), pure Rust",
            options: FlowSettings::specs()
        )
    }

    fn create(options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        let settings = FlowSettings::from_options(options)?;
        Ok(StageInstance::flow(FlowStage::new(FlowParams::preset(settings.preset), settings.grid()?), io()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vigil_stage_testkit::{assert_contract, create, frames_batch, into_flow};

    /// An RGB frame of a smooth texture shifted right by `shift` pixels.
    fn frame(w: usize, h: usize, shift: f32) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f32 - shift, y as f32);
                let v = 128.0 + 50.0 * (0.21 * xf + 0.13 * yf).sin() + 40.0 * (0.11 * xf - 0.19 * yf).cos();
                rgb.extend([v.round() as u8; 3]);
            }
        }
        rgb
    }

    #[test]
    fn adds_flow_in_grid_pixels_between_consecutive_frames() {
        let instance = create::<FlowStage>(json!({"grid_width": 192, "grid_height": 96})).unwrap();
        let io = instance.io.clone();
        let mut stage = into_flow(instance);
        let (w, h) = (96, 48);
        let batch = frames_batch(vec![frame(w, h, 0.0), frame(w, h, 1.0), frame(w, h, 2.0)], h, w);
        let out = stage.process(batch).into_result().unwrap();
        assert_contract(&io, &out);
        let flow = out.get(names::FLOW).unwrap();
        assert_eq!(flow.shape(), vec![2, h, w, 2]);
        // A 1-pixel shift at 96 px wide is 2 pixels on the 192-wide grid.
        let values = flow.as_slice::<f32>().unwrap();
        let interior: Vec<&[f32]> = values
            .chunks_exact(2)
            .enumerate()
            .filter(|(i, _)| {
                let (x, y) = (i % w, (i / w) % h);
                (8..w - 8).contains(&x) && (8..h - 8).contains(&y)
            })
            .map(|(_, uv)| uv)
            .collect();
        let mean_u = interior.iter().map(|uv| uv[0]).sum::<f32>() / interior.len() as f32;
        let mean_v = interior.iter().map(|uv| uv[1].abs()).sum::<f32>() / interior.len() as f32;
        assert!((mean_u - 2.0).abs() < 0.1 && mean_v < 0.1, "mean u {mean_u}, mean |v| {mean_v}");
        assert!(out.get(names::FRAMES).is_some(), "inputs pass through");
    }

    #[test]
    fn bad_input_is_an_error_naming_what_was_expected() {
        let mut stage = into_flow(create::<FlowStage>(json!({})).unwrap());
        let one = frames_batch(vec![frame(16, 16, 0.0)], 16, 16);
        let err = stage.process(one).into_result().unwrap_err();
        assert!(err.message.contains("at least 2 consecutive frames, the batch has 1"), "{err}");
        let floats = Batch::new(vec![]).with(names::FRAMES, Tensor::from_vec(vec![0.0f32; 2 * 4 * 4 * 3], &[2, 4, 4, 3]));
        let err = stage.process(floats).into_result().unwrap_err();
        assert!(err.message.contains("expected u8 [N, H, W, 3]"), "{err}");
        let empty = Batch::new(vec![]).with(names::FRAMES, Tensor::from_vec(Vec::<u8>::new(), &[2, 0, 4, 3]));
        let err = stage.process(empty).into_result().unwrap_err();
        assert!(err.message.contains("H, W >= 1, found u8 [2, 0, 4, 3]"), "{err}");
        let err = stage.process(Batch::new(vec![])).into_result().unwrap_err();
        assert!(err.message.contains("`frames` is missing"), "{err}");
    }

    #[test]
    fn options_are_checked() {
        let err = create::<FlowStage>(json!({"grid_width": 0})).err().unwrap();
        assert!(err.contains("both be 0 (native size) or both set"), "{err}");
        let err = create::<FlowStage>(json!({"grid_height": -3})).err().unwrap();
        assert!(err.contains("option `grid_height`: expected an int >= 0, found -3"), "{err}");
        let err = create::<FlowStage>(json!({"grid_height": 1})).err().unwrap();
        assert!(err.contains("option `grid_height`: expected 0 (native size) or at least 2, found 1"), "{err}");
        let err = create::<FlowStage>(json!({"preset": "slow"})).err().unwrap();
        assert!(err.contains("preset"), "{err}");
        assert!(create::<FlowStage>(json!({"preset": "ultrafast", "grid_width": 0, "grid_height": 0})).is_ok());
    }
}

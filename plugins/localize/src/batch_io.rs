//! Reading a localizer's input tensors (with shape checks that name what is
//! wrong) and writing its `boxes` output.

use crate::boxes::Bbox;
pub use vigil_stage_api::names::{BOXES, FLOW, FRAMES};
use vigil_stage_api::{Batch, DType, StageError, Tensor, TensorSpec};

pub fn frames_spec() -> TensorSpec {
    TensorSpec::new(FRAMES, DType::U8, 4, "RGB frames [N, H, W, 3]")
}

pub fn flow_spec() -> TensorSpec {
    TensorSpec::new(FLOW, DType::F32, 4, "flow of each frame [N, H, W, 2], 512x384-grid pixels")
}

pub fn boxes_spec() -> TensorSpec {
    TensorSpec::new(BOXES, DType::F32, 2, "[M, 7]: row in batch, x1, y1, x2, y2, score, class (-1 = motion)")
}

/// One RGB frame, [H, W, 3] row-major.
#[derive(Clone, Copy, Debug)]
pub struct FrameView<'a> {
    pub rgb: &'a [u8],
    pub width: usize,
    pub height: usize,
}

/// The batch's `frames` tensor, checked to be [N, H, W, 3] with one row per id.
pub struct Frames<'a> {
    data: &'a [u8],
    pub count: usize,
    pub height: usize,
    pub width: usize,
}

impl<'a> Frames<'a> {
    pub fn of(batch: &'a Batch) -> Result<Frames<'a>, StageError> {
        let tensor = batch.require(FRAMES)?;
        let shape = tensor.shape();
        let [count, height, width, 3] = shape[..] else {
            return Err(StageError::invalid(format!("`frames` must be [N, H, W, 3], found {shape:?}")));
        };
        if height == 0 || width == 0 {
            return Err(StageError::invalid(format!("`frames` must have a size, found {shape:?}")));
        }
        if count != batch.ids.len() {
            return Err(StageError::invalid(format!("`frames` has {count} rows but the batch has {} frame ids", batch.ids.len())));
        }
        Ok(Frames { data: tensor.as_slice::<u8>()?, count, height, width })
    }

    pub fn frame(&self, row: usize) -> FrameView<'a> {
        let size = self.height * self.width * 3;
        FrameView { rgb: &self.data[row * size..(row + 1) * size], width: self.width, height: self.height }
    }

    /// The batch's `flow` tensor, checked to match these frames:
    /// [N, H, W, 2]. Row i is frame i's field.
    pub fn flow(&self, batch: &'a Batch) -> Result<FlowFields<'a>, StageError> {
        let tensor = batch.require(FLOW)?;
        let shape = tensor.shape();
        let expected = [self.count, self.height, self.width, 2];
        if shape != expected {
            return Err(StageError::invalid(format!("`flow` must be {expected:?} to match `frames`, found {shape:?}")));
        }
        Ok(FlowFields { data: tensor.as_slice::<f32>()?, size: self.height * self.width * 2 })
    }
}

/// The flow of each frame of a batch.
pub struct FlowFields<'a> {
    data: &'a [f32],
    size: usize,
}

impl<'a> FlowFields<'a> {
    /// Frame `row`'s field, [H, W, 2].
    pub fn field(&self, row: usize) -> &'a [f32] {
        &self.data[row * self.size..(row + 1) * self.size]
    }
}

/// The `boxes` tensor from each row's boxes: [M, 7].
pub fn boxes_tensor(per_row: &[Vec<Bbox>]) -> Tensor {
    let mut data = Vec::with_capacity(per_row.iter().map(|b| b.len() * 7).sum());
    for (row, boxes) in per_row.iter().enumerate() {
        for b in boxes {
            data.extend_from_slice(&[row as f32, b.x1, b.y1, b.x2, b.y2, b.score, b.class as f32]);
        }
    }
    let rows = data.len() / 7;
    Tensor::from_vec(data, &[rows, 7])
}

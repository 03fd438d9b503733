//! A batch: named tensors plus the (video, frame) id of each row.
//! Handing a batch to a stage moves it; stages return it with their outputs
//! added, so the CPU path never copies.
//!
//! ```
//! use vigil_stage_api::{names, Batch, FrameId, Tensor};
//!
//! // Two 2x2 grey frames of video 0.
//! let ids = vec![FrameId { video: 0, frame: 0 }, FrameId { video: 0, frame: 1 }];
//! let batch = Batch::new(ids).with(names::FRAMES, Tensor::from_vec(vec![0u8; 8], &[2, 2, 2, 1]));
//!
//! // What a stage does with its input: require it, then read it typed.
//! let frames = batch.require(names::FRAMES)?;
//! assert_eq!(frames.shape(), [2, 2, 2, 1]);
//! assert_eq!(frames.as_slice::<u8>()?.len(), 8);
//! assert!(frames.as_slice::<f32>().is_err()); // wrong dtype is an error, not garbage
//!
//! let missing = batch.require(names::FLOW).unwrap_err();
//! assert_eq!(missing.message.as_str(), "input tensor `flow` is missing (batch has: frames)");
//! # Ok::<(), vigil_stage_api::StageError>(())
//! ```

use crate::tensor::Tensor;
use abi_stable::{
    std_types::{RString, RVec},
    StableAbi,
};

/// Which frame of which video a batch row belongs to (0-based).
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameId {
    /// Index of the video in the run's list of sources.
    pub video: u32,
    /// Index of the frame within that video, in decoding order.
    pub frame: u32,
}

/// One entry of a [`Batch`]: a tensor and the name stages look it up by
/// (`"frames"`, `"flow"`, `"boxes"`, ...).
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct NamedTensor {
    /// Unique within its batch.
    pub name: RString,
    /// Owned by the batch; dropping the batch releases it.
    pub tensor: Tensor,
}

/// What flows between stages. A stage receives it by value, reads its
/// inputs, adds its outputs and returns it; tensors it does not touch pass
/// through as they are.
#[repr(C)]
#[derive(StableAbi, Debug, Default)]
pub struct Batch {
    /// The tensors, in insertion order; names are unique.
    pub tensors: RVec<NamedTensor>,
    /// The (video, frame) of each row of the per-frame tensors, in row order
    /// (row i of `frames` is `ids[i]`).
    pub ids: RVec<FrameId>,
}

impl Batch {
    /// An empty batch for the frames `ids`; add tensors with [`Batch::with`]
    /// or [`Batch::insert`].
    pub fn new(ids: Vec<FrameId>) -> Batch {
        Batch { tensors: RVec::new(), ids: ids.into() }
    }

    /// Adds (or replaces) a tensor, builder style.
    pub fn with(mut self, name: &str, tensor: Tensor) -> Batch {
        self.insert(name, tensor);
        self
    }

    /// Adds `tensor` as `name`, replacing (and dropping) any tensor already
    /// under that name.
    pub fn insert(&mut self, name: &str, tensor: Tensor) {
        match self.tensors.iter_mut().find(|t| t.name.as_str() == name) {
            Some(slot) => slot.tensor = tensor,
            None => self.tensors.push(NamedTensor { name: name.into(), tensor }),
        }
    }

    /// The tensor called `name`, if present. Stages reading a required input
    /// should use [`Batch::require`], whose error names what is missing.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name.as_str() == name).map(|t| &t.tensor)
    }

    /// The tensor called `name`, mutably (to write into it in place).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.tensors.iter_mut().find(|t| t.name.as_str() == name).map(|t| &mut t.tensor)
    }

    /// Removes the tensor called `name` and hands over its ownership; later
    /// stages no longer see it.
    pub fn take(&mut self, name: &str) -> Option<Tensor> {
        let index = self.tensors.iter().position(|t| t.name.as_str() == name)?;
        Some(self.tensors.remove(index).tensor)
    }

    /// The tensor names, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.name.as_str())
    }

    /// The tensor called `name`, or an error (kind `Failed`) saying which one
    /// is missing and which the batch has.
    pub fn require(&self, name: &str) -> Result<&Tensor, crate::StageError> {
        self.get(name).ok_or_else(|| {
            let present: Vec<&str> = self.names().collect();
            crate::StageError::new(format!("input tensor `{name}` is missing (batch has: {})", present.join(", ")))
        })
    }
}

//! A batch: named tensors plus the (video, frame) id of each row.
//! Handing a batch to a stage moves it; stages return it with their outputs
//! added, so the CPU path never copies.

use crate::tensor::Tensor;
use abi_stable::{
    std_types::{RString, RVec},
    StableAbi,
};

/// Which frame of which video a batch row belongs to (0-based).
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameId {
    pub video: u32,
    pub frame: u32,
}

#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct NamedTensor {
    pub name: RString,
    pub tensor: Tensor,
}

#[repr(C)]
#[derive(StableAbi, Debug, Default)]
pub struct Batch {
    pub tensors: RVec<NamedTensor>,
    pub ids: RVec<FrameId>,
}

impl Batch {
    pub fn new(ids: Vec<FrameId>) -> Batch {
        Batch { tensors: RVec::new(), ids: ids.into() }
    }

    /// Adds (or replaces) a tensor, builder style.
    pub fn with(mut self, name: &str, tensor: Tensor) -> Batch {
        self.insert(name, tensor);
        self
    }

    pub fn insert(&mut self, name: &str, tensor: Tensor) {
        match self.tensors.iter_mut().find(|t| t.name.as_str() == name) {
            Some(slot) => slot.tensor = tensor,
            None => self.tensors.push(NamedTensor { name: name.into(), tensor }),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name.as_str() == name).map(|t| &t.tensor)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.tensors.iter_mut().find(|t| t.name.as_str() == name).map(|t| &mut t.tensor)
    }

    pub fn take(&mut self, name: &str) -> Option<Tensor> {
        let index = self.tensors.iter().position(|t| t.name.as_str() == name)?;
        Some(self.tensors.remove(index).tensor)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.name.as_str())
    }

    /// The tensor called `name`, or an error saying which one is missing.
    pub fn require(&self, name: &str) -> Result<&Tensor, crate::StageError> {
        self.get(name).ok_or_else(|| {
            let present: Vec<&str> = self.names().collect();
            crate::StageError::new(format!("input tensor `{name}` is missing (batch has: {})", present.join(", ")))
        })
    }
}

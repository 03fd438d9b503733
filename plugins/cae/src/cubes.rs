//! The training cubes a reconstructor receives once (`fit_begin`) and the
//! mini-batches it cuts from them by index. The cubes stay in the tensors
//! the host handed over (moved, not copied); a batch is gathered into a
//! fresh device tensor per step.

use crate::config::Target;
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::BTreeMap;
use vigil_stage_api::{names, Batch, DType, StageError, Tensor as AbiTensor};

/// Per band: the positions in a request's index list, and the cube indices there.
pub type BandGroups = BTreeMap<u32, (Vec<usize>, Vec<u32>)>;

pub struct Cubes {
    appearance: AbiTensor,
    motion: Option<AbiTensor>,
    band: Vec<u32>,
    /// [channels, size, size] of one appearance cube.
    pub input_shape: [usize; 3],
    /// [channels, size, size] of one target cube.
    pub target_shape: [usize; 3],
    target: Target,
}

fn expect(tensor: &AbiTensor, name: &str, dtype: DType, rank: usize) -> Result<Vec<usize>, StageError> {
    if tensor.dtype() != dtype || tensor.rank() != rank {
        return Err(StageError::invalid(format!(
            "input `{name}`: expected {dtype} rank {rank}, found {} with shape {:?}",
            tensor.dtype(),
            tensor.shape()
        )));
    }
    Ok(tensor.shape())
}

impl Cubes {
    pub fn from_batch(mut batch: Batch, target: Target) -> Result<Cubes, StageError> {
        let appearance = batch.require(names::APPEARANCE)?;
        let shape = expect(appearance, "appearance", DType::U8, 4)?;
        let (m, size) = (shape[0], shape[2]);
        if m == 0 {
            return Err(StageError::invalid("input `appearance` holds no cubes; nothing to train on"));
        }
        if shape[3] != size || size % 8 != 0 {
            return Err(StageError::invalid(format!(
                "input `appearance`: expected square cubes whose size is a multiple of 8 (three 2x2 poolings), found {:?}",
                shape
            )));
        }
        let band_tensor = batch.require(names::BAND)?;
        let band_shape = expect(band_tensor, names::BAND, DType::U32, 1)?;
        if band_shape[0] != m {
            return Err(StageError::invalid(format!("input `band`: expected {m} entries (one per cube), found {}", band_shape[0])));
        }
        let band = band_tensor.as_slice::<u32>()?.to_vec();
        let motion = batch.take(names::MOTION);
        let target_shape = match (target, &motion) {
            (Target::Frames, _) => [shape[1], size, size],
            (Target::Flow, None) => {
                return Err(StageError::invalid("target = \"flow\" needs the input `motion` (flow cubes), which the batch lacks"))
            }
            (Target::Flow, Some(motion)) => {
                let ms = expect(motion, "motion", DType::F32, 4)?;
                if ms[0] != m || ms[2] != size || ms[3] != size {
                    return Err(StageError::invalid(format!(
                        "input `motion`: expected [{m}, C, {size}, {size}] to match `appearance`, found {ms:?}"
                    )));
                }
                [ms[1], size, size]
            }
        };
        let appearance = batch.take(names::APPEARANCE).expect("checked above");
        // Reading the slices once here turns a non-contiguous or foreign-device tensor into an error now.
        appearance.as_slice::<u8>()?;
        if let Some(motion) = &motion {
            motion.as_slice::<f32>()?;
        }
        let motion = if target == Target::Flow { motion } else { None };
        Ok(Cubes { appearance, motion, band, input_shape: [shape[1], size, size], target_shape, target })
    }

    #[allow(clippy::len_without_is_empty)] // never empty: `from_batch` refuses zero cubes
    pub fn len(&self) -> usize {
        self.band.len()
    }

    /// Cube indices of each band, in order.
    pub fn bands(&self) -> BTreeMap<u32, Vec<u32>> {
        let mut out: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (i, &b) in self.band.iter().enumerate() {
            out.entry(b).or_default().push(i as u32);
        }
        out
    }

    fn check(&self, indices: &[u32]) -> Result<(), StageError> {
        match indices.iter().find(|&&i| i as usize >= self.len()) {
            Some(bad) => Err(StageError::invalid(format!("cube index {bad} is out of range (the fit has {} cubes)", self.len()))),
            None => Ok(()),
        }
    }

    /// The band all `indices` belong to; an error if they are mixed.
    pub fn single_band(&self, indices: &[u32]) -> Result<u32, StageError> {
        self.check(indices)?;
        let first = *indices.first().ok_or_else(|| StageError::invalid("a training step needs at least one cube index"))?;
        let band = self.band[first as usize];
        if let Some(&other) = indices.iter().find(|&&i| self.band[i as usize] != band) {
            return Err(StageError::invalid(format!(
                "a step trains one model, but cube {first} is in band {band} and cube {other} in band {}",
                self.band[other as usize]
            )));
        }
        Ok(band)
    }

    /// `indices` grouped by band, each with its positions in `indices`.
    pub fn group_by_band(&self, indices: &[u32]) -> Result<BandGroups, StageError> {
        self.check(indices)?;
        let mut out = BandGroups::new();
        for (pos, &i) in indices.iter().enumerate() {
            let entry = out.entry(self.band[i as usize]).or_default();
            entry.0.push(pos);
            entry.1.push(i);
        }
        Ok(out)
    }

    /// Appearance cubes `indices` as f32 in [0, 1], [B, C, S, S] values.
    pub fn input_values(&self, indices: &[u32]) -> Vec<f32> {
        let data = self.appearance.as_slice::<u8>().expect("checked in from_batch");
        let per = self.input_shape.iter().product::<usize>();
        let mut values = Vec::with_capacity(indices.len() * per);
        for &i in indices {
            let start = i as usize * per;
            values.extend(data[start..start + per].iter().map(|&v| v as f32 / 255.0));
        }
        values
    }

    /// What the network should output for `indices`, given their input values;
    /// `None` when that is the input itself.
    pub fn target_values(&self, indices: &[u32]) -> Option<Vec<f32>> {
        match (&self.motion, self.target) {
            (Some(motion), Target::Flow) => {
                let data = motion.as_slice::<f32>().expect("checked in from_batch");
                let per = self.target_shape.iter().product::<usize>();
                let mut values = Vec::with_capacity(indices.len() * per);
                for &i in indices {
                    let start = i as usize * per;
                    values.extend_from_slice(&data[start..start + per]);
                }
                Some(values)
            }
            _ => None,
        }
    }

    /// [input channels, target channels, size], as the CPU kernels take them.
    pub fn dims(&self) -> [usize; 3] {
        [self.input_shape[0], self.target_shape[0], self.input_shape[1]]
    }

    /// [`Cubes::input_values`] as a device tensor.
    pub fn input(&self, indices: &[u32], device: &Device) -> Tensor<4> {
        let [c, h, w] = self.input_shape;
        Tensor::from_data(TensorData::new(self.input_values(indices), [indices.len(), c, h, w]), device)
    }

    /// [`Cubes::target_values`] as a device tensor.
    pub fn target(&self, indices: &[u32], input: &Tensor<4>, device: &Device) -> Tensor<4> {
        match self.target_values(indices) {
            Some(values) => {
                let [c, h, w] = self.target_shape;
                Tensor::from_data(TensorData::new(values, [indices.len(), c, h, w]), device)
            }
            None => input.clone(),
        }
    }
}

//! The training cubes a reconstructor receives once (`fit_begin`) and the
//! mini-batches it cuts from them by index. The cubes stay in the tensors
//! the host handed over (moved, not copied). On the CPU a batch is gathered
//! from them per step; on a GPU they are uploaded once ([`Cubes::upload`])
//! and each batch is gathered on the device, so a step uploads its indices,
//! not its cubes.

use crate::config::Target;
use crate::transfers::Transfers;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::collections::BTreeMap;
use vigil_stage_api::{f16, names, Batch, DType, StageError, Tensor as AbiTensor};

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
    /// The cubes on the device, when [`Cubes::upload`] put them there.
    resident: Option<Resident>,
}

/// Every cube's input values and, for the flow target, its target values,
/// as device tensors [M, C, S, S].
struct Resident {
    input: Tensor<4>,
    target: Option<Tensor<4>>,
}

/// Cubes uploaded per piece (the pieces are joined on the device), so the
/// host never holds all of them as f32.
const UPLOAD_PIECE: usize = 4096;

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
                let ms = expect(motion, "motion", DType::F16, 4)?;
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
            motion.as_slice::<f16>()?;
        }
        let motion = if target == Target::Flow { motion } else { None };
        Ok(Cubes { appearance, motion, band, input_shape: [shape[1], size, size], target_shape, target, resident: None })
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
                let data = motion.as_slice::<f16>().expect("checked in from_batch");
                let per = self.target_shape.iter().product::<usize>();
                let mut values = Vec::with_capacity(indices.len() * per);
                for &i in indices {
                    let start = i as usize * per;
                    values.extend(data[start..start + per].iter().map(|v| v.to_f32()));
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

    /// Bytes of every cube's device values: input, and the target when it
    /// is not the input.
    pub fn device_bytes(&self) -> u64 {
        let per_cube = self.input_shape.iter().product::<usize>() + self.motion.as_ref().map_or(0, |_| self.target_shape.iter().product());
        (self.len() * per_cube * std::mem::size_of::<f32>()) as u64
    }

    /// Uploads every cube to `device` once; later batches are gathered there.
    /// `largest`: the largest buffer the device allocates, in bytes; cubes
    /// that do not fit one stay on the host and each batch is uploaded
    /// (logged). Joining the pieces holds them twice on the device for a
    /// moment.
    pub fn upload(&mut self, device: &Device, largest: u64, transfers: &Transfers) {
        if self.resident.is_some() {
            return;
        }
        if self.device_bytes() > largest {
            tracing::warn!(
                "cae: the {} cubes need {} MB on the device, more than its largest buffer ({} MB): \
                 each mini-batch is uploaded instead",
                self.len(),
                self.device_bytes() >> 20,
                largest >> 20
            );
            return;
        }
        let all: Vec<u32> = (0..self.len() as u32).collect();
        let join =
            |pieces: Vec<Tensor<4>>| if pieces.len() == 1 { pieces.into_iter().next().expect("one piece") } else { Tensor::cat(pieces, 0) };
        let pieces = all.chunks(UPLOAD_PIECE);
        let input = join(pieces.clone().map(|ids| self.upload_input(ids, device, transfers)).collect());
        let target = self.motion.is_some().then(|| join(pieces.filter_map(|ids| self.upload_target(ids, device, transfers)).collect()));
        tracing::debug!(cubes = self.len(), bytes = self.device_bytes(), "cae: cubes uploaded to the device");
        self.resident = Some(Resident { input, target });
    }

    /// [`Cubes::input_values`] uploaded to `device`.
    fn upload_input(&self, indices: &[u32], device: &Device, transfers: &Transfers) -> Tensor<4> {
        let [c, h, w] = self.input_shape;
        let values = self.input_values(indices);
        transfers.cubes_uploaded(values.len() * std::mem::size_of::<f32>());
        Tensor::from_data(TensorData::new(values, [indices.len(), c, h, w]), device)
    }

    /// [`Cubes::target_values`] uploaded to `device`; `None` when the target is the input.
    fn upload_target(&self, indices: &[u32], device: &Device, transfers: &Transfers) -> Option<Tensor<4>> {
        let [c, h, w] = self.target_shape;
        let values = self.target_values(indices)?;
        transfers.cubes_uploaded(values.len() * std::mem::size_of::<f32>());
        Some(Tensor::from_data(TensorData::new(values, [indices.len(), c, h, w]), device))
    }

    /// The input and target of cubes `indices` on `device` (a batch of the
    /// uploaded cubes, gathered on the device, or uploaded now).
    pub fn batch(&self, indices: &[u32], device: &Device, transfers: &Transfers) -> (Tensor<4>, Tensor<4>) {
        let (input, target) = match &self.resident {
            Some(resident) => {
                // The resident cubes live on the plain device; a training step
                // takes them as constants on its autodiff twin.
                let plain = resident.input.device();
                let positions: Vec<i32> = indices.iter().map(|&i| i as i32).collect();
                transfers.uploaded(positions.len() * std::mem::size_of::<i32>());
                let positions = Tensor::<1, Int>::from_data(TensorData::new(positions, [indices.len()]), &plain);
                let input = resident.input.clone().select(0, positions.clone());
                let target = resident.target.as_ref().map(|t| t.clone().select(0, positions));
                let on_device = |t: Tensor<4>| if device.is_autodiff() { t.autodiff() } else { t };
                (on_device(input), target.map(on_device))
            }
            None => (self.upload_input(indices, device, transfers), self.upload_target(indices, device, transfers)),
        };
        let target = target.unwrap_or_else(|| input.clone());
        (input, target)
    }
}

//! Append-only storage of one cube tensor's elements: in memory until the
//! set's budget is exceeded, then in an anonymous temporary file that is
//! memory-mapped when the tensor is handed over (zero-copy either way).

use memmap2::MmapMut;
use std::ffi::c_void;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use vigil_stage_api::{Device, Element, Tensor};

/// Element types whose bytes can be written and mapped back as they are.
/// `Element` is sealed to plain numbers (no padding, every bit pattern
/// valid), so no other type can come through here; a mapping is page
/// aligned, so `as_slice` of the tensor is aligned for any of them.
pub trait Plain: Element {}
impl Plain for u8 {}
impl Plain for f32 {}

fn bytes_of<T: Plain>(values: &[T]) -> &[u8] {
    // u8 and f32 have no padding and every bit pattern is valid.
    unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) }
}

pub struct Store<T: Plain> {
    memory: Vec<T>,
    spilled: Option<BufWriter<File>>,
    len: usize,
}

impl<T: Plain> Store<T> {
    pub fn new() -> Store<T> {
        Store { memory: Vec::new(), spilled: None, len: 0 }
    }

    pub fn bytes_in_memory(&self) -> usize {
        self.memory.len() * std::mem::size_of::<T>()
    }

    pub fn is_spilled(&self) -> bool {
        self.spilled.is_some()
    }

    pub fn extend(&mut self, values: &[T]) -> std::io::Result<()> {
        match &mut self.spilled {
            Some(file) => file.write_all(bytes_of(values))?,
            None => self.memory.extend_from_slice(values),
        }
        self.len += values.len();
        Ok(())
    }

    /// Moves what is held in memory to a new temporary file in `dir` (created
    /// when missing; the file is deleted by the system once closed and
    /// unmapped); later values go there too.
    pub fn spill(&mut self, dir: &Path) -> std::io::Result<()> {
        if self.spilled.is_some() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)?;
        let mut file = BufWriter::with_capacity(1 << 20, tempfile::tempfile_in(dir)?);
        file.write_all(bytes_of(&self.memory))?;
        self.memory = Vec::new();
        self.spilled = Some(file);
        Ok(())
    }

    /// The elements as a tensor of `shape`, without copying: the vector
    /// itself, or a writable private mapping of the spill file.
    pub fn into_tensor(self, shape: &[usize]) -> std::io::Result<Tensor> {
        assert_eq!(shape.iter().product::<usize>(), self.len, "store shape {shape:?} does not match {} elements", self.len);
        let file = match self.spilled {
            None => return Ok(Tensor::from_vec(self.memory, shape)),
            Some(writer) => writer.into_inner().map_err(|e| e.into_error())?,
        };
        if self.len == 0 {
            return Ok(Tensor::from_vec(Vec::<T>::new(), shape));
        }
        // Copy-on-write: a consumer may write into the tensor; the file stays as written.
        let mut map = Box::new(unsafe { memmap2::MmapOptions::new().map_copy(&file)? });
        let data = map.as_mut_ptr() as *mut c_void;
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let mut strides = vec![1i64; dims.len()];
        for i in (0..dims.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * dims[i + 1].max(1);
        }
        // The mapping outlives the file handle; the tensor's deleter unmaps it.
        Ok(unsafe {
            Tensor::from_raw_parts(data, Device::CPU, T::DTYPE, dims, strides, 0, Box::into_raw(map) as *mut c_void, Some(release_map))
        })
    }
}

unsafe extern "C" fn release_map(ctx: *mut c_void) {
    drop(unsafe { Box::from_raw(ctx as *mut MmapMut) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_values_come_back_through_the_mapping() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("not/yet/there");
        let mut store = Store::<f32>::new();
        store.extend(&[1.0, 2.0]).unwrap();
        store.spill(&dir).unwrap();
        assert!(dir.is_dir(), "the spill folder is created");
        assert_eq!(store.bytes_in_memory(), 0);
        store.extend(&[3.0, 4.0, 5.0, 6.0]).unwrap();
        let mut tensor = store.into_tensor(&[3, 2]).unwrap();
        assert_eq!(tensor.as_slice::<f32>().unwrap(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        tensor.as_mut_slice::<f32>().unwrap()[0] = 9.0;
        assert_eq!(tensor.as_slice::<f32>().unwrap()[0], 9.0);
    }

    #[test]
    fn in_memory_tensor_is_the_vector_itself() {
        let mut store = Store::<u8>::new();
        store.extend(&[7, 8, 9]).unwrap();
        let ptr = store.memory.as_ptr() as *const c_void;
        let tensor = store.into_tensor(&[3]).unwrap();
        assert_eq!(tensor.data_ptr(), ptr);
    }
}

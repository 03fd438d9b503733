//! Append-only storage of one cube tensor's elements: in memory until the
//! set's budget is exceeded, then in an anonymous temporary file that is
//! memory-mapped when the tensor is handed over (zero-copy either way).
//!
//! The in-memory part is an anonymous mapping grown with `mremap`, not a
//! `Vec`: a `Vec` that doubles copies everything it holds at each step, and
//! the C allocator keeps the blocks it freed (`allocator.rs` in the runtime
//! raises its trim threshold on purpose), so Ped2's 384 MiB of cubes held
//! 881 MB of RSS after extraction. A mapping that moves its pages instead of
//! copying them, and is returned whole when the tensor is dropped, holds
//! what was written and nothing more (docs/benchmarks.md, "Memory").

use memmap2::MmapMut;
use std::ffi::c_void;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use vigil_stage_api::tensor::contiguous_strides;
use vigil_stage_api::{f16, Device, Element, Tensor};

/// Element types whose bytes can be written and mapped back as they are.
/// `Element` is sealed to plain numbers (no padding, every bit pattern
/// valid), so no other type can come through here; a mapping is page
/// aligned, so `as_slice` of the tensor is aligned for any of them.
pub trait Plain: Element {}
impl Plain for u8 {}
impl Plain for f16 {}
impl Plain for f32 {}

fn bytes_of<T: Plain>(values: &[T]) -> &[u8] {
    // u8, f16 and f32 have no padding and every bit pattern is valid.
    unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) }
}

/// The first size of the in-memory mapping; it doubles from there.
const FIRST_MAPPING: usize = 16 << 20;

pub struct Store<T: Plain> {
    /// Written elements, as bytes, in `..len * size_of::<T>()`.
    memory: Option<MmapMut>,
    spilled: Option<BufWriter<File>>,
    len: usize,
    element: std::marker::PhantomData<T>,
}

impl<T: Plain> Store<T> {
    pub fn new() -> Store<T> {
        Store { memory: None, spilled: None, len: 0, element: std::marker::PhantomData }
    }

    pub fn bytes_in_memory(&self) -> usize {
        if self.spilled.is_some() {
            0
        } else {
            self.bytes()
        }
    }

    pub fn is_spilled(&self) -> bool {
        self.spilled.is_some()
    }

    /// Bytes held, in memory or on disk.
    pub fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }

    pub fn extend(&mut self, values: &[T]) -> std::io::Result<()> {
        let bytes = bytes_of(values);
        if bytes.is_empty() {
            return Ok(());
        }
        match &mut self.spilled {
            Some(file) => file.write_all(bytes)?,
            None => {
                let used = self.bytes_in_memory();
                let map = self.reserve(used + bytes.len())?;
                map[used..used + bytes.len()].copy_from_slice(bytes);
            }
        }
        self.len += values.len();
        Ok(())
    }

    /// The in-memory mapping, at least `bytes` long. Untouched pages of an
    /// anonymous mapping cost no memory, so it doubles freely.
    fn reserve(&mut self, bytes: usize) -> std::io::Result<&mut MmapMut> {
        let have = self.memory.as_ref().map_or(0, |m| m.len());
        if bytes > have {
            let want = bytes.max(2 * have).max(FIRST_MAPPING);
            match &mut self.memory {
                None => self.memory = Some(MmapMut::map_anon(want)?),
                Some(map) => grow(map, want)?,
            }
        }
        Ok(self.memory.as_mut().expect("reserved above"))
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
        if let Some(map) = self.memory.take() {
            file.write_all(&map[..self.len * std::mem::size_of::<T>()])?;
        }
        self.spilled = Some(file);
        Ok(())
    }

    /// The elements as a tensor of `shape`, without copying: the in-memory
    /// mapping itself, or a writable private mapping of the spill file.
    pub fn into_tensor(self, shape: &[usize]) -> std::io::Result<Tensor> {
        assert_eq!(shape.iter().product::<usize>(), self.len, "store shape {shape:?} does not match {} elements", self.len);
        if self.len == 0 {
            return Ok(Tensor::from_vec(Vec::<T>::new(), shape));
        }
        let map = match (self.spilled, self.memory) {
            (None, Some(map)) => map,
            // Copy-on-write: a consumer may write into the tensor; the file stays as written.
            (Some(writer), _) => unsafe { memmap2::MmapOptions::new().map_copy(&writer.into_inner().map_err(|e| e.into_error())?)? },
            (None, None) => unreachable!("a store with elements has a mapping or a file"),
        };
        let mut map = Box::new(map);
        let data = map.as_mut_ptr() as *mut c_void;
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let strides = contiguous_strides(&dims);
        // The tensor's deleter unmaps it (and, for a spill, the file handle
        // is already closed, so the file goes with the mapping).
        Ok(unsafe {
            Tensor::from_raw_parts(data, Device::CPU, T::DTYPE, dims, strides, 0, Box::into_raw(map) as *mut c_void, Some(release_map))
        })
    }
}

/// Grows an anonymous mapping to `len` bytes, keeping its contents: Linux
/// moves the pages (`mremap`); elsewhere they are copied into a new one.
fn grow(map: &mut MmapMut, len: usize) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    // SAFETY: an anonymous mapping has no file to read past; the new pages are zeroed.
    unsafe {
        map.remap(len, memmap2::RemapOptions::new().may_move(true))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut bigger = MmapMut::map_anon(len)?;
        bigger[..map.len()].copy_from_slice(map);
        *map = bigger;
        Ok(())
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
    fn empty_stores_need_no_mapping() {
        let mut store = Store::<f32>::new();
        store.extend(&[]).unwrap();
        assert!(store.memory.is_none());
        assert_eq!(store.into_tensor(&[0, 4]).unwrap().shape(), vec![0, 4]);
    }

    #[test]
    fn in_memory_tensor_is_the_mapping_itself() {
        let mut store = Store::<u8>::new();
        store.extend(&[7, 8, 9]).unwrap();
        let ptr = store.memory.as_ref().unwrap().as_ptr() as *const c_void;
        let tensor = store.into_tensor(&[3]).unwrap();
        assert_eq!(tensor.data_ptr(), ptr);
        assert_eq!(tensor.as_slice::<u8>().unwrap(), &[7, 8, 9]);
    }

    #[test]
    fn growing_past_the_first_mapping_keeps_every_value() {
        // Three doublings of the mapping, with writes that straddle them.
        let mut store = Store::<f32>::new();
        let step: Vec<f32> = (0..1_000_003).map(|i| i as f32).collect();
        for _ in 0..34 {
            store.extend(&step).unwrap();
        }
        assert!(store.memory.as_ref().unwrap().len() >= 34 * step.len() * 4);
        assert_eq!(store.bytes_in_memory(), 34 * step.len() * 4);
        let tensor = store.into_tensor(&[34, step.len()]).unwrap();
        let values = tensor.as_slice::<f32>().unwrap();
        for (round, chunk) in values.chunks_exact(step.len()).enumerate() {
            assert_eq!(chunk, &step[..], "round {round}");
        }
    }

    #[test]
    fn a_store_spilled_after_growing_keeps_its_order() {
        let root = tempfile::tempdir().unwrap();
        let mut store = Store::<u8>::new();
        let bytes: Vec<u8> = (0..(FIRST_MAPPING + 5)).map(|i| (i % 251) as u8).collect();
        store.extend(&bytes).unwrap();
        store.spill(root.path()).unwrap();
        store.extend(&[1, 2, 3]).unwrap();
        let tensor = store.into_tensor(&[bytes.len() + 3]).unwrap();
        let values = tensor.as_slice::<u8>().unwrap();
        assert_eq!(&values[..bytes.len()], &bytes[..]);
        assert_eq!(&values[bytes.len()..], &[1, 2, 3]);
    }
}

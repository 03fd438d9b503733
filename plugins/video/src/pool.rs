//! Recycled frame buffers. On this kind of machine a fresh multi-megabyte
//! allocation per batch costs more than decoding it (every page faults in
//! anew: 278 frames/s against 600 with a reused buffer, measured on
//! vtest.avi). A batch tensor's release callback puts its buffer back here,
//! so once the consumer is done with a batch the next one reuses its pages.

use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use vigil_stage_api::tensor::contiguous_strides;
use vigil_stage_api::{DType, Device, Tensor};

/// Spare buffers kept; more batches in flight allocate afresh.
const SPARES: usize = 4;

#[derive(Clone, Default)]
pub struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

struct Lease {
    buffer: Vec<u8>,
    pool: BufferPool,
}

unsafe extern "C" fn give_back(ctx: *mut c_void) {
    let lease = unsafe { Box::from_raw(ctx as *mut Lease) };
    let Lease { mut buffer, pool } = *lease;
    buffer.clear();
    let mut spares = pool.0.lock().unwrap_or_else(|e| e.into_inner());
    if spares.len() < SPARES {
        spares.push(buffer);
    }
}

impl BufferPool {
    /// An empty buffer with room for at least `capacity` bytes.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let spare = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut buffer = spare.unwrap_or_default();
        buffer.reserve(capacity);
        buffer
    }

    /// A contiguous u8 tensor over `buffer` that returns it to the pool when dropped.
    pub fn tensor(&self, buffer: Vec<u8>, shape: &[usize]) -> Tensor {
        assert_eq!(shape.iter().product::<usize>(), buffer.len(), "tensor shape does not match its buffer");
        let mut lease = Box::new(Lease { buffer, pool: self.clone() });
        let data = lease.buffer.as_mut_ptr() as *mut c_void;
        let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let strides = contiguous_strides(&shape);
        // SAFETY: the buffer lives in the lease until `give_back` runs, and
        // shape/strides describe exactly its bytes.
        unsafe {
            Tensor::from_raw_parts(data, Device::CPU, DType::U8, shape, strides, 0, Box::into_raw(lease) as *mut c_void, Some(give_back))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_tensors_return_their_buffer() {
        let pool = BufferPool::default();
        let mut buffer = pool.take(24);
        buffer.extend(0..24u8);
        let address = buffer.as_ptr();
        let t = pool.tensor(buffer, &[2, 2, 2, 3]);
        assert_eq!(t.strides(), &[12, 6, 3, 1]);
        assert_eq!(t.as_slice::<u8>().unwrap()[23], 23);
        drop(t);
        let again = pool.take(24);
        assert_eq!((again.as_ptr(), again.len()), (address, 0));
    }
}

//! A tensor descriptor laid out like DLPack's `DLManagedTensor`: the producer
//! owns the memory and hands over a release callback, so a tensor can cross
//! the plugin boundary (or be handed to another framework) without a copy.

use abi_stable::{std_types::RVec, StableAbi};
use std::ffi::c_void;

/// DLPack's `DLDataTypeCode`.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DTypeCode {
    /// Signed integer.
    Int = 0,
    /// Unsigned integer.
    UInt = 1,
    /// IEEE floating point.
    Float = 2,
    /// Boolean (DLPack's `kDLBool`).
    Bool = 6,
}

/// DLPack's `DLDataType`: type code, bits per lane, lanes.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DType {
    /// Kind of number.
    pub code: DTypeCode,
    /// Bits of one lane (8, 32, 64).
    pub bits: u8,
    /// Values per element; 1 for every dtype Vigil's stages use.
    pub lanes: u16,
}

impl DType {
    /// `u8`: pixels (`frames`, `appearance` cubes).
    pub const U8: DType = DType { code: DTypeCode::UInt, bits: 8, lanes: 1 };
    /// `u32`: indices (e.g. `band`).
    pub const U32: DType = DType { code: DTypeCode::UInt, bits: 32, lanes: 1 };
    /// `i32`.
    pub const I32: DType = DType { code: DTypeCode::Int, bits: 32, lanes: 1 };
    /// `i64`.
    pub const I64: DType = DType { code: DTypeCode::Int, bits: 64, lanes: 1 };
    /// `f16`: flow cubes (`motion`), half the bytes of `f32`; since 1.2.
    pub const F16: DType = DType { code: DTypeCode::Float, bits: 16, lanes: 1 };
    /// `f32`: flow, boxes, errors, scores.
    pub const F32: DType = DType { code: DTypeCode::Float, bits: 32, lanes: 1 };
    /// `f64`.
    pub const F64: DType = DType { code: DTypeCode::Float, bits: 64, lanes: 1 };

    /// Bytes of one element.
    pub fn size(self) -> usize {
        (self.bits as usize * self.lanes as usize).div_ceil(8)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = match self.code {
            DTypeCode::Int => "i",
            DTypeCode::UInt => "u",
            DTypeCode::Float => "f",
            DTypeCode::Bool => "bool",
        };
        write!(f, "{code}{}", self.bits)?;
        if self.lanes != 1 {
            write!(f, "x{}", self.lanes)?;
        }
        Ok(())
    }
}

/// DLPack's `DLDeviceType` subset Vigil uses.
#[repr(i32)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// Host memory; the only kind [`Tensor::as_slice`] reads.
    Cpu = 1,
    /// CUDA device memory.
    Cuda = 2,
    /// A wgpu buffer (Vulkan, Metal or DX12 underneath; DLPack's
    /// `kDLWebGPU` code). Unlike a CUDA address, its handle means something
    /// only to the wgpu instance, and so the plugin library, that made it:
    /// see [`DeviceContext`].
    Wgpu = 15,
}

/// DLPack's `DLDevice`.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Device {
    /// Host or GPU.
    pub kind: DeviceKind,
    /// Which device of that kind (the CUDA device index; 0 for the CPU).
    pub ordinal: i32,
}

impl Device {
    /// Host memory.
    pub const CPU: Device = Device { kind: DeviceKind::Cpu, ordinal: 0 };
    /// CUDA device number `ordinal`.
    pub fn cuda(ordinal: i32) -> Device {
        Device { kind: DeviceKind::Cuda, ordinal }
    }
    /// wgpu adapter number `ordinal`.
    pub fn wgpu(ordinal: i32) -> Device {
        Device { kind: DeviceKind::Wgpu, ordinal }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            DeviceKind::Cpu => f.write_str("the CPU"),
            DeviceKind::Cuda => write!(f, "CUDA device {}", self.ordinal),
            DeviceKind::Wgpu => write!(f, "wgpu adapter {}", self.ordinal),
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
            DeviceKind::Wgpu => "wgpu",
        })
    }
}

/// The device buffers of one plugin library, and the Rust type `H` of their
/// handles. A library that hands device tensors from one of its stages to
/// another declares one as a `static` and names it on both sides
/// ([`Tensor::from_device_buffer`], [`Tensor::device_buffer`]). A wgpu
/// buffer belongs to the wgpu instance of the library that made it (each
/// plugin library links its own), so a stage must read only its own
/// library's buffers: statics have distinct addresses, and the tensor
/// records its context's, which is how [`Tensor::device_buffer`] tells them
/// apart.
///
/// ```
/// use vigil_stage_api::{DType, Device, DeviceContext, Tensor};
/// struct GpuBuffer(u64); // a stand-in for a device allocation
/// static BUFFERS: DeviceContext<GpuBuffer> = DeviceContext::new();
/// static OTHER: DeviceContext<GpuBuffer> = DeviceContext::new();
///
/// let tensor = Tensor::from_device_buffer(GpuBuffer(7), &BUFFERS, Device::wgpu(0), DType::F32, &[2, 3]);
/// assert_eq!(tensor.device_buffer(&BUFFERS).unwrap().0, 7);
/// assert!(tensor.device_buffer(&OTHER).is_err(), "another library's buffer");
/// assert!(tensor.as_slice::<f32>().is_err(), "not host memory");
/// ```
#[repr(C)]
pub struct DeviceContext<H> {
    // One byte, so that no two contexts share an address.
    _distinct: u8,
    _handle: std::marker::PhantomData<fn() -> H>,
}

impl<H> DeviceContext<H> {
    /// A context, for a `static`.
    pub const fn new() -> DeviceContext<H> {
        DeviceContext { _distinct: 0, _handle: std::marker::PhantomData }
    }
    fn address(&'static self) -> *const c_void {
        self as *const DeviceContext<H> as *const c_void
    }
}

impl<H> Default for DeviceContext<H> {
    fn default() -> Self {
        Self::new()
    }
}

mod sealed {
    /// Only this crate's element types: `as_slice` sizes the slice by the
    /// type, so a type whose size differs from its dtype's would read out
    /// of bounds from safe code.
    pub trait Sealed {}
}

/// Rust element types that map to a [`DType`]: `u8`, `u32`, `i32`, `i64`,
/// [`f16`](crate::f16), `f32`, `f64`. Sealed: no other type can claim a dtype, so this does not
/// compile:
///
/// ```compile_fail
/// #[derive(Clone, Copy)]
/// struct Wide([u8; 64]);
/// impl vigil_stage_api::Element for Wide {
///     const DTYPE: vigil_stage_api::DType = vigil_stage_api::DType::U8;
/// }
/// ```
pub trait Element: sealed::Sealed + Copy + Send + 'static {
    /// The dtype a tensor of this element type carries.
    const DTYPE: DType;
}
macro_rules! element {
    ($($t:ty => $d:ident),*) => { $(impl sealed::Sealed for $t {} impl Element for $t { const DTYPE: DType = DType::$d; })* };
}
element!(u8 => U8, u32 => U32, i32 => I32, i64 => I64, half::f16 => F16, f32 => F32, f64 => F64);

/// Errors of typed access to a tensor.
///
/// A stage's `?` turns one into a [`StageError`](crate::StageError) of kind
/// `Invalid`: the input was not what the stage declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorAccessError {
    /// The element type asked for is not the tensor's.
    DType {
        /// The dtype of the Rust type asked for.
        expected: DType,
        /// The tensor's dtype.
        found: DType,
    },
    /// The tensor lives on this device, not in host memory.
    NotOnCpu(Device),
    /// The tensor is not a device buffer of the [`DeviceContext`] asked
    /// for: host memory, or another library's buffer.
    ForeignBuffer(Device),
    /// The strides are not row-major contiguous.
    NotContiguous,
    /// The data's address (a foreign tensor's, with its byte offset) is not
    /// a multiple of the element type's alignment.
    Misaligned {
        /// The alignment the element type needs, in bytes.
        align: usize,
    },
}

impl std::fmt::Display for TensorAccessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DType { expected, found } => write!(f, "expected dtype {expected}, found {found}"),
            Self::NotOnCpu(d) => write!(f, "tensor lives on {d}, expected the CPU"),
            Self::ForeignBuffer(d) => match d.kind {
                DeviceKind::Cpu => write!(f, "tensor lives on the CPU, expected a device buffer of this library"),
                _ => write!(f, "tensor lives on {d} in a buffer another library made, which only that library can read"),
            },
            Self::NotContiguous => write!(f, "tensor is not contiguous (row-major)"),
            Self::Misaligned { align } => write!(f, "tensor data is not aligned to {align} bytes, as its element type needs"),
        }
    }
}

/// An owned tensor. Dropping it calls the producer's release callback
/// (DLPack's `deleter`), so memory is always freed by the allocator of the
/// library that made it.
#[repr(C)]
#[derive(StableAbi)]
pub struct Tensor {
    data: *mut c_void,
    device: Device,
    dtype: DType,
    shape: RVec<i64>,
    /// Strides in elements, as in DLPack.
    strides: RVec<i64>,
    byte_offset: u64,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut c_void)>,
    /// The [`DeviceContext`] of a buffer made by
    /// [`Tensor::from_device_buffer`]; null otherwise.
    context: *const c_void,
}

// The descriptor owns its memory exclusively; moving it between threads moves
// that ownership.
unsafe impl Send for Tensor {}
unsafe impl Sync for Tensor {}

unsafe extern "C" fn drop_boxed<H>(ctx: *mut c_void) {
    drop(unsafe { Box::from_raw(ctx as *mut H) });
}

/// The strides, in elements, of a row-major (C-contiguous) tensor of
/// `shape`: what [`Tensor::from_raw_parts`] needs for memory laid out as
/// [`Tensor::from_vec`] lays it out.
///
/// ```
/// assert_eq!(vigil_stage_api::tensor::contiguous_strides(&[2, 3, 4]), [12, 4, 1]);
/// ```
pub fn contiguous_strides(shape: &[i64]) -> Vec<i64> {
    let mut strides = vec![0i64; shape.len()];
    let mut step = 1i64;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = step;
        step *= d.max(1);
    }
    strides
}

impl Tensor {
    /// Takes ownership of `data` without copying it.
    ///
    /// Panics if `shape` does not describe exactly `data.len()` elements
    /// (a programming error on the producer's side).
    pub fn from_vec<T: Element>(data: Vec<T>, shape: &[usize]) -> Tensor {
        let count: usize = shape.iter().product();
        assert_eq!(count, data.len(), "tensor shape {shape:?} does not match {} elements", data.len());
        let mut boxed = Box::new(data);
        let data_ptr = boxed.as_mut_ptr() as *mut c_void;
        let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        Tensor {
            data: data_ptr,
            device: Device::CPU,
            dtype: T::DTYPE,
            strides: contiguous_strides(&shape).into(),
            shape: shape.into(),
            byte_offset: 0,
            manager_ctx: Box::into_raw(boxed) as *mut c_void,
            deleter: Some(drop_boxed::<Vec<T>>),
            context: std::ptr::null(),
        }
    }

    /// A device-resident tensor: `buffer` is the producing library's handle
    /// (a wgpu buffer, or a burn tensor holding one) of `shape` elements of
    /// `dtype`, on `device`. The tensor owns it, and dropping the tensor
    /// drops it in this library. Only a stage naming the same `context`
    /// reads it back ([`Tensor::device_buffer`]); no host copy is made.
    ///
    /// Panics if `device` is the CPU (host memory goes through
    /// [`Tensor::from_vec`]).
    pub fn from_device_buffer<H: Send + Sync + 'static>(
        buffer: H,
        context: &'static DeviceContext<H>,
        device: Device,
        dtype: DType,
        shape: &[usize],
    ) -> Tensor {
        assert_ne!(device.kind, DeviceKind::Cpu, "a device buffer on the CPU: use Tensor::from_vec");
        let boxed = Box::new(buffer);
        let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let handle = Box::into_raw(boxed);
        Tensor {
            data: handle as *mut c_void,
            device,
            dtype,
            strides: contiguous_strides(&shape).into(),
            shape: shape.into(),
            byte_offset: 0,
            manager_ctx: handle as *mut c_void,
            deleter: Some(drop_boxed::<H>),
            context: context.address(),
        }
    }

    /// The handle of a device tensor made by [`Tensor::from_device_buffer`]
    /// with this `context`; [`TensorAccessError::ForeignBuffer`] for any
    /// other tensor (host memory, or another library's buffer, whose handle
    /// this library could not use).
    pub fn device_buffer<H>(&self, context: &'static DeviceContext<H>) -> Result<&H, TensorAccessError> {
        if self.context.is_null() || self.context != context.address() {
            return Err(TensorAccessError::ForeignBuffer(self.device));
        }
        // The same context means the same library made `data` as a boxed `H`.
        Ok(unsafe { &*(self.data as *const H) })
    }

    /// Wraps foreign memory (e.g. a CUDA allocation) described DLPack-style.
    ///
    /// # Safety
    /// `data` must stay valid until `deleter(manager_ctx)` is called, and
    /// shape/strides/dtype must describe it.
    #[allow(clippy::too_many_arguments)] // one argument per DLPack field, in DLPack's order
    pub unsafe fn from_raw_parts(
        data: *mut c_void,
        device: Device,
        dtype: DType,
        shape: Vec<i64>,
        strides: Vec<i64>,
        byte_offset: u64,
        manager_ctx: *mut c_void,
        deleter: Option<unsafe extern "C" fn(*mut c_void)>,
    ) -> Tensor {
        Tensor {
            data,
            device,
            dtype,
            shape: shape.into(),
            strides: strides.into(),
            byte_offset,
            manager_ctx,
            deleter,
            context: std::ptr::null(),
        }
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Where the data lives.
    pub fn device(&self) -> Device {
        self.device
    }
    /// Size of each dimension, outermost first (`[N, H, W, 3]` for frames).
    pub fn shape(&self) -> Vec<usize> {
        self.shape.iter().map(|&d| d as usize).collect()
    }
    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    /// Step between neighbours along each dimension, in elements (not bytes).
    pub fn strides(&self) -> &[i64] {
        &self.strides
    }
    /// Number of elements (product of the shape).
    pub fn len(&self) -> usize {
        self.shape.iter().product::<i64>() as usize
    }
    /// Whether some dimension is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Address of the first element, for identity checks and foreign consumers.
    pub fn data_ptr(&self) -> *const c_void {
        (self.data as *const u8).wrapping_add(self.byte_offset as usize) as *const c_void
    }
    /// Whether the strides are row-major with no gaps, as
    /// [`Tensor::from_vec`] makes them.
    pub fn is_contiguous(&self) -> bool {
        self.strides.as_slice() == contiguous_strides(&self.shape).as_slice()
    }

    fn check<T: Element>(&self) -> Result<(), TensorAccessError> {
        if self.dtype != T::DTYPE {
            return Err(TensorAccessError::DType { expected: T::DTYPE, found: self.dtype });
        }
        if self.device.kind != DeviceKind::Cpu {
            return Err(TensorAccessError::NotOnCpu(self.device));
        }
        if !self.is_contiguous() {
            return Err(TensorAccessError::NotContiguous);
        }
        let align = std::mem::align_of::<T>();
        if !self.is_empty() && !(self.data_ptr() as usize).is_multiple_of(align) {
            return Err(TensorAccessError::Misaligned { align });
        }
        Ok(())
    }

    /// The elements as a slice, for a contiguous CPU tensor of type `T`.
    pub fn as_slice<T: Element>(&self) -> Result<&[T], TensorAccessError> {
        self.check::<T>()?;
        if self.is_empty() {
            return Ok(&[]);
        }
        Ok(unsafe { std::slice::from_raw_parts(self.data_ptr() as *const T, self.len()) })
    }

    /// The elements as a mutable slice, for writing an output in place;
    /// same conditions as [`Tensor::as_slice`].
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T], TensorAccessError> {
        self.check::<T>()?;
        if self.is_empty() {
            return Ok(&mut []);
        }
        Ok(unsafe { std::slice::from_raw_parts_mut(self.data_ptr() as *mut T, self.len()) })
    }
}

impl Drop for Tensor {
    fn drop(&mut self) {
        if let Some(deleter) = self.deleter.take() {
            unsafe { deleter(self.manager_ctx) }
        }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({} {:?} on {:?})", self.dtype, self.shape.as_slice(), self.device.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_keeps_the_allocation() {
        let data = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let ptr = data.as_ptr() as *const c_void;
        let t = Tensor::from_vec(data, &[2, 3]);
        assert_eq!(t.data_ptr(), ptr);
        assert_eq!(t.strides(), &[3, 1]);
        assert_eq!(t.as_slice::<f32>().unwrap()[4], 5.0);
    }

    #[test]
    fn typed_access_checks_dtype() {
        let t = Tensor::from_vec(vec![1u8, 2], &[2]);
        assert_eq!(t.as_slice::<f32>().unwrap_err(), TensorAccessError::DType { expected: DType::F32, found: DType::U8 });
        assert_eq!(DType::U8.to_string(), "u8");
    }

    #[test]
    fn a_foreign_tensor_at_an_odd_address_is_refused_not_read() {
        let mut backing = [0f32; 3];
        let data = backing.as_mut_ptr() as *mut c_void;
        let two_floats_at = |byte_offset| unsafe {
            Tensor::from_raw_parts(data, Device::CPU, DType::F32, vec![2], vec![1], byte_offset, std::ptr::null_mut(), None)
        };
        // One byte into the buffer: 8 bytes of f32 data that no &[f32] may point at.
        assert_eq!(two_floats_at(1).as_slice::<f32>().unwrap_err(), TensorAccessError::Misaligned { align: 4 });
        assert_eq!(two_floats_at(4).as_slice::<f32>().unwrap(), [0.0, 0.0]);
    }

    #[test]
    fn a_device_buffer_is_dropped_once_by_its_library_and_read_only_through_its_context() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static DROPPED: AtomicUsize = AtomicUsize::new(0);
        #[derive(Debug)]
        struct Buffer(u32);
        impl Drop for Buffer {
            fn drop(&mut self) {
                DROPPED.fetch_add(1, Ordering::SeqCst);
            }
        }
        static OURS: DeviceContext<Buffer> = DeviceContext::new();
        static THEIRS: DeviceContext<Buffer> = DeviceContext::new();
        let t = Tensor::from_device_buffer(Buffer(5), &OURS, Device::wgpu(1), DType::F32, &[4, 2]);
        assert_eq!((t.shape(), t.strides(), t.device()), (vec![4, 2], &[2i64, 1][..], Device::wgpu(1)));
        assert_eq!(t.device_buffer(&OURS).unwrap().0, 5);
        let foreign = t.device_buffer(&THEIRS).unwrap_err();
        assert_eq!(foreign, TensorAccessError::ForeignBuffer(Device::wgpu(1)));
        assert_eq!(
            foreign.to_string(),
            "tensor lives on wgpu adapter 1 in a buffer another library made, which only that library can read"
        );
        assert_eq!(t.as_slice::<f32>().unwrap_err(), TensorAccessError::NotOnCpu(Device::wgpu(1)));
        let host = Tensor::from_vec(vec![0f32; 8], &[4, 2]);
        assert_eq!(host.device_buffer(&OURS).unwrap_err(), TensorAccessError::ForeignBuffer(Device::CPU));
        assert_eq!(DROPPED.load(Ordering::SeqCst), 0);
        drop(t);
        assert_eq!(DROPPED.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn drop_calls_the_deleter_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static RELEASED: AtomicUsize = AtomicUsize::new(0);
        unsafe extern "C" fn release(_: *mut c_void) {
            RELEASED.fetch_add(1, Ordering::SeqCst);
        }
        let mut backing = [0u8; 4];
        let t = unsafe {
            Tensor::from_raw_parts(
                backing.as_mut_ptr() as *mut c_void,
                Device::CPU,
                DType::U8,
                vec![4],
                vec![1],
                0,
                std::ptr::null_mut(),
                Some(release),
            )
        };
        drop(t);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 1);
    }
}

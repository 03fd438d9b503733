//! The C allocator's settings for Vigil's buffers. Every step hands whole
//! batches around: 16 frames of 768x576 are 21 MB of pixels and 57 MB of
//! flow, copied into and out of the plugins' tensors. glibc serves blocks
//! that large with a fresh `mmap` and returns them on `free`, so each one
//! costs a page fault per 4 KiB and the kernel zeroing the page, on every
//! step. Raising the mmap threshold keeps them in the heap, where a freed
//! block is reused as it is; raising the trim threshold keeps the heap
//! from being handed back between steps.
//!
//! Measured (docs/benchmarks.md, "The allocator"): `vigil score` with the
//! `motion` model on vtest.avi, 24.4-24.7 -> 31.8-33.0 frames/s, peak RSS
//! +2.6%.

/// Blocks below this come from the heap (glibc's default starts at 128 KiB).
pub const MMAP_THRESHOLD: usize = 256 << 20;
/// Free memory at the top of the heap kept for reuse.
pub const TRIM_THRESHOLD: usize = 512 << 20;

/// Applies the settings; call once, first thing in `main`. A no-op where
/// the C library is not glibc.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}

/// Faults in `buffer`'s whole allocation now, in one call, instead of a
/// page fault per 4 KiB as it is first written. A video's frames and flow
/// are gigabytes at 768x576, and in a virtual machine each separate fault
/// is costly. A no-op where the kernel does not support it.
pub fn populate<T>(buffer: &mut Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = buffer.as_mut_ptr() as usize;
        let end = start + buffer.capacity() * std::mem::size_of::<T>();
        let (first, last) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
        if last > first {
            // SAFETY: the range lies inside the vector's allocation;
            // populating writes nothing the program can see.
            unsafe {
                libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_POPULATE_WRITE);
            }
        }
    }
}

//! A fit's memory must not grow with its step count: after the first steps
//! have filled the kernels' buffer pool and scratch buffers, later steps
//! reuse them. (burn's autodiff graphs of every step's parameters stayed
//! behind until `model::free_dropped_graphs`: about 160 KB a step at F = 16,
//! a third of a gigabyte over a ped2-fast fit.)

use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use vigil_plugin_cae::Cae;
use vigil_stage_api::{names, Batch, FrameId, Tensor};
use vigil_stage_testkit::{create, into_reconstructor};

/// The system allocator, counting the bytes held, over all threads.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only the count is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn training_steps_do_not_keep_memory() {
    const CUBES: usize = 16;
    const CUBE: [usize; 3] = [15, 16, 16];
    let values: Vec<u8> = (0..CUBES * CUBE.iter().product::<usize>()).map(|i| (i * 7919 % 251) as u8).collect();
    let ids = (0..CUBES as u32).map(|frame| FrameId { video: 0, frame }).collect();
    let batch = Batch::new(ids)
        .with(names::APPEARANCE, Tensor::from_vec(values, &[CUBES, CUBE[0], CUBE[1], CUBE[2]]))
        .with(names::BAND, Tensor::from_vec(vec![0u32; CUBES], &[CUBES]));
    let mut model = into_reconstructor(create::<Cae>(json!({"features_root": 4, "batch_size": 8})).expect("valid options"));
    model.fit_begin(batch).unwrap();
    let (indices, weights): (Vec<u32>, Vec<f32>) = ((0..8).collect(), vec![1.0; 8]);
    let mut step = || model.step(indices.as_slice().into(), weights.as_slice().into()).into_result().unwrap();
    for _ in 0..20 {
        step();
    }
    let before = HELD.load(Ordering::Relaxed);
    const STEPS: isize = 200;
    for _ in 0..STEPS {
        step();
    }
    let grown = HELD.load(Ordering::Relaxed) - before;
    // The leak this guards against kept about 30 KB a step at this size.
    assert!(grown < STEPS * 1024, "{STEPS} steps kept {grown} bytes more ({} per step)", grown / STEPS);
}

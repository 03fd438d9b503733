//! How the rows of a raster are shared between threads.

/// Pixels below which a pass over a raster stays on one thread. Waking a
/// second thread costs more than a pass over a pyramid level this small (a
/// red-black half-sweep of a 128x96 level is about 20 µs), and a level runs
/// dozens of such passes; a video's frame pairs keep both cores busy anyway.
const MIN_PIXELS_PER_TASK: usize = 16_384;

/// The fewest rows of a `width`-pixel raster one task takes (rayon's
/// `with_min_len`): a raster of fewer pixels is not split at all.
pub fn min_rows(width: usize) -> usize {
    MIN_PIXELS_PER_TASK.div_ceil(width.max(1))
}

//! A batch's rows split between the cores.

use vigil_stage_api::StageError;

/// The threads [`on_cores`] runs rows on at most: one per core.
pub fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `work(row)` for every row `0..count`, results in row order. The rows are
/// split into one contiguous run per core, each run on its own thread, so a
/// row's result is the same whichever thread ran it.
pub fn on_cores<T: Send>(count: usize, work: impl Fn(usize) -> Result<T, StageError> + Sync) -> Result<Vec<T>, StageError> {
    let threads = worker_threads().min(count);
    if threads <= 1 {
        return (0..count).map(work).collect();
    }
    let per_thread = count.div_ceil(threads);
    let work = &work;
    let runs: Vec<Result<Vec<T>, StageError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .step_by(per_thread)
            .map(|start| scope.spawn(move || (start..(start + per_thread).min(count)).map(work).collect()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(StageError::new("a localizer thread panicked")))).collect()
    });
    let mut rows = Vec::with_capacity(count);
    for run in runs {
        rows.extend(run?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_row_order_and_the_first_error_is_returned() {
        for count in [0, 1, 2, 3, 17] {
            assert_eq!(on_cores(count, |row| Ok(row * 10)).unwrap(), (0..count).map(|r| r * 10).collect::<Vec<_>>());
        }
        let err = on_cores(9, |row| if row >= 4 { Err(StageError::new(format!("row {row}"))) } else { Ok(row) }).unwrap_err();
        assert!(err.to_string().contains("row 4"), "{err}");
    }
}

//! Bytes the GPU path moves between host and device memory, counted where
//! the stage makes a device tensor from host values or reads one back (on
//! the CPU nothing is counted: there is no device memory).

use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals of one stage's host <-> device copies.
#[derive(Debug, Default)]
pub struct Transfers {
    cubes_to_device: AtomicU64,
    other_to_device: AtomicU64,
    to_host: AtomicU64,
    steps: AtomicU64,
}

/// A copy of the totals at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferTotals {
    /// Cube values uploaded: once per fit when the cubes stay on the
    /// device, else every mini-batch's.
    pub cubes_to_device: u64,
    /// Everything else uploaded: cube indices, sample weights.
    pub other_to_device: u64,
    /// Read back: losses, per-cube errors.
    pub to_host: u64,
    /// Training steps taken on the device.
    pub steps: u64,
}

impl TransferTotals {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &TransferTotals) -> TransferTotals {
        TransferTotals {
            cubes_to_device: self.cubes_to_device - earlier.cubes_to_device,
            other_to_device: self.other_to_device - earlier.other_to_device,
            to_host: self.to_host - earlier.to_host,
            steps: self.steps - earlier.steps,
        }
    }
}

impl Transfers {
    pub fn cubes_uploaded(&self, bytes: usize) {
        self.cubes_to_device.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn uploaded(&self, bytes: usize) {
        self.other_to_device.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn downloaded(&self, bytes: usize) {
        self.to_host.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn step_taken(&self) {
        self.steps.fetch_add(1, Ordering::Relaxed);
    }

    pub fn totals(&self) -> TransferTotals {
        TransferTotals {
            cubes_to_device: self.cubes_to_device.load(Ordering::Relaxed),
            other_to_device: self.other_to_device.load(Ordering::Relaxed),
            to_host: self.to_host.load(Ordering::Relaxed),
            steps: self.steps.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Display for TransferTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes of cubes and {} other bytes (indices, weights) to the device, {} bytes (losses, errors) back, over {} steps",
            self.cubes_to_device, self.other_to_device, self.to_host, self.steps
        )
    }
}

//! MAT-file ground truth: `gt` cells of [start; end] frame ranges
//! (Ano-Pred's `ped2.mat`, `avenue.mat`), and Avenue's per-video
//! `N_label.mat` whose `volLabel` cell holds one pixel mask per frame.

use super::{FrameTruth, MaskSource, Named};
use crate::error::{invalid, io, Error, Result};
use crate::mask::Mask;
use crate::mat::{read_variable, MatArray, Numeric};
use crate::natural::{file_name, sort_paths};
use std::ops::Range;
use std::path::Path;

/// The `gt` cell: per video a 2xK array, column j = [start; end] of the
/// j-th anomalous range (1-based, inclusive); an empty cell = no anomaly.
pub(super) fn read_ranges(path: &Path) -> Result<Vec<FrameTruth>> {
    let gt = read_variable(path, "gt", None)?;
    let MatArray::Cell { cells, .. } = gt else {
        return invalid(format!("{}: `gt` is a {}, expected a cell array of [start; end] ranges", path.display(), gt.describe()));
    };
    cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let MatArray::Numeric(n) = cell else {
                return invalid(format!("{}: gt{{{}}} is a {}, expected numbers", path.display(), i + 1, cell.describe()));
            };
            ranges_of(n).map(FrameTruth::Ranges).map_err(|e| Error::Invalid(format!("{}: gt{{{}}}: {e}", path.display(), i + 1)))
        })
        .collect()
}

fn ranges_of(n: &Numeric) -> Result<Vec<Range<usize>>, String> {
    if n.is_empty() {
        return Ok(vec![]);
    }
    if !n.len().is_multiple_of(2) {
        return Err(format!("{} values, expected [start; end] pairs", n.len()));
    }
    let pairs = n.len() / 2;
    // Column-major: a 2xK array has its pairs in columns; a Kx2 array (K > 2) in rows.
    let rows_are_pairs = n.dims.first().is_some_and(|&r| r != 2) && n.dims.get(1) == Some(&2);
    (0..pairs)
        .map(|j| {
            let (s, e) = if rows_are_pairs { (n.value(j), n.value(pairs + j)) } else { (n.value(2 * j), n.value(2 * j + 1)) };
            if s < 1.0 || e < s || s.fract() != 0.0 || e.fract() != 0.0 {
                return Err(format!("bad range [{s}; {e}] (expected 1-based frame numbers, start <= end)"));
            }
            Ok(s as usize - 1..e as usize)
        })
        .collect()
}

/// A 2-D mask stored column-major (MATLAB) as a row-major bit mask.
fn mask_of(n: &Numeric) -> Result<Mask, String> {
    let &[height, width] = n.dims.as_slice() else {
        return Err(format!("a mask of dimensions {:?}, expected height x width", n.dims));
    };
    let pixels = (0..height * width).map(|i| n.nonzero((i % width) * height + i / width));
    Ok(Mask::from_pixels(width, height, pixels))
}

/// Calls `each` with every frame's mask of an Avenue `N_label.mat`,
/// reading the file as a stream.
fn each_avenue_mask(path: &Path, mut each: impl FnMut(Mask)) -> Result<()> {
    let mut visit = |i: usize, cell: MatArray| -> Result<()> {
        let mask = match &cell {
            MatArray::Numeric(n) => mask_of(n),
            other => Err(format!("a {}", other.describe())),
        };
        let mask = mask.map_err(|e| Error::Invalid(format!("{}: volLabel{{{}}} is {e}", path.display(), i + 1)))?;
        each(mask);
        Ok(())
    };
    match read_variable(path, "volLabel", Some(&mut visit))? {
        MatArray::Cell { .. } => Ok(()),
        other => invalid(format!("{}: `volLabel` is a {}, expected a cell of masks", path.display(), other.describe())),
    }
}

pub(super) fn read_avenue_masks(path: &Path) -> Result<Vec<Mask>> {
    let mut masks = Vec::new();
    each_avenue_mask(path, |m| masks.push(m))?;
    Ok(masks)
}

/// Every `N_label.mat` of an Avenue `testing_label_mask` folder: frame
/// labels (any anomalous pixel) now, masks later on demand.
pub(super) fn read_avenue_folder(dir: &Path) -> Result<Vec<Named>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| file_name(p).to_lowercase().ends_with("_label.mat"))
        .collect();
    sort_paths(&mut files);
    files
        .into_iter()
        .map(|path| {
            let mut labels = Vec::new();
            each_avenue_mask(&path, |m| labels.push(m.any()))?;
            let name = file_name(&path);
            Ok(Named { name, frames: FrameTruth::PerFrame(labels), masks: Some(MaskSource::AvenueMat(path)) })
        })
        .collect()
}

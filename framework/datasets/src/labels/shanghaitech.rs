//! ShanghaiTech: `test_frame_mask/01_0014.npy` (one 0/1 per frame) and,
//! when present, `test_pixel_mask/01_0014.npy` ([frames, H, W]).

use super::{FrameTruth, MaskSource, Named};
use crate::error::{invalid, io, Result};
use crate::natural::{file_name, sort_paths};
use crate::npy::NpyArray;
use std::path::Path;

pub(super) fn read(frame_dir: &Path, pixel_dir: Option<&Path>) -> Result<Vec<Named>> {
    let mut files: Vec<_> = std::fs::read_dir(frame_dir)
        .map_err(io(frame_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")))
        .collect();
    sort_paths(&mut files);
    let mut out = Vec::new();
    for path in files {
        let array = NpyArray::open(&path)?;
        if array.shape.len() != 1 {
            return invalid(format!("{}: expected one label per frame, found shape {:?}", path.display(), array.shape));
        }
        let pixels = pixel_dir.map(|d| d.join(file_name(&path))).filter(|p| p.is_file());
        let masks = pixels.map(|p| NpyArray::open(&p)).transpose()?;
        if let Some(m) = &masks {
            if m.shape.len() != 3 || m.shape[0] != array.len() {
                return invalid(format!(
                    "{}: expected [{}, height, width] pixel masks, found shape {:?}",
                    m.path.display(),
                    array.len(),
                    m.shape
                ));
            }
        }
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        out.push(Named { name, frames: FrameTruth::PerFrame(array.nonzero()?), masks: masks.map(MaskSource::Npy) });
    }
    Ok(out)
}

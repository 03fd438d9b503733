//! Pixel masks as images, one per frame: UCSD's `TestNNN_gt/NNN.bmp` and
//! the synthetic scene's `masks/01/000.png`. Nonzero pixels are anomalous.

use super::{FrameTruth, MaskSource, Named};
use crate::error::{invalid, io, Result};
use crate::layout::{is_image_file, list_frame_files};
use crate::mask::Mask;
use crate::natural::{file_name, sort_paths};
use rayon::prelude::*;
use std::path::Path;

pub(super) fn read_mask(path: &Path) -> Result<Mask> {
    let image = match image::open(path) {
        Ok(image) => image.into_luma8(),
        Err(e) => return invalid(format!("cannot read mask image {}: {e}", path.display())),
    };
    let (w, h) = image.dimensions();
    // A mask is black with the anomalous regions marked (a few grey pixels
    // at most, from compression); a video frame is mostly mid-tones.
    let mid = image.as_raw().iter().filter(|&&p| (16..240).contains(&p)).count();
    if mid * 2 > image.as_raw().len() {
        return invalid(format!(
            "{} does not look like a pixel mask: {}% of its pixels are mid-grey, where a mask is black with the \
             anomalous regions marked (is the labels path a folder of video frames?)",
            path.display(),
            mid * 100 / image.as_raw().len()
        ));
    }
    Ok(Mask::from_pixels(w as usize, h as usize, image.into_raw().into_iter().map(|p| p != 0)))
}

/// The per-video mask folders under `dir`, with frame labels. When any is
/// named `*_gt` (UCSD, beside the frame folders) only those count.
pub(super) fn read_mask_folders(dir: &Path) -> Result<Vec<Named>> {
    let is_gt = |p: &std::path::PathBuf| file_name(p).to_lowercase().ends_with("_gt");
    let mut folders: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !file_name(p).starts_with('.'))
        .collect();
    if folders.iter().any(is_gt) {
        folders.retain(is_gt);
    }
    sort_paths(&mut folders);
    let mut out = Vec::new();
    for folder in folders {
        let has_images = std::fs::read_dir(&folder).map_err(io(&folder))?.filter_map(|e| e.ok()).any(|e| is_image_file(&e.path()));
        if !has_images {
            continue;
        }
        let files = list_frame_files(&folder)?;
        // Decoding is most of the time (40,000 masks at 856x480: minutes on one
        // core). Results are gathered in file order before the first error is
        // taken, so the file an error names does not depend on thread timing.
        let decoded: Vec<Result<bool>> = files.par_iter().map(|f| read_mask(f).map(|m| m.any())).collect();
        let labels = decoded.into_iter().collect::<Result<Vec<_>>>()?;
        out.push(Named { name: file_name(&folder), frames: FrameTruth::PerFrame(labels), masks: Some(MaskSource::Images(files)) });
    }
    Ok(out)
}

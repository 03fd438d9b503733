//! Decoder stage `frames`: a folder of image files (jpg/png/tif/bmp), one
//! per frame, in natural order (`2.jpg` before `10.jpg`), as RGB u8 frames;
//! grey images are replicated to three channels. The images of a batch are
//! decoded in parallel straight into the batch buffer.
//!
//! A frame that cannot be decoded ends the video there with a warning that
//! names the file; a truncated JPEG (no end-of-image marker), which the
//! decoder fills in grey, is kept with a warning that names it; an
//! unreadable folder or a non-image file is an error.

use rayon::prelude::*;
use std::path::{Path, PathBuf};
use vigil_stage_api::{
    names, Batch, DType, Decoder, FrameId, OptionSpec, Options, ROption, RResult, RStr, StageContext, StageError, StageFactory, StageInfo,
    StageInstance, StageIo, StageKind, Tensor, TensorSpec, VideoInfo,
};

/// The `frames` stage's factory.
pub struct FramesStage;

impl StageFactory for FramesStage {
    fn info() -> StageInfo {
        vigil_stage_api::stage_info! {
            name: "frames",
            kind: StageKind::Decoder,
            description: "Reads folders of image frames (jpg/png/tif/bmp, natural order) as RGB frames",
            options: Vec::<OptionSpec>::new(),
        }
    }

    fn create(_options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        let io = StageIo::new(
            vec![],
            vec![TensorSpec::new(names::FRAMES, DType::U8, 4, "RGB frames [N, H, W, 3], one (video, frame) id per row")],
        );
        Ok(StageInstance::decoder(FramesDecoder::default(), io))
    }
}

#[derive(Default)]
struct FramesDecoder {
    open: Option<OpenFolder>,
}

struct OpenFolder {
    files: Vec<PathBuf>,
    video: u32,
    width: u32,
    height: u32,
    /// Index of the next frame to read; `files.len()` once finished.
    next: usize,
}

/// Why one frame could not be used.
enum FrameProblem {
    /// The file is damaged: the video ends before it.
    Corrupt(String),
    /// The file is fine but does not belong (another size): an error.
    Mismatch(String),
}

/// Whether a JPEG file's bytes end with its end-of-image marker (FF D9; a
/// few trailing bytes after it are allowed). The entropy-coded data never
/// holds FF D9, so a file cut short lacks it.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decodes one image file, and says whether it is a truncated JPEG (its
/// missing part comes out grey).
fn decode(path: &Path) -> Result<(image::DynamicImage, bool), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes.as_slice())).with_guessed_format().map_err(|e| e.to_string())?;
    let truncated = reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(&bytes);
    Ok((reader.decode().map_err(|e| e.to_string())?, truncated))
}

/// The size of a folder's frames, from its first frame decoded whole. Every
/// batch buffer is sized by it, so the size a header claims is not enough: a
/// corrupt first frame could claim gigapixels.
fn frame_size(first: &Path) -> Result<(u32, u32), StageError> {
    let unreadable = |why: String| StageError::invalid(format!("cannot read the first frame {}: {why}", first.display()));
    let (image, truncated) = decode(first).map_err(unreadable)?;
    if truncated {
        return Err(unreadable(
            "its JPEG data ends before the end-of-image marker (a truncated file?), so its size cannot be trusted".into(),
        ));
    }
    Ok((image.width(), image.height()))
}

/// Decodes one frame into `out`; `Ok(true)` when it decoded but the file
/// is a truncated JPEG (its missing part comes out grey).
fn decode_into(path: &Path, width: u32, height: u32, out: &mut [u8]) -> Result<bool, FrameProblem> {
    let (image, truncated) = decode(path).map_err(FrameProblem::Corrupt)?;
    if (image.width(), image.height()) != (width, height) {
        return Err(FrameProblem::Mismatch(format!(
            "{} is {}x{}, but the video's first frame is {width}x{height}",
            path.display(),
            image.width(),
            image.height()
        )));
    }
    match image {
        image::DynamicImage::ImageRgb8(rgb) => out.copy_from_slice(&rgb),
        other => out.copy_from_slice(&other.into_rgb8()),
    }
    Ok(truncated)
}

impl OpenFolder {
    fn open(folder: &Path, video: u32) -> Result<OpenFolder, StageError> {
        if !folder.is_dir() {
            return Err(StageError::invalid(format!("frame folder {} does not exist or is not a folder", folder.display())));
        }
        let files = vigil_datasets::list_frame_files(folder).map_err(|e| StageError::invalid(e.to_string()))?;
        let (width, height) = frame_size(&files[0])?;
        Ok(OpenFolder { files, video, width, height, next: 0 })
    }

    fn next_batch(&mut self, max_frames: u32) -> Result<Option<Batch>, StageError> {
        if max_frames == 0 {
            return Err(StageError::invalid("next_batch was asked for 0 frames"));
        }
        let first = self.next;
        let files = &self.files[first..(first + max_frames as usize).min(self.files.len())];
        if files.is_empty() {
            return Ok(None);
        }
        let frame_bytes = self.width as usize * self.height as usize * 3;
        let mut data = vec![0u8; files.len() * frame_bytes];
        let (width, height) = (self.width, self.height);
        let results: Vec<Result<bool, FrameProblem>> =
            data.par_chunks_mut(frame_bytes).zip(files.par_iter()).map(|(out, file)| decode_into(file, width, height, out)).collect();
        let mut good = files.len();
        for (i, _) in results.iter().enumerate().take_while(|(_, r)| r.is_ok()).filter(|(_, r)| matches!(r, Ok(true))) {
            tracing::warn!(
                "{}: the JPEG data ends before its end-of-image marker (a truncated file?); frame {} of {} is used \
                 with its missing part filled in grey",
                files[i].display(),
                first + i,
                self.files.len()
            );
        }
        if let Some((i, problem)) = results.into_iter().enumerate().find_map(|(i, r)| r.err().map(|p| (i, p))) {
            match problem {
                FrameProblem::Mismatch(message) => return Err(StageError::invalid(message)),
                FrameProblem::Corrupt(reason) => {
                    let index = first + i;
                    tracing::warn!(
                        "{}: cannot decode frame {index} of {} ({reason}); the video ends after its first {index} frames",
                        self.files[index].display(),
                        self.files.len()
                    );
                    good = i;
                }
            }
        }
        self.next = if good < files.len() { self.files.len() } else { first + good };
        if good == 0 {
            return Ok(None);
        }
        data.truncate(good * frame_bytes);
        let ids = (first..first + good).map(|f| FrameId { video: self.video, frame: f as u32 }).collect();
        let shape = [good, height as usize, width as usize, 3];
        Ok(Some(Batch::new(ids).with(names::FRAMES, Tensor::from_vec(data, &shape))))
    }
}

impl Decoder for FramesDecoder {
    fn open(&mut self, source: RStr<'_>, video: u32) -> RResult<VideoInfo, StageError> {
        self.open = None;
        let result = OpenFolder::open(Path::new(source.as_str()), video).map(|folder| {
            let info = VideoInfo {
                width: folder.width,
                height: folder.height,
                frame_count: ROption::RSome(folder.files.len() as u64),
                fps: ROption::RNone,
            };
            self.open = Some(folder);
            info
        });
        result.into()
    }

    fn next_batch(&mut self, max_frames: u32) -> RResult<ROption<Batch>, StageError> {
        let result = match self.open.as_mut() {
            None => Err(StageError::invalid("next_batch called before open")),
            Some(folder) => folder.next_batch(max_frames),
        };
        result.map(ROption::from).into()
    }
}

vigil_stage_api::export_plugin!(FramesStage);

#[cfg(test)]
mod tests;

//! Decoder stage `frames`: a folder of image files (jpg/png/tif/bmp), one
//! per frame, in natural order (`2.jpg` before `10.jpg`), as RGB u8 frames;
//! grey images are replicated to three channels. The images of a batch are
//! decoded in parallel straight into the batch buffer.
//!
//! A frame that cannot be decoded ends the video there with a warning that
//! names the file; an unreadable folder or a non-image file is an error.

use rayon::prelude::*;
use std::path::{Path, PathBuf};
use vigil_stage_api::{
    Batch, DType, Decoder, FrameId, OptionSpec, Options, RResult, ROption, RStr, StageContext, StageError,
    StageFactory, StageInfo, StageInstance, StageIo, StageKind, Tensor, TensorSpec, VideoInfo,
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
            vec![TensorSpec::new("frames", DType::U8, 4, "RGB frames [N, H, W, 3], one (video, frame) id per row")],
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

fn decode_into(path: &Path, width: u32, height: u32, out: &mut [u8]) -> Result<(), FrameProblem> {
    let image = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| FrameProblem::Corrupt(e.to_string()))?
        .decode()
        .map_err(|e| FrameProblem::Corrupt(e.to_string()))?;
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
    Ok(())
}

impl OpenFolder {
    fn open(folder: &Path, video: u32) -> Result<OpenFolder, StageError> {
        if !folder.is_dir() {
            return Err(StageError::invalid(format!("frame folder {} does not exist or is not a folder", folder.display())));
        }
        let files = vigil_datasets::list_frame_files(folder).map_err(|e| StageError::invalid(e.to_string()))?;
        let (width, height) = image::image_dimensions(&files[0])
            .map_err(|e| StageError::invalid(format!("cannot read the first frame {}: {e}", files[0].display())))?;
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
        let results: Vec<Result<(), FrameProblem>> = data
            .par_chunks_mut(frame_bytes)
            .zip(files.par_iter())
            .map(|(out, file)| decode_into(file, width, height, out))
            .collect();
        let mut good = files.len();
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
        Ok(Some(Batch::new(ids).with("frames", Tensor::from_vec(data, &shape))))
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

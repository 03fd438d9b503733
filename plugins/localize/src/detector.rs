//! The `detector` localizer: a YOLOX-style ONNX detector (docs/method.md 2.1,
//! 10.2), box filters (2.2), cover removal (2.3) and, when enabled, motion
//! completion (2.4): boxes around moving regions no detection covers.

use crate::batch_io::{boxes_spec, boxes_tensor, frames_spec, FrameView, Frames, BOXES};
use crate::boxes::{cover_threshold_spec, nms_per_class, remove_covered, Bbox};
use crate::completion::{clear_detections, motion_boxes, MotionBoxRules};
use crate::letterbox::letterbox_into;
use crate::model::YoloxModel;
use crate::motion_source::{self, MotionSource};
use std::path::Path;
use vigil_stage_api::{
    stage_info, Batch, Localizer, OptionSpec, Options, RResult, StageContext, StageError, StageFactory, StageInfo, StageInstance, StageIo,
    StageKind, Tensor,
};

/// Candidates below this score never reach NMS (mmdet YOLOv3's test
/// `score_thr`), unless the user's threshold is lower still.
const CANDIDATE_SCORE: f32 = 0.05;
/// At most this many detections per frame after NMS (mmdet's `max_per_img`).
const MAX_DETECTIONS: usize = 100;

/// Factory of the `detector` localizer.
pub struct DetectorLocalizer;

impl StageFactory for DetectorLocalizer {
    fn info() -> StageInfo {
        let mut options = vec![
            OptionSpec::path(
                "model",
                None,
                "YOLOX-style ONNX detector: input f32 [1, 3, H, W] (BGR 0..255), output [1, anchors, 5 + classes] \
                 undecoded, e.g. yolox_nano.onnx",
            ),
            OptionSpec::float("score_threshold", 0.2, "keep detections whose objectness x class probability is above this"),
            OptionSpec::float("nms_iou", 0.45, "per-class NMS drops a box overlapping a better one by more than this IoU"),
            OptionSpec::int_list("classes", &[], "class ids to keep (COCO: 0 = person); empty keeps every class"),
            cover_threshold_spec(),
            OptionSpec::bool(
                "motion_completion",
                true,
                "add boxes around moving regions no detection covers (needs `flow` unless motion_source = \
                 \"frame_difference\")",
            ),
        ];
        options.extend(motion_source::option_specs());
        stage_info!(
            name: "detector",
            kind: StageKind::Localizer,
            description: "ONNX object detector (tract) with cover removal and motion completion",
            options: options,
        )
    }

    fn create(options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        let model = YoloxModel::load(Path::new(&options.string("model")?))?;
        let filter = DetectionFilter::from_options(options, model.classes)?;
        let completion = if options.bool("motion_completion")? {
            Some((MotionSource::from_options(options)?, motion_source::box_rules(options)?))
        } else {
            None
        };
        let mut inputs = vec![frames_spec()];
        if let Some((source, _)) = &completion {
            inputs.extend(source.inputs());
        }
        let io = StageIo::new(inputs, vec![boxes_spec()]);
        Ok(StageInstance::localizer(DetectorStage { model, filter, completion }, io))
    }
}

/// What happens to the model's candidates (docs/method.md 2.1-2.3).
struct DetectionFilter {
    score_threshold: f32,
    nms_iou: f32,
    min_area: f32,
    cover_threshold: f32,
    /// Per class: whether it is kept.
    wanted: Vec<bool>,
}

impl DetectionFilter {
    fn from_options(options: &Options, classes: usize) -> Result<DetectionFilter, StageError> {
        let unit = |name: &str| -> Result<f32, StageError> {
            let v = options.float(name)?;
            if (0.0..=1.0).contains(&v) {
                Ok(v as f32)
            } else {
                Err(StageError::invalid(format!("option `{name}` must be within 0..1, found {v}")))
            }
        };
        let chosen = options.int_list("classes")?;
        let mut wanted = vec![chosen.is_empty(); classes];
        for &c in &chosen {
            let slot = usize::try_from(c)
                .ok()
                .and_then(|c| wanted.get_mut(c))
                .ok_or_else(|| StageError::invalid(format!("option `classes`: class {c} does not exist (the model has {classes})")))?;
            *slot = true;
        }
        Ok(DetectionFilter {
            score_threshold: unit("score_threshold")?,
            nms_iou: unit("nms_iou")?,
            min_area: options.float("min_area")? as f32,
            cover_threshold: unit("cover_threshold")?,
            wanted,
        })
    }
}

struct DetectorStage {
    model: YoloxModel,
    filter: DetectionFilter,
    completion: Option<(MotionSource, MotionBoxRules)>,
}

impl DetectorStage {
    /// The kept detections of one frame, in image pixels.
    fn detect(&self, frame: FrameView<'_>) -> Result<Vec<Bbox>, StageError> {
        let (m, f) = (&self.model, &self.filter);
        let mut input = vec![0.0f32; 3 * m.input_width * m.input_height];
        let placement = letterbox_into(frame, m.input_width, m.input_height, &mut input);
        let output = m.run(input)?;
        let candidates = m.grid.decode(&output, &f.wanted, CANDIDATE_SCORE.min(f.score_threshold));
        let mut kept = nms_per_class(candidates, f.nms_iou);
        kept.truncate(MAX_DETECTIONS);
        let boxes: Vec<Bbox> = kept
            .iter()
            .map(|b| placement.to_image(b))
            .filter(|b| b.score > f.score_threshold && b.inclusive_area() >= f.min_area)
            .collect();
        Ok(remove_covered(&boxes, f.cover_threshold))
    }

    /// The detections of every frame of the batch, in row order. The model
    /// runs one frame at a time, so frames are split between the cores, each
    /// thread taking a contiguous run of rows; every frame's result is the
    /// same whichever thread ran it.
    fn detect_rows(&self, frames: &Frames<'_>) -> Result<Vec<Vec<Bbox>>, StageError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(frames.count.max(1));
        let per_thread = frames.count.div_ceil(threads.max(1)).max(1);
        let runs: Vec<std::ops::Range<usize>> =
            (0..frames.count).step_by(per_thread).map(|start| start..(start + per_thread).min(frames.count)).collect();
        let results: Vec<Result<Vec<Vec<Bbox>>, StageError>> = std::thread::scope(|scope| {
            let handles: Vec<_> =
                runs.into_iter().map(|rows| scope.spawn(move || rows.map(|row| self.detect(frames.frame(row))).collect())).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(StageError::new("a detector thread panicked")))).collect()
        });
        let mut per_row = Vec::with_capacity(frames.count);
        for run in results {
            per_row.extend(run?);
        }
        Ok(per_row)
    }

    fn localize(&mut self, batch: &Batch) -> Result<Tensor, StageError> {
        let frames = Frames::of(batch)?;
        let mut per_row = self.detect_rows(&frames)?;
        if let Some((source, rules)) = &mut self.completion {
            let maps = source.foreground(batch, &frames)?;
            for (boxes, mut map) in per_row.iter_mut().zip(maps) {
                clear_detections(&mut map, boxes, rules.growth);
                boxes.extend(motion_boxes(&map, rules));
            }
        }
        Ok(boxes_tensor(&per_row))
    }
}

impl Localizer for DetectorStage {
    fn process(&mut self, mut batch: Batch) -> RResult<Batch, StageError> {
        let result = self.localize(&batch).map(|boxes| {
            batch.insert(BOXES, boxes);
            batch
        });
        result.into()
    }
}

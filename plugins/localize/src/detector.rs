//! The `detector` localizer: a YOLOX-style ONNX detector (docs/method.md 2.1,
//! 10.2), box filters (2.2), cover removal (2.3) and, when enabled, motion
//! completion (2.4): boxes around moving regions no detection covers.

use crate::batch_io::{boxes_spec, boxes_tensor, frames_spec, FrameView, Frames, BOXES};
use crate::boxes::{nms_per_class, remove_covered, Bbox, CoverRemoval};
use crate::completion::{clear_detections, motion_boxes, MotionBoxRules};
use crate::letterbox::letterbox_into;
use crate::model::{Engine, InputSize, YoloxModel};
use crate::motion_source::{MotionSettings, MotionSource};
use crate::rows::on_cores;
use std::path::PathBuf;
use vigil_stage_api::settings::{within, Settings};
use vigil_stage_api::{
    settings, stage_info, Batch, Localizer, Options, RResult, StageContext, StageError, StageFactory, StageInfo, StageInstance, StageIo,
    StageKind, Tensor,
};

/// Candidates below this score never reach NMS (mmdet YOLOv3's test
/// `score_thr`), unless the user's threshold is lower still.
const CANDIDATE_SCORE: f32 = 0.05;
/// At most this many detections per frame after NMS (mmdet's `max_per_img`).
const MAX_DETECTIONS: usize = 100;

settings! {
    /// The `detector` localizer's options.
    pub struct DetectorSettings {
        /// YOLOX-style ONNX detector: input f32 [1, 3, H, W] (BGR 0..255), output [1, anchors, 5 + classes]
        /// undecoded, e.g. yolox_nano.onnx
        pub model: PathBuf = PathBuf::new(),
        /// the input a frame is letterboxed into: the model's declared size ("model"), or that size cut
        /// down to the frame's aspect, leaving out padding ("fit": same placement and scale, less arithmetic)
        pub input_size: InputSize = InputSize::Fit,
        /// what runs the network: "tract" (built in) or "onnxruntime" (ONNX Runtime's shared library, about
        /// twice as fast on a CPU, loaded at run time from `onnxruntime_library`)
        pub engine: Engine = Engine::Tract,
        /// ONNX Runtime's shared library (libonnxruntime.so, 1.17 or newer) for engine = "onnxruntime";
        /// left out: the ORT_DYLIB_PATH environment variable
        pub onnxruntime_library: Option<PathBuf> = None,
        /// keep detections whose objectness x class probability is above this
        pub score_threshold: f32 = 0.2 => within(0.0, 1.0),
        /// per-class NMS drops a box overlapping a better one by more than this IoU
        pub nms_iou: f32 = 0.45 => within(0.0, 1.0),
        /// class ids to keep (COCO: 0 = person); empty keeps every class
        pub classes: Vec<i64> = Vec::new(),
        pub cover: CoverRemoval = CoverRemoval::default(),
        /// add boxes around moving regions no detection covers (needs `flow` unless motion_source =
        /// "frame_difference")
        pub motion_completion: bool = true,
        pub motion: MotionSettings = MotionSettings::default(),
    }
}

/// Factory of the `detector` localizer.
pub struct DetectorLocalizer;

impl StageFactory for DetectorLocalizer {
    fn info() -> StageInfo {
        stage_info!(
            name: "detector",
            kind: StageKind::Localizer,
            description: "ONNX object detector (tract, or ONNX Runtime as an option) with cover removal and motion completion",
            options: DetectorSettings::specs(),
        )
    }

    fn create(options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        let settings = DetectorSettings::from_options(options)?;
        let model = YoloxModel::load(&settings.model, settings.input_size, settings.engine, settings.onnxruntime_library.as_deref())?;
        let filter = DetectionFilter::new(&settings, model.classes)?;
        let completion = settings.motion_completion.then(|| (settings.motion.source(), settings.motion.box_rules()));
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
    fn new(settings: &DetectorSettings, classes: usize) -> Result<DetectionFilter, StageError> {
        let chosen = &settings.classes;
        let mut wanted = vec![chosen.is_empty(); classes];
        for &c in chosen {
            let slot = usize::try_from(c)
                .ok()
                .and_then(|c| wanted.get_mut(c))
                .ok_or_else(|| StageError::invalid(format!("option `classes`: class {c} does not exist (the model has {classes})")))?;
            *slot = true;
        }
        Ok(DetectionFilter {
            score_threshold: settings.score_threshold,
            nms_iou: settings.nms_iou,
            min_area: settings.motion.min_area,
            cover_threshold: settings.cover.cover_threshold,
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
        let plan = m.plan_for(frame.width, frame.height)?;
        let mut input = vec![0.0f32; 3 * plan.input_width * plan.input_height];
        let placement = letterbox_into(frame, plan.input_width, plan.input_height, &mut input);
        let output = m.run(&plan, input)?;
        let candidates = plan.grid.decode(&output, &f.wanted, CANDIDATE_SCORE.min(f.score_threshold));
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
    /// runs one frame at a time, so frames are split between the cores.
    fn detect_rows(&self, frames: &Frames<'_>) -> Result<Vec<Vec<Bbox>>, StageError> {
        on_cores(frames.count, |row| self.detect(frames.frame(row)))
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

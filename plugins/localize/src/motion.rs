//! The `motion` localizer: no weights, boxes around moving regions
//! (docs/method.md 2.5: 2.4 without detections), then cover removal (2.3).

use crate::batch_io::{boxes_spec, boxes_tensor, frames_spec, Frames, BOXES};
use crate::boxes::{remove_covered, CoverRemoval};
use crate::completion::{motion_boxes, MotionBoxRules};
use crate::motion_source::{MotionSettings, MotionSource};
use crate::rows::on_cores;
use vigil_stage_api::settings::Settings;
use vigil_stage_api::{
    settings, stage_info, Batch, Localizer, Options, RResult, StageContext, StageError, StageFactory, StageInfo, StageInstance, StageIo,
    StageKind,
};

settings! {
    /// The `motion` localizer's options.
    pub struct MotionLocalizerSettings {
        pub motion: MotionSettings = MotionSettings::default(),
        pub cover: CoverRemoval = CoverRemoval::default(),
    }
}

/// Factory of the `motion` localizer.
pub struct MotionLocalizer;

impl StageFactory for MotionLocalizer {
    fn info() -> StageInfo {
        stage_info!(
            name: "motion",
            kind: StageKind::Localizer,
            description: "boxes around moving regions (flow magnitude or frame differences), no detector",
            options: MotionLocalizerSettings::specs(),
        )
    }

    fn create(options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        let settings = MotionLocalizerSettings::from_options(options)?;
        let (source, rules, cover_threshold) = (settings.motion.source(), settings.motion.box_rules(), settings.cover.cover_threshold);
        let mut inputs = vec![frames_spec()];
        inputs.extend(source.inputs());
        let io = StageIo::new(inputs, vec![boxes_spec()]);
        Ok(StageInstance::localizer(MotionStage { source, rules, cover_threshold }, io))
    }
}

struct MotionStage {
    source: MotionSource,
    rules: MotionBoxRules,
    cover_threshold: f32,
}

impl MotionStage {
    fn localize(&mut self, batch: &Batch) -> Result<vigil_stage_api::Tensor, StageError> {
        let frames = Frames::of(batch)?;
        let maps = self.source.foreground(batch, &frames)?;
        let (rules, cover_threshold) = (&self.rules, self.cover_threshold);
        let per_row = on_cores(maps.len(), |row| Ok(remove_covered(&motion_boxes(&maps[row], rules), cover_threshold)))?;
        Ok(boxes_tensor(&per_row))
    }
}

impl Localizer for MotionStage {
    fn process(&mut self, mut batch: Batch) -> RResult<Batch, StageError> {
        let result = self.localize(&batch).map(|boxes| {
            batch.insert(BOXES, boxes);
            batch
        });
        result.into()
    }
}

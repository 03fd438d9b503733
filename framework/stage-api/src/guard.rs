//! No panic may cross the plugin boundary (abi_stable aborts the process if
//! one does). Every stage a plugin creates is wrapped in [`Guarded`], whose
//! methods run the plugin's code under `catch_unwind` and turn a panic into
//! a [`StageError`] of kind `Panicked`; the host adds plugin and stage names.

use crate::stage::*;
use crate::{Batch, StageError};
use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RSlice, RStr, RString, RVec},
};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into an error value.
pub fn guard<R>(f: impl FnOnce() -> RResult<R, StageError>) -> RResult<R, StageError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => RResult::RErr(StageError::panicked(panic_message(payload.as_ref()))),
    }
}

/// The text of a panic's payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// A stage whose every entry point is guarded against panics.
pub struct Guarded<T>(pub T);

impl<T: Decoder> Decoder for Guarded<T> {
    fn open(&mut self, source: RStr<'_>, video: u32) -> RResult<VideoInfo, StageError> {
        guard(|| self.0.open(source, video))
    }
    fn next_batch(&mut self, max_frames: u32) -> RResult<ROption<Batch>, StageError> {
        guard(|| self.0.next_batch(max_frames))
    }
}

impl<T: Flow> Flow for Guarded<T> {
    fn process(&mut self, batch: Batch) -> RResult<Batch, StageError> {
        guard(|| self.0.process(batch))
    }
}

impl<T: Localizer> Localizer for Guarded<T> {
    fn process(&mut self, batch: Batch) -> RResult<Batch, StageError> {
        guard(|| self.0.process(batch))
    }
}

impl<T: Reconstructor> Reconstructor for Guarded<T> {
    fn fit_begin(&mut self, cubes: Batch) -> RResult<FitPlan, StageError> {
        guard(|| self.0.fit_begin(cubes))
    }
    fn errors(&mut self, indices: RSlice<'_, u32>) -> RResult<RVec<f32>, StageError> {
        guard(|| self.0.errors(indices))
    }
    fn step(&mut self, indices: RSlice<'_, u32>, weights: RSlice<'_, f32>) -> RResult<f32, StageError> {
        guard(|| self.0.step(indices, weights))
    }
    fn statistics(&mut self) -> RResult<RVec<ModelStats>, StageError> {
        guard(|| self.0.statistics())
    }
    fn save(&mut self, dir: RStr<'_>) -> RResult<(), StageError> {
        guard(|| self.0.save(dir))
    }
    fn load(&mut self, dir: RStr<'_>) -> RResult<bool, StageError> {
        guard(|| self.0.load(dir))
    }
    fn errors_of(&mut self, cubes: Batch) -> RResult<RVec<f32>, StageError> {
        guard(|| self.0.errors_of(cubes))
    }
}

impl<T: Refiner> Refiner for Guarded<T> {
    fn active(&mut self, epoch: u32) -> RResult<bool, StageError> {
        guard(|| self.0.active(epoch))
    }
    fn weights(&mut self, model: u32, errors: RSlice<'_, f32>) -> RResult<RVec<f32>, StageError> {
        guard(|| self.0.weights(model, errors))
    }
    fn state(&mut self) -> RResult<RString, StageError> {
        guard(|| self.0.state())
    }
    fn restore(&mut self, state: RStr<'_>) -> RResult<(), StageError> {
        guard(|| self.0.restore(state))
    }
}

impl<T: Scorer> Scorer for Guarded<T> {
    fn score(&mut self, batch: Batch) -> RResult<Batch, StageError> {
        guard(|| self.0.score(batch))
    }
    fn reach(&self) -> RResult<FrameReach, StageError> {
        guard(|| self.0.reach())
    }
}

// The constructors wrap the stage in `Guarded`: every call runs under
// [`guard`], so a panic in the plugin comes back as a [`StageError`].
impl StageInstance {
    /// A created decoder stage.
    pub fn decoder(stage: impl Decoder + 'static, io: StageIo) -> StageInstance {
        StageInstance { io, stage: StageObject::Decoder(Decoder_TO::from_value(Guarded(stage), TD_Opaque)) }
    }
    /// A created flow stage.
    pub fn flow(stage: impl Flow + 'static, io: StageIo) -> StageInstance {
        StageInstance { io, stage: StageObject::Flow(Flow_TO::from_value(Guarded(stage), TD_Opaque)) }
    }
    /// A created localizer stage.
    pub fn localizer(stage: impl Localizer + 'static, io: StageIo) -> StageInstance {
        StageInstance { io, stage: StageObject::Localizer(Localizer_TO::from_value(Guarded(stage), TD_Opaque)) }
    }
    /// A created reconstructor stage.
    pub fn reconstructor(stage: impl Reconstructor + 'static, io: StageIo) -> StageInstance {
        StageInstance { io, stage: StageObject::Reconstructor(Reconstructor_TO::from_value(Guarded(stage), TD_Opaque)) }
    }
    /// A created refiner stage.
    pub fn refiner(stage: impl Refiner + 'static, io: StageIo) -> StageInstance {
        StageInstance { io, stage: StageObject::Refiner(Refiner_TO::from_value(Guarded(stage), TD_Opaque)) }
    }
    /// A created scorer stage.
    pub fn scorer(stage: impl Scorer + 'static, io: StageIo) -> StageInstance {
        StageInstance { io, stage: StageObject::Scorer(Scorer_TO::from_value(Guarded(stage), TD_Opaque)) }
    }
}

//! Stage `spr`: self-paced refinement (docs/method.md section 6), a
//! [`Refiner`](vigil_stage_api::Refiner). After `warmup_epochs`, each
//! mini-batch's appearance errors become per-sample weights; the threshold
//! range k(t) shrinks from `init_range` to 1 by `shrink_rate` per mini-batch
//! of each model.

pub mod weights;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vigil_stage_api::settings::{at_least, Settings};
use vigil_stage_api::{
    settings, stage_info, Options, RResult, RSlice, RStr, RString, RVec, Refiner, StageContext, StageError, StageFactory, StageInfo,
    StageInstance, StageIo, StageKind,
};
use weights::{spr_weights, Mode, Schedule};

/// The floor of k(t): mixture mode then weights hard at mu + sigma.
const K_MIN: f64 = 1.0;

pub struct Spr;

impl StageFactory for Spr {
    fn info() -> StageInfo {
        stage_info!(
            name: "spr",
            kind: StageKind::Refiner,
            description: "Self-paced refinement: per-sample weights from mini-batch errors (hard, linear, huber, mixture)",
            options: SprSettings::specs(),
        )
    }

    fn create(options: &Options, _context: &StageContext) -> Result<StageInstance, StageError> {
        Ok(StageInstance::refiner(SprStage::from_options(options)?, StageIo::default()))
    }
}

settings! {
    /// The refiner's options (docs/method.md 6).
    pub struct SprSettings {
        /// weighting: hard/linear drop above mu + k sigma, huber shrinks, mixture keeps below mu + sigma
        /// and drops above mu + k sigma
        pub mode: Mode = Mode::Mixture,
        /// epochs trained with all weights 1 before refinement starts
        pub warmup_epochs: u32 = 5,
        /// how much k shrinks per mini-batch of a model (r)
        pub shrink_rate: f64 = 0.005 => at_least(0.0),
        /// k at the first refined mini-batch (k0), in standard deviations
        pub init_range: f64 = 4.0 => at_least(K_MIN),
    }
}

/// What `state()` serializes: the iteration counter t of each model.
#[derive(Serialize, Deserialize, Debug, Default, PartialEq)]
struct SprState {
    iterations: BTreeMap<u32, u64>,
}

pub struct SprStage {
    mode: Mode,
    warmup_epochs: u32,
    schedule: Schedule,
    state: SprState,
}

impl SprStage {
    pub fn from_options(options: &Options) -> Result<SprStage, StageError> {
        let SprSettings { mode, warmup_epochs, shrink_rate, init_range } = SprSettings::from_options(options)?;
        Ok(SprStage { mode, warmup_epochs, schedule: Schedule { k0: init_range, k_min: K_MIN, shrink_rate }, state: SprState::default() })
    }

    /// k for the next mini-batch of `model`.
    pub fn current_k(&self, model: u32) -> f64 {
        self.schedule.k(self.state.iterations.get(&model).copied().unwrap_or(0))
    }

    fn weights_impl(&mut self, model: u32, errors: &[f32]) -> Result<Vec<f32>, StageError> {
        if let Some((i, e)) = errors.iter().enumerate().find(|(_, e)| !e.is_finite()) {
            return Err(StageError::invalid(format!("error of sample {i} in the batch of model {model} is {e}")));
        }
        let t = self.state.iterations.entry(model).or_insert(0);
        let k = self.schedule.k(*t);
        *t += 1;
        Ok(spr_weights(self.mode, errors, k))
    }
}

impl Refiner for SprStage {
    fn active(&mut self, epoch: u32) -> RResult<bool, StageError> {
        RResult::ROk(epoch >= self.warmup_epochs)
    }
    fn weights(&mut self, model: u32, errors: RSlice<'_, f32>) -> RResult<RVec<f32>, StageError> {
        self.weights_impl(model, errors.as_slice()).map(RVec::from).into()
    }
    fn state(&mut self) -> RResult<RString, StageError> {
        serde_json::to_string(&self.state).map(RString::from).map_err(|e| StageError::new(format!("encoding the SPR state: {e}"))).into()
    }
    fn restore(&mut self, state: RStr<'_>) -> RResult<(), StageError> {
        serde_json::from_str::<SprState>(state.as_str())
            .map(|s| self.state = s)
            .map_err(|e| StageError::invalid(format!("SPR state: expected {{\"iterations\": {{model: t}}}}, {e}")))
            .into()
    }
}

vigil_stage_api::export_plugin!(Spr);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vigil_stage_testkit::{create, into_refiner};

    fn refiner(options: serde_json::Value) -> vigil_stage_api::RefinerBox {
        into_refiner(create::<Spr>(options).expect("valid options"))
    }

    #[test]
    fn warmup_decides_activity() {
        let mut r = refiner(json!({}));
        assert!(!r.active(0).unwrap() && !r.active(4).unwrap());
        assert!(r.active(5).unwrap() && r.active(29).unwrap());
        let mut none = refiner(json!({"warmup_epochs": 0}));
        assert!(none.active(0).unwrap());
    }

    #[test]
    fn each_model_has_its_own_counter_and_state_round_trips() {
        // shrink 1 per batch: k goes 4, 3, 2, 1, 1 per model.
        let mut r = refiner(json!({"mode": "hard", "shrink_rate": 1.0}));
        let e = [1.0f32, 2.0, 3.0, 4.0, 10.0]; // mu 4, sigma 3.5355
                                               // k = 4, 3, 2: lambda >= 11.07: all kept; k = 1: lambda = 7.54: 10 dropped.
        for _ in 0..3 {
            assert_eq!(r.weights(0, e.as_slice().into()).unwrap().as_slice(), &[1.0; 5]);
        }
        // Model 1 starts at k = 4 regardless of model 0.
        assert_eq!(r.weights(1, e.as_slice().into()).unwrap().as_slice(), &[1.0; 5]);
        let saved = r.state().unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&saved).unwrap(), json!({"iterations": {"0": 3, "1": 1}}));
        let mut resumed = refiner(json!({"mode": "hard", "shrink_rate": 1.0}));
        resumed.restore(saved.as_str().into()).unwrap();
        assert_eq!(resumed.weights(0, e.as_slice().into()).unwrap().as_slice(), &[1.0, 1.0, 1.0, 1.0, 0.0]);
        // Without the restored counter, the fresh stage would still keep everything.
        let mut fresh = refiner(json!({"mode": "hard", "shrink_rate": 1.0}));
        assert_eq!(fresh.weights(0, e.as_slice().into()).unwrap().as_slice(), &[1.0; 5]);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut r = refiner(json!({}));
        let err = r.weights(0, [1.0f32, f32::NAN].as_slice().into()).unwrap_err();
        assert!(err.message.contains("NaN"), "{err}");
        assert!(r.restore("{\"t\": 3}".into()).is_err());
        assert!(create::<Spr>(json!({"mode": "logistic"})).err().expect("unknown mode").contains("mode"));
        assert!(create::<Spr>(json!({"init_range": 0.5})).err().expect("k0 below the floor").contains("init_range"));
    }
}

//! The fit loop with the real `cae` (in-process) and `spr` (loaded from its
//! library, as the host does) stages. Run in
//! release: `cargo test --release -p vigil-runtime --test fit_training`.

use serde_json::json;
use std::sync::{Arc, Mutex};
use vigil_plugin_cae::Cae;
use vigil_runtime::fit::{fit, FitMember, FitOptions};
use vigil_stage_api::abi_stable::sabi_trait::TD_Opaque;
use vigil_stage_api::SplitMix64 as Rng;
use vigil_stage_api::{
    f16, names, Batch, FitPlan, FrameId, ModelStats, RResult, RSlice, RStr, RVec, Reconstructor, ReconstructorBox, Reconstructor_TO,
    RefinerBox, StageError, Tensor,
};
use vigil_stage_testkit::{built_plugin, create, create_from_library, into_reconstructor, into_refiner};

const SIZE: usize = 32;
const CH: usize = 15;

/// Low-contrast moving gratings (learnable) with cubes of uniform noise
/// planted at every 20th index (5%), and flow cubes: a constant motion for
/// the gratings, large random vectors for the outliers.
fn planted(count: usize) -> (Vec<u8>, Vec<f32>, Vec<bool>) {
    let mut rng = Rng(7);
    let (mut app, mut flow, mut outlier) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..count {
        let is_outlier = n % 20 == 7;
        outlier.push(is_outlier);
        let (fx, fy, phase) = (0.08 + (n % 5) as f32 * 0.03, 0.05 + (n % 3) as f32 * 0.04, n as f32 * 0.7);
        for k in 0..5 {
            for _c in 0..3 {
                for y in 0..SIZE {
                    for x in 0..SIZE {
                        let v = if is_outlier {
                            (rng.next_u64() % 256) as f32
                        } else {
                            128.0 + 40.0 * (fx * x as f32 + fy * y as f32 + phase + 0.4 * k as f32).sin()
                        };
                        app.push(v as u8);
                    }
                }
            }
        }
        for _ in 0..10 * SIZE * SIZE {
            flow.push(if is_outlier { (rng.next_u64() % 1000) as f32 / 100.0 - 5.0 } else { 0.4 });
        }
    }
    (app, flow, outlier)
}

fn cubes(app: &[u8], flow: Option<&[f32]>, count: usize) -> Batch {
    let ids = (0..count as u32).map(|frame| FrameId { video: 0, frame }).collect();
    let mut b = Batch::new(ids)
        .with(names::APPEARANCE, Tensor::from_vec(app.to_vec(), &[count, CH, SIZE, SIZE]))
        .with(names::BAND, Tensor::from_vec(vec![0u32; count], &[count]));
    if let Some(flow) = flow {
        let flow: Vec<f16> = flow.iter().map(|&v| f16::from_f32(v)).collect();
        b = b.with(names::MOTION, Tensor::from_vec(flow, &[count, 10, SIZE, SIZE]));
    }
    b
}

type StepLog = Arc<Mutex<Vec<(Vec<u32>, Vec<f32>)>>>;

/// What a [`Recording`] stage does wrong at one step.
#[derive(Clone, Copy)]
enum Fault {
    /// Reports a NaN loss (a plugin that does not check its loss).
    NanLoss,
    /// Fails with an error.
    Error,
}

/// Forwards to a real stage, logs every step's indices and weights, and can
/// misbehave at one step (1-based, counted over the whole fit).
struct Recording {
    inner: ReconstructorBox,
    log: StepLog,
    fault: Option<(usize, Fault)>,
}

impl Reconstructor for Recording {
    fn fit_begin(&mut self, cubes: Batch) -> RResult<FitPlan, StageError> {
        self.inner.fit_begin(cubes)
    }
    fn errors(&mut self, indices: RSlice<'_, u32>) -> RResult<RVec<f32>, StageError> {
        self.inner.errors(indices)
    }
    fn step(&mut self, indices: RSlice<'_, u32>, weights: RSlice<'_, f32>) -> RResult<f32, StageError> {
        let mut log = self.log.lock().unwrap();
        log.push((indices.to_vec(), weights.to_vec()));
        match self.fault {
            Some((at, Fault::NanLoss)) if at == log.len() => return RResult::ROk(f32::NAN),
            Some((at, Fault::Error)) if at == log.len() => return RResult::RErr(StageError::new("disk on fire")),
            _ => {}
        }
        self.inner.step(indices, weights)
    }
    fn statistics(&mut self) -> RResult<RVec<ModelStats>, StageError> {
        self.inner.statistics()
    }
    fn save(&mut self, dir: RStr<'_>) -> RResult<(), StageError> {
        self.inner.save(dir)
    }
    fn load(&mut self, dir: RStr<'_>) -> RResult<bool, StageError> {
        self.inner.load(dir)
    }
    fn errors_of(&mut self, cubes: Batch) -> RResult<RVec<f32>, StageError> {
        self.inner.errors_of(cubes)
    }
}

fn recording(options: serde_json::Value, fault: Option<(usize, Fault)>) -> (ReconstructorBox, StepLog) {
    let log = StepLog::default();
    let inner = into_reconstructor(create::<Cae>(options).expect("cae options"));
    let stage = Recording { inner, log: log.clone(), fault };
    (Reconstructor_TO::from_value(stage, TD_Opaque), log)
}

/// `spr` from its built library: `cae` is linked in already, and two
/// plugin rlibs cannot share a binary.
fn spr(options: serde_json::Value) -> RefinerBox {
    let library = built_plugin("vigil-plugin-spr");
    into_refiner(create_from_library(&library, "spr", options).expect("spr options"))
}

#[test]
fn spr_drops_planted_outliers_and_all_members_share_the_weights() {
    let count = 200;
    let (app, flow, outlier) = planted(count);
    let opts = json!({"features_root": 8, "batch_size": 40, "epochs": 8, "lr": 0.003});
    let (mut appearance, app_log) = recording(opts.clone(), None);
    let mut flow_opts = opts.clone();
    flow_opts["target"] = json!("flow");
    let (mut motion, motion_log) = recording(flow_opts, None);
    // Mixture mode; k falls from 4 to the floor within 2 refined epochs (5 batches each).
    let mut refiner = spr(json!({"mode": "mixture", "warmup_epochs": 4, "shrink_rate": 0.3}));
    let members = vec![
        FitMember { id: "appearance".into(), stage: &mut appearance, cubes: cubes(&app, None, count) },
        FitMember { id: "motion".into(), stage: &mut motion, cubes: cubes(&app, Some(&flow), count) },
    ];
    let summary = fit(members, Some(("spr", &mut refiner)), &vec![0; count], &FitOptions { seed: 3, ..Default::default() }).unwrap();

    for e in &summary.epochs {
        println!("epoch {} refined {} loss {:?} dropped {} down-weighted {}", e.epoch, e.refined, e.mean_loss, e.dropped, e.down_weighted);
    }
    assert_eq!(summary.epochs.len(), 8);
    assert!(summary.epochs[..4].iter().all(|e| !e.refined && e.dropped == 0 && e.down_weighted == 0));
    assert!(summary.epochs[4..].iter().all(|e| e.refined && e.samples == count as u64 && e.steps == 5));
    let first = &summary.epochs[0].mean_loss;
    let last = &summary.epochs[7].mean_loss;
    assert!(last[0] < 0.5 * first[0] && last[1] < 0.5 * first[1], "both losses fall: {first:?} -> {last:?}");

    // Both members stepped on the same indices with the same weights.
    let app_steps = app_log.lock().unwrap().clone();
    assert_eq!(app_steps, *motion_log.lock().unwrap());
    assert_eq!(app_steps.len(), 8 * 5);

    // Last epoch: every planted outlier weight 0, most normal cubes weight 1.
    let (mut outlier_weights, mut normal_kept, mut normal_total) = (Vec::new(), 0, 0);
    for (indices, weights) in &app_steps[35..] {
        for (&i, &w) in indices.iter().zip(weights) {
            if outlier[i as usize] {
                outlier_weights.push(w);
            } else {
                normal_total += 1;
                normal_kept += usize::from(w == 1.0);
            }
        }
    }
    println!("last epoch: outlier weights {outlier_weights:?}; normal cubes at weight 1: {normal_kept}/{normal_total}");
    assert_eq!(outlier_weights.len(), 10);
    assert!(outlier_weights.iter().all(|&w| w == 0.0), "outliers dropped: {outlier_weights:?}");
    assert!(normal_kept as f64 >= 0.75 * normal_total as f64, "normal kept {normal_kept}/{normal_total}");
    assert_eq!(summary.statistics.len(), 2);
    assert_eq!(summary.statistics[0][0].count, count as u64);
}

#[test]
fn an_interrupted_fit_resumes_to_the_same_result() {
    let count = 60;
    let (app, _, _) = planted(count);
    let opts = json!({"features_root": 4, "batch_size": 16, "epochs": 4});
    let spr_opts = json!({"warmup_epochs": 1, "shrink_rate": 0.2});
    let all: Vec<u32> = (0..count as u32).collect();
    let band = vec![0u32; count];

    // Uninterrupted.
    let dir_a = tempfile::tempdir().unwrap();
    let (mut a, _) = recording(opts.clone(), None);
    let mut ra = spr(spr_opts.clone());
    let options_a = FitOptions { seed: 5, checkpoint_dir: Some(dir_a.path().into()), resume: false, progress: false, fingerprint: None };
    let members = vec![FitMember { id: "appearance".into(), stage: &mut a, cubes: cubes(&app, None, count) }];
    let full = fit(members, Some(("spr", &mut ra)), &band, &options_a).unwrap();
    let errors_a = a.errors(all.as_slice().into()).unwrap().into_vec();

    // A NaN loss in epoch 3 (4 steps per epoch: step 10 is its 2nd step) stops the fit.
    let dir_b = tempfile::tempdir().unwrap();
    let options_b = FitOptions { seed: 5, checkpoint_dir: Some(dir_b.path().into()), resume: true, progress: false, fingerprint: None };
    let (mut b, _) = recording(opts.clone(), Some((10, Fault::NanLoss)));
    let mut rb = spr(spr_opts.clone());
    let members = vec![FitMember { id: "appearance".into(), stage: &mut b, cubes: cubes(&app, None, count) }];
    let err = fit(members, Some(("spr", &mut rb)), &band, &options_b).unwrap_err().to_string();
    assert!(err.contains("stage `appearance`") && err.contains("epoch 3 step 2") && err.contains("NaN"), "{err}");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(dir_b.path().join("ckpt/fit.json")).unwrap()).unwrap();
    assert_eq!(record["epochs_done"], 2, "the last good checkpoint is kept");

    // Only the fit a checkpoint records resumes it (this one records none).
    let parts = [("seed".to_string(), "5".to_string())].into_iter().collect();
    let other = FitOptions { fingerprint: Some(vigil_runtime::fingerprint::Fingerprint { parts }), ..options_b.clone() };
    let (mut d, _) = recording(opts.clone(), None);
    let mut rd = spr(spr_opts.clone());
    let members = vec![FitMember { id: "appearance".into(), stage: &mut d, cubes: cubes(&app, None, count) }];
    let err = fit(members, Some(("spr", &mut rd)), &band, &other).unwrap_err().to_string();
    assert!(err.contains("holds the checkpoint of a different fit") && err.contains("older Vigil") && err.contains("--fresh"), "{err}");

    // Fresh stages resume from it and end exactly where the uninterrupted fit did.
    let (mut c, log_c) = recording(opts, None);
    let mut rc = spr(spr_opts);
    let members = vec![FitMember { id: "appearance".into(), stage: &mut c, cubes: cubes(&app, None, count) }];
    let resumed = fit(members, Some(("spr", &mut rc)), &band, &options_b).unwrap();
    assert_eq!(resumed.resumed_after, Some(2));
    assert_eq!(log_c.lock().unwrap().len(), 2 * 4, "only epochs 3 and 4 ran");
    assert_eq!(resumed.epochs, full.epochs, "same per-epoch summaries");
    assert_eq!(c.errors(all.as_slice().into()).unwrap().into_vec(), errors_a, "same final model");
    assert_eq!(resumed.statistics, full.statistics);
}

#[test]
fn a_failing_step_names_stage_epoch_and_step() {
    let count = 20;
    let (app, _, _) = planted(count);
    let (mut a, _) = recording(json!({"features_root": 4, "batch_size": 8, "epochs": 2}), Some((5, Fault::Error)));
    let members = vec![FitMember { id: "appearance".into(), stage: &mut a, cubes: cubes(&app, None, count) }];
    // 3 steps per epoch (8, 8, 4): step 5 is epoch 2, step 2.
    let err = fit(members, None, &vec![0; count], &FitOptions::default()).unwrap_err().to_string();
    assert_eq!(err, "stage `appearance`: step at epoch 2 step 2: disk on fire");
}

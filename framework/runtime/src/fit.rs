//! The fit loop (docs/architecture.md 3.6): the runtime owns epochs and
//! steps; reconstructors receive their cubes once and then only index,
//! weight and error vectors cross the plugin boundary.
//!
//! Per step, when the refiner is active in this epoch, the guide
//! reconstructor (the first member: the appearance one, docs/method.md 6.1)
//! reports eval-mode errors of the batch, the refiner turns them into
//! weights, and every member steps on the same indices with those weights.
//! Batches are per model (band), shuffled each epoch with a seeded RNG, the
//! last partial batch kept. After every epoch the state of all stages is
//! checkpointed, so an interrupted fit resumes from the last whole epoch.

use crate::checkpoint::CheckpointStore;
use crate::fingerprint::Fingerprint;
use crate::stage::call;
use anyhow::{anyhow, bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use vigil_stage_api::{Batch, FitPlan, ModelStats, RResult, ReconstructorBox, RefinerBox, SplitMix64, StageError, Tensor};

/// One reconstructor taking part in a fit, with the cubes it trains on.
pub struct FitMember<'a> {
    /// The stage id from the pipeline file (names errors and checkpoint folders).
    pub id: String,
    pub stage: &'a mut ReconstructorBox,
    /// Handed to `fit_begin` once.
    pub cubes: Batch,
}

/// How to run a fit.
#[derive(Clone, Debug, Default)]
pub struct FitOptions {
    /// Seeds the per-epoch shuffles.
    pub seed: u64,
    /// Where to checkpoint after every epoch; `None`: no checkpoints.
    pub checkpoint_dir: Option<PathBuf>,
    /// Continue from the checkpoint in `checkpoint_dir` when there is one.
    pub resume: bool,
    /// Show a progress bar (still hidden when stderr is no terminal or CI=true).
    pub progress: bool,
    /// What the fit depends on; written into every checkpoint, and a
    /// checkpoint that records another one is not resumed (an error).
    /// `None`: not recorded, not checked.
    pub fingerprint: Option<Fingerprint>,
}

/// What one epoch did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochSummary {
    pub epoch: u32,
    /// Mean step loss of each member, in member order.
    pub mean_loss: Vec<f64>,
    pub steps: u64,
    pub samples: u64,
    /// Whether the refiner weighted this epoch.
    pub refined: bool,
    /// Samples given weight 0.
    pub dropped: u64,
    /// Samples given a weight strictly between 0 and 1.
    pub down_weighted: u64,
}

/// What a fit did, for the report.
#[derive(Clone, Debug)]
pub struct FitSummary {
    pub members: Vec<String>,
    pub epochs: Vec<EpochSummary>,
    /// The number of epochs found done in the checkpoint, when resumed.
    pub resumed_after: Option<u32>,
    /// Training-error statistics of each member after the last epoch.
    pub statistics: Vec<Vec<ModelStats>>,
}

/// Like [`call`], also naming the epoch and step (1-based) in the message itself.
fn call_at<T>(id: &str, what: &str, at: &str, result: RResult<T, StageError>) -> Result<T> {
    result.into_result().map_err(|e| anyhow!("stage `{id}`: {what} at {at}: {e}"))
}

/// Trains `members` (the first guides the refiner) and returns what happened.
pub fn fit(
    members: Vec<FitMember<'_>>,
    mut refiner: Option<(&str, &mut RefinerBox)>,
    band: &[u32],
    options: &FitOptions,
) -> Result<FitSummary> {
    if members.is_empty() {
        bail!("fit: no reconstructor to train");
    }
    let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
    let mut stages = Vec::new();
    let mut plan: Option<FitPlan> = None;
    let models = band_members(band);
    for m in members {
        let FitMember { id, stage, cubes } = m;
        let p = call(&id, "fit_begin", stage.fit_begin(cubes))?;
        if p.models as usize != models.len() {
            bail!("stage `{id}`: fit_begin reports {} models, the cubes have {} bands", p.models, models.len());
        }
        if p.batch_size == 0 {
            bail!("stage `{id}`: fit_begin asks for batch size 0");
        }
        if let Some(first) = &plan {
            if (first.epochs, first.batch_size) != (p.epochs, p.batch_size) {
                bail!(
                    "stages `{}` and `{id}` train together but want different schedules: {} vs {} epochs, batch {} vs {}",
                    ids[0],
                    first.epochs,
                    p.epochs,
                    first.batch_size,
                    p.batch_size
                );
            }
        }
        plan.get_or_insert(p);
        stages.push((id, stage));
    }
    let plan = plan.expect("at least one member");

    let store = options.checkpoint_dir.as_deref().map(CheckpointStore::new);
    let mut epochs: Vec<EpochSummary> = Vec::new();
    let mut resumed_after = None;
    if let (true, Some(store)) = (options.resume, &store) {
        if let Some(record) = store.load(&mut stages, refiner.as_mut().map(|(id, r)| (*id, &mut **r)), options.fingerprint.as_ref())? {
            tracing::info!(epochs_done = record.epochs_done, "fit: resuming from {}", store.live().display());
            resumed_after = Some(record.epochs_done);
            epochs = record.epochs;
        }
    }
    let start = resumed_after.unwrap_or(0);

    let steps_per_epoch: u64 = models.values().map(|v| v.len().div_ceil(plan.batch_size as usize) as u64).sum();
    let bar = progress_bar(options.progress, steps_per_epoch);
    for epoch in start..plan.epochs {
        crate::interrupt::set(match &store {
            Some(store) => format!(
                "during the fit, in epoch {} of {}: {} whole epoch(s) are checkpointed in {}; run the same command again to resume from there",
                epoch + 1,
                plan.epochs,
                epoch,
                store.dir().display()
            ),
            None => format!("during the fit, in epoch {} of {} (this fit keeps no checkpoints)", epoch + 1, plan.epochs),
        });
        let summary = run_epoch(&mut stages, &mut refiner, &models, &plan, epoch, options.seed, &bar)?;
        tracing::info!(epoch, loss = ?summary.mean_loss, dropped = summary.dropped, down_weighted = summary.down_weighted, "fit: epoch done");
        epochs.push(summary);
        if let Some(store) = &store {
            store.save(&mut stages, refiner.as_mut().map(|(id, r)| (*id, &mut **r)), epoch + 1, &epochs, options.fingerprint.as_ref())?;
        }
    }
    bar.finish_and_clear();

    let mut statistics = Vec::new();
    for (id, stage) in stages.iter_mut() {
        statistics.push(call(id, "statistics", stage.statistics())?.into_vec());
    }
    if let Some(store) = &store {
        // Again, now that the statistics are known, so that scoring can start from the checkpoint.
        store.save(&mut stages, refiner.as_mut().map(|(id, r)| (*id, &mut **r)), plan.epochs, &epochs, options.fingerprint.as_ref())?;
    }
    Ok(FitSummary { members: ids, epochs, resumed_after, statistics })
}

/// The fit phase over a whole cube set: every reconstructor is handed the
/// same cube tensors (`share_batch`, no copy). Returns what the fit did and
/// what each cube came from.
pub fn fit_cubes(
    cubes: vigil_cubes::CubeSet,
    reconstructors: &mut [(String, &mut ReconstructorBox)],
    refiner: Option<(&str, &mut RefinerBox)>,
    options: &FitOptions,
) -> Result<(FitSummary, Vec<vigil_cubes::CubeRecord>)> {
    let (batch, records) = cubes.into_tensors()?.into_batch();
    let bands: Vec<u32> = records.iter().map(|r| r.band).collect();
    let batches = share_batch(batch, reconstructors.len());
    let members: Vec<FitMember> =
        reconstructors.iter_mut().zip(batches).map(|((id, stage), cubes)| FitMember { id: id.clone(), stage, cubes }).collect();
    let summary = fit(members, refiner, &bands, options)?;
    Ok((summary, records))
}

/// `consumers` batches whose tensors are views of `batch`'s: one memory,
/// released when the last view is dropped. Reconstructors only read the
/// cubes they are handed (`Reconstructor::fit_begin`), so several can share
/// them; a copy per reconstructor would hold the cube set twice, which on a
/// spilled set means reading it from disk into memory.
pub fn share_batch(batch: Batch, consumers: usize) -> Vec<Batch> {
    if consumers <= 1 {
        return vec![batch];
    }
    let mut batches: Vec<Batch> = (0..consumers).map(|_| Batch::new(batch.ids.to_vec())).collect();
    for named in batch.tensors {
        let owner = std::sync::Arc::new(named.tensor);
        for shared in &mut batches {
            shared.insert(&named.name, view_of(&owner));
        }
    }
    batches
}

/// A tensor over `owner`'s memory that keeps `owner` alive until it is dropped.
fn view_of(owner: &std::sync::Arc<Tensor>) -> Tensor {
    unsafe extern "C" fn release(ctx: *mut std::ffi::c_void) {
        drop(unsafe { Box::from_raw(ctx as *mut std::sync::Arc<Tensor>) });
    }
    let shape: Vec<i64> = owner.shape().iter().map(|&d| d as i64).collect();
    let keeper = Box::into_raw(Box::new(std::sync::Arc::clone(owner)));
    // SAFETY: the data stays valid while `keeper` holds the owner, which
    // `release` drops; shape, strides and dtype are the owner's own.
    unsafe {
        Tensor::from_raw_parts(
            owner.data_ptr() as *mut std::ffi::c_void,
            owner.device(),
            owner.dtype(),
            shape,
            owner.strides().to_vec(),
            0,
            keeper as *mut std::ffi::c_void,
            Some(release),
        )
    }
}

/// Cube indices of each band, in order.
fn band_members(band: &[u32]) -> BTreeMap<u32, Vec<u32>> {
    let mut out: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (i, &b) in band.iter().enumerate() {
        out.entry(b).or_default().push(i as u32);
    }
    out
}

fn run_epoch(
    stages: &mut [(String, &mut ReconstructorBox)],
    refiner: &mut Option<(&str, &mut RefinerBox)>,
    models: &BTreeMap<u32, Vec<u32>>,
    plan: &FitPlan,
    epoch: u32,
    seed: u64,
    bar: &ProgressBar,
) -> Result<EpochSummary> {
    let refined = match refiner {
        Some((id, r)) => call(id, "active", r.active(epoch))?,
        None => false,
    };
    let mut loss_sums = vec![0f64; stages.len()];
    let mut s = EpochSummary { epoch, mean_loss: Vec::new(), steps: 0, samples: 0, refined, dropped: 0, down_weighted: 0 };
    bar.set_position(0);
    for (&model, indices) in models {
        for batch in shuffled_batches(indices, plan.batch_size as usize, seed, epoch, model) {
            let step = s.steps + 1;
            let at = format!("epoch {} step {step}", epoch + 1);
            let weights: Vec<f32> = match refiner {
                Some((rid, r)) if refined => {
                    let (gid, guide) = &mut stages[0];
                    let errors = call_at(gid, "errors", &at, guide.errors(batch.as_slice().into()))?;
                    let w = call_at(rid, "weights", &at, r.weights(model, errors.as_slice().into()))?.into_vec();
                    if w.len() != batch.len() {
                        bail!("stage `{rid}`: {at}: returned {} weights for {} samples", w.len(), batch.len());
                    }
                    w
                }
                _ => vec![1.0; batch.len()],
            };
            s.dropped += weights.iter().filter(|&&w| w == 0.0).count() as u64;
            s.down_weighted += weights.iter().filter(|&&w| w > 0.0 && w < 1.0).count() as u64;
            for (k, (id, stage)) in stages.iter_mut().enumerate() {
                let loss = call_at(id, "step", &at, stage.step(batch.as_slice().into(), weights.as_slice().into()))?;
                if !loss.is_finite() {
                    bail!("stage `{id}`: {at}: the loss is {loss}; the fit stops (the last good checkpoint is kept)");
                }
                loss_sums[k] += loss as f64;
            }
            s.steps += 1;
            s.samples += batch.len() as u64;
            bar.inc(1);
            bar.set_message(format!(
                "epoch {}/{} loss {:.5} dropped {:.1}%",
                epoch + 1,
                plan.epochs,
                loss_sums[0] / s.steps as f64,
                100.0 * s.dropped as f64 / s.samples as f64
            ));
        }
    }
    s.mean_loss = loss_sums.iter().map(|l| l / s.steps.max(1) as f64).collect();
    Ok(s)
}

fn progress_bar(wanted: bool, steps_per_epoch: u64) -> ProgressBar {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if !wanted || ci || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(steps_per_epoch), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} steps {msg} [{elapsed}]").expect("valid template"));
    bar
}

/// `indices` shuffled (Fisher-Yates) and cut into batches, the last one
/// partial. Depends only on (seed, epoch, model), so a resumed fit sees the
/// same batches an uninterrupted one would.
pub fn shuffled_batches(indices: &[u32], batch_size: usize, seed: u64, epoch: u32, model: u32) -> Vec<Vec<u32>> {
    let mut rng = SplitMix64(seed ^ (u64::from(epoch) << 32) ^ u64::from(model).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut order = indices.to_vec();
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order.chunks(batch_size.max(1)).map(<[u32]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_cube_once_keep_the_last_partial_and_reshuffle_each_epoch() {
        let indices: Vec<u32> = (100..110).collect();
        let batches = shuffled_batches(&indices, 4, 9, 0, 0);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        let mut seen: Vec<u32> = batches.concat();
        assert_ne!(seen, indices, "shuffled");
        seen.sort();
        assert_eq!(seen, indices, "every cube exactly once");
        assert_eq!(shuffled_batches(&indices, 4, 9, 0, 0), batches, "reproducible for (seed, epoch, model)");
        assert_ne!(shuffled_batches(&indices, 4, 9, 1, 0), batches, "another epoch, another order");
        assert_ne!(shuffled_batches(&indices, 4, 10, 0, 0), batches, "another seed, another order");
    }

    #[test]
    fn bands_group_cube_indices_in_order() {
        let groups = band_members(&[2, 0, 2, 1, 0]);
        assert_eq!(groups.into_iter().collect::<Vec<_>>(), [(0, vec![1, 4]), (1, vec![3]), (2, vec![0, 2])]);
    }

    #[test]
    fn shared_batches_view_one_memory_released_after_the_last() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use vigil_stage_api::{f16, names, DType, Device, FrameId};
        static RELEASED: AtomicUsize = AtomicUsize::new(0);
        unsafe extern "C" fn release(ctx: *mut std::ffi::c_void) {
            drop(unsafe { Box::from_raw(ctx as *mut Vec<f16>) });
            RELEASED.fetch_add(1, Ordering::SeqCst);
        }
        let motion: Box<Vec<f16>> = Box::new([0.5, -1.25, 3.0, f32::NAN].map(f16::from_f32).to_vec());
        let bits: Vec<u16> = motion.iter().map(|v| v.to_bits()).collect();
        let data = motion.as_ptr() as *mut std::ffi::c_void;
        let motion_tensor = unsafe {
            Tensor::from_raw_parts(data, Device::CPU, DType::F16, vec![2, 2], vec![2, 1], 0, Box::into_raw(motion) as *mut _, Some(release))
        };
        let ids = vec![FrameId { video: 0, frame: 0 }, FrameId { video: 0, frame: 1 }];
        let batch = Batch::new(ids.clone())
            .with(names::APPEARANCE, Tensor::from_vec(vec![1u8, 2, 3, 4], &[2, 2]))
            .with(names::MOTION, motion_tensor)
            .with(names::BAND, Tensor::from_vec(vec![7u32, 8], &[2]));
        let appearance_at = batch.get(names::APPEARANCE).unwrap().data_ptr();
        let mut shared = share_batch(batch, 3);
        assert_eq!(shared.len(), 3);
        for b in &shared {
            assert_eq!(b.ids.as_slice(), ids.as_slice());
            assert_eq!(b.names().collect::<Vec<_>>(), [names::APPEARANCE, names::MOTION, names::BAND]);
            assert_eq!(b.get(names::APPEARANCE).unwrap().data_ptr(), appearance_at, "a view, not a copy");
            assert_eq!(b.get(names::APPEARANCE).unwrap().as_slice::<u8>().unwrap(), &[1, 2, 3, 4]);
            let seen: Vec<u16> = b.get(names::MOTION).unwrap().as_slice::<f16>().unwrap().iter().map(|v| v.to_bits()).collect();
            assert_eq!(seen, bits);
            assert_eq!(b.get(names::MOTION).unwrap().shape(), vec![2, 2]);
            assert_eq!(b.get(names::BAND).unwrap().as_slice::<u32>().unwrap(), &[7, 8]);
        }
        // A consumer that drops a tensor early (cae drops `motion` when it
        // reconstructs frames) does not release it for the others.
        drop(shared[0].take(names::MOTION));
        drop(shared.remove(1));
        assert_eq!(RELEASED.load(Ordering::SeqCst), 0);
        drop(shared);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 1, "released once, with the last view");
        let single = share_batch(Batch::new(ids).with(names::BAND, Tensor::from_vec(vec![1u32], &[1])), 1);
        assert_eq!(single.len(), 1);
    }
}

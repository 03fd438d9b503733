//! The one store of fitted models: every reconstructor saves into a folder
//! named by its stage id, and a whole set of folders replaces the previous
//! one by renames. The fit's per-epoch checkpoints (docs/architecture.md
//! 6.1) and the model bundle of `vigil fit` (`bundle.rs`) both use it.

use crate::fingerprint::Fingerprint;
use crate::fit::EpochSummary;
use crate::stage::call;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vigil_stage_api::{ReconstructorBox, RefinerBox};

/// Each member saves its model into `dir/<stage id>/`.
pub fn save_members(dir: &Path, members: &mut [(String, &mut ReconstructorBox)]) -> Result<()> {
    for (id, stage) in members.iter_mut() {
        let folder = dir.join(id.as_str());
        call(id, "save", stage.save(folder.to_string_lossy().as_ref().into()))?;
    }
    Ok(())
}

/// Each member loads its model from `dir/<stage id>/`; a folder without one
/// is an error that names it.
pub fn load_members(dir: &Path, members: &mut [(String, &mut ReconstructorBox)]) -> Result<()> {
    for (id, stage) in members.iter_mut() {
        let folder = dir.join(id.as_str());
        if !call(id, "load", stage.load(folder.to_string_lossy().as_ref().into()))? {
            bail!("stage `{id}`: no saved model in {}", folder.display());
        }
    }
    Ok(())
}

/// Moves the finished folder `next` to `live`: `live` goes aside to `prev`
/// first, and `prev` is removed last, so a crash at any point leaves a whole
/// folder at `live` or `prev`.
pub fn replace_dir(next: &Path, live: &Path, prev: &Path) -> Result<()> {
    if prev.exists() {
        std::fs::remove_dir_all(prev).with_context(|| format!("removing {}", prev.display()))?;
    }
    if live.exists() {
        std::fs::rename(live, prev).with_context(|| format!("moving {} aside", live.display()))?;
    }
    std::fs::rename(next, live).with_context(|| format!("moving {} into place", next.display()))?;
    if prev.exists() {
        std::fs::remove_dir_all(prev).with_context(|| format!("removing {}", prev.display()))?;
    }
    Ok(())
}

/// An empty folder at `path` (whatever was there is removed).
pub fn empty_dir(path: &Path) -> Result<()> {
    if path.exists() {
        std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    }
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))
}

/// The checkpoint's own record, next to one folder per member.
#[derive(Serialize, Deserialize)]
pub struct FitRecord {
    pub epochs_done: u32,
    pub members: Vec<String>,
    pub refiner_state: Option<String>,
    pub epochs: Vec<EpochSummary>,
    /// Absent in checkpoints of Vigil before fingerprints.
    #[serde(default)]
    pub fingerprint: Option<Fingerprint>,
}

/// What a checkpoint folder holds, read without loading any stage.
#[derive(Clone, Debug)]
pub struct CheckpointInfo {
    /// The folder holding the whole checkpoint (`ckpt/` or `ckpt.prev/`).
    pub dir: PathBuf,
    pub epochs_done: u32,
    pub fingerprint: Option<Fingerprint>,
}

/// The last whole checkpoint under `checkpoint_dir`, if any.
pub fn read_checkpoint(checkpoint_dir: &Path) -> Result<Option<CheckpointInfo>> {
    let store = CheckpointStore::new(checkpoint_dir);
    Ok(store.read()?.map(|(dir, record)| CheckpointInfo { dir, epochs_done: record.epochs_done, fingerprint: record.fingerprint }))
}

const RECORD_FILE: &str = "fit.json";

/// Checkpoints in `dir`: `ckpt/` is the last whole one. A new one is written
/// to `ckpt.next/` and swapped in by renames ([`replace_dir`]), so a crash
/// at any point leaves `ckpt/` or `ckpt.prev/` whole.
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    pub fn new(dir: &Path) -> CheckpointStore {
        CheckpointStore { dir: dir.to_path_buf() }
    }
    /// The folder holding the checkpoints (`ckpt/` and its neighbours).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn live(&self) -> PathBuf {
        self.dir.join("ckpt")
    }
    fn next(&self) -> PathBuf {
        self.dir.join("ckpt.next")
    }
    fn prev(&self) -> PathBuf {
        self.dir.join("ckpt.prev")
    }

    pub fn save(
        &self,
        stages: &mut [(String, &mut ReconstructorBox)],
        refiner: Option<(&str, &mut RefinerBox)>,
        epochs_done: u32,
        epochs: &[EpochSummary],
        fingerprint: Option<&Fingerprint>,
    ) -> Result<()> {
        let next = self.next();
        empty_dir(&next)?;
        save_members(&next, stages)?;
        let refiner_state = match refiner {
            Some((id, r)) => Some(call(id, "state", r.state())?.into_string()),
            None => None,
        };
        let record = FitRecord {
            epochs_done,
            members: stages.iter().map(|(id, _)| id.clone()).collect(),
            refiner_state,
            epochs: epochs.to_vec(),
            fingerprint: fingerprint.cloned(),
        };
        std::fs::write(next.join(RECORD_FILE), serde_json::to_vec_pretty(&record)?)
            .with_context(|| format!("writing {}", next.join(RECORD_FILE).display()))?;
        replace_dir(&next, &self.live(), &self.prev())
    }

    /// The record of the last whole checkpoint and its folder, if any.
    fn read(&self) -> Result<Option<(PathBuf, FitRecord)>> {
        let Some(dir) = [self.live(), self.prev()].into_iter().find(|d| d.join(RECORD_FILE).exists()) else {
            return Ok(None);
        };
        let path = dir.join(RECORD_FILE);
        let record: FitRecord = serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
            .with_context(|| format!("parsing {}", path.display()))?;
        Ok(Some((dir, record)))
    }

    /// Restores every stage from the last whole checkpoint, if any. With a
    /// `fingerprint`, a checkpoint that records another one is an error.
    pub fn load(
        &self,
        stages: &mut [(String, &mut ReconstructorBox)],
        refiner: Option<(&str, &mut RefinerBox)>,
        fingerprint: Option<&Fingerprint>,
    ) -> Result<Option<FitRecord>> {
        let Some((dir, record)) = self.read()? else {
            return Ok(None);
        };
        if let Some(now) = fingerprint {
            if record.fingerprint.as_ref() != Some(now) {
                return Err(crate::fingerprint::mismatch(&self.dir, record.fingerprint.as_ref(), now));
            }
        }
        let ids: Vec<&String> = stages.iter().map(|(id, _)| id).collect();
        if record.members.iter().collect::<Vec<_>>() != ids {
            bail!(
                "{}: checkpoint of stages {:?}, this fit trains {:?}; run again with --fresh to discard it, or choose another --out",
                dir.display(),
                record.members,
                ids
            );
        }
        load_members(&dir, stages)?;
        match (refiner, &record.refiner_state) {
            (Some((id, r)), Some(state)) => call(id, "restore", r.restore(state.as_str().into()))?,
            (Some((id, _)), None) => bail!("{}: the checkpoint has no state for refiner `{id}`", dir.display()),
            (None, _) => {}
        }
        Ok(Some(record))
    }
}

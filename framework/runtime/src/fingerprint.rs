//! What a fit depends on, recorded in its checkpoint so that reusing an
//! output folder never resumes a fit of other data or settings: the
//! identity of every video (path, and size and contents of its files), the cube geometry, the pipeline seed, and the plugin, version and
//! complete options of every stage that shapes the cubes or the fit (all
//! but the scorer). A mismatch is an error that says what changed.
//!
//! Also clears the outputs an earlier run left in the folder, so that a new
//! run's files never mix with old ones.

use crate::cache::{source_identity, KeyBuilder};
use crate::check::Checked;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use vigil_datasets::VideoSource;
use vigil_stage_api::StageKind;

/// Part name -> value. Values are readable where they are small (paths,
/// cube geometry, seed, stage options) and a hash where they are not
/// (the files of the data).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub parts: BTreeMap<String, String>,
}

const DATA_PATHS: &str = "data";
const DATA_FILES: &str = "data files";
const STAGE_PREFIX: &str = "stage ";

impl Fingerprint {
    /// The fingerprint of a checked pipeline's fit over `sources` (from
    /// [`crate::train::sources`]).
    pub fn of(checked: &Checked, sources: &[(VideoSource, bool)]) -> Result<Fingerprint> {
        let mut parts = BTreeMap::new();
        let shown = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf()).display().to_string();
        let data = &checked.pipeline.data;
        let mut paths: Vec<String> = data.test.iter().map(|t| format!("test {}", shown(&t.path))).collect();
        paths.extend(data.extra.iter().map(|e| format!("extra {}", shown(&e.path))));
        parts.insert(DATA_PATHS.to_string(), paths.join("; "));
        let mut files = KeyBuilder::default();
        for (source, scored) in sources {
            let identity =
                source_identity(&source.path).with_context(|| format!("reading the identity (size, time) of {}", source.path.display()))?;
            files = files.text(&format!("{}:{scored}:{}", source.name, identity.hex()));
        }
        parts.insert(DATA_FILES.to_string(), files.hex());
        parts.extend(Fingerprint::of_model(checked).parts);
        Ok(Fingerprint { parts })
    }

    /// The parts that define a fitted model, data aside: cube geometry,
    /// seed, and every stage but the scorer.
    pub fn of_model(checked: &Checked) -> Fingerprint {
        let mut parts = BTreeMap::new();
        let c = &checked.pipeline.cubes;
        parts.insert("cubes".to_string(), format!("context {}, size {}, h_block {}, w_block {}", c.context, c.size, c.h_block, c.w_block));
        parts.insert("seed".to_string(), checked.pipeline.seed.to_string());
        for stage in checked.stages.iter().filter(|s| s.kind() != StageKind::Scorer) {
            let value = serde_json::json!({
                "plugin": stage.spec.plugin,
                "version": stage.info.version.as_str(),
                "options": Value::Object(stage.options_with_absolute_paths()),
            });
            parts.insert(format!("{STAGE_PREFIX}{}", stage.id()), value.to_string());
        }
        Fingerprint { parts }
    }

    /// These parts without the data's and without the stages `ids`.
    pub fn without_data_and(&self, ids: &[&str]) -> Fingerprint {
        let dropped =
            |name: &str| name == DATA_PATHS || name == DATA_FILES || name.strip_prefix(STAGE_PREFIX).is_some_and(|id| ids.contains(&id));
        Fingerprint { parts: self.parts.iter().filter(|(name, _)| !dropped(name)).map(|(k, v)| (k.clone(), v.clone())).collect() }
    }

    /// What differs from `now`, one readable line per changed part.
    pub fn differences(&self, now: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        let names: std::collections::BTreeSet<&String> = self.parts.keys().chain(now.parts.keys()).collect();
        for name in names {
            let (was, is) = (self.parts.get(name), now.parts.get(name));
            if was == is {
                continue;
            }
            if let Some(id) = name.strip_prefix(STAGE_PREFIX) {
                out.push(stage_difference(id, was, is));
                continue;
            }
            out.push(match (name.as_str(), was, is) {
                (DATA_FILES, _, _) => {
                    if self.parts.get(DATA_PATHS) != now.parts.get(DATA_PATHS) {
                        continue; // said by the paths' line
                    }
                    "data: the videos' files changed since the checkpoint (added, removed, or other contents)".to_string()
                }
                (_, Some(was), Some(is)) => format!("{name}: was {was}, now {is}"),
                (_, None, Some(is)) => format!("{name}: not recorded in the checkpoint, now {is}"),
                (_, Some(was), None) => format!("{name}: was {was}, now not set"),
                (_, None, None) => continue,
            });
        }
        out
    }
}

/// A stage's change, down to the options that differ.
fn stage_difference(id: &str, was: Option<&String>, is: Option<&String>) -> String {
    let (Some(was), Some(is)) = (was, is) else {
        return match is {
            Some(_) => format!("stage `{id}`: not in the checkpoint's fit, now in the pipeline"),
            None => format!("stage `{id}`: in the checkpoint's fit, no longer in the pipeline"),
        };
    };
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let (was, is) = (parse(was), parse(is));
    let plugin = is["plugin"].as_str().unwrap_or("?");
    let mut changes = Vec::new();
    for key in ["plugin", "version"] {
        if was[key] != is[key] {
            changes.push(format!("{key} was {}, now {}", was[key], is[key]));
        }
    }
    let empty = serde_json::Map::new();
    let (old, new) = (was["options"].as_object().unwrap_or(&empty), is["options"].as_object().unwrap_or(&empty));
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        match (old.get(key), new.get(key)) {
            (a, b) if a == b => {}
            (Some(a), Some(b)) => changes.push(format!("option `{key}` was {a}, now {b}")),
            (None, Some(b)) => changes.push(format!("option `{key}` is new ({b})")),
            (Some(a), None) => changes.push(format!("option `{key}` ({a}) is gone")),
            (None, None) => {}
        }
    }
    if changes.is_empty() {
        changes.push("its settings changed".to_string());
    }
    format!("stage `{id}` ({plugin}): {}", changes.join(", "))
}

/// The error for a checkpoint made by another fit (or by a Vigil that did
/// not record fingerprints, `recorded` = `None`).
pub fn mismatch(checkpoint_dir: &Path, recorded: Option<&Fingerprint>, now: &Fingerprint) -> anyhow::Error {
    let lines = match recorded {
        Some(recorded) => recorded.differences(now),
        None => vec!["the checkpoint does not record what it was fitted on (it was made by an older Vigil)".to_string()],
    };
    anyhow::anyhow!(
        "{} holds the checkpoint of a different fit, so it is not resumed:\n  - {}\n\
         to start over, run again with --fresh (discards that checkpoint and the earlier run's outputs), or choose another --out",
        checkpoint_dir.display(),
        lines.join("\n  - ")
    )
}

/// Readies `out` for a run whose fit has `fingerprint`: with `fresh`, the
/// checkpoint in `checkpoint_dir` is discarded; without, a checkpoint of
/// another fit is an error (see [`mismatch`]). Either way the outputs an
/// earlier run left are removed ([`clear_outputs`]), after the checks.
pub fn prepare(out: &Path, checkpoint_dir: &Path, fingerprint: &Fingerprint, fresh: bool) -> Result<()> {
    if fresh {
        if checkpoint_dir.exists() {
            std::fs::remove_dir_all(checkpoint_dir)
                .with_context(|| format!("removing the checkpoint {} (--fresh)", checkpoint_dir.display()))?;
            tracing::info!("--fresh: discarded the checkpoint in {}", checkpoint_dir.display());
        }
    } else if let Some(found) = crate::checkpoint::read_checkpoint(checkpoint_dir)? {
        tracing::debug!(
            "fingerprint of this fit: {:?}; of the checkpoint: {:?}",
            fingerprint.parts,
            found.fingerprint.as_ref().map(|f| &f.parts)
        );
        if found.fingerprint.as_ref() != Some(fingerprint) {
            return Err(mismatch(checkpoint_dir, found.fingerprint.as_ref(), fingerprint));
        }
        tracing::info!("the checkpoint in {} is of this fit ({} epochs done): it is resumed", checkpoint_dir.display(), found.epochs_done);
    }
    let removed = clear_outputs(out)?;
    if removed > 0 {
        tracing::info!("removed {removed} output files of an earlier run in {}", out.display());
    }
    Ok(())
}

/// The files `vigil run` writes into its output folder (besides
/// `checkpoints/` and `work/`).
const OUTPUT_FILES: [&str; 5] = ["report.json", "report.html", "scores.csv", "boxes.csv", "events.jsonl"];

/// Whether `name` is a plot that `vigil run` writes into `plots/`.
fn is_run_plot(name: &str) -> bool {
    name.ends_with(".png") && (name == "roc.png" || name.starts_with("timeline-") || name.starts_with("heatmap-"))
}

/// Removes the outputs an earlier run left in `out` (report, scores, boxes
/// and plots; nothing else), so that they do not mix with this run's.
/// Returns how many files were removed.
pub fn clear_outputs(out: &Path) -> Result<usize> {
    let mut removed = 0;
    let remove = |path: &Path, removed: &mut usize| -> Result<()> {
        match std::fs::remove_file(path) {
            Ok(()) => {
                *removed += 1;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {} (an output of an earlier run)", path.display())),
        }
    };
    for name in OUTPUT_FILES {
        remove(&out.join(name), &mut removed)?;
    }
    let plots = out.join("plots");
    if let Ok(entries) = std::fs::read_dir(&plots) {
        for entry in entries.flatten() {
            if entry.file_name().to_str().is_some_and(is_run_plot) {
                remove(&entry.path(), &mut removed)?;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(parts: &[(&str, &str)]) -> Fingerprint {
        Fingerprint { parts: parts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn differences_name_the_part_and_the_option() {
        let stage = |lr: &str| format!(r#"{{"plugin":"cae","version":"0.1.0","options":{{"epochs":10,"lr":{lr}}}}}"#);
        let (a, b) = (stage("0.001"), stage("0.01"));
        let old =
            print(&[("cubes", "context 2, size 32"), ("data", "test /a"), ("data files", "1"), ("seed", "7"), ("stage appearance", &a)]);
        assert!(old.differences(&old).is_empty());
        let new =
            print(&[("cubes", "context 0, size 32"), ("data", "test /a"), ("data files", "2"), ("seed", "7"), ("stage appearance", &b)]);
        assert_eq!(
            old.differences(&new),
            [
                "cubes: was context 2, size 32, now context 0, size 32",
                "data: the videos' files changed since the checkpoint (added, removed, or other contents)",
                "stage `appearance` (cae): option `lr` was 0.001, now 0.01",
            ]
        );
        // Other paths: one line for the data, not two.
        let moved =
            print(&[("cubes", "context 2, size 32"), ("data", "test /b"), ("data files", "2"), ("seed", "7"), ("stage appearance", &a)]);
        assert_eq!(old.differences(&moved), ["data: was test /a, now test /b"]);
        let error = mismatch(Path::new("/out/checkpoints"), Some(&old), &moved).to_string();
        assert!(error.starts_with("/out/checkpoints holds the checkpoint of a different fit") && error.contains("--fresh"), "{error}");
    }

    #[test]
    fn only_run_outputs_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::create_dir_all(out.join("plots")).unwrap();
        for name in [
            "report.json",
            "report.html",
            "scores.csv",
            "events.jsonl",
            "notes.txt",
            "plots/roc.png",
            "plots/heatmap-01-a-0001.png",
            "plots/mine.png",
        ] {
            std::fs::write(out.join(name), b"x").unwrap();
        }
        assert_eq!(clear_outputs(out).unwrap(), 6);
        assert!(out.join("notes.txt").exists() && out.join("plots/mine.png").exists());
        assert!(!out.join("report.json").exists() && !out.join("plots/roc.png").exists());
        assert_eq!(clear_outputs(&out.join("absent")).unwrap(), 0);
    }
}

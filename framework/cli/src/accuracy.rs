//! `vigil bench accuracy`: a pipeline's frame AUROC over several seeds, so
//! that settings are compared by their mean and spread rather than by one
//! run (at short budgets a single run moves by several hundredths with the
//! seed). Every seed is a whole `vigil run` into its own folder; the
//! extraction cache is shared, so only the first seed decodes, computes flow
//! and localizes.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vigil_eval::{frame_metrics, VideoSeries};

/// A named subset of the scored videos whose pooled AUROC is reported on
/// its own (e.g. the videos a setting was tuned on, and the rest).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
    pub videos: Vec<String>,
}

impl std::str::FromStr for Group {
    type Err = String;
    /// `NAME=V1,V2,...`, or `V1,V2,...` named after its first and last video.
    fn from_str(text: &str) -> Result<Group, String> {
        let (name, list) = match text.split_once('=') {
            Some((name, list)) => (Some(name.trim().to_string()), list),
            None => (None, text),
        };
        let videos: Vec<String> = list.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        if videos.is_empty() {
            return Err(format!("`{text}`: expected NAME=VIDEO,VIDEO,... (video names as in scores.csv)"));
        }
        let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| format!("{}-{}", videos[0], videos[videos.len() - 1]));
        Ok(Group { name, videos })
    }
}

/// One seed's figures.
#[derive(Clone, Debug, Serialize)]
pub struct SeedResult {
    pub seed: u64,
    pub out: PathBuf,
    pub auroc: f64,
    pub auroc_video_mean: Option<f64>,
    pub eer: f64,
    pub pr_auc: f64,
    /// Pooled AUROC of each group, in the order given.
    pub groups: Vec<(String, Option<f64>)>,
    /// AUROC of every video that has both classes.
    pub per_video: BTreeMap<String, f64>,
    /// Fit and total seconds from the run's report.
    pub fit_s: Option<f64>,
    pub total_s: Option<f64>,
}

/// Mean and sample standard deviation (n - 1; 0 for one value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// One video of a run: its name, frame scores and frame labels.
type VideoScores = (String, Vec<f32>, Vec<bool>);

/// The frame scores and labels of a finished run, from its `scores.csv`.
fn read_scores(path: &Path) -> Result<Vec<VideoScores>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut videos: Vec<VideoScores> = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let at = || format!("{}:{}", path.display(), n + 1);
        // The video name may be quoted and hold commas: split from the right.
        let mut fields = line.rsplitn(4, ',');
        let (label, score, _frame, video) = (fields.next(), fields.next(), fields.next(), fields.next());
        let (Some(label), Some(score), Some(video)) = (label, score, video) else {
            bail!("{}: expected video,frame,score,label", at());
        };
        let video = video.trim_matches('"').replace("\"\"", "\"");
        let score: f32 = score.parse().with_context(|| format!("{}: score `{score}`", at()))?;
        let label = match label {
            "1" => true,
            "0" => false,
            other => bail!("{}: label `{other}`: the run has no labels (set `data.labels`)", at()),
        };
        match videos.last_mut() {
            Some((name, scores, labels)) if *name == video => {
                scores.push(score);
                labels.push(label);
            }
            _ => videos.push((video, vec![score], vec![label])),
        }
    }
    Ok(videos)
}

/// The figures of one finished run in `out`.
pub fn seed_result(seed: u64, out: &Path, groups: &[Group]) -> Result<SeedResult> {
    let videos = read_scores(&out.join("scores.csv"))?;
    let series: Vec<VideoSeries> = videos.iter().map(|(name, scores, labels)| VideoSeries { name, scores, labels: Some(labels) }).collect();
    let all = frame_metrics(&series)?;
    let (Some(auroc), Some(eer), Some(pr_auc)) = (all.auroc, all.eer, all.pr_auc) else {
        bail!("{}: {}", out.display(), all.note.as_deref().unwrap_or("the labels have one class: AUROC is not defined"));
    };
    let mut per_video = BTreeMap::new();
    for s in &series {
        if let Some(auroc) = frame_metrics(std::slice::from_ref(s)).ok().and_then(|m| m.auroc) {
            per_video.insert(s.name.to_string(), auroc);
        }
    }
    let mut group_aurocs = Vec::new();
    for g in groups {
        if let Some(missing) = g.videos.iter().find(|v| !series.iter().any(|s| s.name == v.as_str())) {
            let names: Vec<&str> = series.iter().map(|s| s.name).collect();
            bail!("group `{}`: no scored video `{missing}` (the run scored {})", g.name, names.join(", "));
        }
        let subset: Vec<VideoSeries> = series.iter().filter(|s| g.videos.iter().any(|v| v == s.name)).copied().collect();
        group_aurocs.push((g.name.clone(), frame_metrics(&subset).ok().and_then(|m| m.auroc)));
    }
    let report: serde_json::Value =
        std::fs::read(out.join("report.json")).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
    let timing = |name: &str| report.pointer(&format!("/timings_s/{name}")).and_then(|v| v.as_f64());
    Ok(SeedResult {
        seed,
        out: out.to_path_buf(),
        auroc,
        auroc_video_mean: all.auroc_video_mean,
        eer,
        pr_auc,
        groups: group_aurocs,
        per_video,
        fit_s: timing("fit"),
        total_s: timing("total"),
    })
}

/// Runs `file` once per seed into `out/seed-N` and prints the table.
/// With `fresh`, each seed's folder starts over; without, a seed whose fit
/// is already checkpointed there with the same settings is only re-scored.
pub fn run(file: &Path, sets: &[String], seeds: &[u64], out: &Path, groups: &[Group], cache: bool, fresh: bool) -> Result<ExitCode> {
    if seeds.is_empty() {
        bail!("--seeds: expected at least one seed");
    }
    let mut results = Vec::new();
    for &seed in seeds {
        let run_out = out.join(format!("seed-{seed}"));
        let mut seed_sets = sets.to_vec();
        seed_sets.push(format!("pipeline.seed={seed}"));
        tracing::info!("bench accuracy: seed {seed} into {}", run_out.display());
        let code = crate::run_pipeline(file, &run_out, &seed_sets, cache, fresh)?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
        results.push(seed_result(seed, &run_out, groups)?);
    }
    print_table(&results);
    let json = serde_json::json!({ "pipeline": file, "sets": sets, "groups": groups, "seeds": results });
    let path = out.join("accuracy.json");
    vigil_eval::write_atomic(&path, format!("{}\n", serde_json::to_string_pretty(&json)?).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("written: {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}

fn print_table(results: &[SeedResult]) {
    let group_names: Vec<&str> = results[0].groups.iter().map(|(n, _)| n.as_str()).collect();
    let mut header = format!("{:>6} {:>8} {:>10} {:>7} {:>7}", "seed", "AUROC", "video mean", "EER", "PR-AUC");
    for g in &group_names {
        header.push_str(&format!(" {:>10}", g));
    }
    header.push_str(&format!(" {:>8} {:>8}", "fit s", "total s"));
    println!("{header}");
    for r in results {
        let mut line = format!("{:>6} {:>8.4} {:>10} {:>7.4} {:>7.4}", r.seed, r.auroc, fmt_opt(r.auroc_video_mean), r.eer, r.pr_auc);
        for (_, a) in &r.groups {
            line.push_str(&format!(" {:>10}", fmt_opt(*a)));
        }
        let seconds = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.0}"));
        line.push_str(&format!(" {:>8} {:>8}", seconds(r.fit_s), seconds(r.total_s)));
        println!("{line}");
    }
    let stat = |values: Vec<f64>| -> String {
        if values.is_empty() {
            return "-".into();
        }
        let (m, sd) = mean_sd(&values);
        format!("{m:.4} ± {sd:.4}")
    };
    println!("AUROC over {} seeds: {} (mean ± sd)", results.len(), stat(results.iter().map(|r| r.auroc).collect()));
    for (k, g) in group_names.iter().enumerate() {
        println!("  {g}: {}", stat(results.iter().filter_map(|r| r.groups[k].1).collect()));
    }
    let videos: Vec<&String> = results[0].per_video.keys().collect();
    println!("per video (AUROC of each seed, then mean ± sd):");
    for v in videos {
        let values: Vec<f64> = results.iter().filter_map(|r| r.per_video.get(v).copied()).collect();
        let each: Vec<String> = values.iter().map(|a| format!("{a:.3}")).collect();
        println!("  {v:>8}: {}  {}", each.join(" "), stat(values.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_parse_with_and_without_a_name() {
        let g: Group = "tuned=01,02,03".parse().unwrap();
        assert_eq!(g, Group { name: "tuned".into(), videos: vec!["01".into(), "02".into(), "03".into()] });
        let g: Group = "07,08".parse().unwrap();
        assert_eq!(g.name, "07-08");
        assert!("x=".parse::<Group>().unwrap_err().contains("expected NAME=VIDEO"));
    }

    #[test]
    fn mean_and_sample_sd() {
        let (m, sd) = mean_sd(&[0.8, 0.9, 1.0]);
        assert!((m - 0.9).abs() < 1e-12 && (sd - 0.1).abs() < 1e-12);
        assert_eq!(mean_sd(&[0.5]), (0.5, 0.0));
    }

    #[test]
    fn a_finished_run_is_read_back_per_video_and_per_group() {
        let dir = tempfile::tempdir().unwrap();
        // Video a ranks perfectly, "b,c" inversely, d holds only anomalies.
        std::fs::write(
            dir.path().join("scores.csv"),
            "video,frame,score,label\na,0,0.9,1\na,1,0.1,0\n\"b,c\",0,0.2,1\n\"b,c\",1,0.8,0\nd,0,0.5,1\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("report.json"), r#"{"timings_s": {"fit": 12.5, "total": 20.0}}"#).unwrap();
        let groups = ["first=a".parse().unwrap(), "rest=b,c".parse::<Group>().unwrap()];
        // A video name holding a comma cannot be named in a group (commas
        // separate names there), but is read back from the quoted CSV.
        let r = seed_result(3, dir.path(), &groups[..1]).unwrap();
        assert_eq!(r.per_video.get("a"), Some(&1.0));
        assert_eq!(r.per_video.get("b,c"), Some(&0.0));
        assert!(!r.per_video.contains_key("d"), "one-class videos have no AUROC");
        assert_eq!(r.groups, vec![("first".to_string(), Some(1.0))]);
        assert_eq!((r.fit_s, r.total_s), (Some(12.5), Some(20.0)));
        // positives 0.9, 0.2, 0.5 against negatives 0.1, 0.8: 4 of 6 pairs won
        assert!((r.auroc - 4.0 / 6.0).abs() < 1e-12);
        let err = seed_result(3, dir.path(), &groups[1..]).unwrap_err().to_string();
        assert!(err.contains("no scored video `b`"), "{err}");
    }
}

//! The model bundle of `vigil fit`: a folder with everything `vigil score`
//! needs, written atomically (a temporary folder renamed into place).
//!
//! ```text
//! MODEL/
//!   bundle.json      what was fitted: stages with plugin and version, cube
//!                    geometry, frame sizes, training statistics, threshold,
//!                    fingerprint of the training data, and every other
//!                    file's size and hash
//!   pipeline.toml    the resolved pipeline: every stage with its complete
//!                    options, paths absolute
//!   <stage id>/      each reconstructor's own saved model (its `save`)
//! ```
//!
//! Opening a bundle checks, in order: bundle.json parses and has this
//! format; every listed file is there with its size and hash; the pipeline
//! checks against the plugins found; each stage's plugin has the version
//! the bundle was made with; each reconstructor loads its model. Each
//! failure is one error naming the file.

use crate::cache::KeyBuilder;
use crate::check::Checked;
use crate::checkpoint::{empty_dir, load_members, replace_dir, save_members};
use crate::fingerprint::Fingerprint;
use crate::pipeline::Pipeline;
use crate::registry::{Registry, SearchPath};
use crate::stage::Stage;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use vigil_events::Threshold;
use vigil_stage_api::height::HeightLine;
use vigil_stage_api::{ModelStats, StageKind};

pub const RECORD_FILE: &str = "bundle.json";
pub const PIPELINE_FILE: &str = "pipeline.toml";
/// Bumped when the bundle's layout changes; other formats are refused.
pub const FORMAT: &str = "vigil-bundle/1";

/// One stage as fitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub id: String,
    pub plugin: String,
    pub kind: String,
    /// The stage's version (its plugin crate's); loading needs the same.
    pub version: String,
    pub library: String,
    pub library_version: String,
}

/// Training-error statistics of one model (band). Numbers are decimal text
/// that reads back as the same f64 (JSON numbers may not).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandStats {
    pub model: u32,
    pub count: u64,
    pub mean: String,
    pub std: String,
    /// The band's line of ln(error) in ln(box height); absent from bundles
    /// written before these lines were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<HeightRecord>,
}

/// A [`HeightLine`] as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeightRecord {
    pub count: u64,
    pub intercept: String,
    pub slope: String,
    pub residual_std: String,
}

/// A file of the bundle besides bundle.json, relative to the bundle folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub bytes: u64,
    /// 128-bit FNV-1a hash of the contents, hex.
    pub hash: String,
}

/// The cubes the models were fitted on: cube settings and frame sizes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    pub context: u32,
    pub size: u32,
    pub h_block: u32,
    pub w_block: u32,
    /// (height, width) of the training videos' frames; the bands and the
    /// crops depend on the frame size, so scored frames must have one of these.
    pub frame_sizes: Vec<(usize, usize)>,
}

/// What `bundle.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundleRecord {
    pub format: String,
    pub vigil_version: String,
    pub pipeline: String,
    pub stages: Vec<StageRecord>,
    /// Reconstructor stage ids, in pipeline order, each with its statistics.
    pub members: Vec<(String, Vec<BandStats>)>,
    pub geometry: Geometry,
    pub threshold: Threshold,
    pub fingerprint: Fingerprint,
    /// Videos and frames the model was fitted on.
    pub training: Value,
    pub files: Vec<FileRecord>,
}

fn number(text: &str, id: &str) -> Result<f64> {
    text.parse().map_err(|_| anyhow!("{RECORD_FILE}: member `{id}`: `{text}` is not a number"))
}

impl BundleRecord {
    /// The height lines of each member, in member order, indexed by model
    /// (a model not recorded gets count 0); `None` for a member recorded
    /// without them.
    pub fn height_lines(&self) -> Result<Vec<Option<Vec<HeightLine>>>> {
        self.members
            .iter()
            .map(|(id, bands)| {
                if bands.iter().any(|b| b.height.is_none()) {
                    return Ok(None);
                }
                let models = bands.iter().map(|b| b.model as usize + 1).max().unwrap_or(0);
                let mut lines = vec![HeightLine::default(); models];
                for (b, h) in bands.iter().filter_map(|b| Some((b, b.height.as_ref()?))) {
                    lines[b.model as usize] = HeightLine {
                        count: h.count,
                        intercept: number(&h.intercept, id)?,
                        slope: number(&h.slope, id)?,
                        residual_std: number(&h.residual_std, id)?,
                    };
                }
                Ok(Some(lines))
            })
            .collect()
    }

    /// The statistics of each member, in member order.
    pub fn statistics(&self) -> Result<Vec<Vec<ModelStats>>> {
        self.members
            .iter()
            .map(|(id, bands)| {
                bands
                    .iter()
                    .map(|b| Ok(ModelStats { model: b.model, count: b.count, mean: number(&b.mean, id)?, std: number(&b.std, id)? }))
                    .collect()
            })
            .collect()
    }
}

/// A stage's statistics as recorded, each band with its height line.
pub fn band_stats(stats: &[ModelStats], lines: &[HeightLine]) -> Vec<BandStats> {
    stats
        .iter()
        .map(|s| BandStats {
            model: s.model,
            count: s.count,
            mean: s.mean.to_string(),
            std: s.std.to_string(),
            height: lines.get(s.model as usize).map(|l| HeightRecord {
                count: l.count,
                intercept: l.intercept.to_string(),
                slope: l.slope.to_string(),
                residual_std: l.residual_std.to_string(),
            }),
        })
        .collect()
}

/// What a fit hands to [`write`], besides its stages.
pub struct BundleContents<'a> {
    pub statistics: &'a [Vec<ModelStats>],
    /// Each member's height line per band.
    pub height_lines: &'a [Vec<HeightLine>],
    pub frame_sizes: Vec<(usize, usize)>,
    pub threshold: Threshold,
    pub fingerprint: Fingerprint,
    pub training: Value,
}

/// Writes the bundle at `dir`: everything goes into `<dir>.next/`, which
/// then replaces `dir` by renames.
pub fn write(dir: &Path, contents: BundleContents, checked: &mut Checked) -> Result<()> {
    let (next, prev) = (sibling(dir, "next")?, sibling(dir, "prev")?);
    empty_dir(&next)?;
    let mut members = crate::roles::roles(&mut checked.stages)?.reconstructors;
    save_members(&next, &mut members)?;
    let member_ids: Vec<String> = members.into_iter().map(|(id, _)| id).collect();
    vigil_eval::write_atomic(next.join(PIPELINE_FILE), resolved_pipeline(checked)?.as_bytes())
        .with_context(|| format!("writing {}", next.join(PIPELINE_FILE).display()))?;
    let cubes = &checked.pipeline.cubes;
    let record = BundleRecord {
        format: FORMAT.into(),
        vigil_version: env!("CARGO_PKG_VERSION").into(),
        pipeline: checked.pipeline.name.clone(),
        stages: checked.stages.iter().map(stage_record).collect(),
        members: member_ids
            .into_iter()
            .zip(contents.statistics.iter().zip(contents.height_lines).map(|(s, lines)| band_stats(s, lines)))
            .collect(),
        geometry: Geometry {
            context: cubes.context,
            size: cubes.size,
            h_block: cubes.h_block,
            w_block: cubes.w_block,
            frame_sizes: contents.frame_sizes,
        },
        threshold: contents.threshold,
        fingerprint: contents.fingerprint,
        training: contents.training,
        files: manifest(&next)?,
    };
    vigil_eval::write_atomic(next.join(RECORD_FILE), &serde_json::to_vec_pretty(&record)?)
        .with_context(|| format!("writing {}", next.join(RECORD_FILE).display()))?;
    replace_dir(&next, dir, &prev)
}

/// Refuses to replace `dir` when it holds something other than a bundle:
/// writing a bundle removes what was there.
pub fn check_replaceable(dir: &Path) -> Result<()> {
    let occupied = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => true,
    };
    if occupied && !dir.join(RECORD_FILE).is_file() {
        bail!(
            "--out {}: exists and is not a model bundle (no {RECORD_FILE}); a fit replaces its --out folder: choose another",
            dir.display()
        );
    }
    Ok(())
}

/// `<dir>.<suffix>`, next to `dir`.
pub fn sibling(dir: &Path, suffix: &str) -> Result<PathBuf> {
    let name = dir.file_name().with_context(|| format!("{}: a model bundle needs a folder name", dir.display()))?;
    Ok(dir.with_file_name(format!("{}.{suffix}", name.to_string_lossy())))
}

fn stage_record(stage: &Stage) -> StageRecord {
    StageRecord {
        id: stage.id().into(),
        plugin: stage.spec.plugin.clone(),
        kind: stage.kind().as_str().into(),
        version: stage.info.version.to_string(),
        library: stage.library.display().to_string(),
        library_version: stage.library_version.clone(),
    }
}

/// Every file under `dir` (bundle.json aside), sorted, with size and hash.
fn manifest(dir: &Path) -> Result<Vec<FileRecord>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).with_context(|| format!("listing {}", folder.display()))? {
            let path = entry.with_context(|| format!("listing {}", folder.display()))?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(dir).expect("under dir").to_string_lossy().replace('\\', "/");
            if relative != RECORD_FILE {
                let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                files.push(FileRecord { path: relative, bytes: bytes.len() as u64, hash: hash(&bytes) });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn hash(bytes: &[u8]) -> String {
    KeyBuilder::default().bytes(bytes).hex()
}

/// The checked pipeline as TOML: `[pipeline]`, `[data]` (what it was fitted
/// on), `[plugins]`, `[cubes]`, `[report]`, and every stage with its complete
/// options; path options and paths absolute.
fn resolved_pipeline(checked: &Checked) -> Result<String> {
    use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table};
    let p = &checked.pipeline;
    let absolute = |path: &Path| -> String { crate::out_dir::absolute(path).display().to_string() };
    let mut doc = DocumentMut::new();
    let mut pipeline = Table::new();
    pipeline["name"] = value(p.name.as_str());
    pipeline["seed"] = value(p.seed as i64);
    pipeline["device"] = value(p.device.as_str());
    doc["pipeline"] = Item::Table(pipeline);
    let mut data = Table::new();
    if let Some(test) = &p.data.test {
        data["test"] = value(absolute(&test.path));
    }
    data["extra"] = value(p.data.extra.iter().map(|e| absolute(&e.path)).collect::<Array>());
    doc["data"] = Item::Table(data);
    let mut plugins = Table::new();
    plugins["paths"] = value(p.plugin_paths.iter().map(|e| absolute(&e.path)).collect::<Array>());
    doc["plugins"] = Item::Table(plugins);
    let c = &p.cubes;
    let mut cubes = Table::new();
    for (key, v) in [
        ("context", c.context as i64),
        ("size", c.size as i64),
        ("h_block", c.h_block as i64),
        ("w_block", c.w_block as i64),
        ("memory_budget_mb", c.memory_budget_mb as i64),
    ] {
        cubes[key] = value(v);
    }
    doc["cubes"] = Item::Table(cubes);
    let mut report = Table::new();
    report["heatmaps"] = value(p.report.heatmaps as i64);
    doc["report"] = Item::Table(report);
    let mut stages = ArrayOfTables::new();
    for stage in &checked.stages {
        let mut table = Table::new();
        table["id"] = value(stage.id());
        table["plugin"] = value(stage.spec.plugin.as_str());
        let mut options = InlineTable::new();
        for (name, v) in &stage.options_with_absolute_paths() {
            if let Some(v) = toml_value(v) {
                options.insert(name, v);
            }
        }
        table["options"] = value(options);
        stages.push(table);
    }
    doc["stage"] = Item::ArrayOfTables(stages);
    Ok(format!("# The resolved pipeline of a Vigil model bundle (written by `vigil fit`).\n{doc}"))
}

/// An option's JSON value as TOML; `None` for null (an unset option).
fn toml_value(v: &Value) -> Option<toml_edit::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64()?.into(),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => items.iter().filter_map(toml_value).collect::<toml_edit::Array>().into(),
        Value::Object(map) => {
            let mut table = toml_edit::InlineTable::new();
            for (k, v) in map {
                if let Some(v) = toml_value(v) {
                    table.insert(k, v);
                }
            }
            table.into()
        }
    })
}

/// A bundle opened for scoring: its record and its checked pipeline, with
/// every reconstructor's model loaded.
pub struct OpenBundle {
    pub dir: PathBuf,
    pub record: BundleRecord,
    pub checked: Checked,
}

/// How `vigil score` decodes its inputs. The decoder only turns the input
/// into RGB frames and holds no part of the model, so it may differ from the
/// one the model was fitted with.
#[derive(Default)]
pub struct Decoding {
    /// The stock decoder the inputs need (`decoders::decoder_for`); `None`:
    /// the bundle's own.
    pub plugin: Option<String>,
    /// `--set stage.<decoder id>.options.<name>=<value>` overrides.
    pub sets: Vec<String>,
}

/// Opens the bundle at `dir`; stages keep their files under `work_dir`.
pub fn open(dir: &Path, work_dir: &Path, decoding: &Decoding) -> Result<OpenBundle> {
    let record = read_record(dir)?;
    verify_files(dir, &record)?;
    let file = dir.join(PIPELINE_FILE);
    let source = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let mut pipeline =
        Pipeline::parse(&file, source, &crate::diagnostic::Setting::from_cli(&decoding.sets)).map_err(|report| anyhow!("{report}"))?;
    let extra: Vec<PathBuf> = pipeline.plugin_paths.iter().map(|p| p.path.clone()).collect();
    let registry = Registry::discover(SearchPath::standard(&extra));
    choose_decoder(&mut pipeline, &registry, decoding)?;
    let mut checked = crate::check::check(pipeline, &registry, work_dir).map_err(|report| anyhow!("{report}"))?;
    check_versions(dir, &record, &checked)?;
    check_same_fit(dir, &record, &checked)?;
    check_geometry(dir, &record, &checked)?;
    let mut roles = crate::roles::roles(&mut checked.stages)?;
    let ids: Vec<&String> = roles.reconstructors.iter().map(|(id, _)| id).collect();
    let recorded: Vec<&String> = record.members.iter().map(|(id, _)| id).collect();
    if ids != recorded {
        bail!("{}: the bundle records reconstructors {recorded:?}, its pipeline has {ids:?}", dir.join(RECORD_FILE).display());
    }
    load_members(dir, &mut roles.reconstructors).with_context(|| format!("loading the models of {}", dir.display()))?;
    Ok(OpenBundle { dir: dir.to_path_buf(), record, checked })
}

pub(crate) fn read_record(dir: &Path) -> Result<BundleRecord> {
    let path = dir.join(RECORD_FILE);
    if !dir.is_dir() {
        bail!("{}: no model bundle there (make one with `vigil fit PIPELINE --out MODEL`)", dir.display());
    }
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow!("{}: missing: {} is not a model bundle, or an incomplete one", path.display(), dir.display())
        }
        _ => anyhow!("{}: {e}", path.display()),
    })?;
    let format = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| anyhow!("{}: corrupt: not JSON ({e})", path.display()))?
        .get("format")
        .and_then(Value::as_str)
        .map(str::to_string);
    if format.as_deref() != Some(FORMAT) {
        bail!(
            "{}: bundle format {:?}, this vigil reads {FORMAT:?}; fit the model again with this vigil",
            path.display(),
            format.unwrap_or_default()
        );
    }
    serde_json::from_slice(&bytes).map_err(|e| anyhow!("{}: corrupt: {e}", path.display()))
}

/// bundle.json's cube geometry is its pipeline's `[cubes]`. bundle.json is
/// the one file without a recorded hash, and scoring cuts cubes by this
/// geometry: a corrupt size or band grid would feed the models cubes they
/// never saw (or ask for gigabytes).
fn check_geometry(dir: &Path, record: &BundleRecord, checked: &Checked) -> Result<()> {
    let (g, c) = (&record.geometry, &checked.pipeline.cubes);
    let recorded = (g.context, g.size, g.h_block, g.w_block);
    let piped = (c.context, c.size, c.h_block, c.w_block);
    if recorded != piped {
        bail!(
            "{}: corrupt: its cube geometry (context, size, h_block, w_block) is {recorded:?}, but {PIPELINE_FILE} says {piped:?}",
            dir.join(RECORD_FILE).display()
        );
    }
    if g.frame_sizes.is_empty() || g.frame_sizes.iter().any(|&(h, w)| h == 0 || w == 0 || h > MAX_FRAME_SIDE || w > MAX_FRAME_SIDE) {
        bail!(
            "{}: corrupt: frame sizes {:?} (expected one or more, each side 1 to {MAX_FRAME_SIDE})",
            dir.join(RECORD_FILE).display(),
            g.frame_sizes
        );
    }
    Ok(())
}

/// The longest frame side a bundle may record (16K video is 15,360).
const MAX_FRAME_SIDE: usize = 1 << 16;

/// Every file the record lists is there, with its size and hash.
pub(crate) fn verify_files(dir: &Path, record: &BundleRecord) -> Result<()> {
    for file in &record.files {
        let path = dir.join(&file.path);
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow!("{}: missing from the bundle (it lists it in {RECORD_FILE})", path.display()),
            _ => anyhow!("{}: {e}", path.display()),
        })?;
        if bytes.len() as u64 != file.bytes || hash(&bytes) != file.hash {
            bail!(
                "{}: corrupt, or from another bundle: {} bytes, hash {}; {RECORD_FILE} records {} bytes, hash {}",
                path.display(),
                bytes.len(),
                hash(&bytes),
                file.bytes,
                file.hash
            );
        }
    }
    Ok(())
}

/// The bundle's pipeline file is the one its models were fitted with: the
/// record's fingerprint (cube geometry, seed, every stage's plugin, version
/// and options) against the pipeline as read now. Catches a pipeline.toml
/// from another fit copied in (with bundle.json), which would otherwise
/// score with cubes or options the models never saw. The decoder may
/// differ: scoring picks its own and may set its options.
fn check_same_fit(dir: &Path, record: &BundleRecord, checked: &Checked) -> Result<()> {
    let decoders: Vec<&str> = checked.stages.iter().filter(|s| s.kind() == StageKind::Decoder).map(|s| s.id()).collect();
    let fitted = record.fingerprint.without_data_and(&decoders);
    let now = Fingerprint::of_model(checked).without_data_and(&decoders);
    let differences = fitted.differences(&now);
    if differences.is_empty() {
        return Ok(());
    }
    bail!(
        "{}: the pipeline is not the one the models were fitted with ({} records the fit): {}; the bundle's files come from \
         different fits: fit the model again",
        dir.join(PIPELINE_FILE).display(),
        RECORD_FILE,
        differences.join("; ")
    )
}

/// Each stage's plugin has the version the bundle was made with.
/// Puts the decoder `decoding` asks for in place of the pipeline's, and
/// refuses overrides of anything but the decoder's options: the rest is the
/// fitted model.
fn choose_decoder(pipeline: &mut Pipeline, registry: &Registry, decoding: &Decoding) -> Result<()> {
    let is_decoder = |plugin: &str| registry.find(plugin).is_some_and(|(_, info)| info.kind == StageKind::Decoder);
    let Some(stage) = pipeline.stages.iter_mut().find(|s| is_decoder(&s.plugin)) else {
        return Ok(()); // `check` reports the missing decoder
    };
    let prefix = format!("stage.{}.options.", stage.id);
    if let Some(other) = decoding.sets.iter().find(|set| !set.starts_with(&prefix)) {
        bail!(
            "--set {other}: only the decoder's options (`{prefix}...`) can change when scoring; \
             everything else belongs to the fitted model (fit again with `vigil fit` to change it)"
        );
    }
    // The fit's decoder options were for the fit's input (a time range of
    // the training footage, say): the input scored now is read with the
    // decoder's defaults and this call's `--set`s.
    crate::decoders::keep_only_overrides(stage);
    if let Some(plugin) = &decoding.plugin {
        crate::decoders::use_decoder(pipeline, plugin);
    }
    Ok(())
}

fn check_versions(dir: &Path, record: &BundleRecord, checked: &Checked) -> Result<()> {
    // Decoders hold no part of the model (see `Decoding`).
    for stage in checked.stages.iter().filter(|s| s.kind() != StageKind::Decoder) {
        let Some(made) = record.stages.iter().find(|s| s.id == stage.id()) else {
            bail!("{}: stage `{}` is in the bundle's pipeline but not in its record", dir.join(RECORD_FILE).display(), stage.id());
        };
        let now = stage.info.version.as_str();
        if made.plugin != stage.spec.plugin || made.version != now {
            bail!(
                "{}: stage `{}` was fitted with plugin `{}` {}, but the plugin found now is `{}` {} ({}); \
                 models of another plugin version may not load or score the same: fit again with `vigil fit`",
                dir.join(RECORD_FILE).display(),
                stage.id(),
                made.plugin,
                made.version,
                stage.spec.plugin,
                now,
                stage.library.display()
            );
        }
    }
    Ok(())
}

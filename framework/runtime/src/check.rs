//! `vigil check`: resolve every stage's plugin, validate its options against
//! the options it declares, create it (so that e.g. a missing model file is
//! found now, not mid-run), and check the tensor contracts along the data
//! path. Every problem is reported at once, at the user's own text.

use crate::diagnostic::{Diagnostic, Origin, Report};
use crate::document::{Node, Val};
use crate::pipeline::{Pipeline, StageSpec};
use crate::registry::Registry;
use crate::stage::Stage;
use serde_json::{Map, Value};
use std::path::Path;
use vigil_stage_api::{complete_options, names, DType, DeviceKind, OptionType, RResult, StageContext, StageKind, TensorSpec};

/// Tensors the runtime itself produces between the localizer and the
/// reconstructors (the cube builder) and for the later stages.
pub fn cube_outputs(with_flow: bool) -> Vec<TensorSpec> {
    let mut specs = vec![
        TensorSpec::new(names::APPEARANCE, DType::U8, 4, "appearance cubes [M, 3(2c+1), S, S]"),
        TensorSpec::new(names::BAND, DType::U32, 1, "spatial band (model) of each cube"),
    ];
    if with_flow {
        specs.push(TensorSpec::new(names::MOTION, DType::F16, 4, "flow cubes [M, 2(2c+1), S, S]"));
    }
    specs
}

/// Whether a reconstructor reads flow cubes (`motion`). Only then does the
/// cube builder cut them: a flow stage that serves the localizer alone
/// would otherwise add 40 KB per 32 x 32 cube of 5 frames (1.07 GB for
/// Ped2's 26,208 cubes) that nothing reads.
pub fn wants_motion_cubes(stages: &[Stage]) -> bool {
    stages.iter().any(|s| s.kind() == StageKind::Reconstructor && s.io.inputs.iter().any(|t| t.name.as_str() == names::MOTION))
}

/// What the runtime hands the refiner and the scorer, per reconstructor `id`.
pub fn scoring_inputs(reconstructor_ids: &[&str]) -> Vec<TensorSpec> {
    let guide = TensorSpec::new(names::ERRORS, DType::F32, 1, "per-sample errors of the guiding reconstructor");
    std::iter::once(guide).chain(names::scoring_batch(reconstructor_ids)).collect()
}

/// A pipeline whose stages all exist, accept their options and fit together.
pub struct Checked {
    pub pipeline: Pipeline,
    pub stages: Vec<Stage>,
    /// `data.labels` as the check read it (none when it is not set or
    /// `data.test` does not exist yet): a run takes it instead of reading
    /// the labels again (40,000 mask images take minutes to decode).
    pub labels: Option<vigil_datasets::GroundTruth>,
}

impl Checked {
    pub fn of_kind(&self, kind: StageKind) -> impl Iterator<Item = &Stage> {
        self.stages.iter().filter(move |s| s.kind() == kind)
    }

    /// The stages in the order the runtime drives them (by kind, file order
    /// within a kind; docs/plugins.md "How the runtime wires the stages"), as
    /// `id (plugin)`, the first reconstructor marked as the refiner's guide.
    pub fn execution_order(&self) -> Vec<String> {
        let refiner = self.of_kind(StageKind::Refiner).next().map(|r| r.id().to_string());
        let guide = self.of_kind(StageKind::Reconstructor).next().map(|r| r.id().to_string());
        StageKind::ALL
            .iter()
            .flat_map(|&kind| self.of_kind(kind))
            .map(|stage| match (&refiner, &guide) {
                (Some(refiner), Some(guide)) if stage.id() == guide => {
                    format!("{} ({}, guides {refiner})", stage.id(), stage.spec.plugin)
                }
                _ => format!("{} ({})", stage.id(), stage.spec.plugin),
            })
            .collect()
    }
}

/// Where each stage may keep files while being checked or run.
pub fn check(pipeline: Pipeline, registry: &Registry, work_dir: &Path) -> Result<Checked, Report> {
    let mut diags = pipeline.problems.clone();
    let mut stages = Vec::new();
    for spec in &pipeline.stages {
        if let Some(stage) = create_stage(&pipeline, spec, registry, work_dir, &mut diags) {
            stages.push(stage);
        }
    }
    if diags.is_empty() {
        check_kinds(&stages, &mut diags);
    }
    if diags.is_empty() {
        check_contracts(&stages, &mut diags);
    }
    if !diags.is_empty() {
        return Err(pipeline.report(diags));
    }
    let mut checked = Checked { pipeline, stages, labels: None };
    match check_data(&checked) {
        Ok(labels) => {
            checked.labels = labels;
            Ok(checked)
        }
        Err(diags) => Err(checked.pipeline.report(diags)),
    }
}

/// Every folder of `data.test` and `data.extra` readable as videos, each
/// problem at its own key or `--set`; then `data.labels` against the videos
/// of `data.test` ([`crate::labels::preload`]), returned when read. Only
/// when `data.test` exists: a pipeline whose data paths are placeholders
/// still checks.
fn check_data(checked: &Checked) -> Result<Option<vigil_datasets::GroundTruth>, Vec<Diagnostic>> {
    let data = &checked.pipeline.data;
    let Some(test) = data.test.as_ref().filter(|test| test.path.exists()) else {
        return Ok(None);
    };
    let unreadable: Vec<Diagnostic> = std::iter::once(test)
        .chain(&data.extra)
        .filter_map(|folder| {
            let error = vigil_datasets::resolve(&folder.path).err()?;
            Some(Diagnostic::new(&folder.origin, format!("cannot read the data: {error}")))
        })
        .collect();
    if !unreadable.is_empty() {
        return Err(unreadable);
    }
    let Some(labels) = data.labels.as_ref() else {
        return Ok(None);
    };
    let sources = crate::train::sources(checked).map_err(|e| vec![Diagnostic::new(&test.origin, format!("{e:#}"))])?;
    crate::labels::preload(&checked.pipeline, &sources).map_err(|error| vec![Diagnostic::new(&labels.origin, format!("{error:#}"))])
}

fn create_stage(pipeline: &Pipeline, spec: &StageSpec, registry: &Registry, work_dir: &Path, diags: &mut Vec<Diagnostic>) -> Option<Stage> {
    let Some((library, info)) = registry.find(&spec.plugin) else {
        diags.push(Diagnostic::new(&spec.plugin_origin, format!("stage `{}`: {}", spec.id, registry.explain_missing(&spec.plugin))));
        return None;
    };
    if !finite_options(spec, diags) {
        return None;
    }
    let given = resolve_path_options(pipeline, &spec.options, info);
    let options = match complete_options(&info.options, &given) {
        Ok(options) => options,
        Err(problems) => {
            for problem in problems {
                // The option's key in the file, or the --set that gave its value.
                let origin = match spec.options.entry(&problem.option) {
                    Some(e) if matches!(e.node.origin, Origin::Override(_)) => e.node.origin.clone(),
                    Some(e) => e.key_origin.clone(),
                    None => spec.id_origin.clone(),
                };
                diags.push(Diagnostic::new(&origin, format!("stage `{}` ({}): {}", spec.id, spec.plugin, problem.message)));
            }
            return None;
        }
    };
    let stage_dir = work_dir.join(&spec.id);
    let context = StageContext {
        stage_id: spec.id.as_str().into(),
        seed: pipeline.seed,
        device: pipeline.device.as_str().into(),
        work_dir: stage_dir.display().to_string().into(),
    };
    let created = (library.module.create)(spec.plugin.as_str().into(), options.to_json().as_str().into(), context);
    match created {
        RResult::ROk(instance) => Some(Stage {
            spec: spec.clone(),
            info: info.clone(),
            library: library.path.clone(),
            library_version: library.version.clone(),
            options,
            io: instance.io,
            object: instance.stage,
        }),
        RResult::RErr(e) => {
            diags.push(Diagnostic::new(&spec.plugin_origin, format!("stage `{}` ({}): {e}", spec.id, spec.plugin)));
            None
        }
    }
}

/// TOML allows `nan` and `inf`, which options (JSON) cannot hold: they are
/// named here instead of reaching the stage as "nothing". Whether all are finite.
fn finite_options(spec: &StageSpec, diags: &mut Vec<Diagnostic>) -> bool {
    fn non_finite(node: &Node) -> Option<f64> {
        match &node.val {
            Val::Float(f) if !f.is_finite() => Some(*f),
            Val::Array(items) => items.iter().find_map(non_finite),
            Val::Table(entries) => entries.iter().find_map(|e| non_finite(&e.node)),
            _ => None,
        }
    }
    let mut finite = true;
    for entry in spec.options.entries() {
        if let Some(value) = non_finite(&entry.node) {
            let origin = match &entry.node.origin {
                Origin::Override(_) => entry.node.origin.clone(),
                _ => entry.key_origin.clone(),
            };
            let message = format!("stage `{}` ({}): option `{}`: expected a finite number, found {value}", spec.id, spec.plugin, entry.key);
            diags.push(Diagnostic::new(&origin, message));
            finite = false;
        }
    }
    finite
}

/// Path options written in the file are relative to the file's folder.
fn resolve_path_options(pipeline: &Pipeline, options: &Node, info: &vigil_stage_api::StageInfo) -> Map<String, Value> {
    let base = pipeline.file.parent().unwrap_or(Path::new(""));
    let mut map = Map::new();
    for entry in options.entries() {
        let mut value = entry.node.to_json();
        let is_path = info.options.iter().any(|o| o.name.as_str() == entry.key && o.ty == OptionType::Path);
        if let (true, Value::String(text), Origin::File(_)) = (is_path, &value, &entry.node.origin) {
            // An empty path is an optional one left out, not the file's folder.
            if Path::new(text).is_relative() && !text.is_empty() {
                value = Value::from(base.join(text).display().to_string());
            }
        }
        map.insert(entry.key.clone(), value);
    }
    map
}

fn check_kinds(stages: &[Stage], diags: &mut Vec<Diagnostic>) {
    let rules: [(StageKind, usize, usize, &str); 6] = [
        (StageKind::Decoder, 1, 1, "e.g. `frames` or `video`"),
        (StageKind::Flow, 0, 1, "e.g. `flow`"),
        (StageKind::Localizer, 1, 1, "e.g. `motion` or `detector`"),
        (StageKind::Reconstructor, 1, usize::MAX, "e.g. `cae`"),
        (StageKind::Refiner, 0, 1, "e.g. `spr`"),
        (StageKind::Scorer, 1, 1, "e.g. `zscore`"),
    ];
    for (kind, min, max, example) in rules {
        let of_kind: Vec<&Stage> = stages.iter().filter(|s| s.kind() == kind).collect();
        if of_kind.len() < min {
            diags.push(Diagnostic::new(&Origin::Unknown, format!("the pipeline needs a {kind} stage ({example}), and has none")));
        }
        for extra in of_kind.iter().skip(max) {
            diags.push(Diagnostic::new(
                &extra.spec.plugin_origin,
                format!("stage `{}`: a pipeline has at most {max} {kind} stage(s); `{}` is one already", extra.id(), of_kind[0].id()),
            ));
        }
    }
}

fn matches(spec: &TensorSpec, name: &str) -> bool {
    match spec.name.as_str().strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => spec.name.as_str() == name,
    }
}

/// A tensor on offer to later stages: its spec, who makes it, and the
/// plugin library it comes from (`None`: the runtime).
struct Offer<'s> {
    spec: TensorSpec,
    producer: String,
    library: Option<&'s Path>,
}

fn check_contracts(stages: &[Stage], diags: &mut Vec<Diagnostic>) {
    let mut available: Vec<Offer> = Vec::new();
    let by_runtime = |specs: Vec<TensorSpec>, producer: &str| {
        specs.into_iter().map(|spec| Offer { spec, producer: producer.to_string(), library: None }).collect::<Vec<_>>()
    };
    let by_kind = |kind| stages.iter().filter(move |s: &&Stage| s.kind() == kind);
    let has_flow = by_kind(StageKind::Flow).next().is_some();
    let reconstructor_ids: Vec<&str> = by_kind(StageKind::Reconstructor).map(|s| s.id()).collect();
    for kind in StageKind::ALL {
        if kind == StageKind::Reconstructor {
            available.extend(by_runtime(cube_outputs(has_flow), "the cube builder"));
        }
        if kind == StageKind::Refiner {
            available.extend(by_runtime(scoring_inputs(&reconstructor_ids), "the runtime"));
        }
        for stage in by_kind(kind) {
            for input in stage.io.inputs.iter() {
                let candidates: Vec<&Offer> = available.iter().filter(|o| matches(input, o.spec.name.as_str())).collect();
                let fitting = candidates.iter().find(|o| o.spec.dtype == input.dtype && o.spec.rank == input.rank);
                if let Some(offer) = fitting {
                    diags.extend(device_problem(stage, input, offer).map(|m| Diagnostic::new(&stage.spec.plugin_origin, m)));
                    continue;
                }
                let message = match candidates.first() {
                    Some(o) => format!(
                        "stage `{}` ({}) needs input `{}` as {} rank {}, but {} produces it as {} rank {}",
                        stage.id(),
                        stage.spec.plugin,
                        input.name,
                        input.dtype,
                        input.rank,
                        o.producer,
                        o.spec.dtype,
                        o.spec.rank
                    ),
                    None => {
                        let names: Vec<String> =
                            available.iter().map(|o| format!("{}:{}[{}]", o.spec.name, o.spec.dtype, o.spec.rank)).collect();
                        format!(
                            "stage `{}` ({}) needs input `{}` ({} rank {}), which no earlier stage produces (available: {})",
                            stage.id(),
                            stage.spec.plugin,
                            input.name,
                            input.dtype,
                            input.rank,
                            if names.is_empty() { "nothing".into() } else { names.join(", ") }
                        )
                    }
                };
                diags.push(Diagnostic::new(&stage.spec.plugin_origin, message));
            }
            for output in stage.io.outputs.iter().filter(|o| !o.is_host_only() && runtime_reads(kind, o.name.as_str())) {
                diags.push(Diagnostic::new(
                    &stage.spec.plugin_origin,
                    format!(
                        "stage `{}` ({}) puts `{}` on {}, but `vigil run` reads it in host memory (between stages it \
                         holds frames, flow, boxes and cubes on the host); run the stage with that output on the CPU",
                        stage.id(),
                        stage.spec.plugin,
                        output.name,
                        output.devices_text()
                    ),
                ));
            }
            available.extend(stage.io.outputs.iter().map(|spec| Offer {
                spec: spec.clone(),
                producer: format!("stage `{}`", stage.id()),
                library: Some(&stage.library),
            }));
        }
    }
}

/// Whether `vigil run` reads an output of a stage of `kind` called `name`
/// itself (in host memory): the decoder's frames, the flow, the boxes (it
/// cuts cubes from them), and whatever a reconstructor, refiner or scorer
/// returns (errors, weights, scores).
fn runtime_reads(kind: StageKind, name: &str) -> bool {
    match kind {
        StageKind::Decoder | StageKind::Flow | StageKind::Localizer => [names::FRAMES, names::FLOW, names::BOXES].contains(&name),
        StageKind::Reconstructor | StageKind::Refiner | StageKind::Scorer => true,
    }
}

/// Why `stage` cannot read `input` as `offer` hands it over, if it cannot:
/// the offer may live on a device the stage does not read from, or in wgpu
/// buffers of another plugin library (each library has its own wgpu
/// instance, so only the one that made a buffer can use it).
fn device_problem(stage: &Stage, input: &TensorSpec, offer: &Offer) -> Option<String> {
    let who = format!("stage `{}` ({})", stage.id(), stage.spec.plugin);
    if let Some(unread) = offer.spec.devices.iter().find(|d| !input.devices.contains(d)) {
        return Some(format!(
            "{who} reads `{}` on {} only, but {} puts it on {unread}: a device tensor would reach a stage that cannot read it; \
             run the producer on a device the reader takes, or use a reader that takes {unread} tensors",
            input.name,
            input.devices_text(),
            offer.producer
        ));
    }
    let foreign_library = offer.library.filter(|&library| library != stage.library.as_path());
    match (offer.spec.devices.contains(&DeviceKind::Wgpu), foreign_library) {
        (true, Some(library)) => Some(format!(
            "{who} reads `{}` from wgpu buffers, but {} makes them in another plugin library ({}), whose wgpu \
             instance alone can use them; put both stages in one library, or hand the tensor over on the CPU",
            input.name,
            offer.producer,
            library.display()
        )),
        _ => None,
    }
}

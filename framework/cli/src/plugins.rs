//! `vigil plugins`: what is installed, and what one stage takes.

use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use vigil_runtime::registry::{Library, Registry, SearchPath};
use vigil_stage_api::{complete_options, RResult, StageContext, StageInfo, StageIo};

pub fn run(name: Option<&str>, as_json: bool, extra: &[PathBuf], verbose: bool) -> anyhow::Result<ExitCode> {
    let registry = Registry::discover(SearchPath::standard(extra));
    for failure in &registry.failures {
        eprintln!("warning: cannot load plugin library {}", failure.path.display());
        for line in failure.summary.lines() {
            eprintln!("  {line}");
        }
        if verbose && !failure.detail.is_empty() {
            eprintln!("{}", failure.detail);
        }
    }
    match name {
        None if as_json => println!("{}", serde_json::to_string_pretty(&list_json(&registry))?),
        None => print_list(&registry),
        Some(name) => {
            let Some((library, info)) = registry.find(name) else {
                eprintln!("error: {}", registry.explain_missing(name));
                return Ok(ExitCode::FAILURE);
            };
            let io = default_io(library, info);
            if as_json {
                println!("{}", serde_json::to_string_pretty(&stage_json(library, info, io.as_ref()))?);
            } else {
                print_stage(library, info, io.as_ref());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_json(registry: &Registry) -> serde_json::Value {
    let stages: Vec<_> = registry
        .libraries
        .iter()
        .flat_map(|lib| {
            lib.stages.iter().map(move |s| {
                json!({
                    "name": s.name.as_str(), "kind": s.kind.as_str(), "version": s.version.as_str(),
                    "description": s.description.as_str(), "library": lib.name, "path": lib.path,
                })
            })
        })
        .collect();
    let failures: Vec<_> = registry.failures.iter().map(|f| json!({ "path": f.path, "error": f.summary })).collect();
    json!({ "plugins": stages, "failed": failures })
}

fn print_list(registry: &Registry) {
    if registry.libraries.is_empty() {
        let places: Vec<String> = registry.search.entries.iter().map(|p| p.display().to_string()).collect();
        println!("no plugins found (searched: {})", places.join(", "));
        return;
    }
    let rows: Vec<[String; 5]> = registry
        .libraries
        .iter()
        .flat_map(|lib| {
            lib.stages.iter().map(move |s| {
                [s.name.to_string(), s.kind.to_string(), s.version.to_string(), s.description.to_string(), lib.path.display().to_string()]
            })
        })
        .collect();
    let width = |i: usize, title: &str| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(title.len());
    let (w0, w1, w2) = (width(0, "NAME"), width(1, "KIND"), width(2, "VERSION"));
    println!("{:w0$}  {:w1$}  {:w2$}  DESCRIPTION", "NAME", "KIND", "VERSION");
    for r in &rows {
        println!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]);
        println!("{:w0$}  {:w1$}  {:w2$}    {}", "", "", "", r[4]);
    }
}

/// The stage's tensors with default options, when it can be created that way.
fn default_io(library: &Library, info: &StageInfo) -> Option<StageIo> {
    let options = complete_options(&info.options, &serde_json::Map::new()).ok()?;
    let work = std::env::temp_dir().join(format!("vigil-inspect-{}", std::process::id()));
    let context = StageContext { stage_id: info.name.clone(), seed: 0, device: "cpu".into(), work_dir: work.display().to_string().into() };
    let created = (library.module.create)(info.name.as_str().into(), options.to_json().as_str().into(), context);
    let _ = std::fs::remove_dir_all(&work);
    match created {
        RResult::ROk(instance) => Some(instance.io),
        RResult::RErr(_) => None,
    }
}

fn stage_json(library: &Library, info: &StageInfo, io: Option<&StageIo>) -> serde_json::Value {
    let tensors = |list: &[vigil_stage_api::TensorSpec]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|t| {
                let devices: Vec<String> = t.devices.iter().map(ToString::to_string).collect();
                json!({"name": t.name.as_str(), "dtype": t.dtype.to_string(), "rank": t.rank, "devices": devices, "doc": t.doc.as_str()})
            })
            .collect()
    };
    json!({
        "name": info.name.as_str(), "kind": info.kind.as_str(), "version": info.version.as_str(),
        "description": info.description.as_str(), "library": library.name, "library_version": library.version,
        "library_description": library.description, "stage_api": library.api_version, "path": library.path,
        "options": info.options.iter().map(|o| json!({
            "name": o.name.as_str(), "type": o.ty.to_string(),
            "default": o.default_value(), "required": o.is_required(), "doc": o.doc.as_str(),
        })).collect::<Vec<_>>(),
        "inputs": io.map(|io| tensors(&io.inputs)), "outputs": io.map(|io| tensors(&io.outputs)),
    })
}

fn print_stage(library: &Library, info: &StageInfo, io: Option<&StageIo>) {
    println!("{} ({}) {}", info.name, info.kind, info.version);
    println!("  {}", info.description);
    println!();
    println!("Library:  {} {} ({})", library.name, library.version, library.path.display());
    if let Some(description) = &library.description {
        println!("          {description}");
    }
    println!("          built against stage-api {}", library.api_version);
    println!();
    println!("Options:");
    if info.options.is_empty() {
        println!("  (none)");
    }
    let w = info.options.iter().map(|o| o.name.len()).max().unwrap_or(0);
    for option in info.options.iter() {
        let default = if option.is_required() { "required".to_string() } else { format!("default {}", option.default) };
        println!("  {:w$}  {} ({default})", option.name, option.ty);
        println!("  {:w$}    {}", "", option.doc);
    }
    let show = |title: &str, list: &[vigil_stage_api::TensorSpec]| {
        println!();
        println!("{title}:");
        for t in list {
            // Host memory is the rule; only other devices are worth a word.
            let place = if t.is_host_only() { String::new() } else { format!(" on {}", t.devices_text()) };
            println!("  {} {}[rank {}]{place}  {}", t.name, t.dtype, t.rank, t.doc);
        }
    };
    match io {
        Some(io) => {
            show("Inputs (default options)", &io.inputs);
            show("Outputs (default options)", &io.outputs);
        }
        None => println!("\nInputs/outputs depend on required options; see `vigil check`."),
    }
}

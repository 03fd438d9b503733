//! Which decoder reads an input. The stock decoders each read one kind of
//! source (`SourceKind::decoder`): `frames` frame folders, `video` video
//! files and live streams. Either stands in for the other, since both only
//! make RGB frames: a pipeline or model bundle written with one reads the
//! other kind of input with the other. A third-party decoder is never
//! replaced.

use crate::diagnostic::Origin;
use crate::document::Val;
use crate::pipeline::Pipeline;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

pub use vigil_datasets::is_stream;

/// The decoders that stand in for each other.
pub const STOCK_DECODERS: [&str; 2] = ["frames", "video"];

/// The stock decoder every input needs; `None` when no input resolves
/// (reading it reports why). Inputs of both kinds are an error: one call
/// decodes with one plugin.
pub fn decoder_for(inputs: &[PathBuf]) -> Result<Option<String>> {
    let mut wanted: Option<(&'static str, &Path)> = None;
    for input in inputs {
        let kinds: Vec<vigil_datasets::SourceKind> = match vigil_datasets::resolve(input) {
            Ok(sources) => sources.iter().map(|s| s.kind).collect(),
            Err(_) => continue, // reading it names the input and what is wrong with it
        };
        for kind in kinds {
            match wanted {
                Some((plugin, first)) if plugin != kind.decoder() => bail!(
                    "{} needs the `{}` decoder but {} needs `{plugin}`: frame folders and videos (or streams) go in separate calls",
                    input.display(),
                    kind.decoder(),
                    first.display()
                ),
                Some(_) => {}
                None => wanted = Some((kind.decoder(), input)),
            }
        }
    }
    Ok(wanted.map(|(plugin, _)| plugin.to_string()))
}

/// Puts the stock decoder `wanted` in place of the pipeline's when that is
/// the other stock decoder; says so in the log. The options written for the
/// replaced plugin go with it; those of `--set` stay (they were given for
/// this call's input).
pub fn use_decoder(pipeline: &mut Pipeline, wanted: &str) {
    let Some(stage) = pipeline.stages.iter_mut().find(|s| STOCK_DECODERS.contains(&s.plugin.as_str())) else {
        return;
    };
    if stage.plugin != wanted && STOCK_DECODERS.contains(&wanted) {
        tracing::info!("stage `{}`: the input is read with plugin `{wanted}` instead of `{}`", stage.id, stage.plugin);
        stage.plugin = wanted.to_string();
        keep_only_overrides(stage);
    }
}

/// Drops the options a stage's file gave it, keeping those of `--set`.
pub fn keep_only_overrides(stage: &mut crate::pipeline::StageSpec) {
    if let Val::Table(entries) = &mut stage.options.val {
        entries.retain(|e| matches!(e.node.origin, Origin::Override(_)));
    }
}

/// [`use_decoder`] for the pipeline's own `data.test` and `data.extra`.
pub fn follow_data(pipeline: &mut Pipeline) -> Result<()> {
    let inputs: Vec<PathBuf> = pipeline.data.test.iter().chain(&pipeline.data.extra).map(|p| p.path.clone()).collect();
    if let Some(wanted) = decoder_for(&inputs)? {
        use_decoder(pipeline, &wanted);
    }
    Ok(())
}

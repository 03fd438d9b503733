//! Pipeline files: TOML, unknown keys are errors, every stage names its
//! plugin and options. Parsing collects every problem instead of stopping at
//! the first, each pointing at the user's own text.

use crate::diagnostic::{Diagnostic, Origin, Report, Setting};
use crate::document::{self, Node, Val};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// A path from the pipeline: relative paths in the file are relative to the
/// file's folder; relative paths given with `--set` to the working folder.
#[derive(Debug, Clone, PartialEq)]
pub struct PathValue {
    pub path: PathBuf,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// What is scored (and trained on).
    pub test: Option<PathValue>,
    /// Unlabeled videos trained on but not scored (the paper's "merged" setting).
    pub extra: Vec<PathValue>,
    pub labels: Option<PathValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CubeSpec {
    pub context: u32,
    pub size: u32,
    pub h_block: u32,
    pub w_block: u32,
    /// Above this many MiB of cubes, they are memory-mapped from disk.
    pub memory_budget_mb: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportSpec {
    /// How many of the most anomalous frames get a heatmap overlay.
    pub heatmaps: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    pub id: String,
    pub plugin: String,
    /// The `options` table (empty when absent).
    pub options: Node,
    pub origin: Origin,
    pub id_origin: Origin,
    pub plugin_origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub file: PathBuf,
    pub source: String,
    pub name: String,
    pub seed: u64,
    pub device: String,
    pub data: DataSpec,
    pub plugin_paths: Vec<PathValue>,
    pub cubes: CubeSpec,
    pub report: ReportSpec,
    pub stages: Vec<StageSpec>,
    /// The parsed document, for tools that need the raw tree.
    pub root: Node,
    /// Problems with the file's structure (unknown keys, wrong types); `check`
    /// reports them together with the problems it finds in stages.
    pub problems: Vec<Diagnostic>,
}

impl Pipeline {
    /// Reads and overrides a pipeline file. Only unreadable or invalid TOML is
    /// an error here; structural problems are kept in `problems` so that
    /// `check` can report them together with every stage's problems.
    pub fn load(file: &Path, overrides: &[Setting]) -> Result<Pipeline, Report> {
        let source = std::fs::read_to_string(file).map_err(|e| Report {
            file: file.to_path_buf(),
            source: String::new(),
            diagnostics: vec![Diagnostic::new(&Origin::Unknown, format!("cannot read the pipeline file: {e}"))],
        })?;
        Self::read(file, source, overrides)
    }

    /// Like [`Pipeline::read`], but any structural problem is an error.
    pub fn parse(file: &Path, source: String, overrides: &[Setting]) -> Result<Pipeline, Report> {
        let pipeline = Self::read(file, source, overrides)?;
        if pipeline.problems.is_empty() {
            Ok(pipeline)
        } else {
            Err(pipeline.report(pipeline.problems.clone()))
        }
    }

    /// Parses pipeline text, keeping structural problems in `problems`.
    pub fn read(file: &Path, source: String, overrides: &[Setting]) -> Result<Pipeline, Report> {
        let fail = |source: String, diagnostics| Report { file: file.to_path_buf(), source, diagnostics };
        let mut root = match document::parse(&source) {
            Ok(root) => root,
            Err(d) => return Err(fail(source, vec![d])),
        };
        let mut diags = Vec::new();
        for set in overrides {
            if let Err(message) = document::apply_override(&mut root, set) {
                diags.push(Diagnostic::new(&Origin::Override(set.clone()), message));
            }
        }
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut pipeline = read_pipeline(file, &source, &root, &base, &mut diags);
        pipeline.problems = diags;
        Ok(pipeline)
    }

    /// An error report about this file.
    pub fn report(&self, diagnostics: Vec<Diagnostic>) -> Report {
        Report { file: self.file.clone(), source: self.source.clone(), diagnostics }
    }
}

/// Reads one table's keys, remembering which were used so that the rest can
/// be reported as unknown.
pub(crate) struct Fields<'a> {
    pub(crate) node: &'a Node,
    table: &'a str,
    used: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(node: &'a Node, table: &'a str, diags: &mut Vec<Diagnostic>) -> Fields<'a> {
        if !matches!(node.val, Val::Table(_)) {
            diags.push(Diagnostic::new(&node.origin, format!("`{table}` must be a table, found {}", node.type_name())));
        }
        Fields { node, table, used: Vec::new() }
    }

    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'a Node> {
        self.used.push(key);
        self.node.get(key)
    }

    fn wrong(&self, node: &Node, key: &str, expected: &str, diags: &mut Vec<Diagnostic>) {
        diags.push(Diagnostic::new(&node.origin, format!("`{}.{key}` must be {expected}, found {}", self.table, node.type_name())));
    }

    pub(crate) fn string(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<(String, Origin)> {
        let node = self.get(key)?;
        match &node.val {
            Val::Str(s) => Some((s.clone(), node.origin.clone())),
            _ => {
                self.wrong(node, key, "a string", diags);
                None
            }
        }
    }

    /// An integer in `range`; outside it, a diagnostic and `default`.
    fn int(&mut self, key: &'static str, range: RangeInclusive<i64>, default: i64, diags: &mut Vec<Diagnostic>) -> i64 {
        let Some(node) = self.get(key) else { return default };
        match node.val {
            Val::Int(i) if range.contains(&i) => i,
            Val::Int(i) => {
                let bound = if i < *range.start() { format!("at least {}", range.start()) } else { format!("at most {}", range.end()) };
                diags.push(Diagnostic::new(&node.origin, format!("`{}.{key}` must be {bound}, found {i}", self.table)));
                default
            }
            _ => {
                self.wrong(node, key, "an integer", diags);
                default
            }
        }
    }

    pub(crate) fn path(&mut self, key: &'static str, base: &Path, diags: &mut Vec<Diagnostic>) -> Option<PathValue> {
        let node = self.get(key)?;
        path_of(node, &format!("{}.{key}", self.table), base, diags)
    }

    fn paths(&mut self, key: &'static str, base: &Path, diags: &mut Vec<Diagnostic>) -> Vec<PathValue> {
        let Some(node) = self.get(key) else { return Vec::new() };
        match &node.val {
            Val::Array(items) => items.iter().filter_map(|item| path_of(item, &format!("{}.{key}", self.table), base, diags)).collect(),
            // A single path where a list is expected is accepted.
            Val::Str(_) => path_of(node, &format!("{}.{key}", self.table), base, diags).into_iter().collect(),
            _ => {
                self.wrong(node, key, "an array of paths", diags);
                Vec::new()
            }
        }
    }

    /// Reports every key that was not asked for.
    pub(crate) fn finish(self, diags: &mut Vec<Diagnostic>) {
        for entry in self.node.entries() {
            if !self.used.contains(&entry.key.as_str()) {
                diags.push(Diagnostic::new(
                    &entry.key_origin,
                    format!("unknown key `{}` in `{}` (expected one of: {})", entry.key, self.table, self.used.join(", ")),
                ));
            }
        }
    }
}

pub(crate) fn path_of(node: &Node, what: &str, base: &Path, diags: &mut Vec<Diagnostic>) -> Option<PathValue> {
    match &node.val {
        Val::Str(s) if !s.is_empty() => {
            let path = PathBuf::from(s);
            let path = match node.origin {
                Origin::File(_) if path.is_relative() => base.join(path),
                _ => path,
            };
            Some(PathValue { path, origin: node.origin.clone() })
        }
        _ => {
            diags.push(Diagnostic::new(&node.origin, format!("`{what}` must be a non-empty path string, found {}", node.type_name())));
            None
        }
    }
}

/// Frames on each side of a cube's centre frame (a cube has 2 x context + 1).
const MAX_CONTEXT: i64 = 50;
/// Pixels on a cube's side: one 1024-pixel cube of 101 frames is already 300 MB.
const MAX_CUBE_SIZE: i64 = 1024;
/// Bands per axis (one model each).
const MAX_BLOCKS: i64 = 64;
/// Heatmap images written per run.
const MAX_HEATMAPS: i64 = 1000;

const TOP_LEVEL: [&str; 6] = ["pipeline", "data", "plugins", "cubes", "report", "stage"];

fn read_pipeline(file: &Path, source: &str, root: &Node, base: &Path, diags: &mut Vec<Diagnostic>) -> Pipeline {
    let empty = Node::table(Origin::Unknown);
    let table = |key: &str| root.get(key).unwrap_or(&empty);
    for entry in root.entries() {
        if !TOP_LEVEL.contains(&entry.key.as_str()) {
            diags.push(Diagnostic::new(
                &entry.key_origin,
                format!("unknown table `{}` (expected one of: {})", entry.key, TOP_LEVEL.join(", ")),
            ));
        }
    }

    let mut p = Fields::new(table("pipeline"), "pipeline", diags);
    let name = p
        .string("name", diags)
        .map(|(n, _)| n)
        .unwrap_or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    let seed = p.int("seed", 0..=i64::MAX, 0, diags) as u64;
    let device = match p.string("device", diags) {
        Some((d, _)) if d == "cpu" || d == "gpu" || d == "auto" => d,
        Some((d, origin)) => {
            diags.push(Diagnostic::new(&origin, format!("`pipeline.device` must be \"cpu\", \"gpu\" or \"auto\", found \"{d}\"")));
            "cpu".into()
        }
        None => "cpu".into(),
    };
    p.finish(diags);

    let mut d = Fields::new(table("data"), "data", diags);
    let data = DataSpec { test: d.path("test", base, diags), extra: d.paths("extra", base, diags), labels: d.path("labels", base, diags) };
    if data.test.is_none() && d.node.get("test").is_none() {
        diags.push(Diagnostic::new(
            &d.node.origin,
            "`data.test` is required: the videos to score (add it to [data] or pass --set data.test=PATH)",
        ));
    }
    d.finish(diags);

    let mut pl = Fields::new(table("plugins"), "plugins", diags);
    let plugin_paths = pl.paths("paths", base, diags);
    pl.finish(diags);

    let mut c = Fields::new(table("cubes"), "cubes", diags);
    // Upper bounds far above any sensible setting (the paper: context 2,
    // size 32, one band), low enough that nothing allocates past a machine.
    let cubes = CubeSpec {
        context: c.int("context", 0..=MAX_CONTEXT, 2, diags) as u32,
        size: c.int("size", 4..=MAX_CUBE_SIZE, 32, diags) as u32,
        h_block: c.int("h_block", 1..=MAX_BLOCKS, 1, diags) as u32,
        w_block: c.int("w_block", 1..=MAX_BLOCKS, 1, diags) as u32,
        memory_budget_mb: c.int("memory_budget_mb", 1..=i64::MAX, 4096, diags) as u64,
    };
    if let (Some(node), Some(total)) = (c.node.get("memory_budget_mb"), vigil_stage_api::memory::machine_memory()) {
        if cubes.memory_budget_mb.saturating_mul(1 << 20) > total {
            diags.push(Diagnostic::new(
                &node.origin,
                format!(
                    "`cubes.memory_budget_mb` = {} is more than this machine's memory ({}); cubes beyond the budget spill to disk, so a smaller one is safe",
                    cubes.memory_budget_mb,
                    vigil_stage_api::memory::format_bytes(total)
                ),
            ));
        }
    }
    c.finish(diags);

    let mut r = Fields::new(table("report"), "report", diags);
    let report = ReportSpec { heatmaps: r.int("heatmaps", 0..=MAX_HEATMAPS, 6, diags) as u32 };
    r.finish(diags);

    let stages = read_stages(root.get("stage"), diags);
    Pipeline {
        file: file.to_path_buf(),
        source: source.to_string(),
        name,
        seed,
        device,
        data,
        plugin_paths,
        cubes,
        report,
        stages,
        root: root.clone(),
        problems: Vec::new(),
    }
}

fn read_stages(node: Option<&Node>, diags: &mut Vec<Diagnostic>) -> Vec<StageSpec> {
    let Some(node) = node else {
        diags.push(Diagnostic::new(&Origin::Unknown, "the pipeline has no [[stage]] tables"));
        return Vec::new();
    };
    let Val::Array(items) = &node.val else {
        diags.push(Diagnostic::new(&node.origin, "`stage` must be an array of tables: write each as [[stage]]"));
        return Vec::new();
    };
    let mut stages: Vec<StageSpec> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let label = format!("stage[{index}]");
        let mut f = Fields::new(item, &label, diags);
        let id = f.string("id", diags);
        let plugin = f.string("plugin", diags);
        let options = match f.get("options") {
            Some(n) if matches!(n.val, Val::Table(_)) => n.clone(),
            Some(n) => {
                diags.push(Diagnostic::new(&n.origin, format!("`{label}.options` must be a table, found {}", n.type_name())));
                Node::table(n.origin.clone())
            }
            None => Node::table(item.origin.clone()),
        };
        f.finish(diags);
        let (Some((id, id_origin)), Some((plugin, plugin_origin))) = (id, plugin) else {
            diags.push(Diagnostic::new(&item.origin, format!("`{label}` needs both `id` and `plugin`")));
            continue;
        };
        if stages.iter().any(|s| s.id == id) {
            diags.push(Diagnostic::new(&id_origin, format!("duplicate stage id `{id}`: stage ids must be unique")));
            continue;
        }
        stages.push(StageSpec { id, plugin, options, origin: item.origin.clone(), id_origin, plugin_origin });
    }
    stages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str, sets: &[&str]) -> Result<Pipeline, Report> {
        let sets: Vec<Setting> = sets.iter().map(|s| Setting::cli(s)).collect();
        Pipeline::parse(Path::new("/p/ped2.toml"), source.to_string(), &sets)
    }

    const GOOD: &str = r#"
[pipeline]
seed = 3
[data]
test = "frames"
extra = ["train"]
[[stage]]
id = "decode"
plugin = "frames"
[[stage]]
id = "boxes"
plugin = "motion"
options = { min_area = 50 }
"#;

    #[test]
    fn a_valid_file_resolves_paths_against_its_folder() {
        let p = parse(GOOD, &["data.labels=gt.csv"]).unwrap();
        assert_eq!(p.seed, 3);
        assert_eq!(p.name, "ped2");
        assert_eq!(p.data.test.unwrap().path, PathBuf::from("/p/frames"));
        assert_eq!(p.data.extra[0].path, PathBuf::from("/p/train"));
        // paths typed on the command line stay relative to the working folder
        assert_eq!(p.data.labels.unwrap().path, PathBuf::from("gt.csv"));
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[1].options.to_json()["min_area"], 50);
        assert_eq!(p.cubes.context, 2);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let source = "[pipeline]\nseed = \"x\"\ncolour = 1\n[data]\ntest = 5\n[[stage]]\nid = \"a\"\nplugin = \"frames\"\n[[stage]]\nid = \"a\"\nplugin = \"flow\"\n";
        let report = parse(source, &[]).unwrap_err();
        let text = report.render();
        assert!(text.contains("/p/ped2.toml:2:8: error: `pipeline.seed` must be an integer"), "{text}");
        assert!(text.contains("/p/ped2.toml:3:1: error: unknown key `colour` in `pipeline`"), "{text}");
        assert!(text.contains("/p/ped2.toml:5:8: error: `data.test` must be a non-empty path string"), "{text}");
        assert!(text.contains("/p/ped2.toml:10:6: error: duplicate stage id `a`"), "{text}");
        assert_eq!(report.diagnostics.len(), 4, "{text}");
    }

    #[test]
    fn sizes_past_any_machine_are_refused_with_the_key_that_is_too_large() {
        let sets = [
            "cubes.size=1000000000000",
            "cubes.context=5000",
            "cubes.w_block=0",
            "report.heatmaps=100000",
            "cubes.memory_budget_mb=1000000000000",
        ];
        let text = parse(GOOD, &sets).unwrap_err().render();
        assert!(text.contains("`cubes.size` must be at most 1024, found 1000000000000"), "{text}");
        assert!(text.contains("`cubes.context` must be at most 50, found 5000"), "{text}");
        assert!(text.contains("`cubes.w_block` must be at least 1, found 0"), "{text}");
        assert!(text.contains("`report.heatmaps` must be at most 1000, found 100000"), "{text}");
        if vigil_stage_api::memory::machine_memory().is_some() {
            assert!(text.contains("`cubes.memory_budget_mb` = 1000000000000 is more than this machine's memory"), "{text}");
        }
        assert!(text.contains("--set cubes.size"), "a value from the command line is traced to it: {text}");
        assert!(parse(GOOD, &["cubes.size=1024", "cubes.context=50", "cubes.memory_budget_mb=64"]).is_ok());
    }
}

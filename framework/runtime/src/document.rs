//! A TOML document as a tree of values that remember where they came from
//! (a span of the file or a `--set` override), so every later check can
//! point at the user's own text.

use crate::diagnostic::{Diagnostic, Origin, Setting};
use serde_json::Value as Json;
use toml_edit::{Item, Value as TomlValue};

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Dates and times are kept as text; no pipeline key takes one.
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub val: Val,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_origin: Origin,
    pub node: Node,
}

impl Node {
    pub fn table(origin: Origin) -> Node {
        Node { val: Val::Table(Vec::new()), origin }
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.val {
            Val::Table(entries) => entries,
            _ => &[],
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.node)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries().iter().find(|e| e.key == key)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.val {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.val {
            Val::Str(_) => "a string",
            Val::Int(_) => "an integer",
            Val::Float(_) => "a float",
            Val::Bool(_) => "a boolean",
            Val::Datetime(_) => "a date-time",
            Val::Array(_) => "an array",
            Val::Table(_) => "a table",
        }
    }

    /// The value as TOML text (`"x"`, `0.3`, `[1, 2]`, `{ a = 1 }`), as
    /// `--set KEY=VALUE` reads it back.
    pub fn to_toml(&self) -> String {
        match &self.val {
            Val::Str(s) => TomlValue::from(s.as_str()).to_string().trim().to_string(),
            Val::Datetime(s) => s.clone(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => TomlValue::from(*f).to_string().trim().to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Array(items) => format!("[{}]", items.iter().map(Node::to_toml).collect::<Vec<_>>().join(", ")),
            Val::Table(entries) => {
                let pairs: Vec<String> =
                    entries.iter().map(|e| format!("{} = {}", toml_edit::Key::new(e.key.as_str()), e.node.to_toml())).collect();
                format!("{{ {} }}", pairs.join(", "))
            }
        }
    }

    /// The value as JSON (what plugins receive as options).
    pub fn to_json(&self) -> Json {
        match &self.val {
            Val::Str(s) | Val::Datetime(s) => Json::from(s.clone()),
            Val::Int(i) => Json::from(*i),
            Val::Float(f) => Json::from(*f),
            Val::Bool(b) => Json::from(*b),
            Val::Array(items) => Json::Array(items.iter().map(Node::to_json).collect()),
            Val::Table(entries) => Json::Object(entries.iter().map(|e| (e.key.clone(), e.node.to_json())).collect()),
        }
    }
}

/// Parses pipeline text; a syntax error comes back as one diagnostic.
pub fn parse(source: &str) -> Result<Node, Diagnostic> {
    let doc = toml_edit::Document::parse(source.to_string()).map_err(|e| {
        let origin = e.span().map(Origin::File).unwrap_or_default();
        Diagnostic::new(&origin, format!("invalid TOML: {}", e.message().trim()))
    })?;
    Ok(from_table(doc.as_table(), Origin::File(0..0)))
}

fn span_origin(span: Option<std::ops::Range<usize>>) -> Origin {
    span.map(Origin::File).unwrap_or_default()
}

fn from_table(table: &toml_edit::Table, origin: Origin) -> Node {
    let entries = table
        .iter()
        .filter_map(|(key, item)| {
            let key_origin = span_origin(table.key(key).and_then(|k| k.span()));
            from_item(item, &key_origin).map(|node| Entry { key: key.to_string(), key_origin, node })
        })
        .collect();
    Node { val: Val::Table(entries), origin }
}

fn from_item(item: &Item, key_origin: &Origin) -> Option<Node> {
    match item {
        Item::None => None,
        Item::Value(v) => Some(from_value(v)),
        Item::Table(t) => Some(from_table(t, t.span().map(Origin::File).unwrap_or_else(|| key_origin.clone()))),
        Item::ArrayOfTables(a) => {
            let items = a.iter().map(|t| from_table(t, span_origin(t.span()))).collect();
            Some(Node { val: Val::Array(items), origin: key_origin.clone() })
        }
    }
}

fn from_value(value: &TomlValue) -> Node {
    let origin = span_origin(value.span());
    let val = match value {
        TomlValue::String(s) => Val::Str(s.value().clone()),
        TomlValue::Integer(i) => Val::Int(*i.value()),
        TomlValue::Float(f) => Val::Float(*f.value()),
        TomlValue::Boolean(b) => Val::Bool(*b.value()),
        TomlValue::Datetime(d) => Val::Datetime(d.value().to_string()),
        TomlValue::Array(a) => Val::Array(a.iter().map(from_value).collect()),
        TomlValue::InlineTable(t) => Val::Table(
            t.iter()
                .map(|(key, v)| Entry {
                    key: key.to_string(),
                    key_origin: span_origin(t.key(key).and_then(|k| k.span())),
                    node: from_value(v),
                })
                .collect(),
        ),
    };
    Node { val, origin }
}

/// Applies `--set dotted.path=value`. The value is read as a TOML value when
/// it parses as one (`5`, `true`, `[1, 2]`, `"x"`), else as a plain string.
/// In a path, an array of tables (`stage`) is indexed by the `id` of its
/// tables or by position: `stage.boxes.options.score_threshold=0.3`.
pub fn apply_override(root: &mut Node, setting: &Setting) -> Result<(), String> {
    let assignment = setting.assignment.as_str();
    let (path, raw) = assignment.split_once('=').ok_or_else(|| format!("`{assignment}` is not of the form dotted.path=value"))?;
    let origin = Origin::Override(setting.clone());
    let segments: Vec<&str> = path.trim().split('.').map(str::trim).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!("`{path}` is not a dotted path of keys"));
    }
    let mut value = match toml_edit::Document::parse(format!("v = {raw}")) {
        Ok(doc) => match doc.get("v") {
            Some(Item::Value(v)) => from_value(v),
            _ => Node { val: Val::Str(raw.to_string()), origin: origin.clone() },
        },
        Err(_) => Node { val: Val::Str(raw.to_string()), origin: origin.clone() },
    };
    set_origin(&mut value, &origin);
    let mut node = root;
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let type_name = node.type_name();
        node = match &mut node.val {
            Val::Table(entries) => {
                let index = match entries.iter().position(|e| e.key == *segment) {
                    Some(index) => index,
                    None => {
                        entries.push(Entry { key: segment.to_string(), key_origin: origin.clone(), node: Node::table(origin.clone()) });
                        entries.len() - 1
                    }
                };
                &mut entries[index].node
            }
            Val::Array(items) => {
                let found = items
                    .iter()
                    .position(|t| t.get("id").and_then(Node::as_str) == Some(segment))
                    .or_else(|| segment.parse::<usize>().ok().filter(|&n| n < items.len()));
                let index = found.ok_or_else(|| format!("`{}` has no element with id or index `{segment}`", segments[..i].join(".")))?;
                &mut items[index]
            }
            _ => {
                return Err(format!("`{}` is {type_name}, not a table", segments[..i].join(".")));
            }
        };
        if last {
            *node = value;
            return Ok(());
        }
    }
    Ok(())
}

fn set_origin(node: &mut Node, origin: &Origin) {
    node.origin = origin.clone();
    match &mut node.val {
        Val::Array(items) => items.iter_mut().for_each(|n| set_origin(n, origin)),
        Val::Table(entries) => entries.iter_mut().for_each(|e| {
            e.key_origin = origin.clone();
            set_origin(&mut e.node, origin)
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = r#"
[data]
test = "videos"

[[stage]]
id = "boxes"
plugin = "detector"
options = { score_threshold = 0.2 }
"#;

    #[test]
    fn values_keep_their_spans() {
        let root = parse(SOURCE).unwrap();
        let test = root.get("data").unwrap().get("test").unwrap();
        let Origin::File(span) = &test.origin else { panic!("no span") };
        assert_eq!(&SOURCE[span.clone()], "\"videos\"");
        let stage = &match &root.get("stage").unwrap().val {
            Val::Array(items) => items.clone(),
            _ => panic!(),
        }[0];
        let key = stage.get("options").unwrap().entry("score_threshold").unwrap();
        let Origin::File(span) = &key.key_origin else { panic!("no key span") };
        assert_eq!(&SOURCE[span.clone()], "score_threshold");
    }

    #[test]
    fn overrides_address_stages_by_id_and_create_tables() {
        let mut root = parse(SOURCE).unwrap();
        apply_override(&mut root, &Setting::cli("data.test=/videos")).unwrap();
        apply_override(&mut root, &Setting::cli("stage.boxes.options.score_threshold=0.5")).unwrap();
        apply_override(&mut root, &Setting::cli("stage.0.options.classes=[0, 1]")).unwrap();
        apply_override(&mut root, &Setting::cli("report.heatmaps=3")).unwrap();
        let json = root.to_json();
        assert_eq!(json["data"]["test"], "/videos");
        assert_eq!(json["stage"][0]["options"]["score_threshold"], 0.5);
        assert_eq!(json["stage"][0]["options"]["classes"], serde_json::json!([0, 1]));
        assert_eq!(json["report"]["heatmaps"], 3);
        assert_eq!(root.get("data").unwrap().get("test").unwrap().origin, Origin::Override(Setting::cli("data.test=/videos")));
        assert!(apply_override(&mut root, &Setting::cli("stage.nope.options.x=1")).unwrap_err().contains("no element with id"));
        assert!(apply_override(&mut root, &Setting::cli("data.test.deeper=1")).unwrap_err().contains("not a table"));
        assert!(apply_override(&mut root, &Setting::cli("novalue")).is_err());
    }

    #[test]
    fn values_written_as_toml_read_back_the_same() {
        let root = parse(r#"v = { s = "a \"b\" c", i = -3, f = 0.5, b = true, a = [1, 2.5], "dotted.key" = { x = 1 } }"#).unwrap();
        let value = root.get("v").unwrap();
        let mut again = parse("v = 0").unwrap();
        apply_override(&mut again, &Setting::cli(&format!("v={}", value.to_toml()))).unwrap();
        assert_eq!(again.get("v").unwrap().to_json(), value.to_json());
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        let err = parse("[data]\ntest = \n").unwrap_err();
        assert!(matches!(err.origin, Origin::File(_)), "{err:?}");
        assert!(err.message.starts_with("invalid TOML"));
    }
}

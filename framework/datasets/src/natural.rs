//! Natural order for file names: digit runs compare as numbers, so
//! `2.jpg < 10.jpg` and `Test2 < Test10`.

use std::cmp::Ordering;

/// A name split into text and number tokens, for comparing and matching.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    Number(u128, usize),
    Text(String),
}

fn tokens(name: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = name.chars().peekable();
    while let Some(&c) = chars.peek() {
        let digits = c.is_ascii_digit();
        let mut run = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() != digits {
                break;
            }
            run.push(c);
            chars.next();
        }
        out.push(match run.parse::<u128>() {
            Ok(n) if digits => Token::Number(n, run.len()),
            _ => Token::Text(run.to_lowercase()),
        });
    }
    out
}

/// Compares two names in natural order; ties of equal value (`01` vs `1`)
/// fall back to plain comparison so the order is total.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let value = |t: &Token| match t {
        Token::Number(n, _) => (0u8, *n, String::new()),
        Token::Text(s) => (1u8, 0, s.clone()),
    };
    let (ta, tb) = (tokens(a), tokens(b));
    ta.iter().map(value).cmp(tb.iter().map(value)).then_with(|| a.cmp(b))
}

/// A key under which names that mean the same video match: case and
/// leading zeros do not matter (`08.avi`, `8_label.mat` and `Test008_gt`
/// all give the key of `8`). Strips the extension, a `_label`/`_gt` suffix
/// and a `Test`/`Train` prefix.
pub fn video_key(name: &str) -> String {
    let stem = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric()) => stem,
        _ => name,
    };
    let lower = stem.to_lowercase();
    let mut core = lower.as_str();
    for suffix in ["_label", "_gt", "_mask"] {
        core = core.strip_suffix(suffix).unwrap_or(core);
    }
    for prefix in ["test", "train"] {
        if let Some(rest) = core.strip_prefix(prefix) {
            if rest.starts_with(|c: char| c.is_ascii_digit()) {
                core = rest;
            }
        }
    }
    tokens(core)
        .into_iter()
        .map(|t| match t {
            Token::Number(n, _) => n.to_string(),
            Token::Text(s) => s,
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// Sorts paths by file name in natural order.
pub fn sort_paths(paths: &mut [std::path::PathBuf]) {
    paths.sort_by(|a, b| natural_cmp(&file_name(a), &file_name(b)));
}

pub(crate) fn file_name(path: &std::path::Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value() {
        let mut names = vec!["10.jpg", "2.jpg", "1.jpg", "Test10", "Test2", "b", "A", "001.jpg", "000.jpg"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["000.jpg", "001.jpg", "1.jpg", "2.jpg", "10.jpg", "A", "b", "Test2", "Test10"]);
    }

    #[test]
    fn video_keys_ignore_padding_suffixes_and_extensions() {
        assert_eq!(video_key("08.avi"), video_key("8_label.mat"));
        assert_eq!(video_key("Test001"), video_key("01"));
        assert_eq!(video_key("Test001_gt"), video_key("Test001"));
        assert_eq!(video_key("01_0014.npy"), video_key("01_0014"));
        assert_ne!(video_key("01_0014"), video_key("02_0014"));
        assert_ne!(video_key("01_0014"), video_key("14"));
    }
}

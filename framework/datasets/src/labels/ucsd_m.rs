//! UCSD's `UCSDped1.m` / `UCSDped2.m`: one line per test video,
//! `TestVideoFile{end+1}.gt_frame = [61:180];`, 1-based inclusive ranges,
//! possibly several (`[5:90, 140:200]`).

use super::FrameTruth;
use crate::error::{io, Result};
use std::ops::Range;
use std::path::Path;

pub(super) fn read(path: &Path) -> Result<Vec<FrameTruth>> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    parse(&text).map_err(|e| crate::Error::Invalid(format!("{}: {e}", path.display())))
}

fn parse(text: &str) -> Result<Vec<FrameTruth>, String> {
    let mut videos: Vec<Option<FrameTruth>> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('%').next().unwrap_or("").trim();
        if !line.contains("gt_frame") {
            continue;
        }
        let at = |what: &str| format!("line {}: {what} in `{line}`", n + 1);
        let index_text = line
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(inside, _)| inside.replace(' ', ""))
            .ok_or_else(|| at("no {index}"))?;
        let index = if index_text == "end+1" {
            videos.len()
        } else {
            match index_text.parse::<usize>() {
                Ok(i) if i >= 1 => i - 1,
                _ => return Err(at("bad video index")),
            }
        };
        let inside =
            line.split_once('[').and_then(|(_, rest)| rest.split_once(']')).map(|(inside, _)| inside).ok_or_else(|| at("no [ranges]"))?;
        let ranges = inside
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(parse_range)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| at(&e))?;
        if videos.len() <= index {
            videos.resize(index + 1, None);
        }
        videos[index] = Some(FrameTruth::Ranges(ranges));
    }
    if videos.is_empty() {
        return Err("no `TestVideoFile{...}.gt_frame = [...]` lines".into());
    }
    videos.into_iter().enumerate().map(|(i, v)| v.ok_or_else(|| format!("no gt_frame line for test video {}", i + 1))).collect()
}

/// `61:180` (1-based, inclusive) or a single frame `61`, as 0-based half-open.
fn parse_range(token: &str) -> Result<Range<usize>, String> {
    let number = |s: &str| s.trim().parse::<usize>().ok().filter(|&n| n >= 1);
    let (start, end) = match token.split_once(':') {
        Some((a, b)) => (number(a), number(b)),
        None => (number(token), number(token)),
    };
    match (start, end) {
        (Some(s), Some(e)) if s <= e => Ok(s - 1..e),
        _ => Err(format!("bad frame range `{token}` (expected START:END, 1-based)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_or_several_ranges_per_line() {
        let text = "TestVideoFile = {};\n% comment gt_frame\nTestVideoFile{end+1}.gt_frame = [61:180];\n\
                    TestVideoFile{end+1}.gt_frame = [5:90, 140:200];\nTestVideoFile{end+1}.gt_frame = [1:10 20:20];\n";
        let v = parse(text).unwrap();
        assert_eq!(v[0], FrameTruth::Ranges(vec![Range { start: 60, end: 180 }]));
        assert_eq!(v[1], FrameTruth::Ranges(vec![4..90, 139..200]));
        assert_eq!(v[2], FrameTruth::Ranges(vec![0..10, 19..20]));
    }

    #[test]
    fn reports_the_bad_line() {
        let err = parse("TestVideoFile{end+1}.gt_frame = [61:180];\nTestVideoFile{end+1}.gt_frame = [90:61];").unwrap_err();
        assert!(err.contains("line 2") && err.contains("90:61"), "{err}");
        assert!(parse("nothing here").unwrap_err().contains("no `TestVideoFile"));
    }
}

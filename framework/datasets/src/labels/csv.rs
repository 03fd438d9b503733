//! A plain CSV `video,frame,label`: one row per frame, 0-based frames,
//! label 0/1 (or false/true); `video` is the video's name (`01`, `01.avi`).

use super::{FrameTruth, Named};
use crate::error::{io, Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub(super) fn read(path: &Path) -> Result<Vec<Named>> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    parse(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

fn parse(text: &str) -> Result<Vec<Named>, String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<String> = match lines.next() {
        Some((_, h)) => h.split(',').map(|c| c.trim().to_lowercase()).collect(),
        None => return Err("empty file (expected a `video,frame,label` header)".into()),
    };
    if header != ["video", "frame", "label"] {
        return Err(format!("header is `{}`, expected `video,frame,label`", header.join(",")));
    }
    let mut order: Vec<String> = Vec::new();
    let mut videos: BTreeMap<String, BTreeMap<usize, bool>> = BTreeMap::new();
    for (n, line) in lines {
        let at = |what: String| format!("line {}: {what}", n + 1);
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let [video, frame, label] = cells.as_slice() else {
            return Err(at(format!("{} fields, expected 3", cells.len())));
        };
        let frame: usize = frame.parse().map_err(|_| at(format!("frame `{frame}` is not a frame number")))?;
        let label = match label.to_lowercase().as_str() {
            "0" | "false" => false,
            "1" | "true" => true,
            other => return Err(at(format!("label `{other}` is not 0 or 1"))),
        };
        let frames = videos.entry(video.to_string()).or_insert_with(|| {
            order.push(video.to_string());
            BTreeMap::new()
        });
        if frames.insert(frame, label).is_some() {
            return Err(at(format!("video {video} frame {frame} is listed twice")));
        }
    }
    order
        .into_iter()
        .map(|name| {
            let frames = videos.remove(&name).unwrap_or_default();
            if let Some(gap) = (0..frames.len()).find(|f| !frames.contains_key(f)) {
                return Err(format!("video {name}: frame {gap} is missing (frames must run 0..N-1)"));
            }
            Ok(Named { name, frames: FrameTruth::PerFrame(frames.into_values().collect()), masks: None })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_in_any_order() {
        let v = parse("video,frame,label\n01,1,1\n01,0,0\n02,0,true\n").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].name.as_str(), &v[0].frames), ("01", &FrameTruth::PerFrame(vec![false, true])));
        assert_eq!(v[1].frames, FrameTruth::PerFrame(vec![true]));
    }

    #[test]
    fn reports_bad_rows() {
        assert!(parse("v,f,l\n").unwrap_err().contains("header"));
        assert!(parse("video,frame,label\n01,0,2\n").unwrap_err().contains("line 2: label `2`"));
        assert!(parse("video,frame,label\n01,0,1\n01,0,1\n").unwrap_err().contains("listed twice"));
        assert!(parse("video,frame,label\n01,0,1\n01,2,1\n").unwrap_err().contains("frame 1 is missing"));
    }
}

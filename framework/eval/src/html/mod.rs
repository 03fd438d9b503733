//! `report.html`: one self-contained page (no network: styles, script,
//! data and frames are all inline) that `vigil run` and `vigil score` write
//! beside their other outputs. It shows the metrics when labels exist, the
//! ROC curve, a score timeline per video with its events and labelled
//! frames, and the top events with their peak frame, boxes and scores.
//!
//! Tables are plain HTML; the plots are drawn by the page's script
//! (`report.js`) from JSON embedded in the page, and the script records on
//! `<body>` what it drew, which the end-to-end test reads back.

pub mod gallery;
pub mod timeline;

pub use gallery::{Gallery, Snapshot, SNAPSHOT_WIDTH};
pub use timeline::Timeline;

use crate::{EvalError, Metrics, RocCurve};
use serde::Serialize;
use serde_json::json;
use std::fmt::Write;
use std::path::Path;

/// ROC points kept for the page; longer curves are thinned evenly.
const MAX_ROC_POINTS: usize = 2000;

/// The ROC curve as drawn.
#[derive(Clone, Debug, Serialize)]
pub struct RocPlot {
    pub fpr: Vec<f32>,
    pub tpr: Vec<f32>,
    pub auroc: f64,
}

impl RocPlot {
    pub fn new(curve: &RocCurve, auroc: f64) -> RocPlot {
        let n = curve.fpr.len();
        let step = n.div_ceil(MAX_ROC_POINTS).max(1);
        let keep: Vec<usize> = (0..n).filter(|i| i % step == 0 || i + 1 == n).collect();
        RocPlot {
            fpr: keep.iter().map(|&i| curve.fpr[i] as f32).collect(),
            tpr: keep.iter().map(|&i| curve.tpr[i] as f32).collect(),
            auroc,
        }
    }
}

/// Everything `report.html` shows.
pub struct HtmlReport {
    /// The pipeline's name.
    pub title: String,
    /// What wrote the page, e.g. "vigil run" or "vigil score".
    pub command: String,
    /// Rows of the summary table: label, value.
    pub facts: Vec<(String, String)>,
    pub metrics: Option<Metrics>,
    pub roc: Option<RocPlot>,
    pub threshold: f32,
    /// Where the threshold comes from, in words.
    pub threshold_rule: String,
    pub timelines: Vec<Timeline>,
    pub gallery: Gallery,
    /// False while a live input is still being scored (the page is rewritten as it goes).
    pub complete: bool,
}

/// Writes the page atomically.
pub fn write_html(path: impl AsRef<Path>, report: &HtmlReport) -> Result<(), EvalError> {
    let path = path.as_ref();
    let page = render(report)?;
    crate::write_atomic(path, page.as_bytes()).map_err(|source| EvalError::Write { path: path.to_path_buf(), source })
}

/// The page's text.
pub fn render(report: &HtmlReport) -> Result<String, EvalError> {
    let data = json!({
        "threshold": report.threshold,
        "roc": report.roc,
        "timelines": report.timelines,
        "snapshots": report.gallery.snapshots.iter().map(|s| json!({
            "width": s.width, "height": s.height, "boxes": s.event.boxes,
        })).collect::<Vec<_>>(),
    });
    let data = serde_json::to_string(&data).map_err(|e| EvalError::invalid(format!("report.html data: {e}")))?;
    // Inside <script>, only "</" can end the element early; "<\/" is the same JSON string.
    let data = data.replace("</", "<\\/");
    let mut page = String::with_capacity(64 * 1024 + report.gallery.snapshots.iter().map(|s| s.image.len()).sum::<usize>());
    let title = escape(&report.title);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}: {}</title>\n<style>\n{}</style>\n</head>\n<body data-rendered=\"no\">\n",
        escape(&report.command),
        include_str!("report.css")
    );
    let status = if report.complete { "" } else { " (in progress: this page is rewritten as scoring goes on)" };
    let _ = write!(
        page,
        "<header>\n<h1>{title}</h1>\n<p class=\"sub\">Written by <code>{}</code>{status}.</p>\n</header>\n",
        escape(&report.command)
    );
    page.push_str("<noscript><p class=\"error\">The plots on this page are drawn by its script; scores.csv and events.jsonl hold the same data.</p></noscript>\n");
    summary(&mut page, report);
    metrics(&mut page, report);
    if report.roc.is_some() {
        page.push_str("<section id=\"roc\">\n<h2>Frame-level ROC</h2>\n<canvas class=\"plot\" id=\"roc-canvas\"></canvas>\n</section>\n");
    }
    let labelled = if report.metrics.is_some() {
        "<span class=\"swatch\" style=\"background:rgba(217,48,37,0.25)\"></span>labelled anomalous"
    } else {
        ""
    };
    let _ = write!(
        page,
        "<section id=\"timelines\">\n<h2>Score over time</h2>\n<p class=\"legend\"><span class=\"swatch\" style=\"background:var(--score)\"></span>frame score\
         <span class=\"swatch\" style=\"background:rgba(232,113,10,0.45)\"></span>event (above the threshold {:.3}, dashed){labelled}</p>\n\
         <div id=\"timeline-list\"></div>\n</section>\n",
        report.threshold
    );
    events(&mut page, report);
    let _ = write!(
        page,
        "<script type=\"application/json\" id=\"vigil-data\">{data}</script>\n<script>\n{}</script>\n</body>\n</html>\n",
        include_str!("report.js")
    );
    Ok(page)
}

fn summary(page: &mut String, report: &HtmlReport) {
    page.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"facts\">\n");
    for (label, value) in &report.facts {
        let _ = writeln!(page, "<tr><th>{}</th><td>{}</td></tr>", escape(label), escape(value));
    }
    let _ = writeln!(page, "<tr><th>Event threshold</th><td>{:.4} ({})</td></tr>", report.threshold, escape(&report.threshold_rule));
    page.push_str("</table>\n</section>\n");
}

fn metrics(page: &mut String, report: &HtmlReport) {
    page.push_str("<section id=\"metrics\">\n<h2>Accuracy</h2>\n");
    let Some(m) = &report.metrics else {
        page.push_str("<p class=\"note\">No labels were given, so there are no accuracy figures.</p>\n</section>\n");
        return;
    };
    let figure = |v: Option<f64>| v.map_or("not defined".to_string(), |v| format!("{v:.4}"));
    let rows = [
        ("Frame AUROC (all frames pooled)", figure(m.auroc)),
        ("Frame AUROC, mean over videos", format!("{} ({} videos)", figure(m.auroc_video_mean), m.videos_in_mean)),
        ("Equal error rate", figure(m.eer)),
        ("Average precision", figure(m.pr_auc)),
        ("Pixel AUROC", m.pixel_auroc.map_or("no masks".to_string(), |v| format!("{v:.4}"))),
        ("Frames (labelled anomalous)", format!("{} ({})", m.frames, m.anomalous_frames)),
    ];
    page.push_str("<table class=\"metrics\">\n");
    for (label, value) in rows {
        let _ = writeln!(page, "<tr><th>{label}</th><td class=\"num\">{}</td></tr>", escape(&value));
    }
    page.push_str("</table>\n");
    if let Some(note) = &m.note {
        let _ = writeln!(page, "<p class=\"note\">{}</p>", escape(note));
    }
    page.push_str("</section>\n");
}

fn events(page: &mut String, report: &HtmlReport) {
    let g = &report.gallery;
    page.push_str("<section id=\"events\">\n<h2>Events</h2>\n");
    if g.total == 0 {
        page.push_str("<p class=\"note\">No frame scored above the threshold.</p>\n</section>\n");
        return;
    }
    let _ = writeln!(
        page,
        "<p class=\"note\">{} above the threshold. The table lists the {} with the highest peak score, and the first {} \
         are shown at their peak frame, the frame's highest-scoring box in red. events.jsonl holds every event.</p>",
        crate::count(g.total, "event", "events"),
        g.events.len(),
        g.snapshots.len()
    );
    page.push_str(
        "<table class=\"events\">\n<tr><th>#</th><th>Video</th><th>Frames</th><th>Peak frame</th><th>Peak score</th><th>Boxes</th></tr>\n",
    );
    for (rank, e) in g.events.iter().enumerate() {
        let _ = writeln!(
            page,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}-{} ({})</td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{}</td></tr>",
            rank + 1,
            escape(&e.video),
            e.start,
            e.end,
            e.frames(),
            e.peak_frame,
            e.peak_score,
            e.boxes.len()
        );
    }
    page.push_str("</table>\n<div class=\"snapshots\">\n");
    for (i, s) in g.snapshots.iter().enumerate() {
        let e = &s.event;
        let _ = writeln!(
            page,
            "<figure><div class=\"frame\"><img src=\"{}\" alt=\"video {} frame {}\"><canvas class=\"boxes\" data-snapshot=\"{i}\"></canvas></div>\
             <figcaption>{}. {} frame {}: score {:.3}; event frames {}-{}</figcaption></figure>",
            s.image,
            escape(&e.video),
            e.peak_frame,
            i + 1,
            escape(&e.video),
            e.peak_frame,
            e.peak_score,
            e.start,
            e.end
        );
    }
    page.push_str("</div>\n</section>\n");
}

/// Text as HTML (element content and quoted attributes).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_events::{Event, EventBox};

    fn report() -> HtmlReport {
        let mut gallery = Gallery::new(10, 2);
        let pixels = vec![90u8; 16 * 8 * 3];
        let boxes = vec![EventBox { x1: 1.0, y1: 1.0, x2: 6.0, y2: 5.0, score: 3.0 }];
        let event = Event { video: "</script><b>".into(), start: 2, end: 4, peak_frame: 3, peak_score: 3.0, threshold: 1.0, boxes };
        gallery.add(event, Some(crate::RgbFrame { width: 16, height: 8, pixels: &pixels })).unwrap();
        let mut timeline = Timeline::of_scores("</script><b>", &[0.5, 2.0, 3.0, 2.5, 0.2], Some(&[false, true, true, true, false]));
        timeline.mark_event(2, 4, 3);
        HtmlReport {
            title: "scene & co".into(),
            command: "vigil score".into(),
            facts: vec![("Model".into(), "/m".into())],
            metrics: None,
            roc: None,
            threshold: 1.0,
            threshold_rule: "given".into(),
            timelines: vec![timeline],
            gallery,
            complete: true,
        }
    }

    #[test]
    fn user_text_cannot_break_out_of_the_page() {
        let page = render(&report()).unwrap();
        assert!(page.contains("scene &amp; co") && page.contains("&lt;/script&gt;&lt;b&gt;"));
        // The only closing script tags are the page's own two.
        assert_eq!(page.matches("</script>").count(), 2, "{page}");
        let json = page.split("id=\"vigil-data\">").nth(1).unwrap().split("</script>").next().unwrap();
        let data: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(data["timelines"][0]["video"], "</script><b>");
        assert_eq!(data["snapshots"][0]["boxes"][0]["score"], 3.0);
    }

    #[test]
    fn the_page_is_self_contained() {
        let page = render(&report()).unwrap();
        for remote in ["http://", "https://", "src=\"/", "@import"] {
            assert!(!page.contains(remote), "the page refers to {remote}");
        }
        assert!(page.contains("<img src=\"data:image/jpeg;base64,"));
        assert!(page.contains("No labels were given"));
    }
}

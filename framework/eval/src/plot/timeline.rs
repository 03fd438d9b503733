//! One video's score timeline with its ground-truth anomalous frames
//! shaded.

use super::*;

pub const TIMELINE_SIZE: (u32, u32) = (1280, 420);

/// Fill colour of ground-truth anomalous ranges (opaque, so it can be
/// found in the image).
pub const ANOMALY_SHADE: RGBColor = RGBColor(250, 208, 208);

/// Runs of consecutive true labels as inclusive (first, last) frames.
pub fn anomalous_ranges(labels: &[bool]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut start = None;
    for (i, &l) in labels.iter().chain([&false]).enumerate() {
        match (l, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                ranges.push((s, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    ranges
}

/// Draws `scores` (one per frame) against the frame number, shading the
/// frames whose label is true. Returns where the data area is.
pub fn plot_timeline(path: impl AsRef<Path>, title: &str, scores: &[f32], labels: Option<&[bool]>) -> Result<PlotArea, EvalError> {
    let path = path.as_ref();
    let what = path.display().to_string();
    if scores.is_empty() {
        return Err(EvalError::invalid(format!("{what}: a timeline needs at least one score")));
    }
    if let Some(l) = labels.filter(|l| l.len() != scores.len()) {
        return Err(EvalError::invalid(format!("{what}: {} scores but {} labels", scores.len(), l.len())));
    }
    let finite = scores.iter().copied().filter(|s| s.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(s as f64), hi.max(s as f64)));
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    };
    // Room above the curve keeps the legend off the data.
    let y_range = (lo - 0.05 * (hi - lo))..(hi + 0.3 * (hi - lo));
    let x_range = -0.5..(scores.len() as f64 - 0.5);
    let err = plot_error(&what);
    render(path, TIMELINE_SIZE, None, |root| {
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(title, bold(TITLE_SIZE))
            .margin(20)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range.clone(), y_range.clone())
            .map_err(&err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_desc("Frame")
            .y_desc("Anomaly score")
            .axis_desc_style(font(LABEL_SIZE))
            .label_style(font(TICK_SIZE))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()
            .map_err(&err)?;
        let ranges = labels.map(anomalous_ranges).unwrap_or_default();
        if labels.is_some() {
            let shades = ranges.iter().map(|&(first, last)| {
                Rectangle::new([(first as f64 - 0.5, y_range.start), (last as f64 + 0.5, y_range.end)], ANOMALY_SHADE.filled())
            });
            chart
                .draw_series(shades)
                .map_err(&err)?
                .label("Ground-truth anomaly")
                .legend(|(x, y)| Rectangle::new([(x, y - 7), (x + 24, y + 7)], ANOMALY_SHADE.filled()));
        }
        let points = scores.iter().enumerate().map(|(i, &s)| (i as f64, s as f64));
        chart
            .draw_series(LineSeries::new(points, CURVE.stroke_width(2)))
            .map_err(&err)?
            .label("Frame score")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], CURVE.stroke_width(3)));
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight, 12, &err)?;
        let (pixels_x, pixels_y) = chart.plotting_area().get_pixel_range();
        Ok(PlotArea { pixels_x, pixels_y, x_range, y_range })
    })
}

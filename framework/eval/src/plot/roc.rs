//! ROC curve plot: the curve with its AUROC in the legend, the chance
//! diagonal and the equal-error point.

use super::*;
use crate::curve::RocCurve;

pub const ROC_SIZE: (u32, u32) = (860, 800);

/// Draws `curve` with AUROC `auroc` (a fraction) to a PNG at `path`.
pub fn plot_roc(path: impl AsRef<Path>, title: &str, curve: &RocCurve, auroc: f64) -> Result<PlotArea, EvalError> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let err = plot_error(&what);
    render(path, ROC_SIZE, None, |root| {
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(title, bold(TITLE_SIZE))
            .margin(24)
            .x_label_area_size(60)
            .y_label_area_size(76)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .x_desc("False positive rate")
            .y_desc("True positive rate")
            .axis_desc_style(font(LABEL_SIZE))
            .label_style(font(TICK_SIZE))
            .x_labels(11)
            .y_labels(11)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(DashedLineSeries::new([(0.0, 0.0), (1.0, 1.0)], 8, 6, MUTED.stroke_width(2)))
            .map_err(&err)?
            .label("Chance (AUROC = 50%)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], MUTED.stroke_width(2)));
        let points: Vec<(f64, f64)> = curve.fpr.iter().copied().zip(curve.tpr.iter().copied()).collect();
        chart
            .draw_series(LineSeries::new(points, CURVE.stroke_width(3)))
            .map_err(&err)?
            .label(format!("ROC (AUROC = {:.2}%)", auroc * 100.0))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], CURVE.stroke_width(3)));
        let eer = curve.eer();
        chart
            .draw_series([Circle::new((eer, 1.0 - eer), 7, ACCENT.filled())])
            .map_err(&err)?
            .label(format!("Equal error rate = {:.2}%", eer * 100.0))
            .legend(|(x, y)| Circle::new((x + 12, y), 6, ACCENT.filled()));
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight, 16, &err)?;
        let (pixels_x, pixels_y) = chart.plotting_area().get_pixel_range();
        Ok(PlotArea { pixels_x, pixels_y, x_range: 0.0..1.0, y_range: 0.0..1.0 })
    })
}

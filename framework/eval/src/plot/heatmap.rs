//! Heat-map overlay of one frame: its box-score map in colour, blended over
//! the RGB frame, with a colour bar giving the score scale.

use super::colormap::turbo;
use super::*;
use crate::pixel::ScoreMap;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// An RGB frame, u8 row-major (height x width x 3).
#[derive(Clone, Copy, Debug)]
pub struct RgbFrame<'a> {
    pub width: u32,
    pub height: u32,
    pub pixels: &'a [u8],
}

/// Where the (scaled) frame was drawn: top-left corner and integer scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeatmapLayout {
    pub origin: (u32, u32),
    pub scale: u32,
    pub size: (u32, u32),
}

/// Weight of the heat colour over the frame where a box painted.
pub const OVERLAY_ALPHA: f32 = 0.55;
/// Frames are enlarged (nearest neighbour) to at least this width.
const MIN_SHOWN_WIDTH: u32 = 640;
const MARGIN: u32 = 20;
const TITLE_BAND: u32 = 56;
const BAR_GAP: u32 = 24;
const BAR_WIDTH: u32 = 26;
const BAR_LABELS: u32 = 110;

/// The colour a painted pixel gets: the heat colour of its score blended
/// over the frame's pixel.
pub fn blend(frame: [u8; 3], heat: [u8; 3]) -> [u8; 3] {
    [0, 1, 2].map(|i| ((1.0 - OVERLAY_ALPHA) * frame[i] as f32 + OVERLAY_ALPHA * heat[i] as f32).round() as u8)
}

fn layout(frame: &RgbFrame<'_>) -> HeatmapLayout {
    let scale = MIN_SHOWN_WIDTH.div_ceil(frame.width.max(1)).max(1);
    let (w, h) = (frame.width * scale, frame.height * scale);
    HeatmapLayout { origin: (MARGIN, TITLE_BAND), scale, size: (MARGIN + w + BAR_GAP + BAR_WIDTH + BAR_LABELS, TITLE_BAND + h + MARGIN) }
}

/// The background image: white, with the enlarged, score-tinted frame.
fn composite(frame: &RgbFrame<'_>, map: &ScoreMap, range: (f32, f32), at: &HeatmapLayout) -> Vec<u8> {
    let (width, height) = at.size;
    let mut out = vec![255u8; width as usize * height as usize * 3];
    let span = if range.1 > range.0 { range.1 - range.0 } else { 1.0 };
    for y in 0..frame.height * at.scale {
        for x in 0..frame.width * at.scale {
            let (fx, fy) = (x / at.scale, y / at.scale);
            let i = (fy * frame.width + fx) as usize * 3;
            let px = [frame.pixels[i], frame.pixels[i + 1], frame.pixels[i + 2]];
            let colour = match map.get(fx, fy) {
                Some(score) => blend(px, turbo((score - range.0) / span)),
                None => px,
            };
            let o = (((at.origin.1 + y) * width) + at.origin.0 + x) as usize * 3;
            out[o..o + 3].copy_from_slice(&colour);
        }
    }
    out
}

/// Draws `frame` with `map` blended over it; colours run over `range`
/// (low, high) of scores, e.g. the lowest and highest box score of the
/// whole run so that several frames share one scale.
pub fn plot_heatmap(
    path: impl AsRef<Path>,
    title: &str,
    frame: RgbFrame<'_>,
    map: &ScoreMap,
    range: (f32, f32),
) -> Result<HeatmapLayout, EvalError> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let expected = frame.width as usize * frame.height as usize * 3;
    if frame.pixels.len() != expected || frame.width == 0 || frame.height == 0 {
        return Err(EvalError::invalid(format!(
            "{what}: frame of {}x{} needs {expected} RGB bytes, found {}",
            frame.width,
            frame.height,
            frame.pixels.len()
        )));
    }
    if (map.width, map.height) != (frame.width, frame.height) {
        return Err(EvalError::invalid(format!(
            "{what}: score map is {}x{} but the frame is {}x{}",
            map.width, map.height, frame.width, frame.height
        )));
    }
    if !(range.0.is_finite() && range.1.is_finite() && range.0 <= range.1) {
        return Err(EvalError::invalid(format!("{what}: colour range {range:?} must be finite and ascending")));
    }
    let at = layout(&frame);
    let background = composite(&frame, map, range, &at);
    let err = plot_error(&what);
    render(path, at.size, Some(background), |root| {
        root.draw(&Text::new(title.to_string(), (MARGIN as i32, 16), bold(TITLE_SIZE))).map_err(&err)?;
        let bar_x = at.origin.0 + frame.width * at.scale + BAR_GAP;
        let bar_area = root.clone().shrink((bar_x, at.origin.1), (BAR_WIDTH + BAR_LABELS, frame.height * at.scale));
        let (lo, hi) = (range.0 as f64, if range.1 > range.0 { range.1 as f64 } else { range.0 as f64 + 1.0 });
        let mut bar = ChartBuilder::on(&bar_area).right_y_label_area_size(BAR_LABELS).build_cartesian_2d(0.0..1.0, lo..hi).map_err(&err)?;
        let steps = (frame.height * at.scale).max(2);
        let cells = (0..steps).map(|k| {
            let (a, b) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
            let [r, g, bl] = turbo(((a + b) / 2.0) as f32);
            Rectangle::new([(0.0, lo + a * (hi - lo)), (1.0, lo + b * (hi - lo))], RGBColor(r, g, bl).filled())
        });
        bar.draw_series(cells).map_err(&err)?;
        bar.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(6)
            .label_style(font(TICK_SIZE))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()
            .map_err(&err)?;
        // The scale's name, rotated to read upwards beside the tick labels.
        let centre = ((bar_x + BAR_WIDTH + BAR_LABELS - LABEL_SIZE) as i32, (at.origin.1 + frame.height * at.scale / 2) as i32);
        let style = font(LABEL_SIZE).transform(FontTransform::Rotate270).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new("Box score (z)", centre, style)).map_err(&err)?;
        Ok(at)
    })
}

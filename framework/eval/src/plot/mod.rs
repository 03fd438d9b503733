//! PNG plots drawn with plotters into memory, encoded with `image` and
//! written atomically. Text uses a TrueType font read at run time (see
//! [`fonts`]).

pub mod colormap;
pub mod fonts;
pub mod heatmap;
pub mod roc;
pub mod timeline;

use crate::{write_atomic, EvalError};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;

/// Where a chart's data area landed in the image, and the data ranges it
/// shows, so callers (and tests) can find a value's pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotArea {
    pub pixels_x: Range<i32>,
    pub pixels_y: Range<i32>,
    pub x_range: Range<f64>,
    pub y_range: Range<f64>,
}

impl PlotArea {
    /// Pixel column of data value `x` (plotters' own linear mapping).
    pub fn column_of(&self, x: f64) -> i32 {
        let t = (x - self.x_range.start) / (self.x_range.end - self.x_range.start);
        self.pixels_x.start + (t * (self.pixels_x.end - self.pixels_x.start) as f64).round() as i32
    }
    /// Pixel row of data value `y` (rows grow downwards).
    pub fn row_of(&self, y: f64) -> i32 {
        let t = (y - self.y_range.start) / (self.y_range.end - self.y_range.start);
        self.pixels_y.end - (t * (self.pixels_y.end - self.pixels_y.start) as f64).round() as i32
    }
}

/// Text sizes shared by all plots, in pixels.
pub(crate) const TITLE_SIZE: u32 = 26;
pub(crate) const LABEL_SIZE: u32 = 20;
pub(crate) const TICK_SIZE: u32 = 16;

/// The palette: matplotlib's "tab10" blue and red, greys for structure.
pub(crate) const CURVE: RGBColor = RGBColor(31, 119, 180);
pub(crate) const ACCENT: RGBColor = RGBColor(214, 39, 40);
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);
pub(crate) const MUTED: RGBColor = RGBColor(128, 128, 128);

pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Turns any plotters error into a plot error about `what`.
pub(crate) fn plot_error<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> EvalError + '_ {
    move |e| EvalError::Plot { what: what.to_string(), message: e.to_string() }
}

/// Draws into an RGB buffer of `size` that starts as `background` (white
/// when `None`), then writes it as a PNG to `path`.
pub(crate) fn render<T>(
    path: &Path,
    size: (u32, u32),
    background: Option<Vec<u8>>,
    draw: impl FnOnce(&Area<'_>) -> Result<T, EvalError>,
) -> Result<T, EvalError> {
    fonts::ensure()?;
    let what = path.display().to_string();
    let len = size.0 as usize * size.1 as usize * 3;
    let mut pixels = background.unwrap_or_else(|| vec![255u8; len]);
    if pixels.len() != len {
        return Err(EvalError::invalid(format!("{what}: background has {} bytes, expected {len}", pixels.len())));
    }
    let out = {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        let out = draw(&root)?;
        root.present().map_err(plot_error(&what))?;
        out
    };
    let png = encode_png(&pixels, size)?;
    write_atomic(path, &png).map_err(|source| EvalError::Write { path: path.to_path_buf(), source })?;
    Ok(out)
}

fn encode_png(rgb: &[u8], (width, height): (u32, u32)) -> Result<Vec<u8>, EvalError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| EvalError::Plot { what: "PNG encoding".into(), message: e.to_string() })?;
    Ok(out)
}

/// The legend box of the line charts (ROC, timelines), drawn at `position`.
pub(crate) fn draw_legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    position: SeriesLabelPosition,
    margin: u32,
    err: &impl Fn(DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>) -> EvalError,
) -> Result<(), EvalError> {
    chart
        .configure_series_labels()
        .position(position)
        .margin(margin)
        .legend_area_size(34)
        .label_font(font(LABEL_SIZE))
        .background_style(WHITE.mix(0.9))
        .border_style(MUTED)
        .draw()
        .map_err(err)
}

/// The font of plot text at `size` pixels.
pub(crate) fn font(size: u32) -> TextStyle<'static> {
    (fonts::FAMILY, size).into_font().into()
}

pub(crate) fn bold(size: u32) -> TextStyle<'static> {
    (fonts::FAMILY, size, FontStyle::Bold).into_font().into()
}

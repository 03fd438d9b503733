//! Plot text needs a TrueType font. plotters' `ab_glyph` feature draws with
//! a font registered from memory; the font file is read once at run time
//! from `VIGIL_FONT` (and `VIGIL_FONT_BOLD`) or from Debian's
//! `fonts-dejavu-core` package, so no C font libraries are needed.

use crate::EvalError;
use plotters::style::{register_font, FontStyle};
use std::sync::OnceLock;

/// The family name plots ask for.
pub const FAMILY: &str = "sans-serif";

const DEFAULT_REGULAR: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const DEFAULT_BOLD: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

fn read_font(variable: &str, default: &str) -> Result<&'static [u8], String> {
    let path = std::env::var(variable).unwrap_or_else(|_| default.to_string());
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "plot text needs a TrueType font, and {path} could not be read ({e}); install Debian's \
             `fonts-dejavu-core` or set {variable} to a .ttf file"
        )
    })?;
    // Registered fonts live for the whole process, so the bytes are leaked
    // once, on purpose.
    Ok(Box::leak(bytes.into_boxed_slice()))
}

fn load() -> Result<(), String> {
    let regular = read_font("VIGIL_FONT", DEFAULT_REGULAR)?;
    register_font(FAMILY, FontStyle::Normal, regular).map_err(|_| "the regular font is not a valid TrueType file".to_string())?;
    // Without a bold face plotters falls back to the regular one.
    if let Ok(bold) = read_font("VIGIL_FONT_BOLD", DEFAULT_BOLD) {
        register_font(FAMILY, FontStyle::Bold, bold).map_err(|_| "the bold font is not a valid TrueType file".to_string())?;
    }
    Ok(())
}

/// Registers the fonts on first use; later calls return the first result.
pub fn ensure() -> Result<(), EvalError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED.get_or_init(load).clone().map_err(EvalError::Font)
}

//! Middlebury `.flo` files (the format of FlyingChairs' ground truth):
//! "PIEH" magic (float 202021.25), int32 width and height, then
//! width*height interleaved (u, v) float32 values, all little-endian.

use crate::image::FlowField;

const MAGIC: &[u8; 4] = b"PIEH";

pub fn parse_flo(bytes: &[u8]) -> Result<FlowField, String> {
    if bytes.len() < 12 || &bytes[..4] != MAGIC {
        return Err("not a Middlebury .flo file (expected the magic \"PIEH\" and a 12-byte header)".into());
    }
    let int = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let (w, h) = (int(4), int(8));
    if w <= 0 || h <= 0 {
        return Err(format!(".flo header gives a size of {w}x{h}"));
    }
    let (w, h) = (w as usize, h as usize);
    let expected = 12 + w * h * 8;
    if bytes.len() != expected {
        return Err(format!(".flo of {w}x{h} needs {expected} bytes, the file has {}", bytes.len()));
    }
    let data = bytes[12..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
    Ok(FlowField::new(w, h, data))
}

pub fn read_flo(path: &std::path::Path) -> Result<FlowField, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_flo(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_values_and_rejects_truncation() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(2i32.to_le_bytes());
        bytes.extend(1i32.to_le_bytes());
        for v in [1.0f32, -2.0, 0.5, 3.0] {
            bytes.extend(v.to_le_bytes());
        }
        let flow = parse_flo(&bytes).unwrap();
        assert_eq!((flow.width, flow.height), (2, 1));
        assert_eq!(flow.at(1, 0), (0.5, 3.0));
        let err = parse_flo(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.contains("needs 28 bytes"), "{err}");
        assert!(parse_flo(b"P6 512 384").unwrap_err().contains("PIEH"));
    }
}

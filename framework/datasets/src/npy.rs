//! A small reader for NumPy `.npy` files (ShanghaiTech's `test_frame_mask`
//! and `test_pixel_mask`): header only on open, then whole arrays or one
//! frame of a [T, H, W] array at a time.

use crate::error::{invalid, io, Result};
use crate::mask::Mask;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct NpyArray {
    pub path: PathBuf,
    pub shape: Vec<usize>,
    /// `b` (bool), `i`, `u` or `f`.
    kind: u8,
    size: usize,
    big_endian: bool,
    data_offset: u64,
}

fn header_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

impl NpyArray {
    pub fn open(path: &Path) -> Result<NpyArray> {
        let bad = |what: &str| invalid(format!("{} is not a readable .npy file: {what}", path.display()));
        let mut file = std::fs::File::open(path).map_err(io(path))?;
        let mut magic = [0u8; 8];
        if file.read_exact(&mut magic).is_err() || &magic[..6] != b"\x93NUMPY" {
            return bad("no NumPy magic");
        }
        let header_len = if magic[6] == 1 {
            let mut b = [0u8; 2];
            file.read_exact(&mut b).map_err(io(path))?;
            u16::from_le_bytes(b) as usize
        } else {
            let mut b = [0u8; 4];
            file.read_exact(&mut b).map_err(io(path))?;
            u32::from_le_bytes(b) as usize
        };
        // Read what is there, not what the length field claims.
        let mut header = Vec::new();
        (&mut file).take(header_len as u64).read_to_end(&mut header).map_err(io(path))?;
        if header.len() < header_len {
            return bad(&format!("its header claims {header_len} bytes, the file ends after {}", header.len()));
        }
        let data_offset = file.stream_position().map_err(io(path))?;
        let header = String::from_utf8_lossy(&header).into_owned();

        let Some(descr) = header_field(&header, "descr").and_then(|d| d.strip_prefix('\'')?.split('\'').next()) else {
            return bad("no dtype in the header");
        };
        // '<i8': byte order, kind, size in bytes (any of them may be garbage).
        let mut chars = descr.chars();
        let order = chars.next();
        let code = chars.as_str();
        let (kind, size) = match (code.as_bytes().first(), code.get(1..).and_then(|n| n.parse::<usize>().ok())) {
            (Some(&k @ (b'b' | b'i' | b'u' | b'f')), Some(size)) if [1, 2, 4, 8].contains(&size) => (k, size),
            _ => return bad(&format!("unsupported dtype '{descr}' (expected bool, int, uint or float)")),
        };
        if header_field(&header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
            return bad("Fortran-ordered arrays are not supported");
        }
        let Some(shape_text) = header_field(&header, "shape").and_then(|s| s.strip_prefix('(')?.split(')').next()) else {
            return bad("no shape in the header");
        };
        let shape: std::result::Result<Vec<usize>, _> =
            shape_text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect();
        let Ok(shape) = shape else { return bad(&format!("bad shape ({shape_text})")) };
        let Some(bytes) = shape.iter().try_fold(size, |n, &d| n.checked_mul(d)) else {
            return bad(&format!("shape ({shape_text}) has too many elements"));
        };
        let array = NpyArray { path: path.to_path_buf(), shape, kind, size, big_endian: order == Some('>'), data_offset };
        let expected = data_offset.saturating_add(bytes as u64);
        let actual = std::fs::metadata(path).map_err(io(path))?.len();
        if actual < expected {
            return bad(&format!("{actual} bytes, its header needs {expected}"));
        }
        Ok(array)
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn nonzero_range(&self, first: usize, count: usize) -> Result<Vec<bool>> {
        let mut file = std::fs::File::open(&self.path).map_err(io(&self.path))?;
        file.seek(SeekFrom::Start(self.data_offset + (first * self.size) as u64)).map_err(io(&self.path))?;
        let mut bytes = vec![0u8; count * self.size];
        file.read_exact(&mut bytes).map_err(io(&self.path))?;
        Ok(bytes
            .chunks(self.size)
            .map(|c| match self.kind {
                b'f' => {
                    let mut b = c.to_vec();
                    if self.big_endian {
                        b.reverse();
                    }
                    let v = if self.size == 4 {
                        f32::from_le_bytes(b[..4].try_into().unwrap()) as f64
                    } else if self.size == 8 {
                        f64::from_le_bytes(b[..8].try_into().unwrap())
                    } else {
                        1.0
                    };
                    v != 0.0
                }
                _ => c.iter().any(|&x| x != 0),
            })
            .collect())
    }

    /// Every element, nonzero = true (a 1-D frame mask).
    pub fn nonzero(&self) -> Result<Vec<bool>> {
        self.nonzero_range(0, self.len())
    }

    /// Frame `index` of a [T, H, W] array as a mask, read from disk alone.
    pub fn frame_mask(&self, index: usize) -> Result<Mask> {
        let &[frames, height, width] = self.shape.as_slice() else {
            return invalid(format!("{}: expected a [frames, height, width] array, found shape {:?}", self.path.display(), self.shape));
        };
        if index >= frames {
            return invalid(format!("{}: frame {index} is past its {frames} frames", self.path.display()));
        }
        let pixels = self.nonzero_range(index * height * width, height * width)?;
        Ok(Mask::from_pixels(width, height, pixels))
    }
}

/// Writes a little-endian C-order `.npy`, for tests.
#[cfg(test)]
pub(crate) fn write(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    std::fs::write(path, bytes(descr, shape, data)).unwrap();
}

/// A little-endian C-order `.npy` file's bytes, for tests.
#[cfg(test)]
pub(crate) fn bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_frame_masks_and_single_frames() {
        let dir = tempfile::tempdir().unwrap();
        let labels = dir.path().join("01_0014.npy");
        let values: Vec<i64> = vec![0, 0, 1, 1, 0];
        write(&labels, "<i8", &[5], &values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
        let a = NpyArray::open(&labels).unwrap();
        assert_eq!(a.shape, [5]);
        assert_eq!(a.nonzero().unwrap(), [false, false, true, true, false]);

        let pixels = dir.path().join("pixels.npy");
        let mut data = vec![0u8; 3 * 2 * 4];
        data[8 + 4 + 1] = 1; // frame 1, row 1, column 1
        write(&pixels, "|u1", &[3, 2, 4], &data);
        let p = NpyArray::open(&pixels).unwrap();
        let m = p.frame_mask(1).unwrap();
        assert_eq!((m.width, m.height, m.count()), (4, 2, 1));
        assert!(m.get(1, 1));
        assert!(!p.frame_mask(0).unwrap().any());
        assert!(p.frame_mask(3).unwrap_err().to_string().contains("past its 3 frames"));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        std::fs::write(&path, b"not numpy").unwrap();
        assert!(NpyArray::open(&path).unwrap_err().to_string().contains("x.npy is not a readable .npy file"));
        write(&path, "<c16", &[2], &[0; 32]);
        assert!(NpyArray::open(&path).unwrap_err().to_string().contains("unsupported dtype"));
        write(&path, "<i8", &[4], &[0; 8]);
        assert!(NpyArray::open(&path).unwrap_err().to_string().contains("header needs"));
    }
}

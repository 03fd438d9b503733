//! A small reader for MATLAB v5 MAT-files (what MATLAB's `save` writes up
//! to `-v7`): numeric and logical arrays of any element type, and cell
//! arrays of them, compressed (`miCOMPRESSED`) or not, either byte order.
//! That covers the ground-truth files of Ped1/Ped2 (`gt`, a cell of
//! [start; end] ranges) and Avenue (`volLabel`, a cell of pixel masks).
//! v7.3 files are HDF5 and are refused with a clear message.

use crate::error::{invalid, io, Error, Result};
use flate2::read::ZlibDecoder;
use std::io::{BufReader, Read};
use std::path::Path;

const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const CLASS_CELL: u32 = 1;

/// How one array element is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl ElemType {
    fn from_mi(code: u32) -> Option<ElemType> {
        Some(match code {
            1 => ElemType::I8,
            2 => ElemType::U8,
            3 => ElemType::I16,
            4 => ElemType::U16,
            5 => ElemType::I32,
            6 => ElemType::U32,
            7 => ElemType::F32,
            9 => ElemType::F64,
            12 => ElemType::I64,
            13 => ElemType::U64,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            ElemType::I8 | ElemType::U8 => 1,
            ElemType::I16 | ElemType::U16 => 2,
            ElemType::I32 | ElemType::U32 | ElemType::F32 => 4,
            ElemType::I64 | ElemType::U64 | ElemType::F64 => 8,
        }
    }
}

/// A numeric or logical array, column-major as MATLAB stores it. The data
/// stay in their stored element type (MATLAB stores integer-valued doubles
/// as small integers), little-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct Numeric {
    pub dims: Vec<usize>,
    pub ty: ElemType,
    data: Vec<u8>,
}

impl Numeric {
    pub fn len(&self) -> usize {
        self.data.len() / self.ty.size()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Element `i` (column-major) as f64.
    pub fn value(&self, i: usize) -> f64 {
        let b = &self.data[i * self.ty.size()..(i + 1) * self.ty.size()];
        match self.ty {
            ElemType::I8 => b[0] as i8 as f64,
            ElemType::U8 => b[0] as f64,
            ElemType::I16 => i16::from_le_bytes([b[0], b[1]]) as f64,
            ElemType::U16 => u16::from_le_bytes([b[0], b[1]]) as f64,
            ElemType::I32 => i32::from_le_bytes(b.try_into().unwrap()) as f64,
            ElemType::U32 => u32::from_le_bytes(b.try_into().unwrap()) as f64,
            ElemType::I64 => i64::from_le_bytes(b.try_into().unwrap()) as f64,
            ElemType::U64 => u64::from_le_bytes(b.try_into().unwrap()) as f64,
            ElemType::F32 => f32::from_le_bytes(b.try_into().unwrap()) as f64,
            ElemType::F64 => f64::from_le_bytes(b.try_into().unwrap()),
        }
    }

    pub fn nonzero(&self, i: usize) -> bool {
        let b = &self.data[i * self.ty.size()..(i + 1) * self.ty.size()];
        match self.ty {
            ElemType::F32 | ElemType::F64 => self.value(i) != 0.0,
            _ => b.iter().any(|&x| x != 0),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MatArray {
    Numeric(Numeric),
    /// A cell array; `cells` is empty when they were handed to a visitor.
    Cell {
        dims: Vec<usize>,
        cells: Vec<MatArray>,
    },
    /// A class this reader does not decode (struct, char, sparse, object).
    Other {
        class: u32,
        dims: Vec<usize>,
    },
}

impl MatArray {
    pub fn dims(&self) -> &[usize] {
        match self {
            MatArray::Numeric(n) => &n.dims,
            MatArray::Cell { dims, .. } | MatArray::Other { dims, .. } => dims,
        }
    }

    pub fn describe(&self) -> String {
        let dims: Vec<String> = self.dims().iter().map(|d| d.to_string()).collect();
        let what = match self {
            MatArray::Numeric(n) => format!("{:?} array", n.ty).to_lowercase(),
            MatArray::Cell { .. } => "cell array".into(),
            MatArray::Other { class, .. } => format!("array of MATLAB class {class}"),
        };
        format!("{} {what}", dims.join("x"))
    }
}

/// Called with (index, element) for each element of the wanted cell array.
pub type CellVisitor<'a> = &'a mut dyn FnMut(usize, MatArray) -> Result<()>;

/// Reads elements from a stream; nested arrays read through a `take` of it.
struct Parser<'a> {
    r: &'a mut dyn Read,
    big_endian: bool,
}

struct Tag {
    ty: u32,
    nbytes: u32,
    /// Data of a small data element (packed into the tag's 8 bytes).
    small: Option<[u8; 4]>,
}

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("malformed MAT-file: {what}"))
}

fn skip(r: &mut impl Read, n: u64) -> Result<()> {
    let copied = std::io::copy(&mut r.take(n), &mut std::io::sink()).map_err(malformed)?;
    if copied < n {
        return Err(malformed("unexpected end of data"));
    }
    Ok(())
}

impl Parser<'_> {
    fn u32(&self, b: [u8; 4]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// Reads a tag, or `None` at a clean end of the stream.
    fn tag(&mut self) -> Result<Option<Tag>> {
        let mut b = [0u8; 8];
        let mut got = 0;
        while got < 8 {
            match self.r.read(&mut b[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(malformed("truncated element tag")),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(malformed(e)),
            }
        }
        let first = self.u32(b[0..4].try_into().unwrap());
        if first >> 16 != 0 {
            return Ok(Some(Tag { ty: first & 0xffff, nbytes: first >> 16, small: Some(b[4..8].try_into().unwrap()) }));
        }
        Ok(Some(Tag { ty: first, nbytes: self.u32(b[4..8].try_into().unwrap()), small: None }))
    }

    fn required_tag(&mut self, what: &str) -> Result<Tag> {
        self.tag()?.ok_or_else(|| malformed(format!("missing {what}")))
    }

    /// The data of a (sub)element, padding to 8 bytes consumed.
    fn data(&mut self, tag: &Tag) -> Result<Vec<u8>> {
        if let Some(small) = tag.small {
            if tag.nbytes > 4 {
                return Err(malformed("small data element longer than 4 bytes"));
            }
            return Ok(small[..tag.nbytes as usize].to_vec());
        }
        // Read what is there rather than allocate what the tag claims: a
        // corrupt length must not reserve gigabytes before the data runs out.
        let mut buf = Vec::new();
        (&mut self.r).take(tag.nbytes as u64).read_to_end(&mut buf).map_err(malformed)?;
        if buf.len() < tag.nbytes as usize {
            return Err(malformed(format!("unexpected end of data ({} of {} bytes)", buf.len(), tag.nbytes)));
        }
        skip(&mut self.r, (8 - tag.nbytes as u64 % 8) % 8)?;
        Ok(buf)
    }

    fn numbers(&mut self, tag: &Tag) -> Result<(ElemType, Vec<u8>)> {
        let ty = ElemType::from_mi(tag.ty).ok_or_else(|| malformed(format!("data type {} where numbers were expected", tag.ty)))?;
        let mut data = self.data(tag)?;
        if data.len() % ty.size() != 0 {
            return Err(malformed("data length is not a multiple of the element size"));
        }
        if self.big_endian {
            data.chunks_mut(ty.size()).for_each(|c| c.reverse());
        }
        Ok((ty, data))
    }

    fn int_vec(&mut self, what: &str) -> Result<Vec<usize>> {
        let tag = self.required_tag(what)?;
        let (ty, data) = self.numbers(&tag)?;
        let n = Numeric { dims: vec![], ty, data };
        Ok((0..n.len()).map(|i| n.value(i).max(0.0) as usize).collect())
    }

    /// Reads the body of an `miMATRIX` element of `nbytes` bytes. Returns
    /// `None` when `wanted` is given and the array's name differs (the
    /// body is then skipped).
    fn matrix(&mut self, nbytes: u64, wanted: Option<&str>, visit: Option<CellVisitor>) -> Result<Option<(String, MatArray)>> {
        if nbytes == 0 {
            if wanted.is_some() {
                return Ok(None);
            }
            let empty = MatArray::Numeric(Numeric { dims: vec![0, 0], ty: ElemType::F64, data: vec![] });
            return Ok(Some((String::new(), empty)));
        }
        let mut take = (&mut *self.r).take(nbytes);
        let result = Parser { r: &mut take, big_endian: self.big_endian }.matrix_fields(wanted, visit);
        // Whatever the array held that was not read (imaginary parts,
        // skipped arrays, padding) is passed over.
        let rest = take.limit();
        skip(&mut self.r, rest)?;
        result
    }

    fn matrix_fields(&mut self, wanted: Option<&str>, visit: Option<CellVisitor>) -> Result<Option<(String, MatArray)>> {
        let flags = self.int_vec("array flags")?;
        let class = *flags.first().ok_or_else(|| malformed("empty array flags"))? as u32 & 0xff;
        let dims = self.int_vec("array dimensions")?;
        let name_tag = self.required_tag("array name")?;
        let name = String::from_utf8_lossy(&self.data(&name_tag)?).into_owned();
        if wanted.is_some_and(|w| w != name) {
            return Ok(None);
        }
        let count = dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| malformed(format!("array `{name}` has dimensions {dims:?}, too many elements")))?;
        let array = match class {
            CLASS_CELL => {
                let mut cells = Vec::new();
                let mut visit = visit;
                for index in 0..count {
                    let tag = self.required_tag("cell element")?;
                    if tag.ty != MI_MATRIX {
                        return Err(malformed(format!("cell element of data type {}", tag.ty)));
                    }
                    let (_, cell) = self.matrix(tag.nbytes as u64, None, None)?.expect("no name filter");
                    match visit.as_mut() {
                        Some(visit) => visit(index, cell)?,
                        None => cells.push(cell),
                    }
                }
                MatArray::Cell { dims, cells }
            }
            6..=15 => {
                let tag = self.required_tag("real part")?;
                let (ty, data) = self.numbers(&tag)?;
                if count.checked_mul(ty.size()) != Some(data.len()) {
                    return Err(malformed(format!("array `{name}` has {} elements, its dimensions say {count}", data.len() / ty.size())));
                }
                MatArray::Numeric(Numeric { dims, ty, data })
            }
            _ => MatArray::Other { class, dims },
        };
        Ok(Some((name, array)))
    }
}

/// Reads variable `name` from a MAT-file. With `visit`, the elements of a
/// cell-array variable are handed over one at a time and not kept, so a
/// large cell of masks never sits in memory whole.
pub fn read_variable(path: &Path, name: &str, visit: Option<CellVisitor>) -> Result<MatArray> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut reader = BufReader::new(file);
    let r = &mut reader;
    let mut header = [0u8; 128];
    r.read_exact(&mut header).map_err(|_| Error::Invalid(format!("{} is too short to be a MAT-file", path.display())))?;
    let text = String::from_utf8_lossy(&header[..116]);
    if text.starts_with("MATLAB 7.3") {
        return invalid(format!(
            "{} is a MATLAB v7.3 (HDF5) file, which this reader does not read; re-save it with `save(..., '-v7')`",
            path.display()
        ));
    }
    let big_endian = match &header[126..128] {
        b"IM" => false,
        b"MI" => true,
        _ => return invalid(format!("{} is not a MATLAB v5 MAT-file (no MAT header)", path.display())),
    };
    let with_path = |e: Error| Error::Invalid(format!("{}: {e}", path.display()));
    let mut parser = Parser { r, big_endian };
    let mut visit = visit;
    while let Some(tag) = parser.tag().map_err(with_path)? {
        let found = match tag.ty {
            MI_MATRIX => {
                let found = parser.matrix(tag.nbytes as u64, Some(name), visit.take()).map_err(with_path)?;
                if tag.nbytes % 8 != 0 {
                    skip(&mut parser.r, (8 - tag.nbytes as u64 % 8) % 8).map_err(with_path)?;
                }
                found
            }
            MI_COMPRESSED => {
                let mut stream = ZlibDecoder::new((&mut *parser.r).take(tag.nbytes as u64));
                let mut inner = Parser { r: &mut stream, big_endian };
                let found = match inner.required_tag("compressed element").map_err(with_path)? {
                    t if t.ty == MI_MATRIX => inner.matrix(t.nbytes as u64, Some(name), visit.take()).map_err(with_path)?,
                    _ => None,
                };
                let rest = stream.into_inner().limit();
                skip(&mut parser.r, rest).map_err(with_path)?;
                found
            }
            _ => {
                parser.data(&tag).map_err(with_path)?;
                None
            }
        };
        if let Some((_, array)) = found {
            return Ok(array);
        }
    }
    invalid(format!("{} has no variable `{name}`", path.display()))
}

/// Writes MAT v5 files, for tests that need fixtures in the published
/// formats.
#[cfg(test)]
pub(crate) mod write {
    use std::io::Write;

    #[derive(Clone)]
    pub enum Value {
        U8 { dims: Vec<usize>, data: Vec<u8>, logical: bool },
        F64 { dims: Vec<usize>, data: Vec<f64> },
        Cell { dims: Vec<usize>, cells: Vec<Value> },
    }

    fn element(out: &mut Vec<u8>, ty: u32, data: &[u8]) {
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(8), 0);
    }

    fn matrix(name: &str, value: &Value) -> Vec<u8> {
        let (class, logical, dims) = match value {
            Value::U8 { dims, logical, .. } => (9u32, *logical, dims),
            Value::F64 { dims, .. } => (6, false, dims),
            Value::Cell { dims, .. } => (1, false, dims),
        };
        let mut body = Vec::new();
        let flags = class | if logical { 0x200 } else { 0 };
        element(&mut body, 6, &[flags.to_le_bytes(), 0u32.to_le_bytes()].concat());
        let dims: Vec<u8> = dims.iter().flat_map(|&d| (d as i32).to_le_bytes()).collect();
        element(&mut body, 5, &dims);
        element(&mut body, 1, name.as_bytes());
        match value {
            Value::U8 { data, .. } => element(&mut body, 2, data),
            Value::F64 { data, .. } => element(&mut body, 9, &data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()),
            Value::Cell { cells, .. } => cells.iter().for_each(|c| body.extend(matrix("", c))),
        }
        let mut out = Vec::new();
        element(&mut out, super::MI_MATRIX, &body);
        out
    }

    /// A whole MAT-file holding `vars`, each compressed or not.
    pub fn file(vars: &[(&str, Value)], compress: bool) -> Vec<u8> {
        let mut out = format!("{:<116}", "MATLAB 5.0 MAT-file, written by vigil-datasets tests").into_bytes();
        out.extend_from_slice(&[0u8; 8]);
        out.extend_from_slice(&0x0100u16.to_le_bytes());
        out.extend_from_slice(b"IM");
        for (name, value) in vars {
            let m = matrix(name, value);
            if compress {
                let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                z.write_all(&m).unwrap();
                let z = z.finish().unwrap();
                out.extend_from_slice(&super::MI_COMPRESSED.to_le_bytes());
                out.extend_from_slice(&(z.len() as u32).to_le_bytes());
                out.extend_from_slice(&z);
            } else {
                out.extend_from_slice(&m);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::write::{file, Value};
    use super::*;

    fn ranges_cell() -> Value {
        Value::Cell {
            dims: vec![1, 2],
            cells: vec![
                Value::U8 { dims: vec![2, 1], data: vec![61, 180], logical: false },
                Value::F64 { dims: vec![2, 2], data: vec![1.0, 10.0, 20.0, 30.0] },
            ],
        }
    }

    #[test]
    fn reads_cells_plain_and_compressed_skipping_other_variables() {
        let dir = tempfile::tempdir().unwrap();
        for compress in [false, true] {
            let path = dir.path().join(format!("gt-{compress}.mat"));
            let other = Value::F64 { dims: vec![1, 3], data: vec![1.0, 2.0, 3.0] };
            std::fs::write(&path, file(&[("other", other), ("gt", ranges_cell())], compress)).unwrap();
            let MatArray::Cell { dims, cells } = read_variable(&path, "gt", None).unwrap() else { panic!() };
            assert_eq!(dims, [1, 2]);
            let MatArray::Numeric(a) = &cells[0] else { panic!() };
            assert_eq!((a.ty, a.value(0), a.value(1)), (ElemType::U8, 61.0, 180.0));
            let MatArray::Numeric(b) = &cells[1] else { panic!() };
            assert_eq!((b.dims.as_slice(), b.value(3)), (&[2usize, 2][..], 30.0));
        }
    }

    #[test]
    fn visitor_receives_cells_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.mat");
        std::fs::write(&path, file(&[("gt", ranges_cell())], true)).unwrap();
        let mut lens = Vec::new();
        let mut visit = |i: usize, a: MatArray| {
            lens.push((i, a.dims().iter().product::<usize>()));
            Ok(())
        };
        let MatArray::Cell { cells, .. } = read_variable(&path, "gt", Some(&mut visit)).unwrap() else { panic!() };
        assert!(cells.is_empty());
        assert_eq!(lens, [(0, 2), (1, 4)]);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gt.mat");
        std::fs::write(&path, file(&[("gt", ranges_cell())], false)).unwrap();
        let err = read_variable(&path, "volLabel", None).unwrap_err().to_string();
        assert!(err.contains("gt.mat has no variable `volLabel`"), "{err}");

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
        let err = read_variable(&path, "gt", None).unwrap_err().to_string();
        assert!(err.contains("gt.mat") && err.contains("malformed"), "{err}");

        let v73 = dir.path().join("v73.mat");
        let mut header = format!("{:<116}", "MATLAB 7.3 MAT-file, Platform: GLNXA64").into_bytes();
        header.resize(128, 0);
        std::fs::write(&v73, header).unwrap();
        let err = read_variable(&v73, "gt", None).unwrap_err().to_string();
        assert!(err.contains("v7.3"), "{err}");
    }

    #[test]
    fn reads_the_shipped_ped2_mat() {
        let Some(path) = vigil_stage_testkit::shared_data("ped2/ped2.mat") else { return };
        let MatArray::Cell { dims, cells } = read_variable(&path, "gt", None).unwrap() else { panic!() };
        assert_eq!(dims, [1, 12]);
        let MatArray::Numeric(first) = &cells[0] else { panic!() };
        assert_eq!((first.ty, first.value(0), first.value(1)), (ElemType::U8, 61.0, 180.0));
    }
}

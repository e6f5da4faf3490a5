//! Reading embeddings from files: NumPy's `.npy` (2-D float32/float64, C order) and the ANN
//! benchmark formats `.fvecs` / `.bvecs` / `.ivecs` (each record: a little-endian int32
//! dimension, then that many float32 / uint8 / int32 values).
//!
//! A [`VectorFile`] validates the header and size when it opens and then reads any range of
//! rows by positional reads, so several threads can stream one file in blocks without a
//! whole-file copy. Every error names the file, the byte offset and what was expected.

mod npy;
mod vecs;

use crate::error::{Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// The file formats [`VectorFile`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorFileKind {
    /// NumPy `.npy`: a 2-D float32 or float64 array in C order.
    Npy,
    /// `.fvecs`: records of an int32 dimension and float32 values.
    Fvecs,
    /// `.bvecs`: records of an int32 dimension and uint8 values.
    Bvecs,
    /// `.ivecs`: records of an int32 dimension and int32 values.
    Ivecs,
}

impl VectorFileKind {
    /// The format a path's extension names, if any.
    pub fn from_path(path: &str) -> Option<VectorFileKind> {
        let lower = path.to_ascii_lowercase();
        [
            (".npy", VectorFileKind::Npy),
            (".fvecs", VectorFileKind::Fvecs),
            (".bvecs", VectorFileKind::Bvecs),
            (".ivecs", VectorFileKind::Ivecs),
        ]
        .into_iter()
        .find(|(ext, _)| lower.ends_with(ext))
        .map(|(_, kind)| kind)
    }

    /// The format's name as users write it.
    pub fn name(self) -> &'static str {
        match self {
            VectorFileKind::Npy => "npy",
            VectorFileKind::Fvecs => "fvecs",
            VectorFileKind::Bvecs => "bvecs",
            VectorFileKind::Ivecs => "ivecs",
        }
    }
}

/// How one value is stored in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Element {
    F32,
    F64,
    U8,
    I32,
}

impl Element {
    /// Bytes per value.
    fn size(self) -> u64 {
        match self {
            Element::F32 | Element::I32 => 4,
            Element::F64 => 8,
            Element::U8 => 1,
        }
    }
}

/// The largest dimension a file may declare: far beyond any embedding, small enough that a
/// damaged header cannot ask for absurd buffers.
pub const MAX_DIMENSIONS: u64 = 1 << 20;

/// An open vector file: its shape, checked against its size, and positional reads of its rows.
#[derive(Debug)]
pub struct VectorFile {
    file: File,
    path: String,
    kind: VectorFileKind,
    element: Element,
    dims: usize,
    rows: u64,
    /// Byte offset of the first row.
    data_offset: u64,
    /// Bytes per row, including a vecs record's 4-byte dimension prefix.
    row_bytes: u64,
}

impl VectorFile {
    /// Opens `path` in the format its extension names.
    pub fn open(path: &str) -> Result<VectorFile> {
        let kind = VectorFileKind::from_path(path).ok_or_else(|| Error::VectorFile {
            path: path.to_string(),
            offset: 0,
            what: "expected a file name ending in .npy, .fvecs, .bvecs or .ivecs".into(),
        })?;
        VectorFile::open_as(path, kind)
    }

    /// Opens `path` as `kind`, validating its header and size.
    pub fn open_as(path: &str, kind: VectorFileKind) -> Result<VectorFile> {
        let file = File::open(path).map_err(|e| Error::VectorFile {
            path: path.to_string(),
            offset: 0,
            what: format!("cannot open: {e}"),
        })?;
        let size = file
            .metadata()
            .map_err(|e| Error::VectorFile {
                path: path.to_string(),
                offset: 0,
                what: format!("cannot read its size: {e}"),
            })?
            .len();
        let shape = match kind {
            VectorFileKind::Npy => npy::read_shape(&file, path, size)?,
            _ => vecs::read_shape(&file, path, size, kind)?,
        };
        Ok(VectorFile {
            file,
            path: path.to_string(),
            kind,
            element: shape.element,
            dims: shape.dims,
            rows: shape.rows,
            data_offset: shape.data_offset,
            row_bytes: shape.row_bytes,
        })
    }

    /// Rows in the file.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Values per row.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The file's format.
    pub fn kind(&self) -> VectorFileKind {
        self.kind
    }

    /// True when the values are integers (`.ivecs`), read with [`VectorFile::read_i32`].
    pub fn is_integer(&self) -> bool {
        self.element == Element::I32
    }

    /// The path it was opened with.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Reads rows `start..start + out.len() / dims` (fewer at the end of the file) as float32
    /// into `out`; returns how many rows it read. float64 values are rounded to float32.
    pub fn read_f32(&self, start: u64, out: &mut [f32]) -> Result<usize> {
        if self.element == Element::I32 {
            return Err(self.error(0, "holds integers: read it as INTEGER values".into()));
        }
        let (count, bytes) = self.read_rows(start, out.len())?;
        let stride = self.row_bytes as usize;
        let skip = self.prefix_bytes();
        for r in 0..count {
            let row = &bytes[r * stride + skip..(r + 1) * stride];
            let dst = &mut out[r * self.dims..(r + 1) * self.dims];
            match self.element {
                Element::F32 => {
                    for (d, c) in dst.iter_mut().zip(row.chunks_exact(4)) {
                        *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    }
                }
                Element::F64 => {
                    for (d, c) in dst.iter_mut().zip(row.chunks_exact(8)) {
                        *d = f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                            as f32;
                    }
                }
                Element::U8 => {
                    for (d, &b) in dst.iter_mut().zip(row) {
                        *d = f32::from(b);
                    }
                }
                Element::I32 => unreachable!("rejected above"),
            }
        }
        Ok(count)
    }

    /// Reads rows of an `.ivecs` file as int32, like [`VectorFile::read_f32`].
    pub fn read_i32(&self, start: u64, out: &mut [i32]) -> Result<usize> {
        if self.element != Element::I32 {
            return Err(self.error(0, "holds floating-point values: read it as FLOAT".into()));
        }
        let (count, bytes) = self.read_rows(start, out.len())?;
        let stride = self.row_bytes as usize;
        for r in 0..count {
            let row = &bytes[r * stride + 4..(r + 1) * stride];
            let dst = &mut out[r * self.dims..(r + 1) * self.dims];
            for (d, c) in dst.iter_mut().zip(row.chunks_exact(4)) {
                *d = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        Ok(count)
    }

    /// Bytes before a row's values: the vecs formats' dimension prefix.
    fn prefix_bytes(&self) -> usize {
        if self.kind == VectorFileKind::Npy {
            0
        } else {
            4
        }
    }

    /// Reads the raw bytes of up to `capacity / dims` rows from `start`, checking each vecs
    /// record's dimension prefix; returns the row count and the bytes.
    fn read_rows(&self, start: u64, capacity: usize) -> Result<(usize, Vec<u8>)> {
        let count = ((capacity / self.dims) as u64).min(self.rows.saturating_sub(start)) as usize;
        if count == 0 {
            return Ok((0, Vec::new()));
        }
        let offset = self.data_offset + start * self.row_bytes;
        let mut bytes = vec![0u8; count * self.row_bytes as usize];
        self.file
            .read_exact_at(&mut bytes, offset)
            .map_err(|e| self.error(offset, format!("cannot read {} bytes: {e}", bytes.len())))?;
        if self.kind != VectorFileKind::Npy {
            for r in 0..count {
                let at = r * self.row_bytes as usize;
                let dims =
                    i32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
                if dims as i64 != self.dims as i64 {
                    let record = start + r as u64;
                    return Err(self.error(
                        offset + at as u64,
                        format!(
                            "record {record} has dimension {dims}, expected {} (the first record's): \
                             all records of a .{} file must have the same dimension",
                            self.dims,
                            self.kind.name()
                        ),
                    ));
                }
            }
        }
        Ok((count, bytes))
    }

    fn error(&self, offset: u64, what: String) -> Error {
        Error::VectorFile {
            path: self.path.clone(),
            offset,
            what,
        }
    }
}

/// A file's layout, read from its header and checked against its size.
pub(crate) struct Shape {
    pub element: Element,
    pub dims: usize,
    pub rows: u64,
    pub data_offset: u64,
    pub row_bytes: u64,
}

/// Reads exactly `buf.len()` bytes at `offset`, or says how much of the file is missing.
pub(crate) fn read_at(
    file: &File,
    path: &str,
    buf: &mut [u8],
    offset: u64,
    size: u64,
) -> Result<()> {
    if offset + buf.len() as u64 > size {
        return Err(Error::VectorFile {
            path: path.to_string(),
            offset,
            what: format!(
                "truncated: expected {} bytes from here, the file ends after {}",
                buf.len(),
                size.saturating_sub(offset)
            ),
        });
    }
    file.read_exact_at(buf, offset)
        .map_err(|e| Error::VectorFile {
            path: path.to_string(),
            offset,
            what: format!("cannot read: {e}"),
        })
}

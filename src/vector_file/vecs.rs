//! `.fvecs` / `.bvecs` / `.ivecs`: the dimension of the first record sets the shape; the file
//! must hold a whole number of records of that size.

use super::{read_at, Element, Shape, VectorFileKind, MAX_DIMENSIONS};
use crate::error::{Error, Result};
use std::fs::File;

/// Reads the first record's dimension and checks the file size against it.
pub(crate) fn read_shape(
    file: &File,
    path: &str,
    size: u64,
    kind: VectorFileKind,
) -> Result<Shape> {
    let element = match kind {
        VectorFileKind::Fvecs => Element::F32,
        VectorFileKind::Bvecs => Element::U8,
        VectorFileKind::Ivecs => Element::I32,
        VectorFileKind::Npy => unreachable!("npy has its own reader"),
    };
    let fail = |offset: u64, what: String| Error::VectorFile {
        path: path.to_string(),
        offset,
        what,
    };
    if size == 0 {
        return Err(fail(
            0,
            format!("empty: expected at least one .{} record", kind.name()),
        ));
    }
    let mut prefix = [0u8; 4];
    read_at(file, path, &mut prefix, 0, size)?;
    let dims = i32::from_le_bytes(prefix);
    if dims < 1 || dims as u64 > MAX_DIMENSIONS {
        return Err(fail(
            0,
            format!(
                "the first record declares dimension {dims}, expected 1 to {MAX_DIMENSIONS} \
                 (is this really a .{} file?)",
                kind.name()
            ),
        ));
    }
    let row_bytes = 4 + dims as u64 * element.size();
    if !size.is_multiple_of(row_bytes) {
        let whole = size / row_bytes;
        return Err(fail(
            whole * row_bytes,
            format!(
                "truncated or mixed dimensions: records of dimension {dims} take {row_bytes} bytes, \
                 the file's {size} bytes are {whole} records and {} bytes more",
                size % row_bytes
            ),
        ));
    }
    Ok(Shape {
        element,
        dims: dims as usize,
        rows: size / row_bytes,
        data_offset: 0,
        row_bytes,
    })
}

//! NumPy's `.npy` header: magic, version, and a Python dict literal naming the dtype, the memory
//! order and the shape. Only 2-D little-endian float32 / float64 arrays in C order are embeddings.

use super::{read_at, Element, Shape, MAX_DIMENSIONS};
use crate::error::{Error, Result};
use std::fs::File;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Headers longer than this are not NumPy's (it pads to 64-byte multiples of a short dict).
const MAX_HEADER: u64 = 1 << 16;

/// Parses the header and checks the file holds exactly the array it promises.
pub(crate) fn read_shape(file: &File, path: &str, size: u64) -> Result<Shape> {
    let fail = |offset: u64, what: String| Error::VectorFile {
        path: path.to_string(),
        offset,
        what,
    };
    let mut lead = [0u8; 10];
    read_at(file, path, &mut lead, 0, size)?;
    if &lead[..6] != MAGIC {
        return Err(fail(
            0,
            "expected the .npy magic \\x93NUMPY: not a NumPy file".into(),
        ));
    }
    let (header_len, header_at) = match lead[6] {
        1 => (u64::from(u16::from_le_bytes([lead[8], lead[9]])), 10u64),
        2 | 3 => {
            let mut len = [0u8; 4];
            read_at(file, path, &mut len, 8, size)?;
            (u64::from(u32::from_le_bytes(len)), 12u64)
        }
        major => {
            return Err(fail(
                6,
                format!("expected .npy format version 1, 2 or 3, got {major}"),
            ))
        }
    };
    if header_len > MAX_HEADER {
        return Err(fail(
            8,
            format!("header length {header_len} exceeds {MAX_HEADER} bytes: damaged header"),
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    read_at(file, path, &mut header, header_at, size)?;
    let text = String::from_utf8_lossy(&header);
    let descr = dict_value(&text, "descr")
        .ok_or_else(|| fail(header_at, "header has no 'descr'".into()))?;
    let element = match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f4" | "=f4" | "f4" | "float32" => Element::F32,
        "<f8" | "=f8" | "f8" | "float64" => Element::F64,
        other => {
            return Err(fail(
                header_at,
                format!("expected dtype float32 ('<f4') or float64 ('<f8'), got '{other}'"),
            ))
        }
    };
    let order = dict_value(&text, "fortran_order")
        .ok_or_else(|| fail(header_at, "header has no 'fortran_order'".into()))?;
    if order != "False" {
        return Err(fail(
            header_at,
            format!(
                "expected a C-order array (fortran_order False), got fortran_order {order}: \
                 save np.ascontiguousarray(a)"
            ),
        ));
    }
    let shape_text = dict_value(&text, "shape")
        .ok_or_else(|| fail(header_at, "header has no 'shape'".into()))?;
    let shape: Vec<u64> = shape_text
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<u64>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| fail(header_at, format!("cannot read the shape {shape_text}")))?;
    if shape.len() != 2 {
        return Err(fail(
            header_at,
            format!("expected a 2-D array (rows, dimensions), got shape {shape_text}"),
        ));
    }
    let (rows, dims) = (shape[0], shape[1]);
    if !(1..=MAX_DIMENSIONS).contains(&dims) {
        return Err(fail(
            header_at,
            format!("expected 1 to {MAX_DIMENSIONS} dimensions, got shape {shape_text}"),
        ));
    }
    let data_offset = header_at + header_len;
    let row_bytes = dims * element.size();
    let expected = rows
        .checked_mul(row_bytes)
        .and_then(|b| b.checked_add(data_offset))
        .ok_or_else(|| fail(header_at, format!("shape {shape_text} is too large")))?;
    if size != expected {
        let have = size.saturating_sub(data_offset);
        return Err(fail(
            data_offset + have.min(rows * row_bytes),
            format!(
                "{}: the header promises {rows} x {dims} values ({} bytes of data from byte \
                 {data_offset}), the file holds {have}",
                if size < expected {
                    "truncated"
                } else {
                    "trailing bytes"
                },
                rows * row_bytes
            ),
        ));
    }
    Ok(Shape {
        element,
        dims: dims as usize,
        rows,
        data_offset,
        row_bytes,
    })
}

/// The raw text of `key`'s value in a Python dict literal: a quoted string, a tuple, or a word.
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text
        .find(&format!("'{key}'"))
        .or_else(|| text.find(&format!("\"{key}\"")))?;
    let rest = &text[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = match rest.chars().next()? {
        '(' => rest.find(')')? + 1,
        q @ ('\'' | '"') => rest[1..].find(q)? + 2,
        _ => rest.find([',', '}']).unwrap_or(rest.len()),
    };
    Some(rest[..end].trim())
}

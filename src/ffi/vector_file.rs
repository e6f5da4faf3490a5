//! Vector files (see `vector_file`): what `read_npy` / `read_fvecs` / `read_bvecs` /
//! `read_ivecs` stream, block by block from several threads.

use super::{slice_mut, with_status, HnswStatus};
use crate::error::Error;
use crate::vector_file::{VectorFile, VectorFileKind};
use std::ffi::{c_char, CStr};

/// `kind` codes of `hnsw_rs_vector_file_open`.
pub const HNSW_VECTOR_FILE_NPY: u32 = 0;
pub const HNSW_VECTOR_FILE_FVECS: u32 = 1;
pub const HNSW_VECTOR_FILE_BVECS: u32 = 2;
pub const HNSW_VECTOR_FILE_IVECS: u32 = 3;

/// An open vector file; reads take `&self`, so threads share one handle.
pub struct HnswRsVectorFile(VectorFile);

/// Opens `path` as the format `kind` (0 npy, 1 fvecs, 2 bvecs, 3 ivecs), checking its header
/// and size; null on error.
///
/// # Safety
/// `path` a NUL-terminated string; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_vector_file_open(
    path: *const c_char,
    kind: u32,
    status: *mut HnswStatus,
) -> *mut HnswRsVectorFile {
    with_status(status, std::ptr::null_mut(), || {
        let path = CStr::from_ptr(path).to_string_lossy().into_owned();
        let kind = match kind {
            HNSW_VECTOR_FILE_NPY => VectorFileKind::Npy,
            HNSW_VECTOR_FILE_FVECS => VectorFileKind::Fvecs,
            HNSW_VECTOR_FILE_BVECS => VectorFileKind::Bvecs,
            HNSW_VECTOR_FILE_IVECS => VectorFileKind::Ivecs,
            other => {
                return Err(Error::ParameterConflict(format!(
                    "unknown vector file kind {other}"
                )))
            }
        };
        let file = VectorFile::open_as(&path, kind)?;
        Ok(Box::into_raw(Box::new(HnswRsVectorFile(file))))
    })
}

/// Rows in the file.
///
/// # Safety
/// `file` from `hnsw_rs_vector_file_open`.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_vector_file_rows(file: *const HnswRsVectorFile) -> u64 {
    (*file).0.rows()
}

/// Values per row.
///
/// # Safety
/// `file` from `hnsw_rs_vector_file_open`.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_vector_file_dims(file: *const HnswRsVectorFile) -> usize {
    (*file).0.dims()
}

/// True when the values are integers (`.ivecs`): read them with `hnsw_rs_vector_file_read_i32`.
///
/// # Safety
/// `file` from `hnsw_rs_vector_file_open`.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_vector_file_is_integer(file: *const HnswRsVectorFile) -> bool {
    (*file).0.is_integer()
}

/// Reads up to `rows` rows from row `start` as float32 into `out` (`rows * dims` values);
/// returns how many it read (0 at the end, or on error).
///
/// # Safety
/// `file` from `hnsw_rs_vector_file_open`; `out` writable for `rows * dims` floats; `status`
/// valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_vector_file_read_f32(
    file: *const HnswRsVectorFile,
    start: u64,
    rows: usize,
    out: *mut f32,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let file = &(*file).0;
        file.read_f32(start, slice_mut(out, rows * file.dims()))
    })
}

/// Reads up to `rows` rows of an `.ivecs` file from row `start` as int32 into `out`.
///
/// # Safety
/// As `hnsw_rs_vector_file_read_f32`, with `out` writable for `rows * dims` int32 values.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_vector_file_read_i32(
    file: *const HnswRsVectorFile,
    start: u64,
    rows: usize,
    out: *mut i32,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let file = &(*file).0;
        file.read_i32(start, slice_mut(out, rows * file.dims()))
    })
}

/// Closes a vector file (null is ignored).
///
/// # Safety
/// `file` from `hnsw_rs_vector_file_open` (or null), not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_vector_file_free(file: *mut HnswRsVectorFile) {
    if !file.is_null() {
        drop(Box::from_raw(file));
    }
}

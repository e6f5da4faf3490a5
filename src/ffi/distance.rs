//! Distance functions for SQL: one pair of arrays (or one array) per call.

use super::{slice, slice_mut, with_status, HnswStatus};
use crate::distance;
use std::ffi::c_char;

/// NUL-terminated extension version.
#[no_mangle]
pub extern "C" fn hnsw_rs_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// NUL-terminated name of the distance kernels in use (`scalar`, `avx2`, `avx512`).
///
/// # Safety
/// `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_simd_name(status: *mut HnswStatus) -> *const c_char {
    with_status(status, c"unknown".as_ptr(), || {
        Ok(match distance::kernels().name() {
            "avx512" => c"avx512".as_ptr(),
            "avx2" => c"avx2".as_ptr(),
            _ => c"scalar".as_ptr(),
        })
    })
}

/// Squared Euclidean distance of two `float[n]`.
///
/// # Safety
/// `a` and `b` must be valid for `n` reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_l2sq_f32(
    a: *const f32,
    b: *const f32,
    n: usize,
    status: *mut HnswStatus,
) -> f32 {
    with_status(status, f32::NAN, || {
        Ok(distance::l2sq(slice(a, n), slice(b, n)))
    })
}

/// Manhattan distance of two `float[n]`.
///
/// # Safety
/// `a` and `b` must be valid for `n` reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_l1_f32(
    a: *const f32,
    b: *const f32,
    n: usize,
    status: *mut HnswStatus,
) -> f32 {
    with_status(status, f32::NAN, || {
        Ok(distance::l1(slice(a, n), slice(b, n)))
    })
}

/// Squared Euclidean distance of two `double[n]`.
///
/// # Safety
/// `a` and `b` must be valid for `n` reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_l2sq_f64(
    a: *const f64,
    b: *const f64,
    n: usize,
    status: *mut HnswStatus,
) -> f64 {
    with_status(status, f64::NAN, || {
        Ok(distance::l2sq_f64(slice(a, n), slice(b, n)))
    })
}

/// Manhattan distance of two `double[n]`.
///
/// # Safety
/// `a` and `b` must be valid for `n` reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_l1_f64(
    a: *const f64,
    b: *const f64,
    n: usize,
    status: *mut HnswStatus,
) -> f64 {
    with_status(status, f64::NAN, || {
        Ok(distance::l1_f64(slice(a, n), slice(b, n)))
    })
}

/// Writes `v / |v|` (zero stays zero) of a `float[n]` into `out`.
///
/// # Safety
/// `v` must be valid for `n` reads and `out` for `n` writes; they may not overlap; `status`
/// valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_normalize_f32(
    v: *const f32,
    out: *mut f32,
    n: usize,
    status: *mut HnswStatus,
) {
    with_status(status, (), || {
        distance::normalize_into(slice(v, n), slice_mut(out, n));
        Ok(())
    })
}

/// Writes `v / |v|` (zero stays zero) of a `double[n]` into `out`.
///
/// # Safety
/// `v` must be valid for `n` reads and `out` for `n` writes; they may not overlap; `status`
/// valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_normalize_f64(
    v: *const f64,
    out: *mut f64,
    n: usize,
    status: *mut HnswStatus,
) {
    with_status(status, (), || {
        distance::normalize_f64_into(slice(v, n), slice_mut(out, n));
        Ok(())
    })
}

//! C ABI for the C++ bridge. Every function catches panics: none may unwind into C++.

use crate::distance;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into `fallback`.
fn guarded<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// NUL-terminated extension version.
#[no_mangle]
pub extern "C" fn hnsw_rs_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// NUL-terminated name of the distance kernels in use (`scalar`, `avx2`, `avx512`).
#[no_mangle]
pub extern "C" fn hnsw_rs_simd_name() -> *const c_char {
    guarded(c"unknown".as_ptr(), || match distance::kernels().name() {
        "avx512" => c"avx512".as_ptr(),
        "avx2" => c"avx2".as_ptr(),
        _ => c"scalar".as_ptr(),
    })
}

/// Builds a slice, allowing a dangling pointer for length 0.
///
/// # Safety
/// `p` must be valid for `n` reads when `n > 0`.
unsafe fn slice<'a, T>(p: *const T, n: usize) -> &'a [T] {
    if n == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p, n)
    }
}

/// Squared Euclidean distance of two `float[n]`.
///
/// # Safety
/// `a` and `b` must be valid for `n` reads.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_l2sq_f32(a: *const f32, b: *const f32, n: usize) -> f32 {
    guarded(f32::NAN, || distance::l2sq(slice(a, n), slice(b, n)))
}

/// Manhattan distance of two `float[n]`.
///
/// # Safety
/// `a` and `b` must be valid for `n` reads.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_l1_f32(a: *const f32, b: *const f32, n: usize) -> f32 {
    guarded(f32::NAN, || distance::l1(slice(a, n), slice(b, n)))
}

/// Squared Euclidean distance of two `double[n]`.
///
/// # Safety
/// `a` and `b` must be valid for `n` reads.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_l2sq_f64(a: *const f64, b: *const f64, n: usize) -> f64 {
    guarded(f64::NAN, || distance::l2sq_f64(slice(a, n), slice(b, n)))
}

/// Manhattan distance of two `double[n]`.
///
/// # Safety
/// `a` and `b` must be valid for `n` reads.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_l1_f64(a: *const f64, b: *const f64, n: usize) -> f64 {
    guarded(f64::NAN, || distance::l1_f64(slice(a, n), slice(b, n)))
}

/// Writes `v / |v|` (zero stays zero) of a `float[n]` into `out`.
///
/// # Safety
/// `v` must be valid for `n` reads and `out` for `n` writes; they may not overlap.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_normalize_f32(v: *const f32, out: *mut f32, n: usize) {
    guarded((), || {
        if n > 0 {
            distance::normalize_into(slice(v, n), std::slice::from_raw_parts_mut(out, n));
        }
    })
}

/// Writes `v / |v|` (zero stays zero) of a `double[n]` into `out`.
///
/// # Safety
/// `v` must be valid for `n` reads and `out` for `n` writes; they may not overlap.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_normalize_f64(v: *const f64, out: *mut f64, n: usize) {
    guarded((), || {
        if n > 0 {
            distance::normalize_f64_into(slice(v, n), std::slice::from_raw_parts_mut(out, n));
        }
    })
}

//! The C ABI the C++ bridge calls, by interface: distance functions (`distance`), the index
//! handle (`index`), filtered search (`filter`), paged images (`image`) and embedding files (`vector_file`). Its header, `hnsw_ffi.h` beside this file, is
//! generated from these sources by cbindgen (`make header`; `tests/c_header.rs` fails when it is
//! stale).
//!
//! Every function that can fail reports through an [`HnswStatus`]: invalid input, corrupt stored
//! data, or an internal error (a panic: no panic ever unwinds into C++).

mod benchmark;
mod distance;
mod filter;
mod image;
mod index;
mod vector_file;

pub use benchmark::*;
pub use distance::*;
pub use filter::*;
pub use image::*;
pub use index::*;
pub use vector_file::*;

use crate::error::Error;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Success.
pub const HNSW_OK: i32 = 0;
/// Invalid input: a vector, parameter or label the index cannot take.
pub const HNSW_INVALID_INPUT: i32 = 1;
/// Stored data that cannot be read: damaged, truncated, foreign or of another format version.
pub const HNSW_CORRUPT: i32 = 2;
/// A panic inside the core (a bug); the message says where.
pub const HNSW_INTERNAL: i32 = 3;

/// Outcome of a call: `code` is one of the `HNSW_*` codes; `message` says what went wrong.
#[repr(C)]
pub struct HnswStatus {
    pub code: i32,
    pub message: [c_char; 480],
}

impl HnswStatus {
    fn set(&mut self, code: i32, message: &str) {
        self.code = code;
        let bytes = message.as_bytes();
        let n = bytes.len().min(self.message.len() - 1);
        for (dst, &src) in self.message.iter_mut().zip(&bytes[..n]) {
            *dst = src as c_char;
        }
        self.message[n] = 0;
    }
}

/// The status code of a core error.
fn error_code(error: &Error) -> i32 {
    match error {
        Error::Corrupt(_) | Error::UnsupportedVersion { .. } => HNSW_CORRUPT,
        _ => HNSW_INVALID_INPUT,
    }
}

/// Runs `f`, reporting its error or panic through `status` (which may be null) and returning
/// `fallback` then.
fn with_status<T>(status: *mut HnswStatus, fallback: T, f: impl FnOnce() -> crate::Result<T>) -> T {
    let outcome = catch_unwind(AssertUnwindSafe(f));
    // SAFETY: the caller passes a valid status or null.
    let status = unsafe { status.as_mut() };
    match outcome {
        Ok(Ok(value)) => {
            if let Some(s) = status {
                s.set(HNSW_OK, "");
            }
            value
        }
        Ok(Err(e)) => {
            if let Some(s) = status {
                s.set(error_code(&e), &e.to_string());
            }
            fallback
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            if let Some(s) = status {
                s.set(
                    HNSW_INTERNAL,
                    &format!("internal error in the hnsw core: {what}"),
                );
            }
            fallback
        }
    }
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

/// Builds a mutable slice, allowing a dangling pointer for length 0.
///
/// # Safety
/// `p` must be valid for `n` writes when `n > 0`, and not aliased.
unsafe fn slice_mut<'a, T>(p: *mut T, n: usize) -> &'a mut [T] {
    if n == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(p, n)
    }
}

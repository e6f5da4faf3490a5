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

// ---------------------------------------------------------------------------------------------
// Index handle. The C++ side owns the pointer; inserts, deletes and searches may run from many
// threads at once, compaction needs the caller's exclusive lock.

use crate::{Hnsw, MetricKind, Params};

/// Outcome of a fallible call: `code` 0 means success, else `message` says what went wrong.
#[repr(C)]
pub struct HnswStatus {
    pub code: i32,
    pub message: [c_char; 480],
}

/// Error codes in [`HnswStatus::code`].
pub const HNSW_OK: i32 = 0;
/// Invalid input (vector, parameter, label).
pub const HNSW_INVALID_INPUT: i32 = 1;
/// A panic inside the core (a bug); the message says where.
pub const HNSW_INTERNAL: i32 = 2;

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

/// Runs `f`, reporting errors and panics through `status` (which may be null).
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
                s.set(HNSW_INVALID_INPUT, &e.to_string());
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

/// Index parameters as passed from C (signed, so that negative SQL values get range errors).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HnswParams {
    /// 1 l2sq, 2 cosine, 3 ip.
    pub metric: u8,
    pub dim: i64,
    pub m: i64,
    /// 0 means the default, 2·M.
    pub m0: i64,
    pub ef_construction: i64,
    pub ef_search: i64,
}

/// What an index reports about itself.
#[repr(C)]
#[derive(Default)]
pub struct HnswStats {
    pub count: usize,
    pub deleted: usize,
    pub retired: usize,
    pub slots: usize,
    pub layers: usize,
    pub memory_bytes: usize,
}

fn to_params(p: &HnswParams) -> crate::Result<Params> {
    let metric = MetricKind::from_code(p.metric).ok_or_else(|| {
        crate::Error::ParameterConflict(format!("unknown metric code {}", p.metric))
    })?;
    // Negative values fail the same range checks as the builder's, with the same message.
    let unsigned = |name: &'static str, v: i64, min: usize, max: usize| -> crate::Result<usize> {
        if v < 0 {
            return Err(crate::Error::Parameter {
                name,
                value: v,
                min: min as u64,
                max: max as u64,
            });
        }
        Ok(v as usize)
    };
    use crate::params::*;
    let mut b = Params::builder(metric, unsigned("dimensions", p.dim, 1, DIM_MAX)?)
        .m(unsigned("M", p.m, M_MIN, M_MAX)?)
        .ef_construction(unsigned(
            "ef_construction",
            p.ef_construction,
            EF_CONSTRUCTION_MIN,
            EF_CONSTRUCTION_MAX,
        )?)
        .ef_search(unsigned(
            "ef_search",
            p.ef_search,
            EF_SEARCH_MIN,
            EF_SEARCH_MAX,
        )?);
    if p.m0 != 0 {
        b = b.m0(unsigned("M0", p.m0, M_MIN, M0_MAX)?);
    }
    b.build()
}

/// Metric code for an option value (`l2sq`, `cosine`, `ip`; case-insensitive), or 0.
///
/// # Safety
/// `name` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_metric_code(name: *const c_char) -> u8 {
    guarded(0, || {
        let name = std::ffi::CStr::from_ptr(name).to_string_lossy();
        MetricKind::from_name(&name).map_or(0, |m| m.code())
    })
}

/// Default parameters (as `vss`): M=16, M0=2M, ef_construction=128, ef_search=64.
#[no_mangle]
pub extern "C" fn hnsw_rs_default_params() -> HnswParams {
    HnswParams {
        metric: MetricKind::L2sq.code(),
        dim: 0,
        m: crate::params::M_DEFAULT as i64,
        m0: 0,
        ef_construction: crate::params::EF_CONSTRUCTION_DEFAULT as i64,
        ef_search: crate::params::EF_SEARCH_DEFAULT as i64,
    }
}

/// Checks parameters; on success fills in derived defaults (M0) and returns 1.
///
/// # Safety
/// `params` must be valid for reads and writes; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_params_check(
    params: *mut HnswParams,
    status: *mut HnswStatus,
) -> i32 {
    with_status(status, 0, || {
        let p = to_params(&*params)?;
        (*params).m0 = p.m0 as i64;
        Ok(1)
    })
}

/// A new empty index, or null with `status` set.
///
/// # Safety
/// `params` must be valid for reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_new(
    params: *const HnswParams,
    status: *mut HnswStatus,
) -> *mut Hnsw {
    with_status(status, std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(Hnsw::new(to_params(&*params)?)?)))
    })
}

/// Frees an index made by `hnsw_rs_index_new` (null is ignored).
///
/// # Safety
/// `index` must come from `hnsw_rs_index_new` and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_free(index: *mut Hnsw) {
    if !index.is_null() {
        guarded((), || drop(Box::from_raw(index)));
    }
}

/// Checks that a vector can be indexed (dimension, finite, non-zero for cosine); 1 if so.
///
/// # Safety
/// `index` valid; `v` valid for `dim` reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_check_vector(
    index: *const Hnsw,
    v: *const f32,
    dim: usize,
    status: *mut HnswStatus,
) -> i32 {
    with_status(status, 0, || {
        let mut scratch = Vec::new();
        (*index).prepare_into(slice(v, dim), &mut scratch)?;
        Ok(1)
    })
}

/// Deletes `label`; 1 if it was present.
///
/// # Safety
/// `index` valid.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_delete(index: *const Hnsw, label: u64) -> i32 {
    guarded(0, || (*index).delete(label) as i32)
}

/// Retires a label (hidden from searches, still a candidate); returns 1 if it was searchable.
///
/// # Safety
/// `index` valid.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_retire(index: *const Hnsw, label: u64) -> i32 {
    guarded(0, || (*index).retire(label) as i32)
}

/// Deletes a retired label for good; returns 1 if it was retired.
///
/// # Safety
/// `index` valid.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_purge(index: *const Hnsw, label: u64) -> i32 {
    guarded(0, || (*index).purge(label) as i32)
}

/// Up to `k` nearest labels and distances, closest first; returns how many were written.
///
/// # Safety
/// `index` valid; `q` valid for `dim` reads; `labels`/`distances` valid for `k` writes.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_search(
    index: *const Hnsw,
    q: *const f32,
    dim: usize,
    k: usize,
    ef: usize,
    labels: *mut u64,
    distances: *mut f32,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let hits = (*index).search(slice(q, dim), k, ef)?;
        for (i, hit) in hits.iter().enumerate().take(k) {
            *labels.add(i) = hit.label;
            *distances.add(i) = hit.distance;
        }
        Ok(hits.len().min(k))
    })
}

/// Size and shape of an index.
///
/// # Safety
/// `index` valid; `out` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_stats(index: *const Hnsw, out: *mut HnswStats) {
    guarded((), || {
        let ix = &*index;
        *out = HnswStats {
            count: ix.len(),
            deleted: ix.deleted_count(),
            retired: ix.retired_count(),
            slots: ix.slot_count(),
            layers: ix.layer_count(),
            memory_bytes: ix.memory_bytes(),
        };
    })
}

/// Repairs the graph around deleted nodes with `threads` threads and frees their slots;
/// returns how many.
///
/// # Safety
/// `index` valid, and no other thread may use it during the call.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_compact(index: *mut Hnsw, threads: usize) -> usize {
    guarded(0, || (*index).compact_with_threads(threads).reclaimed)
}

/// Links nodes a search cannot reach (after bulk builds); returns how many.
///
/// # Safety
/// `index` valid, and no other thread may use it during the call.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_reconnect(index: *mut Hnsw) -> usize {
    guarded(0, || (*index).reconnect())
}

/// Candidates for exact re-ranking: up to `cap` labels and distances, closest first, from a
/// graph search with `ef` (raised to `k`). If the graph search finds fewer than
/// min(k, indexed rows), an exact brute-force search answers instead. Returns the count.
///
/// # Safety
/// `index` valid; `q` valid for `dim` reads; `labels`/`distances` valid for `cap` writes.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_candidates(
    index: *const Hnsw,
    q: *const f32,
    dim: usize,
    k: usize,
    ef: usize,
    cap: usize,
    labels: *mut u64,
    distances: *mut f32,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let ix = &*index;
        let query = slice(q, dim);
        let mut hits = ix.search_candidates(query, k, ef)?;
        if hits.len() < k.min(ix.len() + ix.retired_count()) {
            hits = ix.search_exact_hiding(query, k, crate::graph::DELETED)?;
        }
        for (i, hit) in hits.iter().enumerate().take(cap) {
            *labels.add(i) = hit.label;
            *distances.add(i) = hit.distance;
        }
        Ok(hits.len().min(cap))
    })
}

/// Inserts `n` vectors (row-major) under `labels` with `threads` threads; 1 on success.
///
/// # Safety
/// `index` valid; `labels` valid for `n` reads; `vectors` for `n * dim` reads.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_insert_batch(
    index: *const Hnsw,
    labels: *const u64,
    vectors: *const f32,
    n: usize,
    dim: usize,
    threads: usize,
    status: *mut HnswStatus,
) -> i32 {
    with_status(status, 0, || {
        let ix = &*index;
        if dim != ix.dim() {
            return Err(crate::Error::DimensionMismatch {
                expected: ix.dim(),
                got: dim,
            });
        }
        ix.insert_labeled_batch(slice(vectors, n * dim), slice(labels, n), threads)
            .map(|()| 1)
    })
}

/// The parameters an index was built with (after loading, they come from the stored image).
///
/// # Safety
/// `index` must be a live handle.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_params(index: *const Hnsw) -> HnswParams {
    guarded(hnsw_rs_default_params(), || {
        let p = (*index).params();
        HnswParams {
            metric: p.metric.code(),
            dim: p.dim as i64,
            m: p.m as i64,
            m0: p.m0 as i64,
            ef_construction: p.ef_construction as i64,
            ef_search: p.ef_search as i64,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Paged images (see `paged`): how the bridge stores an index in DuckDB's blocks.

use crate::paged::{ImageReader, ImageWriter};

/// Plans the paged image of `index`; `*pages` receives its page count.
///
/// # Safety
/// `index` must be a live handle that no one modifies until the image is freed; `pages` must
/// be writable.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_image_new(
    index: *const Hnsw,
    page_size: usize,
    pages: *mut usize,
    status: *mut HnswStatus,
) -> *mut ImageWriter {
    with_status(status, std::ptr::null_mut(), || {
        let image = ImageWriter::new(&*index, page_size)?;
        *pages = image.pages();
        Ok(Box::into_raw(Box::new(image)))
    })
}

/// Renders page `page` into `out` (`cap` ≥ page size bytes; the tail past the page's length is
/// zeroed); returns the page's length (0 on error) and its checksum in `*checksum`.
///
/// # Safety
/// `image` from `hnsw_rs_image_new` for this `index`; `out` writable for `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_image_render(
    image: *mut ImageWriter,
    index: *const Hnsw,
    page: usize,
    out: *mut u8,
    cap: usize,
    checksum: *mut u64,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let (len, sum) =
            (*image).render(&*index, page, std::slice::from_raw_parts_mut(out, cap))?;
        *checksum = sum;
        Ok(len)
    })
}

/// Frees an image plan.
///
/// # Safety
/// `image` from `hnsw_rs_image_new` (or null), not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_image_free(image: *mut ImageWriter) {
    if !image.is_null() {
        guarded((), || drop(Box::from_raw(image)));
    }
}

/// Starts loading an image from its first page; `*pages` receives the image's page count.
///
/// # Safety
/// `first` readable for `len` bytes; `pages` writable.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_reader_new(
    first: *const u8,
    len: usize,
    pages: *mut usize,
    status: *mut HnswStatus,
) -> *mut ImageReader {
    with_status(status, std::ptr::null_mut(), || {
        let reader = ImageReader::new(slice(first, len))?;
        *pages = reader.pages();
        Ok(Box::into_raw(Box::new(reader)))
    })
}

/// Adds page `page` (meta pages first); `*checksum` receives its checksum. 1 on success.
///
/// # Safety
/// `reader` from `hnsw_rs_reader_new`; `bytes` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_reader_add(
    reader: *mut ImageReader,
    page: usize,
    bytes: *const u8,
    len: usize,
    checksum: *mut u64,
    status: *mut HnswStatus,
) -> i32 {
    with_status(status, 0, || {
        *checksum = (*reader).add_page(page, slice(bytes, len))?;
        Ok(1)
    })
}

/// Builds the index from a reader that received every page, and frees the reader.
///
/// # Safety
/// `reader` from `hnsw_rs_reader_new`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_reader_finish(
    reader: *mut ImageReader,
    status: *mut HnswStatus,
) -> *mut Hnsw {
    let reader = Box::from_raw(reader);
    with_status(status, std::ptr::null_mut(), move || {
        Ok(Box::into_raw(Box::new(reader.finish()?)))
    })
}

/// Frees a reader without building an index.
///
/// # Safety
/// `reader` from `hnsw_rs_reader_new` (or null), not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_reader_free(reader: *mut ImageReader) {
    if !reader.is_null() {
        guarded((), || drop(Box::from_raw(reader)));
    }
}

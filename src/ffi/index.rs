//! The index handle. The C++ side owns the pointer; inserts, deletes, retirements and searches
//! may run from many threads at once; compaction and relinking need the caller's exclusive lock.

use super::{slice, slice_mut, with_status, HnswStatus};
use crate::params::{
    DIM_MAX, EF_CONSTRUCTION_DEFAULT, EF_CONSTRUCTION_MAX, EF_CONSTRUCTION_MIN, EF_SEARCH_DEFAULT,
    EF_SEARCH_MAX, EF_SEARCH_MIN, M0_MAX, M_DEFAULT, M_MAX, M_MIN, OVERFETCH_MAX,
};
use crate::quantize::Quantization;
use crate::{Error, Hnsw, MetricKind, Neighbor, Params};
use std::ffi::{c_char, c_void, CStr};

/// An index, owned by the C++ side through a pointer.
pub struct HnswRsIndex(pub(crate) Hnsw);

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
    /// 0 f32, 1 int8, 2 bit (see `hnsw_rs_quantization_code`).
    pub quantization: u8,
    /// Candidates per wanted result a quantized index answers with; 0 means its default.
    pub overfetch: i64,
}

/// What an index reports about itself.
#[repr(C)]
#[derive(Default)]
pub struct HnswStats {
    /// Searchable rows.
    pub count: usize,
    /// Deleted nodes waiting for compaction.
    pub deleted: usize,
    /// Retired rows: hidden from new readers, candidates for older snapshots.
    pub retired: usize,
    pub slots: usize,
    pub layers: usize,
    pub memory_bytes: usize,
    /// Bytes one stored vector takes (its floats or its code).
    pub code_bytes: usize,
    /// Vector components clamped to learned int8 ranges since the index was built or loaded.
    pub clamped: u64,
}

/// True while an active snapshot started before commit `commit` (it may still see rows that
/// commit deleted); `context` is the caller's.
pub type HnswSnapshotPredates = extern "C" fn(context: *mut c_void, commit: u64) -> bool;

/// Checks C parameters with the builder's ranges and messages (negative values included).
fn to_params(p: &HnswParams) -> crate::Result<Params> {
    let metric = MetricKind::from_code(p.metric)
        .ok_or_else(|| Error::ParameterConflict(format!("unknown metric code {}", p.metric)))?;
    let unsigned = |name: &'static str, v: i64, min: usize, max: usize| -> crate::Result<usize> {
        usize::try_from(v).map_err(|_| Error::Parameter {
            name,
            value: v,
            min: min as u64,
            max: max as u64,
        })
    };
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
    let quantization = Quantization::from_code(p.quantization).ok_or_else(|| {
        Error::ParameterConflict(format!("unknown quantization code {}", p.quantization))
    })?;
    b = b.quantization(quantization);
    if p.overfetch != 0 {
        b = b.overfetch(unsigned("overfetch", p.overfetch, 1, OVERFETCH_MAX)?);
    }
    b.build()
}

/// Copies up to `cap` hits into the caller's arrays; returns how many.
///
/// # Safety
/// `labels` and `distances` valid for `cap` writes.
pub(super) unsafe fn write_hits(
    hits: &[Neighbor],
    cap: usize,
    labels: *mut u64,
    distances: *mut f32,
) -> usize {
    for (i, hit) in hits.iter().enumerate().take(cap) {
        *labels.add(i) = hit.label;
        *distances.add(i) = hit.distance;
    }
    hits.len().min(cap)
}

/// Metric code for an option value (`l2sq`, `cosine`, `ip`; case-insensitive), or 0.
///
/// # Safety
/// `name` must be a NUL-terminated string; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_metric_code(name: *const c_char, status: *mut HnswStatus) -> u8 {
    with_status(status, 0, || {
        let name = CStr::from_ptr(name).to_string_lossy();
        Ok(MetricKind::from_name(&name).map_or(0, |m| m.code()))
    })
}

/// Largest accepted over-fetch factor (see `Params::overfetch`).
pub const HNSW_OVERFETCH_MAX: usize = 64;
const _: () = assert!(HNSW_OVERFETCH_MAX == OVERFETCH_MAX);

/// Quantization code for an option value (`f32`, `int8`, `bit`; case-insensitive); an error
/// listing the accepted values otherwise.
///
/// # Safety
/// `name` must be a NUL-terminated string; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_quantization_code(
    name: *const c_char,
    status: *mut HnswStatus,
) -> u8 {
    with_status(status, 0, || {
        Ok(Quantization::parse(&CStr::from_ptr(name).to_string_lossy())?.code())
    })
}

/// The option value of a quantization code (`"f32"`, `"int8"`, `"bit"`), or `"unknown"`.
#[no_mangle]
pub extern "C" fn hnsw_rs_quantization_name(code: u8) -> *const c_char {
    match Quantization::from_code(code) {
        Some(Quantization::F32) => c"f32".as_ptr(),
        Some(Quantization::Int8) => c"int8".as_ptr(),
        Some(Quantization::Bit) => c"bit".as_ptr(),
        None => c"unknown".as_ptr(),
    }
}

/// Default parameters (as `vss`): M=16, M0=2M, ef_construction=128, ef_search=64.
#[no_mangle]
pub extern "C" fn hnsw_rs_default_params() -> HnswParams {
    HnswParams {
        metric: MetricKind::L2sq.code(),
        dim: 0,
        m: M_DEFAULT as i64,
        m0: 0,
        ef_construction: EF_CONSTRUCTION_DEFAULT as i64,
        ef_search: EF_SEARCH_DEFAULT as i64,
        quantization: Quantization::F32.code(),
        overfetch: 0,
    }
}

/// Checks parameters; on success fills in derived defaults (M0, overfetch) and returns true.
///
/// # Safety
/// `params` must be valid for reads and writes; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_params_check(
    params: *mut HnswParams,
    status: *mut HnswStatus,
) -> bool {
    with_status(status, false, || {
        let p = to_params(&*params)?;
        (*params).m0 = p.m0 as i64;
        (*params).overfetch = p.overfetch as i64;
        Ok(true)
    })
}

/// Whether the `dim` floats at `v` can be indexed with `params` (see `Params::check_vector`).
///
/// # Safety
/// `params` valid for reads; `v` for `dim` reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_params_check_vector(
    params: *const HnswParams,
    v: *const f32,
    dim: usize,
    status: *mut HnswStatus,
) -> bool {
    with_status(status, false, || {
        to_params(&*params)?.check_vector(slice(v, dim))?;
        Ok(true)
    })
}

/// Bytes an index with `params` grows by, on average, per inserted row (see
/// `Params::bytes_per_row`); 0 with `status` set if the parameters are invalid.
///
/// # Safety
/// `params` valid for reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_params_bytes_per_row(
    params: *const HnswParams,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || Ok(to_params(&*params)?.bytes_per_row()))
}

/// A new empty index, or null with `status` set.
///
/// # Safety
/// `params` must be valid for reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_new(
    params: *const HnswParams,
    status: *mut HnswStatus,
) -> *mut HnswRsIndex {
    with_status(status, std::ptr::null_mut(), || {
        let index = HnswRsIndex(Hnsw::new(to_params(&*params)?)?);
        Ok(Box::into_raw(Box::new(index)))
    })
}

/// Frees an index (null is ignored).
///
/// # Safety
/// `index` must come from this library and not be used afterwards; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_free(index: *mut HnswRsIndex, status: *mut HnswStatus) {
    with_status(status, (), || {
        if !index.is_null() {
            drop(Box::from_raw(index));
        }
        Ok(())
    })
}

/// The parameters an index was built with (after loading, they come from the stored image).
///
/// # Safety
/// `index` valid; `out` valid for writes; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_params(
    index: *const HnswRsIndex,
    out: *mut HnswParams,
    status: *mut HnswStatus,
) {
    with_status(status, (), || {
        let p = (*index).0.params();
        *out = HnswParams {
            metric: p.metric.code(),
            dim: p.dim as i64,
            m: p.m as i64,
            m0: p.m0 as i64,
            ef_construction: p.ef_construction as i64,
            ef_search: p.ef_search as i64,
            quantization: p.quantization.code(),
            overfetch: p.overfetch as i64,
        };
        Ok(())
    })
}

/// Size and shape of an index.
///
/// # Safety
/// `index` valid; `out` valid for writes; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_stats(
    index: *const HnswRsIndex,
    out: *mut HnswStats,
    status: *mut HnswStatus,
) {
    with_status(status, (), || {
        let ix = &(*index).0;
        *out = HnswStats {
            count: ix.len(),
            deleted: ix.deleted_count(),
            retired: ix.retired_count(),
            slots: ix.slot_count(),
            layers: ix.layer_count(),
            memory_bytes: ix.memory_bytes(),
            code_bytes: ix.params().quantization.code_bytes(ix.dim()),
            clamped: ix.clamped_components(),
        };
        Ok(())
    })
}

/// Checks that a vector can be indexed (dimension, finite, non-zero for cosine).
///
/// # Safety
/// `index` valid; `v` valid for `dim` reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_check_vector(
    index: *const HnswRsIndex,
    v: *const f32,
    dim: usize,
    status: *mut HnswStatus,
) -> bool {
    with_status(status, false, || {
        (*index).0.prepare_into(slice(v, dim), &mut Vec::new())?;
        Ok(true)
    })
}

/// Inserts `n` vectors (row-major) under `labels` with up to `threads` threads (fewer for small
/// batches).
///
/// # Safety
/// `index` valid; `labels` valid for `n` reads; `vectors` for `n * dim` reads; `status` valid
/// or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_insert_batch(
    index: *const HnswRsIndex,
    labels: *const u64,
    vectors: *const f32,
    n: usize,
    dim: usize,
    threads: usize,
    status: *mut HnswStatus,
) -> bool {
    with_status(status, false, || {
        let ix = &(*index).0;
        if dim != ix.dim() {
            return Err(Error::DimensionMismatch {
                expected: ix.dim(),
                got: dim,
            });
        }
        ix.insert_batch(slice(vectors, n * dim), slice(labels, n), threads)?;
        Ok(true)
    })
}

/// Writes the labels among `first..first + count` whose nodes will reach layer 1 or above (at most
/// `cap`) to `out`; returns how many.
///
/// # Safety
/// `index` valid; `out` valid for `cap` writes; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_upper_labels(
    index: *const HnswRsIndex,
    first: u64,
    count: u64,
    out: *mut u64,
    cap: usize,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let labels = (*index).0.upper_labels(first, count);
        let n = labels.len().min(cap);
        std::ptr::copy_nonoverlapping(labels.as_ptr(), out, n);
        Ok(n)
    })
}

/// Deletes `label`; true if it was present.
///
/// # Safety
/// `index` valid; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_delete(
    index: *const HnswRsIndex,
    label: u64,
    status: *mut HnswStatus,
) -> bool {
    with_status(status, false, || Ok((*index).0.delete(label)))
}

/// Retires the `n` labels one commit deleted, logged under the database's `last_commit` id;
/// returns how many were searchable.
///
/// # Safety
/// `index` valid; `labels` valid for `n` reads; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_retire_batch(
    index: *const HnswRsIndex,
    labels: *const u64,
    n: usize,
    last_commit: u64,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        Ok((*index).0.retire_batch(slice(labels, n), last_commit))
    })
}

/// Purges the retired labels no active snapshot can see any more; returns how many.
///
/// # Safety
/// `index` valid; `predates` callable with `context`; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_purge_retired(
    index: *const HnswRsIndex,
    last_commit: u64,
    predates: HnswSnapshotPredates,
    context: *mut c_void,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        Ok((*index)
            .0
            .purge_retired(last_commit, |commit| predates(context, commit)))
    })
}

/// Up to `k` nearest searchable labels and distances, closest first; returns how many were
/// written.
///
/// # Safety
/// `index` valid; `q` valid for `dim` reads; `labels`/`distances` valid for `k` writes;
/// `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_search(
    index: *const HnswRsIndex,
    q: *const f32,
    dim: usize,
    k: usize,
    ef: usize,
    labels: *mut u64,
    distances: *mut f32,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let hits = (*index).0.search(slice(q, dim), k, ef)?;
        Ok(write_hits(&hits, k, labels, distances))
    })
}

/// Candidates for exact re-ranking by a reader that checks visibility itself (see
/// `Hnsw::candidates_overfetched`; `overfetch` 0 means the index's): with K = k × the over-fetch
/// factor, at most `3 * max(K, ef)` (in practice `candidates_kept(K, retired)`) labels and
/// distances, closest first, retired labels included; returns how many were written (at most
/// `cap`).
///
/// # Safety
/// `index` valid; `q` valid for `dim` reads; `labels`/`distances` valid for `cap` writes;
/// `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_candidates(
    index: *const HnswRsIndex,
    q: *const f32,
    dim: usize,
    k: usize,
    ef: usize,
    overfetch: usize,
    cap: usize,
    labels: *mut u64,
    distances: *mut f32,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let hits = (*index)
            .0
            .candidates_overfetched(slice(q, dim), k, ef, overfetch)?;
        Ok(write_hits(&hits, cap, labels, distances))
    })
}

/// Whether the index stores vectors bit for bit as inserted (see
/// [`Hnsw::stores_input_vectors`](crate::Hnsw::stores_input_vectors)).
///
/// # Safety
/// `index` valid.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_stores_input_vectors(index: *const HnswRsIndex) -> bool {
    (*index).0.stores_input_vectors()
}

/// Copies the inserted vectors of `n` labels into `out` (`n * dim` floats, row-major); false
/// unless the index has `dim` dimensions, stores vectors as inserted and holds every label (see
/// [`Hnsw::copy_input_vectors`](crate::Hnsw::copy_input_vectors)).
///
/// # Safety
/// `index` valid; `labels` valid for `n` reads; `out` for `n * dim` writes; `status` valid or
/// null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_copy_input_vectors(
    index: *const HnswRsIndex,
    labels: *const u64,
    n: usize,
    dim: usize,
    out: *mut f32,
    status: *mut HnswStatus,
) -> bool {
    with_status(status, false, || {
        // `out` is sized by the caller's dimensions: the core refuses it unless they are the
        // index's, so another index never writes past it.
        Ok((*index)
            .0
            .copy_input_vectors(slice(labels, n), slice_mut(out, n * dim)))
    })
}

/// [`hnsw_rs_index_candidates`] for `n` queries (row-major, `dim` floats each) on up to `threads`
/// threads. Query i's labels go to `labels[i * cap ..]` and their number to `counts[i]` (at most
/// `cap`); `counts[i]` is `usize::MAX` for a query the index cannot search (NaN, zero under
/// cosine), which the caller answers another way.
///
/// # Safety
/// `index` valid; `queries` valid for `n * dim` reads; `labels` for `n * cap` writes; `counts`
/// for `n` writes; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_candidates_batch(
    index: *const HnswRsIndex,
    queries: *const f32,
    n: usize,
    dim: usize,
    k: usize,
    ef: usize,
    overfetch: usize,
    threads: usize,
    cap: usize,
    labels: *mut u64,
    counts: *mut usize,
    status: *mut HnswStatus,
) -> bool {
    with_status(status, false, || {
        let index = &(*index).0;
        if dim != index.dim() {
            return Err(Error::DimensionMismatch {
                expected: index.dim(),
                got: dim,
            });
        }
        let answers = index.candidates_batch(slice(queries, n * dim), k, ef, overfetch, threads);
        for (i, answer) in answers.iter().enumerate() {
            *counts.add(i) = match answer {
                Some(hits) => {
                    for (j, hit) in hits.iter().take(cap).enumerate() {
                        *labels.add(i * cap + j) = hit.label;
                    }
                    hits.len().min(cap)
                }
                None => usize::MAX,
            };
        }
        Ok(true)
    })
}

/// Compacts once deleted nodes reach the core's threshold (any, if `force`), repairing lists
/// with up to `threads` threads; returns the slots freed.
///
/// # Safety
/// `index` valid, and no other thread may use it during the call; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_compact_if_due(
    index: *mut HnswRsIndex,
    threads: usize,
    force: bool,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || Ok((*index).0.compact_if_due(threads, force)))
}

/// Relinks nodes no search can reach, once inserts since the last relink reach the core's
/// threshold (any, if `force`); returns the links added.
///
/// # Safety
/// `index` valid, and no other thread may use it during the call; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_relink_if_due(
    index: *mut HnswRsIndex,
    force: bool,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || Ok((*index).0.relink_if_due(force)))
}

/// Most layers a health report carries (the core's levels are 0..=15).
pub const HNSW_HEALTH_LAYERS: usize = 16;

/// An index's health (see `Hnsw::health`): per layer, then row states and bytes by part.
#[repr(C)]
pub struct HnswHealth {
    pub layer_count: usize,
    pub layer_nodes: [u64; HNSW_HEALTH_LAYERS],
    pub degree_min: [u32; HNSW_HEALTH_LAYERS],
    pub degree_max: [u32; HNSW_HEALTH_LAYERS],
    pub degree_mean: [f64; HNSW_HEALTH_LAYERS],
    pub degree_capacity: [u32; HNSW_HEALTH_LAYERS],
    pub unreachable: u64,
    pub live: u64,
    pub deleted: u64,
    pub retired: u64,
    pub free_slots: u64,
    pub copies: u64,
    pub vector_bytes: u64,
    pub link_bytes: u64,
    pub label_bytes: u64,
    pub compaction_due: bool,
    pub rebuild_advised: bool,
}

/// Walks the index for its health report into `*out`.
///
/// # Safety
/// `index` a live handle; `out` writable; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_health(
    index: *const HnswRsIndex,
    out: *mut HnswHealth,
    status: *mut HnswStatus,
) {
    with_status(status, (), || {
        let h = (*index).0.health();
        let mut report = HnswHealth {
            layer_count: h.layers.len().min(HNSW_HEALTH_LAYERS),
            layer_nodes: [0; HNSW_HEALTH_LAYERS],
            degree_min: [0; HNSW_HEALTH_LAYERS],
            degree_max: [0; HNSW_HEALTH_LAYERS],
            degree_mean: [0.0; HNSW_HEALTH_LAYERS],
            degree_capacity: [0; HNSW_HEALTH_LAYERS],
            unreachable: h.unreachable,
            live: h.live,
            deleted: h.deleted,
            retired: h.retired,
            free_slots: h.free_slots,
            copies: h.copies,
            vector_bytes: h.vector_bytes,
            link_bytes: h.link_bytes,
            label_bytes: h.label_bytes,
            compaction_due: h.compaction_due,
            rebuild_advised: h.rebuild_advised,
        };
        for (i, layer) in h.layers.iter().take(HNSW_HEALTH_LAYERS).enumerate() {
            report.layer_nodes[i] = layer.nodes;
            report.degree_min[i] = layer.degree_min;
            report.degree_max[i] = layer.degree_max;
            report.degree_mean[i] = layer.degree_mean;
            report.degree_capacity[i] = layer.capacity;
        }
        *out = report;
        Ok(())
    })
}

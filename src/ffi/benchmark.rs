//! Benchmarks and tuning (see `benchmark`): what `hnsw_benchmark` and `hnsw_tune` call.

use super::{slice, slice_mut, with_status, HnswRsIndex, HnswStatus};
use crate::benchmark::BenchPoint;
use crate::error::Error;
use crate::rerank::{Rerank, TableVectors};

/// The table's own vectors by row id, for exact answers over a quantized index (see
/// `TableVectors`).
pub struct HnswRsTableVectors(TableVectors);

/// Copies `n` rows (`labels`, and `n * dim` floats row-major) into a new handle, or null with
/// `status` set (a label twice, say).
///
/// # Safety
/// `labels` readable for `n`; `vectors` for `n * dim`; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_table_vectors_new(
    dim: usize,
    labels: *const u64,
    vectors: *const f32,
    n: usize,
    status: *mut HnswStatus,
) -> *mut HnswRsTableVectors {
    with_status(status, std::ptr::null_mut(), || {
        let table = TableVectors::new(
            dim,
            slice(labels, n).to_vec(),
            slice(vectors, n * dim).to_vec(),
        )?;
        Ok(Box::into_raw(Box::new(HnswRsTableVectors(table))))
    })
}

/// Frees a handle from `hnsw_rs_table_vectors_new` (null is ignored).
///
/// # Safety
/// `table` from this library and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_table_vectors_free(table: *mut HnswRsTableVectors) {
    if !table.is_null() {
        drop(Box::from_raw(table));
    }
}

/// The table's vectors behind a nullable handle.
unsafe fn table_ref<'a>(table: *const HnswRsTableVectors) -> Option<&'a TableVectors> {
    table.as_ref().map(|t| &t.0)
}

/// Re-ranking with the table's vectors (if any) from k times `overfetch` candidates.
unsafe fn rerank_of<'a>(table: *const HnswRsTableVectors, overfetch: usize) -> Option<Rerank<'a>> {
    table_ref(table).map(|table| Rerank { table, overfetch })
}

/// Label written where an exact answer has fewer than k rows.
pub const HNSW_NO_LABEL: u64 = u64::MAX;

/// One ef's measurement (see `BenchPoint`).
#[repr(C)]
#[derive(Default)]
pub struct HnswBenchPoint {
    pub ef: usize,
    pub recall: f64,
    pub distances_per_query: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub qps: f64,
}

impl From<&BenchPoint> for HnswBenchPoint {
    fn from(p: &BenchPoint) -> Self {
        HnswBenchPoint {
            ef: p.ef,
            recall: p.recall,
            distances_per_query: p.distances_per_query,
            p50_ms: p.p50_ms,
            p99_ms: p.p99_ms,
            qps: p.qps,
        }
    }
}

/// Writes the exact top `k` labels of each of `count` queries (`count * dim` floats) into `out`
/// (`count * k`, padded with `HNSW_NO_LABEL`), on `threads` threads: over `table`'s vectors, or
/// the index's own when `table` is null.
///
/// # Safety
/// `index` live; `table` live or null; `queries` readable for `count * dim` floats; `out`
/// writable for `count * k`.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_exact_top_k(
    index: *const HnswRsIndex,
    table: *const HnswRsTableVectors,
    queries: *const f32,
    count: usize,
    k: usize,
    threads: usize,
    out: *mut u64,
    status: *mut HnswStatus,
) {
    with_status(status, (), || {
        let ix = &(*index).0;
        let queries = slice(queries, count * ix.dim());
        let truth = match table_ref(table) {
            Some(table) => ix.exact_top_k_of(table, queries, k, threads)?,
            None => ix.exact_top_k(queries, k, threads)?,
        };
        let out = slice_mut(out, count * k);
        for (row, labels) in out.chunks_exact_mut(k.max(1)).zip(&truth) {
            row.fill(HNSW_NO_LABEL);
            row[..labels.len()].copy_from_slice(labels);
        }
        Ok(())
    })
}

/// Measures `count` queries at `ef` against exact answers `truth` (`count * k` labels from
/// `hnsw_rs_index_exact_top_k`) into `*out`; a quantized index's answers are re-ranked with
/// `table`'s vectors when it is not null, from k times `overfetch` candidates (0: the index's).
///
/// # Safety
/// As `hnsw_rs_index_exact_top_k`, with `truth` readable for `count * k` labels and `out` writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn hnsw_rs_index_measure(
    index: *const HnswRsIndex,
    table: *const HnswRsTableVectors,
    queries: *const f32,
    count: usize,
    truth: *const u64,
    k: usize,
    ef: usize,
    overfetch: usize,
    out: *mut HnswBenchPoint,
    status: *mut HnswStatus,
) {
    with_status(status, (), || {
        let ix = &(*index).0;
        let truth: Vec<Vec<u64>> = slice(truth, count * k)
            .chunks_exact(k.max(1))
            .map(|row| {
                row.iter()
                    .copied()
                    .filter(|&l| l != HNSW_NO_LABEL)
                    .collect()
            })
            .collect();
        let point = ix.measure(
            slice(queries, count * ix.dim()),
            &truth,
            k,
            ef,
            rerank_of(table, overfetch),
        )?;
        *out = HnswBenchPoint::from(&point);
        Ok(())
    })
}

/// Writes up to `count` sampled queries (stored rows moved towards a neighbour) into `out`;
/// returns how many.
///
/// # Safety
/// `index` live; `out` writable for `count * dim` floats; `status` valid or null.
#[no_mangle]
pub unsafe extern "C" fn hnsw_rs_index_sample_queries(
    index: *const HnswRsIndex,
    count: usize,
    seed: u64,
    out: *mut f32,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let ix = &(*index).0;
        let queries = ix.sample_queries(count, seed)?;
        slice_mut(out, queries.len()).copy_from_slice(&queries);
        Ok(queries.len() / ix.dim())
    })
}

/// Finds the smallest ef reaching `target` recall@k on the queries; writes the measured points
/// (at most `capacity`, ef ascending) to `points` and their number to `*point_count`; returns the
/// ef, or 0 when no ef up to the tuning maximum reaches the target. With `table` (not null), the
/// answers and a quantized index's re-ranking (of k times `overfetch` candidates, 0: the index's)
/// use its vectors.
///
/// # Safety
/// `index` live; `table` live or null; `queries` readable for `count * dim`; `points` writable
/// for `capacity`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn hnsw_rs_index_tune_ef(
    index: *const HnswRsIndex,
    table: *const HnswRsTableVectors,
    queries: *const f32,
    count: usize,
    k: usize,
    target: f64,
    threads: usize,
    overfetch: usize,
    points: *mut HnswBenchPoint,
    capacity: usize,
    point_count: *mut usize,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let ix = &(*index).0;
        if count == 0 {
            return Err(Error::ParameterConflict(
                "hnsw_tune needs at least one query".into(),
            ));
        }
        let (ef, measured) = ix.tune_ef(
            slice(queries, count * ix.dim()),
            k,
            target,
            threads,
            rerank_of(table, overfetch),
        )?;
        let out = slice_mut(points, capacity);
        for (dst, p) in out.iter_mut().zip(&measured) {
            *dst = HnswBenchPoint::from(p);
        }
        *point_count = measured.len().min(capacity);
        Ok(ef.unwrap_or(0))
    })
}

/// Writes the `k` of `n` rows (`labels`, and `n * dim` floats row-major) closest to `q` by exact
/// distance in the index's units into `out_labels` / `out_distances`, closest first, ties by
/// label; returns how many (at most `k`).
///
/// # Safety
/// `index` live; `q` readable for `dim`; `labels` for `n`; `vectors` for `n * dim`; the outputs
/// writable for `k`; `status` valid or null.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn hnsw_rs_index_rerank(
    index: *const HnswRsIndex,
    q: *const f32,
    dim: usize,
    labels: *const u64,
    vectors: *const f32,
    n: usize,
    k: usize,
    out_labels: *mut u64,
    out_distances: *mut f32,
    status: *mut HnswStatus,
) -> usize {
    with_status(status, 0, || {
        let ix = &(*index).0;
        if dim != ix.dim() {
            return Err(Error::DimensionMismatch {
                expected: ix.dim(),
                got: dim,
            });
        }
        let best = ix.rerank(slice(q, dim), slice(labels, n), slice(vectors, n * dim), k)?;
        Ok(super::index::write_hits(
            &best,
            k,
            out_labels,
            out_distances,
        ))
    })
}

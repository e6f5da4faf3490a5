// The Rust core's index handle as a C++ object: one method per C ABI function (src/ffi), each
// turning the core's status into a DuckDB exception of the matching kind.
#pragma once

#include "hnsw_ffi.h"

#include "duckdb.hpp"

namespace duckdb {
namespace hnsw {

//! Throws the DuckDB exception for a failed core call, prefixed by `context`: invalid input is
//! an InvalidInputException, unreadable stored data an IOException, and a bug in the core an
//! ExecutorException (not an InternalException: DuckDB invalidates the database on those).
void ThrowCoreError(const HnswStatus &status, const string &context);

//! A status for one core call; Check() throws if the call failed.
struct CoreStatus {
	HnswStatus status{};
	HnswStatus *Out() {
		return &status;
	}
	void Check(const string &context) const {
		if (status.code != HNSW_OK) {
			ThrowCoreError(status, context);
		}
	}
};

//! Bytes an index with `params` grows by, on average, per inserted row (see Params::bytes_per_row).
idx_t BytesPerRow(const HnswParams &params);

//! Owns a Rust index handle.
class RustIndex {
public:
	explicit RustIndex(const HnswParams &params);
	//! Takes ownership of a handle (an index loaded from storage).
	explicit RustIndex(HnswRsIndex *handle);
	~RustIndex();
	RustIndex(const RustIndex &) = delete;
	RustIndex &operator=(const RustIndex &) = delete;

	//! Throws InvalidInputException with the core's message if the vector cannot be indexed.
	void CheckVector(const float *v, idx_t dim, const string &context) const;
	//! Inserts n row-major vectors with up to `threads` threads (thread-safe).
	void InsertBatch(const vector<uint64_t> &labels, const vector<float> &vectors, idx_t threads,
	                 const string &context) const;
	//! Retires the row ids one commit deleted (hidden from searches, still candidates for older
	//! snapshots), logged under the database's last commit id; returns how many were indexed.
	idx_t RetireBatch(const vector<row_t> &row_ids, transaction_t last_commit) const;
	//! Purges retired rows no active snapshot of `db` can see any more; returns how many.
	idx_t PurgeRetired(AttachedDatabase &db) const;
	//! The row ids among first..first+count whose nodes will reach layer 1 or above (a sample of
	//! about one row in M, chosen as the core chooses levels).
	vector<row_t> UpperLabels(idx_t first, idx_t count) const;
	//! Up to k nearest row ids and distances, closest first.
	idx_t Search(const float *q, idx_t dim, idx_t k, idx_t ef, vector<row_t> &row_ids, vector<float> &distances) const;
	//! Candidates for exact re-ranking by a reader that checks visibility itself (retired rows
	//! included; see Hnsw::candidates_overfetched), closest first: a quantized index answers for
	//! k times `overfetch` (0: its own option).
	idx_t Candidates(const float *q, idx_t dim, idx_t k, idx_t ef, idx_t overfetch, vector<row_t> &row_ids) const;
	//! Candidates() for n row-major queries on up to `threads` threads: row_ids[i] holds query i's
	//! candidates, searched[i] is false for a query the index cannot search (NaN, zero vector).
	void CandidatesBatch(const float *queries, idx_t n, idx_t dim, idx_t k, idx_t ef, idx_t overfetch, idx_t threads,
	                     vector<vector<row_t>> &row_ids, vector<bool> &searched) const;
	//! Whether the index stores vectors bit for bit as inserted (float32 under l2sq or ip).
	bool StoresInputVectors() const;
	//! Copies the inserted vectors of `n` row ids into `out` (n * dim floats, row-major); false
	//! unless StoresInputVectors(), the index has `dim` dimensions and holds every one of them.
	bool CopyInputVectors(const row_t *row_ids, idx_t n, idx_t dim, float *out) const;
	//! Candidates among `matches` (the rows a predicate matched that the reader sees), at least
	//! min(k, matching indexed rows), none beyond `max_distance` (metric units); see
	//! Hnsw::candidates_filtered. `report` says which strategy answered.
	idx_t CandidatesFiltered(const float *q, idx_t dim, idx_t k, idx_t ef, const vector<row_t> &matches,
	                         float max_distance, const HnswFilterSettings &settings, vector<row_t> &row_ids,
	                         HnswFilterReport &report) const;
	HnswStats Stats() const;
	//! Walks the graph for hnsw_index_health (see Hnsw::health).
	HnswHealth Health() const;
	//! The exact top k labels of each of n row-major queries on `threads` threads, n * k labels
	//! padded with HNSW_NO_LABEL where the index holds fewer than k rows: over `table`'s vectors,
	//! or the index's own when `table` is null.
	vector<uint64_t> ExactTopK(const HnswRsTableVectors *table, const vector<float> &queries, idx_t k,
	                           idx_t threads) const;
	//! Recall@k against `truth` (from ExactTopK), distances per query and the latency of single
	//! searches at `ef`, run one after another; with `table`, a quantized index's answers (k times
	//! `overfetch` candidates, 0: the index's) are re-ranked with its vectors, as a query's are.
	HnswBenchPoint Measure(const HnswRsTableVectors *table, const vector<float> &queries, const vector<uint64_t> &truth,
	                       idx_t k, idx_t ef, idx_t overfetch) const;
	//! The k of `labels` (their `vectors` row-major) closest to `q` by exact distance, closest first.
	idx_t Rerank(const float *q, idx_t dim, const vector<uint64_t> &labels, const vector<float> &vectors, idx_t k,
	             vector<row_t> &row_ids, vector<float> &distances) const;
	//! Up to `count` queries near stored rows but not on them (see Hnsw::sample_queries).
	vector<float> SampleQueries(idx_t count, uint64_t seed) const;
	//! The smallest ef reaching `target` recall@k (0: none up to the tuning maximum) and every
	//! point measured on the way, ef ascending.
	idx_t TuneEf(const HnswRsTableVectors *table, const vector<float> &queries, idx_t k, double target, idx_t threads,
	             idx_t overfetch, vector<HnswBenchPoint> &points) const;
	//! Compacts deleted nodes once they are worth it (any, if `force`) with up to `threads`
	//! threads; returns the slots freed. The caller holds exclusive access.
	idx_t CompactIfDue(idx_t threads, bool force);
	//! Relinks nodes no search could reach once inserts are worth it (any, if `force`). The
	//! caller holds exclusive access.
	idx_t RelinkIfDue(bool force);
	//! The parameters the graph was built with.
	HnswParams Params() const;
	const HnswRsIndex *Handle() const {
		return handle;
	}

private:
	HnswRsIndex *handle;
};

//! Owns a copy of the indexed column's vectors by row id (see TableVectors in the core).
class RustTableVectors {
public:
	RustTableVectors(idx_t dim, const vector<uint64_t> &labels, const vector<float> &vectors);
	~RustTableVectors();
	RustTableVectors(const RustTableVectors &) = delete;
	RustTableVectors &operator=(const RustTableVectors &) = delete;
	const HnswRsTableVectors *Handle() const {
		return handle;
	}

private:
	HnswRsTableVectors *handle;
};

} // namespace hnsw
} // namespace duckdb

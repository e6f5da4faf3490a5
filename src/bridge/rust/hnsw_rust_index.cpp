// RustIndex: the C ABI calls and the mapping of core errors to DuckDB exceptions.
#include "rust/hnsw_rust_index.hpp"
#include "hnsw_compat.hpp"

namespace duckdb {
namespace hnsw {

void ThrowCoreError(const HnswStatus &status, const string &context) {
	switch (status.code) {
	case HNSW_INVALID_INPUT:
		throw InvalidInputException("%s: %s", context, status.message);
	case HNSW_CORRUPT:
		throw IOException("%s: %s", context, status.message);
	default:
		throw ExecutorException("%s: %s (a bug in the hnsw extension; please report it)", context, status.message);
	}
}

idx_t BytesPerRow(const HnswParams &params) {
	CoreStatus status;
	auto bytes = hnsw_rs_params_bytes_per_row(&params, status.Out());
	status.Check("HNSW index parameters");
	return bytes;
}

RustIndex::RustIndex(const HnswParams &params) {
	CoreStatus status;
	handle = hnsw_rs_index_new(&params, status.Out());
	status.Check("HNSW index");
}

RustIndex::RustIndex(HnswRsIndex *handle_p) : handle(handle_p) {
}

RustIndex::~RustIndex() {
	// A failure to free only leaks; a destructor must not throw.
	hnsw_rs_index_free(handle, nullptr);
}

HnswParams RustIndex::Params() const {
	HnswParams params = hnsw_rs_default_params();
	CoreStatus status;
	hnsw_rs_index_params(handle, &params, status.Out());
	status.Check("HNSW index parameters");
	return params;
}

void RustIndex::CheckVector(const float *v, idx_t dim, const string &context) const {
	CoreStatus status;
	hnsw_rs_index_check_vector(handle, v, dim, status.Out());
	status.Check(context);
}

void RustIndex::InsertBatch(const vector<uint64_t> &labels, const vector<float> &vectors, idx_t threads,
                            const string &context) const {
	if (labels.empty()) {
		return;
	}
	CoreStatus status;
	hnsw_rs_index_insert_batch(handle, labels.data(), vectors.data(), labels.size(), vectors.size() / labels.size(),
	                           threads, status.Out());
	status.Check(context);
}

idx_t RustIndex::RetireBatch(const vector<row_t> &row_ids, transaction_t last_commit) const {
	vector<uint64_t> labels(row_ids.begin(), row_ids.end());
	CoreStatus status;
	auto retired = hnsw_rs_index_retire_batch(handle, labels.data(), labels.size(), last_commit, status.Out());
	status.Check("HNSW index delete");
	return retired;
}

//! The core's question about snapshots, answered by DuckDB's transaction manager. It must not
//! throw into Rust: when in doubt, a snapshot may still need the rows.
static bool SnapshotPredatesCommit(void *db, uint64_t commit) {
	try {
		return SnapshotPredates(*static_cast<AttachedDatabase *>(db), commit);
	} catch (...) {
		return true;
	}
}

idx_t RustIndex::PurgeRetired(AttachedDatabase &db) const {
	CoreStatus status;
	auto purged = hnsw_rs_index_purge_retired(handle, LastCommit(db), SnapshotPredatesCommit, &db, status.Out());
	status.Check("HNSW index purge");
	return purged;
}

vector<row_t> RustIndex::UpperLabels(idx_t first, idx_t count) const {
	vector<uint64_t> labels(count);
	CoreStatus status;
	auto found = hnsw_rs_index_upper_labels(handle, first, count, labels.data(), count, status.Out());
	status.Check("HNSW index build");
	return vector<row_t>(labels.begin(), labels.begin() + NumericCast<int64_t>(found));
}

//! The first `found` labels as row ids.
static void LabelsToRowIds(const vector<uint64_t> &labels, idx_t found, vector<row_t> &row_ids) {
	row_ids.resize(found);
	for (idx_t i = 0; i < found; i++) {
		row_ids[i] = NumericCast<row_t>(labels[i]);
	}
}

idx_t RustIndex::Search(const float *q, idx_t dim, idx_t k, idx_t ef, vector<row_t> &row_ids,
                        vector<float> &distances) const {
	vector<uint64_t> labels(k);
	distances.resize(k);
	CoreStatus status;
	auto found = hnsw_rs_index_search(handle, q, dim, k, ef, labels.data(), distances.data(), status.Out());
	status.Check("HNSW index search");
	LabelsToRowIds(labels, found, row_ids);
	distances.resize(found);
	return found;
}

//! Rows a search for k at `ef` answers with, at most: K = k times the over-fetch factor, plus
//! max(K / 2, 4) and the retired rows (at most ef; the core's candidates_kept).
static idx_t CandidateCap(const RustIndex &index, idx_t k, idx_t ef, idx_t overfetch) {
	auto params = index.Params();
	auto factor = params.quantization == 0 ? 1 : (overfetch ? overfetch : NumericCast<idx_t>(params.overfetch));
	auto wanted = k * factor;
	return MaxValue(wanted, ef) + MaxValue<idx_t>(wanted / 2, 4) + ef;
}

idx_t RustIndex::Candidates(const float *q, idx_t dim, idx_t k, idx_t ef, idx_t overfetch,
                            vector<row_t> &row_ids) const {
	auto cap = CandidateCap(*this, k, ef, overfetch);
	vector<uint64_t> labels(cap);
	vector<float> distances(cap);
	CoreStatus status;
	auto found =
	    hnsw_rs_index_candidates(handle, q, dim, k, ef, overfetch, cap, labels.data(), distances.data(), status.Out());
	status.Check("HNSW index search");
	LabelsToRowIds(labels, found, row_ids);
	return found;
}

bool RustIndex::StoresInputVectors() const {
	return hnsw_rs_index_stores_input_vectors(handle);
}

bool RustIndex::CopyInputVectors(const row_t *row_ids, idx_t n, idx_t dim, float *out) const {
	static_assert(sizeof(row_t) == sizeof(uint64_t), "row ids are index labels");
	CoreStatus status;
	// Committed row ids are non-negative: the same bits as their labels.
	auto copied = hnsw_rs_index_copy_input_vectors(handle, reinterpret_cast<const uint64_t *>(row_ids), n, dim, out,
	                                               status.Out());
	status.Check("reading vectors from the HNSW index");
	return copied;
}

void RustIndex::CandidatesBatch(const float *queries, idx_t n, idx_t dim, idx_t k, idx_t ef, idx_t overfetch,
                                idx_t threads, vector<vector<row_t>> &row_ids, vector<bool> &searched) const {
	auto cap = CandidateCap(*this, k, ef, overfetch);
	vector<uint64_t> labels(n * cap);
	vector<size_t> counts(n);
	CoreStatus status;
	hnsw_rs_index_candidates_batch(handle, queries, n, dim, k, ef, overfetch, threads, cap, labels.data(),
	                               counts.data(), status.Out());
	status.Check("HNSW index search");
	row_ids.resize(n);
	searched.assign(n, false);
	for (idx_t i = 0; i < n; i++) {
		row_ids[i].clear();
		if (counts[i] == std::numeric_limits<size_t>::max()) {
			continue;
		}
		searched[i] = true;
		for (idx_t j = 0; j < counts[i]; j++) {
			row_ids[i].push_back(NumericCast<row_t>(labels[i * cap + j]));
		}
	}
}

idx_t RustIndex::CandidatesFiltered(const float *q, idx_t dim, idx_t k, idx_t ef, const vector<row_t> &matches,
                                    float max_distance, const HnswFilterSettings &settings, vector<row_t> &row_ids,
                                    HnswFilterReport &report) const {
	// Copies of identical vectors can add to the ef results: leave room for them.
	auto cap = 2 * CandidateCap(*this, k, ef, settings.overfetch);
	vector<uint64_t> labels(cap);
	vector<float> distances(cap);
	static_assert(sizeof(row_t) == sizeof(uint64_t), "row ids pass as labels");
	CoreStatus status;
	auto found = hnsw_rs_index_candidates_filtered(
	    handle, q, dim, k, ef, reinterpret_cast<const uint64_t *>(matches.data()), matches.size(), max_distance,
	    &settings, cap, labels.data(), distances.data(), &report, status.Out());
	status.Check("HNSW filtered search");
	LabelsToRowIds(labels, found, row_ids);
	return found;
}

HnswStats RustIndex::Stats() const {
	HnswStats stats{};
	CoreStatus status;
	hnsw_rs_index_stats(handle, &stats, status.Out());
	status.Check("HNSW index statistics");
	return stats;
}

HnswHealth RustIndex::Health() const {
	HnswHealth health{};
	CoreStatus status;
	hnsw_rs_index_health(handle, &health, status.Out());
	status.Check("hnsw_index_health");
	return health;
}

vector<uint64_t> RustIndex::ExactTopK(const HnswRsTableVectors *table, const vector<float> &queries, idx_t k,
                                      idx_t threads) const {
	auto dim = NumericCast<idx_t>(Params().dim);
	auto count = queries.size() / dim;
	vector<uint64_t> truth(count * k, HNSW_NO_LABEL);
	CoreStatus status;
	hnsw_rs_index_exact_top_k(handle, table, queries.data(), count, k, threads, truth.data(), status.Out());
	status.Check("exact search");
	return truth;
}

HnswBenchPoint RustIndex::Measure(const HnswRsTableVectors *table, const vector<float> &queries,
                                  const vector<uint64_t> &truth, idx_t k, idx_t ef, idx_t overfetch) const {
	auto count = truth.size() / k;
	HnswBenchPoint point{};
	CoreStatus status;
	hnsw_rs_index_measure(handle, table, queries.data(), count, truth.data(), k, ef, overfetch, &point, status.Out());
	status.Check("search at ef " + std::to_string(ef));
	return point;
}

vector<float> RustIndex::SampleQueries(idx_t count, uint64_t seed) const {
	auto dim = NumericCast<idx_t>(Params().dim);
	vector<float> queries(count * dim);
	CoreStatus status;
	auto sampled = hnsw_rs_index_sample_queries(handle, count, seed, queries.data(), status.Out());
	status.Check("sampling queries");
	queries.resize(sampled * dim);
	return queries;
}

idx_t RustIndex::TuneEf(const HnswRsTableVectors *table, const vector<float> &queries, idx_t k, double target,
                        idx_t threads, idx_t overfetch, vector<HnswBenchPoint> &points) const {
	auto dim = NumericCast<idx_t>(Params().dim);
	// Doubling from k to the maximum, then halving the gap: a few dozen points at most.
	points.assign(64, HnswBenchPoint{});
	size_t measured = 0;
	CoreStatus status;
	auto ef = hnsw_rs_index_tune_ef(handle, table, queries.data(), queries.size() / dim, k, target, threads, overfetch,
	                                points.data(), points.size(), &measured, status.Out());
	status.Check("hnsw_tune");
	points.resize(measured);
	return ef;
}

idx_t RustIndex::Rerank(const float *q, idx_t dim, const vector<uint64_t> &labels, const vector<float> &vectors,
                        idx_t k, vector<row_t> &row_ids, vector<float> &distances) const {
	vector<uint64_t> best(k);
	distances.resize(k);
	CoreStatus status;
	auto found = hnsw_rs_index_rerank(handle, q, dim, labels.data(), vectors.data(), labels.size(), k, best.data(),
	                                  distances.data(), status.Out());
	status.Check("exact re-ranking");
	LabelsToRowIds(best, found, row_ids);
	distances.resize(found);
	return found;
}

RustTableVectors::RustTableVectors(idx_t dim, const vector<uint64_t> &labels, const vector<float> &vectors) {
	CoreStatus status;
	handle = hnsw_rs_table_vectors_new(dim, labels.data(), vectors.data(), labels.size(), status.Out());
	status.Check("reading the table's vectors");
}

RustTableVectors::~RustTableVectors() {
	hnsw_rs_table_vectors_free(handle);
}

idx_t RustIndex::CompactIfDue(idx_t threads, bool force) {
	CoreStatus status;
	auto reclaimed = hnsw_rs_index_compact_if_due(handle, threads, force, status.Out());
	status.Check("HNSW index compaction");
	return reclaimed;
}

idx_t RustIndex::RelinkIfDue(bool force) {
	CoreStatus status;
	auto relinked = hnsw_rs_index_relink_if_due(handle, force, status.Out());
	status.Check("HNSW index relink");
	return relinked;
}

} // namespace hnsw
} // namespace duckdb

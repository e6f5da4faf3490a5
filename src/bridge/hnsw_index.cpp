// HNSWIndex: maintenance hooks DuckDB calls on commit (append, delete), plus sizing and reset.
#include "hnsw_index.hpp"
#include "hnsw_compat.hpp"
#include "hnsw_vectors.hpp"

#include "duckdb/common/vector/array_vector.hpp"
#include "duckdb/execution/index/index_lock.hpp"
#include "duckdb/main/attached_database.hpp"
#include "duckdb/parallel/task_scheduler.hpp"

namespace duckdb {
namespace hnsw {

RustIndex::RustIndex(const HnswParams &params) {
	HnswStatus status;
	handle = hnsw_rs_index_new(&params, &status);
	if (!handle) {
		throw InvalidInputException("HNSW index: %s", status.message);
	}
}

RustIndex::~RustIndex() {
	hnsw_rs_index_free(handle);
}

void RustIndex::CheckVector(const float *v, idx_t dim, const string &context) const {
	HnswStatus status;
	if (!hnsw_rs_index_check_vector(handle, v, dim, &status)) {
		throw InvalidInputException("%s: %s", context, status.message);
	}
}

void RustIndex::InsertBatch(const vector<uint64_t> &labels, const vector<float> &vectors, idx_t threads,
                            const string &context) const {
	if (labels.empty()) {
		return;
	}
	HnswStatus status;
	if (!hnsw_rs_index_insert_batch(handle, labels.data(), vectors.data(), labels.size(),
	                                vectors.size() / labels.size(), threads, &status)) {
		throw InvalidInputException("%s: %s", context, status.message);
	}
}

bool RustIndex::Delete(row_t row_id) const {
	return hnsw_rs_index_delete(handle, NumericCast<uint64_t>(row_id)) != 0;
}

idx_t RustIndex::Search(const float *q, idx_t dim, idx_t k, idx_t ef, vector<row_t> &row_ids,
                        vector<float> &distances) const {
	vector<uint64_t> labels(k);
	distances.resize(k);
	HnswStatus status;
	auto found = hnsw_rs_index_search(handle, q, dim, k, ef, labels.data(), distances.data(), &status);
	if (status.code != 0) {
		throw InvalidInputException("HNSW index search: %s", status.message);
	}
	row_ids.resize(found);
	distances.resize(found);
	for (idx_t i = 0; i < found; i++) {
		row_ids[i] = NumericCast<row_t>(labels[i]);
	}
	return found;
}

idx_t RustIndex::Candidates(const float *q, idx_t dim, idx_t k, idx_t ef, vector<row_t> &row_ids) const {
	auto cap = MaxValue(k, ef);
	vector<uint64_t> labels(cap);
	vector<float> distances(cap);
	HnswStatus status;
	auto found = hnsw_rs_index_candidates(handle, q, dim, k, ef, cap, labels.data(), distances.data(), &status);
	if (status.code != 0) {
		throw InvalidInputException("HNSW index search: %s", status.message);
	}
	row_ids.resize(found);
	for (idx_t i = 0; i < found; i++) {
		row_ids[i] = NumericCast<row_t>(labels[i]);
	}
	return found;
}

HnswStats RustIndex::Stats() const {
	HnswStats stats{};
	hnsw_rs_index_stats(handle, &stats);
	return stats;
}

idx_t RustIndex::Compact() {
	return hnsw_rs_index_compact(handle);
}

idx_t RustIndex::Reconnect() {
	return hnsw_rs_index_reconnect(handle);
}

HNSWIndex::HNSWIndex(const Identifier &name, IndexConstraintType constraint_type, const vector<column_t> &column_ids,
                     TableIOManager &table_io_manager, const vector<unique_ptr<Expression>> &unbound_expressions,
                     AttachedDatabase &db, const HNSWOptions &options_p, string unusable_reason_p)
    : BoundIndex(name, TYPE_NAME, constraint_type, column_ids, table_io_manager, unbound_expressions, db),
      options(options_p), unusable_reason(std::move(unusable_reason_p)) {
	if (unusable_reason.empty()) {
		graph = make_uniq<RustIndex>(options.params);
	}
}

const RustIndex &HNSWIndex::Graph() const {
	if (!graph) {
		auto index_name = NameText(name);
		if (!unusable_reason.empty()) {
			throw InvalidInputException("HNSW index \"%s\" cannot be used: %s. Run DROP INDEX %s; and CREATE INDEX "
			                            "again to rebuild it.",
			                            index_name, unusable_reason, index_name);
		}
		throw InvalidInputException("HNSW index \"%s\" has been dropped", index_name);
	}
	return *graph;
}

ErrorData HNSWIndex::InsertKeys(Vector &keys, Vector &row_ids, idx_t count, idx_t threads) {
	if (!graph && !unusable_reason.empty()) {
		// An index this build cannot read is not maintained (and never used for queries): keep
		// writes to the table working instead of failing every commit.
		return ErrorData();
	}
	try {
		auto &rust = Graph();
		auto context = StringUtil::Format("HNSW index \"%s\"", NameText(name));
		ArrayRows<float> rows(keys, context, "indexed");
		UnifiedVectorFormat ids;
		row_ids.ToUnifiedFormat(ids);
		auto id_data = UnifiedVectorFormat::GetData<row_t>(ids);
		// Check every row before inserting any, so a failing chunk leaves the graph untouched.
		vector<uint64_t> labels;
		vector<float> vectors;
		labels.reserve(count);
		vectors.reserve(count * rows.size);
		for (idx_t i = 0; i < count; i++) {
			if (rows.IsNull(i)) {
				continue;
			}
			auto row_id = id_data[ids.sel->get_index(i)];
			auto vector = rows.Row(i);
			rust.CheckVector(vector, rows.size, StringUtil::Format("%s, row %lld", context, row_id));
			labels.push_back(NumericCast<uint64_t>(row_id));
			vectors.insert(vectors.end(), vector, vector + rows.size);
		}
		rust.InsertBatch(labels, vectors, threads, context);
	} catch (std::exception &ex) {
		return ErrorData(ex);
	}
	return ErrorData();
}

idx_t HNSWIndex::SchedulerThreads() const {
	return MaxValue<idx_t>(1, TaskScheduler::GetScheduler(db.GetDatabase()).NumberOfThreads());
}

ErrorData HNSWIndex::Append(IndexLock &l, DataChunk &chunk, Vector &row_ids) {
	// The chunk has the table's layout: evaluate the indexed expression first.
	DataChunk keys;
	keys.Initialize(Allocator::DefaultAllocator(), logical_types);
	ExecuteExpressions(chunk, keys);
	return InsertKeys(keys.data[0], row_ids, chunk.size(), SchedulerThreads());
}

ErrorData HNSWIndex::Insert(IndexLock &l, DataChunk &chunk, Vector &row_ids) {
	// Already evaluated keys.
	return InsertKeys(chunk.data[0], row_ids, chunk.size(), SchedulerThreads());
}

idx_t HNSWIndex::TryDelete(IndexLock &state, DataChunk &entries, Vector &row_identifiers,
                           optional_ptr<SelectionVector> deleted_sel, optional_ptr<SelectionVector> non_deleted_sel) {
	if (!graph) {
		// Unusable or dropped: nothing to remove (a throw here would fail the commit fatally).
		for (idx_t i = 0; deleted_sel && i < entries.size(); i++) {
			deleted_sel->set_index(i, i);
		}
		return entries.size();
	}
	auto &rust = *graph;
	UnifiedVectorFormat ids;
	row_identifiers.ToUnifiedFormat(ids);
	auto id_data = UnifiedVectorFormat::GetData<row_t>(ids);
	auto count = entries.size();
	for (idx_t i = 0; i < count; i++) {
		// Rows with a NULL vector were never indexed: they count as deleted, as in ART.
		rust.Delete(id_data[ids.sel->get_index(i)]);
		if (deleted_sel) {
			deleted_sel->set_index(i, i);
		}
	}
	return count;
}

void HNSWIndex::ResetStorage(IndexLock &index_lock) {
	graph.reset();
}

bool HNSWIndex::MergeIndexes(IndexLock &state, BoundIndex &other_index) {
	// DuckDB merges only ART indexes; the HNSW build inserts into one shared graph instead.
	throw InternalException("HNSW indexes are never merged");
}

void HNSWIndex::Vacuum(IndexLock &l) {
	// Deleted nodes still route searches; PRAGMA hnsw_compact_index reclaims them explicitly.
}

idx_t HNSWIndex::GetInMemorySize(IndexLock &state) const {
	return graph ? graph->Stats().memory_bytes : 0;
}

void HNSWIndex::Verify(IndexLock &l) {
}

string HNSWIndex::ToString(IndexLock &l, bool display_ascii) {
	if (!graph) {
		return StringUtil::Format("HNSW(%s, unusable)", NameText(name));
	}
	auto stats = graph->Stats();
	return StringUtil::Format("HNSW(%s, metric=%s, dimensions=%lld, count=%llu, deleted=%llu)", NameText(name),
	                          options.metric_name, options.params.dim, stats.count, stats.deleted);
}

void HNSWIndex::VerifyAllocations(IndexLock &l) {
}

void HNSWIndex::VerifyBuffers(IndexLock &l) {
}

string HNSWIndex::GetConstraintViolationMessage(VerifyExistenceType verify_type, idx_t failed_index,
                                                DataChunk &input) const {
	return "HNSW indexes enforce no constraints";
}

idx_t HNSWIndex::Compact() {
	IndexLock guard(*this);
	return graph ? graph->Compact() : 0;
}

idx_t HNSWIndex::Reconnect() {
	IndexLock guard(*this);
	return graph ? graph->Reconnect() : 0;
}

} // namespace hnsw
} // namespace duckdb

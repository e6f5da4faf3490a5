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

RustIndex::RustIndex(HnswRsIndex *handle_p) : handle(handle_p) {
}

HnswParams RustIndex::Params() const {
	return hnsw_rs_index_params(handle);
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

bool RustIndex::Retire(row_t row_id) const {
	return hnsw_rs_index_retire(handle, NumericCast<uint64_t>(row_id)) != 0;
}

bool RustIndex::Purge(row_t row_id) const {
	return hnsw_rs_index_purge(handle, NumericCast<uint64_t>(row_id)) != 0;
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

idx_t RustIndex::Compact(idx_t threads) {
	return hnsw_rs_index_compact(handle, threads);
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

void HNSWIndex::EnsureLoaded() const {
	if (!pending_load.load(std::memory_order_acquire)) {
		return;
	}
	lock_guard<mutex> guard(load_lock);
	if (!pending_load.load(std::memory_order_relaxed)) {
		return;
	}
	try {
		graph = const_cast<HNSWIndex *>(this)->store->Load();
	} catch (std::exception &ex) {
		ErrorData error(ex);
		unusable_reason = "its stored data cannot be read (" + error.RawMessage() + ")";
	}
	pending_load.store(false, std::memory_order_release);
}

HNSWPageStore &HNSWIndex::Store() {
	if (!store) {
		store = make_uniq<HNSWPageStore>(table_io_manager.GetIndexBlockManager());
	}
	return *store;
}

case_insensitive_map_t<Value> HNSWIndex::StorageOptions(const case_insensitive_map_t<Value> &given) const {
	auto result = given;
	if (!unusable_reason.empty()) {
		result[STORAGE_UNUSABLE_KEY] = Value(unusable_reason);
	}
	return result;
}

HNSWPageStore &HNSWIndex::SyncStore() {
	auto &pages = Store();
	if (graph) {
		pages.Sync(*graph);
	} else if (!pending_load) {
		// Unusable: keep only the reason (and free whatever was stored before).
		pages.SyncEmpty();
	}
	return pages;
}

IndexStorageInfo HNSWIndex::SerializeToDisk(QueryContext context, const case_insensitive_map_t<Value> &given) {
	IndexLock guard(*this);
	PurgeRetired();
	CompactDeleted(false);
	RepairReachability(true);
	rows_checkpointed = true;
	return SyncStore().ToDisk(context, name, StorageOptions(given));
}

IndexStorageInfo HNSWIndex::SerializeToWAL(const case_insensitive_map_t<Value> &given) {
	// The caller holds exclusive access (the commit of CREATE INDEX).
	return SyncStore().ToWAL(name, StorageOptions(given));
}

const RustIndex &HNSWIndex::Graph() const {
	EnsureLoaded();
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
	EnsureLoaded();
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

void HNSWIndex::PurgeRetired() {
	if (!graph) {
		retired.clear();
		retired_by_batch.clear();
		return;
	}
	// The deleting commit's id is not passed to the index; any later commit id bounds it from
	// above, and commits are serialized, so a changed last commit means the delete committed.
	auto last_commit = LastCommit(db);
	for (auto &batch : retired) {
		if (batch.deleted_by == 0 && last_commit != batch.last_commit_before) {
			batch.deleted_by = last_commit;
		}
	}
	while (!retired.empty()) {
		auto &batch = retired.front();
		if (batch.deleted_by == 0 || SnapshotPredates(db, batch.deleted_by)) {
			break; // later batches were deleted later still
		}
		for (auto row_id : batch.rows) {
			auto latest = retired_by_batch.find(row_id);
			if (latest != retired_by_batch.end() && latest->second == batch.batch) {
				graph->Purge(row_id);
				retired_by_batch.erase(latest);
			}
		}
		retired.pop_front();
	}
}

//! Deleted nodes, as a percentage of live ones, at which a checkpoint compacts the graph: they
//! still cost search time (they route but are never returned) and their slots wait for reuse.
static constexpr idx_t COMPACT_DELETED_PERCENT = 10;

idx_t HNSWIndex::CompactDeleted(bool any_deleted) {
	if (!graph) {
		return 0;
	}
	auto stats = graph->Stats();
	if (stats.deleted == 0 || (!any_deleted && stats.deleted * 100 < stats.count * COMPACT_DELETED_PERCENT)) {
		return 0;
	}
	auto reclaimed = graph->Compact(SchedulerThreads());
	graph->Reconnect(); // rebuilt lists can leave a node without in-links, as inserts can
	return reclaimed;
}

void HNSWIndex::RepairReachability(bool any_growth) {
	if (!graph || inserts_since_repair == 0) {
		return;
	}
	// Pruning neighbour lists on insert can leave a node without in-links; one pass finds and
	// relinks them. It reads every list, so it runs after 10% growth (or at a checkpoint).
	if (any_growth || inserts_since_repair * 10 >= graph->Stats().count) {
		graph->Reconnect();
		inserts_since_repair = 0;
	}
}

ErrorData HNSWIndex::Append(IndexLock &l, DataChunk &chunk, Vector &row_ids) {
	LimitLastRowGroup();
	PurgeRetired();
	// The chunk has the table's layout: evaluate the indexed expression first.
	DataChunk keys;
	keys.Initialize(Allocator::DefaultAllocator(), logical_types);
	ExecuteExpressions(chunk, keys);
	auto error = InsertKeys(keys.data[0], row_ids, chunk.size(), SchedulerThreads());
	if (!error.HasError()) {
		inserts_since_repair += chunk.size();
		RepairReachability(false);
	}
	return error;
}

ErrorData HNSWIndex::Insert(IndexLock &l, DataChunk &chunk, Vector &row_ids) {
	// Already evaluated keys.
	return InsertKeys(chunk.data[0], row_ids, chunk.size(), SchedulerThreads());
}

idx_t HNSWIndex::TryDelete(IndexLock &state, DataChunk &entries, Vector &row_identifiers,
                           optional_ptr<SelectionVector> deleted_sel, optional_ptr<SelectionVector> non_deleted_sel) {
	EnsureLoaded();
	if (!graph) {
		// Unusable or dropped: nothing to remove (a throw here would fail the commit fatally).
		for (idx_t i = 0; deleted_sel && i < entries.size(); i++) {
			deleted_sel->set_index(i, i);
		}
		return entries.size();
	}
	PurgeRetired();
	auto &rust = *graph;
	UnifiedVectorFormat ids;
	row_identifiers.ToUnifiedFormat(ids);
	auto id_data = UnifiedVectorFormat::GetData<row_t>(ids);
	auto count = entries.size();
	// DuckDB removes rows at the deleting commit, while transactions that started earlier may
	// still read them: the rows stay candidates (their visibility is checked when fetched) until
	// no such transaction is left.
	RetiredRows batch;
	batch.last_commit_before = LastCommit(db);
	batch.batch = next_batch++;
	for (idx_t i = 0; i < count; i++) {
		// Rows with a NULL vector were never indexed: they count as deleted, as in ART.
		auto row_id = id_data[ids.sel->get_index(i)];
		if (rust.Retire(row_id)) {
			batch.rows.push_back(row_id);
			retired_by_batch[row_id] = batch.batch;
		}
		if (deleted_sel) {
			deleted_sel->set_index(i, i);
		}
	}
	if (!batch.rows.empty()) {
		retired.push_back(std::move(batch));
	}
	return count;
}

void HNSWIndex::ResetStorage(IndexLock &index_lock) {
	pending_load = false;
	graph.reset();
	retired.clear();
	retired_by_batch.clear();
	if (store) {
		store->Reset();
	}
}

bool HNSWIndex::MergeIndexes(IndexLock &state, BoundIndex &other_index) {
	// DuckDB merges only ART indexes; the HNSW build inserts into one shared graph instead.
	throw InternalException("HNSW indexes are never merged");
}

void HNSWIndex::Vacuum(IndexLock &l) {
	// VACUUM (DuckDB holds the entry's write lock): reclaim every deleted node now.
	EnsureLoaded();
	PurgeRetired();
	CompactDeleted(true);
}

idx_t HNSWIndex::GetInMemorySize(IndexLock &state) const {
	// Stored pages not loaded yet cost nothing until the first use. While a load may be under
	// way (another thread in EnsureLoaded), `graph` must not be read: it is published by the
	// release store of pending_load.
	auto stored = store ? store->InMemorySize() : 0;
	if (pending_load.load(std::memory_order_acquire)) {
		return stored;
	}
	return (graph ? graph->Stats().memory_bytes : 0) + stored;
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
	EnsureLoaded();
	PurgeRetired();
	return CompactDeleted(true);
}

idx_t HNSWIndex::Reconnect() {
	IndexLock guard(*this);
	EnsureLoaded();
	return graph ? graph->Reconnect() : 0;
}

unique_ptr<HNSWIndex> HNSWIndex::FromStorage(CreateIndexInput &input, const HNSWOptions &options) {
	auto &info = input.storage_info;
	auto unusable = [&](const string &reason) {
		return make_uniq<HNSWIndex>(input.name, input.constraint_type, input.column_ids, input.table_io_manager,
		                            input.unbound_expressions, input.db, options, reason);
	};
	// Data this build cannot read is never read: its blocks are freed at the next checkpoint.
	auto unreadable = [&](const string &reason) {
		auto result = unusable(reason);
		try {
			for (auto &alloc_info : info.allocator_infos) {
				FixedSizeAllocator foreign(alloc_info.segment_size, input.table_io_manager.GetIndexBlockManager());
				foreign.Init(alloc_info);
				foreign.Reset();
			}
		} catch (std::exception &) {
			// Leaving foreign blocks allocated only wastes space.
		}
		return result;
	};
	auto format = info.options.find(STORAGE_FORMAT_KEY);
	if (!info.IsValid() || format == info.options.end()) {
		// Written by vss (same type name, other format).
		return unreadable("it was stored by another extension (vss?) in a format this extension cannot read");
	}
	if (format->second.ToString() != STORAGE_FORMAT) {
		return unreadable("it was stored in format '" + format->second.ToString() + "', which this version (" +
		                  STORAGE_FORMAT + ") cannot read");
	}
	auto reason = info.options.find(STORAGE_UNUSABLE_KEY);
	if (reason != info.options.end()) {
		return unusable(reason->second.ToString());
	}
	try {
		auto result = unusable(string());
		result->graph.reset();
		result->Store().Open(info);
		result->pending_load = true;
		return result;
	} catch (std::exception &ex) {
		ErrorData error(ex);
		return unusable("its stored data cannot be read (" + error.RawMessage() + ")");
	}
}

} // namespace hnsw
} // namespace duckdb

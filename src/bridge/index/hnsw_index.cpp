// HNSWIndex: maintenance hooks DuckDB calls on commit (append, delete), plus sizing and reset.
#include "index/hnsw_index.hpp"
#include "hnsw_compat.hpp"
#include "hnsw_vectors.hpp"

#include "duckdb/main/attached_database.hpp"
#include "duckdb/parallel/task_scheduler.hpp"

namespace duckdb {
namespace hnsw {

//! An empty graph, unless the index cannot be used (then `reason` says why).
static unique_ptr<RustIndex> NewGraph(const HNSWOptions &options, const string &reason) {
	return reason.empty() ? make_uniq<RustIndex>(options.params) : nullptr;
}

HNSWIndex::HNSWIndex(const Identifier &name, IndexConstraintType constraint_type, const vector<column_t> &column_ids,
                     TableIOManager &table_io_manager, const vector<unique_ptr<Expression>> &unbound_expressions,
                     AttachedDatabase &db, const HNSWOptions &options_p, string unusable_reason_p)
    : BoundIndexBase(name, TYPE_NAME, constraint_type, column_ids, table_io_manager, unbound_expressions, db),
      options(options_p), memory(db), graph(NewGraph(options_p, unusable_reason_p), unusable_reason_p) {
}

HNSWPageStore &HNSWIndex::Store() {
	if (!store) {
		store = make_uniq<HNSWPageStore>(table_io_manager.GetIndexBlockManager());
	}
	return *store;
}

case_insensitive_map_t<Value> HNSWIndex::StorageOptions(const case_insensitive_map_t<Value> &given) const {
	auto result = given;
	if (!graph.Pending() && !graph.Reason().empty()) {
		result[STORAGE_UNUSABLE_KEY] = Value(graph.Reason());
	}
	if (ef_search_stored) {
		result[STORAGE_EF_SEARCH_KEY] = Value::BIGINT(options.params.ef_search);
	}
	auto &params = options.params;
	auto with = [&](const char *option, Value value) {
		result[string(STORAGE_WITH_PREFIX) + option] = std::move(value);
	};
	with("metric", Value(options.metric_name));
	with("m", Value::BIGINT(params.m));
	with("m0", Value::BIGINT(params.m0));
	with("ef_construction", Value::BIGINT(params.ef_construction));
	with("ef_search", Value::BIGINT(params.ef_search));
	with("quantization", Value(hnsw_rs_quantization_name(params.quantization)));
	with("overfetch", Value::BIGINT(params.overfetch));
	return result;
}

void HNSWIndex::SetEfSearch(int64_t ef) {
	options.params.ef_search = NumericCast<decltype(options.params.ef_search)>(ef);
	ef_search_stored = true;
}

HNSWPageStore &HNSWIndex::SyncStore() {
	auto &pages = Store();
	if (auto loaded = graph.IfLoaded()) {
		pages.Sync(*loaded);
	} else if (!graph.Pending()) {
		// Unusable: keep only the reason (and free whatever was stored before).
		pages.SyncEmpty();
	}
	return pages;
}

IndexStorageInfo HNSWIndex::SerializeToDisk(QueryContext context, const case_insensitive_map_t<Value> &given) {
	ScopedIndexLock guard(*this);
	// The page buffers written below come from DuckDB's buffer pool, and a checkpoint that runs
	// out of memory is fatal: make room for as many as the image has pages (an upper bound).
	ReleasedMemory room(memory, StoredImageBytes(), [this]() { return GraphBytes(); });
	PurgeRetired();
	CompactIfDue(false);
	RelinkIfDue(true);
	rows_checkpointed = true;
	return SyncStore().ToDisk(context, name, StorageOptions(given));
}

IndexStorageInfo HNSWIndex::SerializeToWAL(const case_insensitive_map_t<Value> &given) {
	// The caller holds exclusive access (the commit of CREATE INDEX), which must not fail either.
	ReleasedMemory room(memory, StoredImageBytes(), [this]() { return GraphBytes(); });
	return SyncStore().ToWAL(name, StorageOptions(given));
}

const RustIndex &HNSWIndex::Graph() const {
	auto loaded = graph.Get();
	if (!loaded) {
		auto index_name = NameText(name);
		auto &unusable_reason = graph.Reason();
		if (!unusable_reason.empty()) {
			throw InvalidInputException("HNSW index \"%s\" cannot be used: %s. Run DROP INDEX %s; and CREATE INDEX "
			                            "again to rebuild it.",
			                            index_name, unusable_reason, index_name);
		}
		throw InvalidInputException("HNSW index \"%s\" has been dropped", index_name);
	}
	return *loaded;
}

string HNSWIndex::ErrorContext() const {
	return StringUtil::Format("HNSW index \"%s\"", NameText(name));
}

void HNSWIndex::CollectKeys(Vector &keys, Vector &row_ids, idx_t count, const unordered_set<row_t> *skip,
                            KeyBatch &batch) const {
	auto &rust = Graph();
	auto context = ErrorContext();
	ArrayRows<float> rows(keys, count, context, "indexed");
	UnifiedVectorFormat ids;
	ToUnifiedFormat(row_ids, count, ids);
	auto id_data = UnifiedVectorFormat::GetData<row_t>(ids);
	for (idx_t i = 0; i < count; i++) {
		if (rows.IsNull(i)) {
			continue;
		}
		auto row_id = id_data[ids.sel->get_index(i)];
		if (skip && skip->count(row_id)) {
			continue;
		}
		auto vector = rows.Row(i);
		rust.CheckVector(vector, rows.size, StringUtil::Format("%s, row %lld", context, row_id));
		batch.labels.push_back(NumericCast<uint64_t>(row_id));
		batch.vectors.insert(batch.vectors.end(), vector, vector + rows.size);
	}
}

void HNSWIndex::InsertBatch(const KeyBatch &batch, idx_t threads, bool may_exceed) {
	auto &rust = Graph();
	auto rows = batch.labels.size();
	auto bytes = rows * BytesPerRow(options.params);
	memory.Reserve(bytes, ErrorContext(), StringUtil::Format("inserting %llu rows", rows), may_exceed);
	try {
		rust.InsertBatch(batch.labels, batch.vectors, threads, ErrorContext());
	} catch (...) {
		memory.Settle(bytes, GraphBytes());
		throw;
	}
	memory.Settle(bytes, GraphBytes());
}

ErrorData HNSWIndex::InsertKeys(Vector &keys, Vector &row_ids, idx_t count, idx_t threads, bool may_exceed,
                                const unordered_set<row_t> *skip) {
	try {
		if (!graph.Get(may_exceed) && !graph.Reason().empty()) {
			// An index this build cannot read is not maintained (and never used for queries):
			// keep writes to the table working instead of failing every commit.
			return ErrorData();
		}
		// Check every row before inserting any, so a failing chunk leaves the graph untouched.
		KeyBatch batch;
		CollectKeys(keys, row_ids, count, skip, batch);
		InsertBatch(batch, threads, may_exceed);
	} catch (std::exception &ex) {
		return ErrorData(ex);
	}
	return ErrorData();
}

idx_t HNSWIndex::StoredImageBytes() const {
	// The image is about as large as the graph (or, not loaded, as what is stored).
	return MaxValue(GraphBytes(), store ? store->ImageBytes() : idx_t(0));
}

idx_t HNSWIndex::GraphBytes() const {
	auto loaded = graph.IfLoaded();
	return loaded ? loaded->Stats().memory_bytes : 0;
}

void HNSWIndex::SettleMemory() {
	try {
		memory.Settle(0, GraphBytes());
	} catch (std::exception &) {
		// Only a size: never worth failing a commit or a checkpoint.
	}
}

idx_t HNSWIndex::SchedulerThreads() const {
	return MaxValue<idx_t>(1, TaskScheduler::GetScheduler(db.GetDatabase()).NumberOfThreads());
}

void HNSWIndex::PurgeRetired() {
	auto loaded = graph.IfLoaded();
	if (!loaded) {
		return;
	}
	try {
		loaded->PurgeRetired(db);
	} catch (std::exception &) {
		// Best effort inside commits and checkpoints: rows left retired stay candidates whose
		// visibility the scan checks, so answers stay right; a later write purges them.
	}
}

void HNSWIndex::CompactIfDue(bool force) {
	if (auto loaded = graph.IfLoaded()) {
		loaded->CompactIfDue(SchedulerThreads(), force);
	}
}

void HNSWIndex::RelinkIfDue(bool force) {
	if (auto loaded = graph.IfLoaded()) {
		loaded->RelinkIfDue(force);
	}
}

ErrorData HNSWIndex::Append(IndexLock &l, DataChunk &chunk, Vector &row_ids) {
	LimitLastRowGroup();
	PurgeRetired();
	// The chunk has the table's layout: evaluate the indexed expression first.
	DataChunk keys;
	keys.Initialize(Allocator::DefaultAllocator(), logical_types);
	ExecuteExpressions(chunk, keys);
	// At commit (and in WAL replay, which must not fail) rows are never refused for memory: the
	// statement that wrote them checked that memory_limit had room (see hnsw_optimize_writes.cpp).
	auto error = InsertKeys(keys.data[0], row_ids, chunk.size(), SchedulerThreads(), true);
	if (!error.HasError()) {
		RelinkIfDue(false);
	}
	SettleMemory();
	return error;
}

ErrorData HNSWIndex::Insert(IndexLock &l, DataChunk &chunk, Vector &row_ids) {
	// Already evaluated keys.
	return InsertKeys(chunk.data[0], row_ids, chunk.size(), SchedulerThreads(), true);
}

idx_t HNSWIndex::TryDelete(IndexLock &state, DataChunk &entries, Vector &row_identifiers,
                           optional_ptr<SelectionVector> deleted_sel, optional_ptr<SelectionVector> non_deleted_sel) {
	// Deletes at commit must not fail, whatever memory_limit says.
	auto loaded = graph.Get(true);
	if (!loaded) {
		// Unusable or dropped: nothing to remove (a throw here would fail the commit fatally).
		for (idx_t i = 0; deleted_sel && i < entries.size(); i++) {
			deleted_sel->set_index(i, i);
		}
		return entries.size();
	}
	PurgeRetired();
	auto count = entries.size();
	UnifiedVectorFormat ids;
	ToUnifiedFormat(row_identifiers, count, ids);
	auto id_data = UnifiedVectorFormat::GetData<row_t>(ids);
	// DuckDB removes rows at the deleting commit, while transactions that started earlier may
	// still read them: the rows stay candidates (their visibility is checked when fetched) until
	// no such transaction is left. Rows with a NULL vector were never indexed: they count as
	// deleted, as in ART.
	vector<row_t> row_ids(count);
	for (idx_t i = 0; i < count; i++) {
		row_ids[i] = id_data[ids.sel->get_index(i)];
		if (deleted_sel) {
			deleted_sel->set_index(i, i);
		}
	}
	try {
		loaded->RetireBatch(row_ids, LastCommit(db));
	} catch (std::exception &) {
		// Throwing would fail the commit fatally. Rows the core could not retire stay searchable
		// candidates; the scan drops them by visibility, as it drops any deleted row.
	}
	SettleMemory();
	return count;
}

void HNSWIndex::ResetStorage(IndexLock &index_lock) {
	graph.Reset();
	memory.Release();
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
	try {
		graph.Get();
	} catch (OutOfMemoryException &) {
		return; // not loaded for lack of memory: nothing to compact in memory
	}
	PurgeRetired();
	CompactIfDue(true);
	SettleMemory();
}

idx_t HNSWIndex::GetInMemorySize(IndexLock &state) const {
	// Stored pages not loaded yet cost nothing until the first use (IfLoaded never waits for a
	// load under way in another thread).
	auto stored = store ? store->InMemorySize() : 0;
	auto loaded = graph.IfLoaded();
	try {
		return (loaded ? loaded->Stats().memory_bytes : 0) + stored;
	} catch (std::exception &) {
		return stored; // DuckDB asks while it reports or checkpoints: never fail it for a size
	}
}

void HNSWIndex::Verify(IndexLock &l) {
}

string HNSWIndex::ToString(IndexLock &l, bool display_ascii) {
	auto loaded = graph.IfLoaded();
	if (!loaded) {
		return StringUtil::Format("HNSW(%s, unusable)", NameText(name));
	}
	auto stats = loaded->Stats();
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
	ScopedIndexLock guard(*this);
	auto loaded = graph.Get();
	PurgeRetired();
	auto freed = loaded ? loaded->CompactIfDue(SchedulerThreads(), true) : 0;
	SettleMemory();
	return freed;
}

idx_t HNSWIndex::Relink() {
	ScopedIndexLock guard(*this);
	auto loaded = graph.Get();
	auto relinked = loaded ? loaded->RelinkIfDue(true) : 0;
	SettleMemory();
	return relinked;
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
		auto ef_search = info.options.find(STORAGE_EF_SEARCH_KEY);
		if (ef_search != info.options.end()) {
			result->SetEfSearch(ef_search->second.GetValue<int64_t>());
		}
		auto &store = result->Store();
		store.Open(info);
		auto &memory = result->memory;
		auto context = result->ErrorContext();
		result->graph.LoadLater([&store, &memory, context](bool may_exceed) {
			// The image's size is close to the graph's: reserve it before reading.
			auto bytes = store.ImageBytes();
			memory.Reserve(bytes, context,
			               "loading its stored image of " + StringUtil::BytesToHumanReadableString(bytes), may_exceed);
			unique_ptr<RustIndex> loaded;
			try {
				loaded = store.Load();
			} catch (...) {
				memory.Settle(bytes, 0);
				throw;
			}
			memory.Settle(bytes, loaded->Stats().memory_bytes);
			return loaded;
		});
		return result;
	} catch (std::exception &ex) {
		ErrorData error(ex);
		return unusable("its stored data cannot be read (" + error.RawMessage() + ")");
	}
}

} // namespace hnsw
} // namespace duckdb

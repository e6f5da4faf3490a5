// The HNSW index as DuckDB sees it: a BoundIndex whose graph lives in the Rust core.
#pragma once

#include "hnsw_compat.hpp"
#include "index/hnsw_index_memory.hpp"
#include "index/hnsw_index_storage.hpp"
#include "index/hnsw_lazy_graph.hpp"
#include "rust/hnsw_rust_index.hpp"

#include "duckdb.hpp"
#include "duckdb/execution/index/bound_index.hpp"

namespace duckdb {
class DataTable;
class RowGroupCollection;

namespace hnsw {

//! Index parameters plus the metric name, as parsed from WITH (...).
struct HNSWOptions {
	HnswParams params;
	string metric_name;
};

class HNSWIndex : public BoundIndexBase {
public:
	static constexpr const char *TYPE_NAME = "HNSW";

	HNSWIndex(const Identifier &name, IndexConstraintType constraint_type, const vector<column_t> &column_ids,
	          TableIOManager &table_io_manager, const vector<unique_ptr<Expression>> &unbound_expressions,
	          AttachedDatabase &db, const HNSWOptions &options, string unusable_reason = string());

	//! An index stored in the database file; its pages are read on first use. Never throws:
	//! storage that cannot be read makes the index unusable, with the reason.
	static unique_ptr<HNSWIndex> FromStorage(CreateIndexInput &input, const HNSWOptions &options);

	//! The graph (loading stored pages on first use); throws if the index cannot be used.
	const RustIndex &Graph() const;
	//! False for an index whose stored data cannot be read (written by vss, or damaged).
	bool IsUsable() const {
		return graph.Get() != nullptr;
	}
	//! Why the index cannot be used ("" if it can).
	string UnusableReason() const {
		return graph.Reason();
	}
	const HNSWOptions &Options() const {
		return options;
	}
	//! Pages of the image in the database file, and how many the last checkpoint rewrote.
	pair<idx_t, idx_t> StoredPages() const {
		return store ? make_pair(store->StoredPages(), store->PagesWrittenLastSync()) : make_pair(idx_t(0), idx_t(0));
	}
	idx_t Dimensions() const {
		return NumericCast<idx_t>(options.params.dim);
	}

	ErrorData Append(IndexLock &l, DataChunk &chunk, Vector &row_ids) override;
	ErrorData Insert(IndexLock &l, DataChunk &chunk, Vector &row_ids) override;
	idx_t TryDelete(IndexLock &state, DataChunk &entries, Vector &row_identifiers,
	                optional_ptr<SelectionVector> deleted_sel, optional_ptr<SelectionVector> non_deleted_sel) override;
	void ResetStorage(IndexLock &index_lock) override;
	bool MergeIndexes(IndexLock &state, BoundIndex &other_index) override;
	void Vacuum(IndexLock &l) override;
	idx_t GetInMemorySize(IndexLock &state) const override;
	void Verify(IndexLock &l) override;
	string ToString(IndexLock &l, bool display_ascii = false) override;
	void VerifyAllocations(IndexLock &l) override;
	void VerifyBuffers(IndexLock &l) override;
	string GetConstraintViolationMessage(VerifyExistenceType verify_type, idx_t failed_index,
	                                     DataChunk &input) const override;
	IndexStorageInfo SerializeToDisk(QueryContext context, const case_insensitive_map_t<Value> &options) override;
	IndexStorageInfo SerializeToWAL(const case_insensitive_map_t<Value> &options) override;

	//! Frees every deleted node's slot (PRAGMA hnsw_compact_index); the caller holds the entry's
	//! write handle.
	idx_t Compact();
	//! Makes every indexed row reachable by searches (after the parallel build).
	idx_t Relink();
	//! Rows to insert: their labels and row-major vectors.
	struct KeyBatch {
		vector<uint64_t> labels;
		vector<float> vectors;
	};
	//! Inserts a batch with up to `threads` threads, after reserving its memory from DuckDB
	//! (throws OutOfMemoryException if memory_limit leaves too little, unless `may_exceed`).
	void InsertBatch(const KeyBatch &batch, idx_t threads, bool may_exceed);
	//! Appends the non-NULL vectors of an evaluated key vector (except rows in `skip`) to `batch`,
	//! checking each; throws naming the row if one cannot be indexed.
	void CollectKeys(Vector &keys, Vector &row_ids, idx_t count, const unordered_set<row_t> *skip,
	                 KeyBatch &batch) const;
	//! "HNSW index "name"", the start of this index's error messages.
	string ErrorContext() const;
	//! Inserts every non-NULL vector of an evaluated key vector, after checking them all, with up
	//! to `threads` threads; rows in `skip` are left out. Thread-safe (the CREATE INDEX build calls
	//! it from every DuckDB thread). `may_exceed`: see InsertBatch.
	ErrorData InsertKeys(Vector &keys, Vector &row_ids, idx_t count, idx_t threads, bool may_exceed,
	                     const unordered_set<row_t> *skip = nullptr);
	//! Threads of the database's scheduler.
	idx_t SchedulerThreads() const;
	//! Sets the ef_search searches use by default; stored with the index from the next checkpoint
	//! on. The caller holds exclusive access (a write handle).
	void SetEfSearch(int64_t ef);
	//! Remembers the table's row groups, so appends can keep its last row group small (below).
	void AttachTable(DataTable &table) const;

private:
	//! Purges retired rows that no active snapshot can see any more (writers only).
	void PurgeRetired();
	//! Compacts the graph once deleted nodes are worth it (any, if `force`). Needs exclusive
	//! access.
	void CompactIfDue(bool force);
	//! Relinks nodes no search can reach once enough rows were inserted (any, if `force`). Needs
	//! exclusive access (the entry's write lock, as appends and checkpoints hold).
	void RelinkIfDue(bool force);
	//! Called at commit before the table appends rows: if the last row group was written by a
	//! checkpoint and is large, the rows go into a new one (see hnsw_index_row_groups.cpp).
	void LimitLastRowGroup();
	//! The page store, created on first use (in-memory databases never need one).
	HNSWPageStore &Store();
	//! Brings the stored pages up to date with the graph (or empties them if unusable).
	HNSWPageStore &SyncStore();
	//! Counts the graph's current size in DuckDB's buffer pool (after work that changed it).
	void SettleMemory();
	//! Bytes of the graph in memory (0 while not loaded).
	idx_t GraphBytes() const;
	//! Bytes of the graph's storage image (about the graph's bytes).
	idx_t StoredImageBytes() const;
	//! Options persisted with the storage: the format marker and, if any, why it is unusable.
	case_insensitive_map_t<Value> StorageOptions(const case_insensitive_map_t<Value> &options) const;

	HNSWOptions options;
	//! The graph's memory, counted in DuckDB's buffer pool.
	IndexMemory memory;
	//! ef_search was set after CREATE INDEX (by the pragma, now or in an earlier session).
	bool ef_search_stored = false;
	//! The graph, read from the stored pages on first use.
	LazyGraph graph;
	unique_ptr<HNSWPageStore> store;
	//! The table's row groups, once a statement on the table has shown them (AttachTable).
	mutable mutex table_rows_lock;
	mutable weak_ptr<RowGroupCollection> table_rows;
	//! True from a checkpoint (or CREATE INDEX, or loading from the file) until the next append.
	atomic<bool> rows_checkpointed{true};
};

//! Throws the core's error (with the allowed range) if `ef` is not a valid ef_search.
void CheckEfSearch(int64_t ef, const string &context);

} // namespace hnsw
} // namespace duckdb

// The HNSW index as DuckDB sees it: a BoundIndex whose graph lives in the Rust core.
#pragma once

#include "hnsw_index_storage.hpp"
#include "hnsw_rust.h"

#include "duckdb.hpp"
#include "duckdb/execution/index/bound_index.hpp"
#include "duckdb/storage/table/index_entry.hpp"

namespace duckdb {
class DataTable;
class RowGroupCollection;

namespace hnsw {

//! Owns a Rust index handle; every call turns a core error into a DuckDB exception.
class RustIndex {
public:
	RustIndex(const HnswParams &params);
	//! Takes ownership of a handle (an index loaded from storage).
	explicit RustIndex(HnswRsIndex *handle);
	~RustIndex();
	RustIndex(const RustIndex &) = delete;
	RustIndex &operator=(const RustIndex &) = delete;

	//! Throws InvalidInputException with the core's message if the vector cannot be indexed.
	void CheckVector(const float *v, idx_t dim, const string &context) const;
	//! Inserts n row-major vectors with `threads` threads (thread-safe); throws on invalid input.
	void InsertBatch(const vector<uint64_t> &labels, const vector<float> &vectors, idx_t threads,
	                 const string &context) const;
	//! Removes a row id; false if it was not indexed.
	bool Delete(row_t row_id) const;
	//! Hides a row id from searches but keeps it a candidate (older snapshots may see the row).
	bool Retire(row_t row_id) const;
	//! Removes a retired row id for good; false if it is not retired.
	bool Purge(row_t row_id) const;
	//! Up to k nearest row ids and distances, closest first.
	idx_t Search(const float *q, idx_t dim, idx_t k, idx_t ef, vector<row_t> &row_ids, vector<float> &distances) const;
	//! Candidates for exact re-ranking: all ef results of a graph search (exact search if the
	//! graph returns fewer than min(k, rows)), closest first; retired rows included.
	idx_t Candidates(const float *q, idx_t dim, idx_t k, idx_t ef, vector<row_t> &row_ids) const;
	HnswStats Stats() const;
	//! Frees deleted slots, repairing lists with `threads` threads; the caller must hold
	//! exclusive access.
	idx_t Compact(idx_t threads);
	//! Links nodes no search could reach; the caller must hold exclusive access.
	idx_t Reconnect();
	//! The parameters the graph was built with.
	HnswParams Params() const;
	const HnswRsIndex *Handle() const {
		return handle;
	}

private:
	HnswRsIndex *handle;
};

//! Index parameters plus the metric name, as parsed from WITH (...).
struct HNSWOptions {
	HnswParams params;
	string metric_name;
};

class HNSWIndex : public BoundIndex {
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
		EnsureLoaded();
		return graph != nullptr;
	}
	//! Why the index cannot be used ("" if it can).
	string UnusableReason() const {
		EnsureLoaded();
		return unusable_reason;
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

	//! Frees deleted nodes' slots; the caller holds the entry's write handle.
	idx_t Compact();
	//! Makes every indexed row reachable by searches (after the parallel build).
	idx_t Reconnect();
	//! Inserts every non-NULL vector of an evaluated key vector, after checking them all, with up
	//! to `threads` threads. Thread-safe (the CREATE INDEX build calls it from every DuckDB thread).
	ErrorData InsertKeys(Vector &keys, Vector &row_ids, idx_t count, idx_t threads);
	//! Threads of the database's scheduler.
	idx_t SchedulerThreads() const;
	//! Remembers the table's row groups, so appends can keep its last row group small (below).
	void AttachTable(DataTable &table) const;

private:
	//! Deletes retired rows that no active snapshot can see any more (writers only).
	void PurgeRetired();
	//! Compacts the graph (and relinks) once deleted nodes reach COMPACT_DELETED_PERCENT of the
	//! live ones, or if `any_deleted` and there are some; returns the slots freed. Needs
	//! exclusive access.
	idx_t CompactDeleted(bool any_deleted);
	//! Relinks nodes no search can reach, after enough inserts (or any, if `any_growth`);
	//! needs exclusive access (the entry's write lock, as appends and checkpoints hold).
	void RepairReachability(bool any_growth);
	//! Called at commit before the table appends rows: if the last row group was written by a
	//! checkpoint and is large, the rows go into a new one (see hnsw_index_row_groups.cpp).
	void LimitLastRowGroup();
	//! Reads the stored pages if that has not happened yet (any thread; once).
	void EnsureLoaded() const;
	//! The page store, created on first use (in-memory databases never need one).
	HNSWPageStore &Store();
	//! Brings the stored pages up to date with the graph (or empties them if unusable).
	HNSWPageStore &SyncStore();
	//! Options persisted with the storage: the format marker and, if any, why it is unusable.
	case_insensitive_map_t<Value> StorageOptions(const case_insensitive_map_t<Value> &options) const;

	HNSWOptions options;
	mutable unique_ptr<RustIndex> graph;
	//! Why the graph is missing (stored data this build cannot read).
	mutable string unusable_reason;
	unique_ptr<HNSWPageStore> store;
	//! Set while stored pages wait to be read by the first use.
	mutable atomic<bool> pending_load{false};
	mutable mutex load_lock;

	//! Rows deleted by one commit: hidden from new snapshots, still candidates for older ones.
	struct RetiredRows {
		//! The database's last commit when the rows were retired (during the deleting commit).
		transaction_t last_commit_before;
		//! A commit id at or after the deleting commit, once one is known (0: not yet).
		transaction_t deleted_by = 0;
		//! Number of this batch, to tell its rows from later retirements of the same row ids.
		idx_t batch = 0;
		vector<row_t> rows;
	};
	//! Oldest first; only writers (holding the index lock) touch it.
	deque<RetiredRows> retired;
	//! The batch that retired each retired row last (a row re-appended after an undone delete and
	//! deleted again must wait for its newer batch).
	unordered_map<row_t, idx_t> retired_by_batch;
	idx_t next_batch = 1;
	//! Rows appended since the last reachability repair.
	idx_t inserts_since_repair = 0;
	//! The table's row groups, once a statement on the table has shown them (AttachTable).
	mutable mutex table_rows_lock;
	mutable weak_ptr<RowGroupCollection> table_rows;
	//! True from a checkpoint (or CREATE INDEX, or loading from the file) until the next append.
	atomic<bool> rows_checkpointed{true};
};

} // namespace hnsw
} // namespace duckdb

namespace duckdb {
class ClientContext;
class DataTableInfo;
class DuckIndexEntry;
class IndexEntry;
class TableCatalogEntry;

namespace hnsw {

//! A bound HNSW index found by name, with the catalog entry that describes it.
struct HNSWIndexRef {
	DuckIndexEntry &catalog_entry;
	shared_ptr<IndexEntry> entry;
};

// Handles are taken while the table's index list is locked: DROP INDEX takes an entry out of the
// list before it retires it, and asking a retired entry for a handle is an InternalException,
// which invalidates the whole database.

//! Shared access to the index, or null if another transaction dropped it meanwhile.
unique_ptr<IndexReadHandle<HNSWIndex>> TryReadHNSWIndex(const HNSWIndexRef &ref);
//! Shared access to the index; throws a clear error if another transaction dropped it.
unique_ptr<IndexReadHandle<HNSWIndex>> ReadHNSWIndex(const HNSWIndexRef &ref);
//! Exclusive access to the index; throws a clear error if another transaction dropped it.
unique_ptr<IndexWriteHandle<HNSWIndex>> WriteHNSWIndex(const HNSWIndexRef &ref);

//! Finds the HNSW index called `name` (case-insensitive); throws a clear error if there is none.
HNSWIndexRef FindHNSWIndex(ClientContext &context, const string &name);
//! Shared access to the bound HNSW index called `name` on this table's storage, or null.
unique_ptr<IndexReadHandle<HNSWIndex>> ReadTableHNSWIndex(TableCatalogEntry &table, const string &name);
//! Binds the table's HNSW indexes that a reopened database left unbound.
void BindHNSWIndexes(ClientContext &context, DataTableInfo &table_info);
//! Every HNSW index visible to the context.
vector<HNSWIndexRef> AllHNSWIndexes(ClientContext &context);
//! ef of a search: `requested` if positive, else SET hnsw_ef_search, else the index's
//! ef_search; never below k.
idx_t EffectiveEf(ClientContext &context, int64_t requested, const HNSWIndex &index, idx_t k);

} // namespace hnsw
} // namespace duckdb

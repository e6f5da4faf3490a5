// The graph's memory (allocated by the Rust core) as DuckDB's buffer pool sees it: reserved under
// memory_limit before the graph grows, shown by duckdb_memory() under the tag EXTENSION.
#pragma once

#include "duckdb.hpp"

namespace duckdb {
class AttachedDatabase;
class BufferManager;

namespace hnsw {

class IndexMemory {
public:
	explicit IndexMemory(AttachedDatabase &db);
	~IndexMemory();
	IndexMemory(const IndexMemory &) = delete;
	IndexMemory &operator=(const IndexMemory &) = delete;

	//! Reserves `bytes` before an operation grows the graph by about that much. Throws
	//! OutOfMemoryException (starting with `context`, naming `what` and the limit) if DuckDB cannot
	//! make room, unless `may_exceed`: then the bytes are counted anyway (for work that must not
	//! fail, such as deletes at commit). Pair each call with Settle.
	void Reserve(idx_t bytes, const string &context, const string &what, bool may_exceed = false);
	//! Ends an operation that reserved `operation_bytes` (0 for none): the reservation becomes
	//! `graph_bytes` plus what operations under way still hold. Never throws.
	void Settle(idx_t operation_bytes, idx_t graph_bytes);
	//! Returns the whole reservation to DuckDB (DROP INDEX; a checkpoint's own buffers).
	void Release();
	//! True if DuckDB can make room for `bytes` more now (evicting other buffers); reserves nothing.
	bool HasRoom(idx_t bytes);
	//! Throws OutOfMemoryException (as Reserve does) unless DuckDB could make room for `bytes`
	//! more now; reserves nothing. For statements whose rows reach the index only at commit.
	static void CheckRoom(ClientContext &context, idx_t bytes, const string &error_context, const string &what);

private:
	//! Reserves `bytes` in the buffer pool of `buffers`, or throws the out-of-memory error.
	static void ReserveOrThrow(BufferManager &buffers, idx_t bytes, const string &error_context, const string &what);
	//! Adds `delta` (may be negative) to the buffer pool's EXTENSION usage without checking.
	void Count(int64_t delta);

	BufferManager &buffers;
	mutex lock;
	idx_t reserved = 0;
	idx_t in_flight = 0;
};

//! Makes room for `needed` bytes of page buffers that a checkpoint or commit (which must not run
//! out of memory) is about to take from DuckDB: DuckDB evicts other buffers for them if it can;
//! if it cannot, the index's own reservation is lent to them for the scope, so memory may pass
//! memory_limit by up to that much until the pages are written. Counts the graph again after.
class ReleasedMemory {
public:
	ReleasedMemory(IndexMemory &memory, idx_t needed, std::function<idx_t()> graph_bytes);
	~ReleasedMemory();

private:
	IndexMemory &memory;
	std::function<idx_t()> graph_bytes;
};

} // namespace hnsw
} // namespace duckdb

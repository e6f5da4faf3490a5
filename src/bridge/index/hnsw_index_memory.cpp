// IndexMemory: the graph's bytes counted in DuckDB's buffer pool.
#include "index/hnsw_index_memory.hpp"

#include "duckdb/main/attached_database.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/storage/buffer/buffer_pool.hpp"
#include "duckdb/storage/buffer_manager.hpp"

namespace duckdb {
namespace hnsw {

IndexMemory::IndexMemory(AttachedDatabase &db) : buffers(BufferManager::GetBufferManager(db)) {
}

IndexMemory::~IndexMemory() {
	Release();
}

void IndexMemory::Count(int64_t delta) {
	if (delta != 0) {
		buffers.GetBufferPool().UpdateUsedMemory(MemoryTag::EXTENSION, delta);
	}
}

void IndexMemory::ReserveOrThrow(BufferManager &buffers, idx_t bytes, const string &error_context, const string &what) {
	auto used = buffers.GetUsedMemory();
	try {
		// Evicts other buffers if it must; throws if even that leaves too little room.
		buffers.ReserveMemory(bytes);
	} catch (std::exception &ex) {
		ErrorData error(ex);
		if (error.Type() != ExceptionType::OUT_OF_MEMORY) {
			throw;
		}
		throw OutOfMemoryException(
		    "%s: %s needs about %s more memory than DuckDB's memory_limit of %s leaves (%s was in "
		    "use). Raise the limit (SET memory_limit = '...'); the index's memory shows in "
		    "duckdb_memory() under the tag EXTENSION",
		    error_context, what, StringUtil::BytesToHumanReadableString(bytes),
		    StringUtil::BytesToHumanReadableString(buffers.GetMaxMemory()),
		    StringUtil::BytesToHumanReadableString(used));
	}
}

bool IndexMemory::HasRoom(idx_t bytes) {
	if (bytes == 0) {
		return true;
	}
	try {
		buffers.ReserveMemory(bytes);
	} catch (std::exception &ex) {
		if (ErrorData(ex).Type() == ExceptionType::OUT_OF_MEMORY) {
			return false;
		}
		throw;
	}
	buffers.FreeReservedMemory(bytes);
	return true;
}

void IndexMemory::CheckRoom(ClientContext &context, idx_t bytes, const string &error_context, const string &what) {
	if (bytes == 0) {
		return;
	}
	auto &buffers = BufferManager::GetBufferManager(context);
	ReserveOrThrow(buffers, bytes, error_context, what);
	buffers.FreeReservedMemory(bytes);
}

void IndexMemory::Reserve(idx_t bytes, const string &context, const string &what, bool may_exceed) {
	if (bytes == 0) {
		return;
	}
	if (may_exceed) {
		Count(NumericCast<int64_t>(bytes));
	} else {
		ReserveOrThrow(buffers, bytes, context, what);
	}
	lock_guard<mutex> guard(lock);
	reserved += bytes;
	in_flight += bytes;
}

void IndexMemory::Settle(idx_t operation_bytes, idx_t graph_bytes) {
	lock_guard<mutex> guard(lock);
	in_flight -= MinValue(in_flight, operation_bytes);
	auto target = graph_bytes + in_flight;
	Count(NumericCast<int64_t>(target) - NumericCast<int64_t>(reserved));
	reserved = target;
}

void IndexMemory::Release() {
	lock_guard<mutex> guard(lock);
	Count(-NumericCast<int64_t>(reserved));
	reserved = 0;
	in_flight = 0;
}

ReleasedMemory::ReleasedMemory(IndexMemory &memory_p, idx_t needed, std::function<idx_t()> graph_bytes_p)
    : memory(memory_p), graph_bytes(std::move(graph_bytes_p)) {
	bool room;
	try {
		room = memory.HasRoom(needed);
	} catch (std::exception &) {
		room = false;
	}
	if (!room) {
		memory.Settle(0, 0); // lends the graph's bytes; keeps what operations under way reserved
	}
}

ReleasedMemory::~ReleasedMemory() {
	try {
		memory.Settle(0, graph_bytes());
	} catch (...) { // NOLINT: a size is never worth failing a checkpoint
	}
}

} // namespace hnsw
} // namespace duckdb

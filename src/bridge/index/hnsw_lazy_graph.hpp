// The graph of an HNSW index, read from its stored pages on first use: opening a database file
// costs nothing until a query or write needs the index.
#pragma once

#include "rust/hnsw_rust_index.hpp"

#include "duckdb.hpp"

#include <functional>

namespace duckdb {
namespace hnsw {

class LazyGraph {
public:
	//! Reads the stored pages; throws with the reason if they cannot be read, or
	//! OutOfMemoryException if memory_limit leaves no room for the graph (unless `may_exceed`).
	using Loader = std::function<unique_ptr<RustIndex>(bool may_exceed)>;

	//! A graph in memory from the start (a new index), or none if `reason` says why not.
	explicit LazyGraph(unique_ptr<RustIndex> graph, string reason = string())
	    : graph(std::move(graph)), reason(std::move(reason)) {
	}

	//! Stored pages to read on first use.
	void LoadLater(Loader loader_p) {
		lock_guard<mutex> guard(lock);
		graph.reset();
		loader = std::move(loader_p);
		pending.store(true, std::memory_order_release);
	}

	//! The graph (loading it on the first call, from any thread, once), or null if it cannot
	//! be used (Reason() says why) or was reset. Const: loading does not change what the index
	//! holds, only when it is read. A load refused for memory throws and stays pending (a later
	//! call may find room); with `may_exceed` (work that must not fail) it is never refused.
	RustIndex *Get(bool may_exceed = false) const {
		if (pending.load(std::memory_order_acquire)) {
			lock_guard<mutex> guard(lock);
			if (pending.load(std::memory_order_relaxed)) {
				try {
					graph = loader(may_exceed);
				} catch (OutOfMemoryException &) {
					throw;
				} catch (std::exception &ex) {
					reason = "its stored data cannot be read (" + ErrorData(ex).RawMessage() + ")";
				}
				loader = nullptr;
				pending.store(false, std::memory_order_release);
			}
		}
		return graph.get();
	}

	//! The graph if it is in memory, without loading it (null while a load is pending).
	RustIndex *IfLoaded() const {
		return pending.load(std::memory_order_acquire) ? nullptr : graph.get();
	}

	//! True while stored pages wait to be read.
	bool Pending() const {
		return pending.load(std::memory_order_acquire);
	}

	//! Why the index cannot be used ("" if it can); loads first.
	const string &Reason() const {
		Get();
		return reason;
	}

	//! Forgets the graph (DROP INDEX).
	void Reset() {
		lock_guard<mutex> guard(lock);
		pending.store(false, std::memory_order_release);
		loader = nullptr;
		graph.reset();
	}

private:
	mutable unique_ptr<RustIndex> graph;
	mutable string reason;
	mutable Loader loader;
	mutable atomic<bool> pending{false};
	mutable mutex lock;
};

} // namespace hnsw
} // namespace duckdb

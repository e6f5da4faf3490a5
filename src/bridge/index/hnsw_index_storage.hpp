// Where a file database keeps an HNSW index: the Rust core's paged image, one page per
// FixedSizeAllocator segment in the index blocks of the same file.
#pragma once

#include "hnsw_compat.hpp"
#include "hnsw_ffi.h"

#include "duckdb.hpp"
#include "duckdb/execution/index/fixed_size_allocator.hpp"
#include "duckdb/storage/index_storage_info.hpp"

namespace duckdb {
namespace hnsw {

class RustIndex;

//! Marks storage written by this extension (vss writes the same index type name). The marker names
//! the paged layout; the image header carries its version (the core reads versions 3 and 4).
constexpr const char *STORAGE_FORMAT_KEY = "hnsw_storage_format";
constexpr const char *STORAGE_FORMAT = "duckdb-hnsw-paged-v3";
//! Why a stored index cannot be used, persisted so that the reason survives a reopen.
constexpr const char *STORAGE_UNUSABLE_KEY = "hnsw_unusable_reason";
//! Storage option: the ef_search set by PRAGMA hnsw_set_ef_search (it overrides CREATE INDEX's).
constexpr const char *STORAGE_EF_SEARCH_KEY = "hnsw_ef_search";
//! Storage options "hnsw_with_<option>": the index's WITH options as parsed (metric, M, M0,
//! ef_construction, ef_search, quantization, overfetch). DuckDB 1.5's catalog drops an index's
//! options at a reopen (a cosine index came back as l2sq); these fill in what it lacks.
constexpr const char *STORAGE_WITH_PREFIX = "hnsw_with_";

class HNSWPageStore {
public:
	explicit HNSWPageStore(BlockManager &block_manager);

	//! Attaches stored pages (reads only the directory); throws if the info is malformed.
	void Open(const IndexStorageInfo &info);
	//! True once pages are stored (opened or written).
	bool HasPages() const {
		return !directory.empty();
	}
	//! Builds the index from the stored pages; throws with the reason if any page is damaged.
	unique_ptr<RustIndex> Load();
	//! Writes the pages of `graph` whose checksum changed, frees pages no longer needed.
	void Sync(const RustIndex &graph);
	//! Stores no pages (an index that cannot be used keeps only its reason).
	void SyncEmpty();
	//! Writes the buffers into the file's blocks and describes them for the checkpoint.
	IndexStorageInfo ToDisk(QueryContext context, const Identifier &name, case_insensitive_map_t<Value> options);
	//! Describes the buffers for the WAL (which copies their bytes).
	IndexStorageInfo ToWAL(const Identifier &name, case_insensitive_map_t<Value> options);
	//! Frees every page (DROP INDEX).
	void Reset();
	idx_t InMemorySize() const;
	//! Bytes of the stored image.
	idx_t ImageBytes() const {
		return pages.size() * page_size;
	}
	//! Pages of the stored image.
	idx_t StoredPages() const {
		return pages.size();
	}
	//! Pages the last Sync rewrote (a checkpoint after a small change rewrites few).
	idx_t PagesWrittenLastSync() const {
		return pages_written_last_sync;
	}

private:
	//! Checks that a stored pointer names a stored segment before anything dereferences it.
	void CheckPointer(IndexPointer pointer, const char *what) const;
	//! The bytes of a stored page, read straight from its block (without keeping a copy).
	void ReadPage(idx_t page, const std::function<void(const_data_ptr_t)> &use);
	void WriteDirectory();
	//! The storage info both ToDisk and ToWAL start from: root, options with the format marker.
	IndexStorageInfo Describe(const Identifier &name, case_insensitive_map_t<Value> options);

	BlockManager &block_manager;
	unique_ptr<FixedSizeAllocator> allocator;
	idx_t page_size;
	//! Segment of each page of the image, and the checksum of what it holds.
	vector<IndexPointer> pages;
	vector<uint64_t> checksums;
	//! Segments listing `pages` (the first one is the root).
	vector<IndexPointer> directory;
	bool directory_dirty = true;
	idx_t pages_written_last_sync = 0;
	//! Where each stored buffer lives on disk, for reads that bypass the allocator's copy.
	unordered_map<idx_t, BlockPointer> stored_blocks;
};

} // namespace hnsw
} // namespace duckdb

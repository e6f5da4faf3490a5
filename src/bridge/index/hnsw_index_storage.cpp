// HNSWPageStore: the paged image of an index in FixedSizeAllocator segments of the database file.
#include "index/hnsw_index_storage.hpp"
#include "index/hnsw_index.hpp"

#include "duckdb/storage/block_manager.hpp"
#include "duckdb/storage/buffer_manager.hpp"
#include "duckdb/storage/partial_block_manager.hpp"

namespace duckdb {
namespace hnsw {

//! "HNSWDIR1": a directory segment. Layout in u64 words: magic, total pages, directory segments,
//! position of this segment, entries in it, raw pointer of the next segment, then the entries.
static constexpr uint64_t DIRECTORY_MAGIC = 0x3152494457534E48ULL;
static constexpr idx_t DIRECTORY_HEADER_WORDS = 6;

//! Frees a Rust image plan or reader when the scope ends.
struct ImageGuard {
	HnswRsImage *image = nullptr;
	HnswRsReader *reader = nullptr;
	~ImageGuard() {
		hnsw_rs_image_free(image, nullptr);
		hnsw_rs_reader_free(reader, nullptr);
	}
};

HNSWPageStore::HNSWPageStore(BlockManager &block_manager_p)
    : block_manager(block_manager_p), page_size(block_manager_p.GetBlockSize() - sizeof(validity_t)) {
	// One page fills one buffer: a changed page rewrites exactly one block.
	allocator = make_uniq<FixedSizeAllocator>(page_size, block_manager);
}

void HNSWPageStore::CheckPointer(IndexPointer pointer, const char *what) const {
	if (pointer.GetOffset() != 0 || stored_blocks.find(pointer.GetBufferId()) == stored_blocks.end()) {
		throw IOException("HNSW index storage is damaged: the %s points to buffer %llu offset %llu, which was not "
		                  "stored",
		                  what, pointer.GetBufferId(), pointer.GetOffset());
	}
}

void HNSWPageStore::Open(const IndexStorageInfo &info) {
	if (info.allocator_infos.size() != 1 || info.allocator_infos[0].segment_size != page_size) {
		throw IOException("HNSW index storage is damaged: expected one allocator of %llu-byte segments", page_size);
	}
	auto &alloc_info = info.allocator_infos[0];
	for (idx_t i = 0; i < alloc_info.buffer_ids.size(); i++) {
		// Transient (read-only WAL replay) buffers have no block yet: they are read through the allocator.
		stored_blocks[alloc_info.buffer_ids[i]] =
		    HasTransientBlocks(alloc_info) ? BlockPointer() : alloc_info.block_pointers[i];
	}
	allocator->Init(alloc_info);

	IndexPointer segment(0, 0);
	segment.Set(info.root);
	idx_t total = 0;
	idx_t segments = 1;
	for (idx_t position = 0; position < segments; position++) {
		CheckPointer(segment, "index directory");
		auto handle = allocator->GetHandle(segment);
		auto words = handle.GetPtr<uint64_t>();
		auto capacity = page_size / sizeof(uint64_t) - DIRECTORY_HEADER_WORDS;
		if (words[0] != DIRECTORY_MAGIC || words[3] != position || words[4] > capacity ||
		    (position == 0 ? words[2] == 0 : words[1] != total || words[2] != segments)) {
			throw IOException("HNSW index storage is damaged: directory segment %llu is invalid", position);
		}
		total = words[1];
		segments = words[2];
		if (segments > total / capacity + 1) {
			throw IOException("HNSW index storage is damaged: %llu directory segments for %llu pages", segments, total);
		}
		directory.push_back(segment);
		for (idx_t i = 0; i < words[4]; i++) {
			IndexPointer page(0, 0);
			page.Set(words[DIRECTORY_HEADER_WORDS + i]);
			CheckPointer(page, "index directory entry");
			pages.push_back(page);
		}
		segment.Set(words[5]);
	}
	if (pages.size() != total) {
		throw IOException("HNSW index storage is damaged: the directory lists %llu of %llu pages", pages.size(), total);
	}
	checksums.assign(pages.size(), 0);
	directory_dirty = false;
}

void HNSWPageStore::ReadPage(idx_t page, const std::function<void(const_data_ptr_t)> &use) {
	auto pointer = pages[page];
	auto stored = stored_blocks.find(pointer.GetBufferId());
	if (stored != stored_blocks.end() && stored->second.IsValid() &&
	    stored->second.offset + sizeof(validity_t) + page_size <= block_manager.GetBlockSize()) {
		// Pin the block itself: the allocator would keep a private copy of every page it reads.
		auto block = block_manager.RegisterBlock(stored->second.block_id);
		auto pinned = block_manager.buffer_manager.Pin(block);
		use(pinned.Ptr() + stored->second.offset + sizeof(validity_t));
		return;
	}
	auto handle = allocator->GetHandle(pointer);
	use(handle.GetPtr<data_t>());
}

unique_ptr<RustIndex> HNSWPageStore::Load() {
	if (pages.empty()) {
		throw IOException("HNSW index storage holds no pages");
	}
	static constexpr const char *DAMAGED = "HNSW index storage is damaged";
	ImageGuard guard;
	CoreStatus status;
	size_t image_pages = 0;
	ReadPage(0, [&](const_data_ptr_t bytes) {
		guard.reader = hnsw_rs_reader_new(bytes, page_size, &image_pages, status.Out());
	});
	status.Check(DAMAGED);
	if (image_pages != pages.size()) {
		throw IOException("HNSW index storage is damaged: the image has %llu pages, the directory lists %llu",
		                  image_pages, pages.size());
	}
	for (idx_t page = 0; page < pages.size(); page++) {
		ReadPage(page, [&](const_data_ptr_t bytes) {
			hnsw_rs_reader_add(guard.reader, page, bytes, page_size, &checksums[page], status.Out());
		});
		status.Check(DAMAGED);
	}
	auto reader = guard.reader;
	guard.reader = nullptr;
	auto handle = hnsw_rs_reader_finish(reader, status.Out());
	status.Check(DAMAGED);
	return make_uniq<RustIndex>(handle);
}

void HNSWPageStore::Sync(const RustIndex &graph) {
	ImageGuard guard;
	CoreStatus status;
	size_t total = 0;
	guard.image = hnsw_rs_image_new(graph.Handle(), page_size, &total, status.Out());
	status.Check("HNSW index: cannot plan its storage image");
	if (total < pages.size()) {
		// A smaller image is written afresh: FixedSizeAllocator::Free throws when the freed buffer
		// was full and no other buffer has free space (DuckDB 2.0.1), which is always so here (one
		// page per buffer), and a throw inside a checkpoint is fatal. Shrinking is rare (after a
		// compaction freed whole pages), so the full rewrite costs little.
		Reset();
	}
	vector<data_t> scratch(page_size);
	pages_written_last_sync = 0;
	for (idx_t page = 0; page < total; page++) {
		uint64_t checksum = 0;
		hnsw_rs_image_render(guard.image, graph.Handle(), page, scratch.data(), page_size, &checksum, status.Out());
		status.Check(StringUtil::Format("HNSW index: cannot render storage page %llu", page));
		if (page < pages.size() && checksums[page] == checksum) {
			continue; // Unchanged: its block stays as it is.
		}
		if (page >= pages.size()) {
			pages.push_back(allocator->New());
			checksums.push_back(0);
			directory_dirty = true;
		}
		auto handle = allocator->GetHandle(pages[page]);
		memcpy(handle.GetPtr<data_t>(), scratch.data(), page_size);
		handle.MarkModified();
		checksums[page] = checksum;
		pages_written_last_sync++;
	}
	WriteDirectory();
}

void HNSWPageStore::SyncEmpty() {
	if (!pages.empty()) {
		// Drop every stored buffer without reading it: the pages of an index that cannot be used
		// may be the damaged ones, and reading a damaged block inside a checkpoint is fatal.
		Reset();
	}
	WriteDirectory();
}

void HNSWPageStore::WriteDirectory() {
	if (!directory_dirty && !directory.empty()) {
		return;
	}
	auto capacity = page_size / sizeof(uint64_t) - DIRECTORY_HEADER_WORDS;
	idx_t segments = MaxValue<idx_t>(1, (pages.size() + capacity - 1) / capacity);
	while (directory.size() < segments) {
		directory.push_back(allocator->New());
	}
	// It never shrinks here: fewer pages make Sync start from an empty store (see there).
	for (idx_t position = 0; position < segments; position++) {
		auto handle = allocator->GetHandle(directory[position]);
		auto words = handle.GetPtr<uint64_t>();
		memset(words, 0, page_size);
		auto first = position * capacity;
		auto entries = MinValue<idx_t>(capacity, pages.size() - MinValue<idx_t>(first, pages.size()));
		words[0] = DIRECTORY_MAGIC;
		words[1] = pages.size();
		words[2] = segments;
		words[3] = position;
		words[4] = entries;
		words[5] = position + 1 < segments ? directory[position + 1].Get() : 0;
		for (idx_t i = 0; i < entries; i++) {
			words[DIRECTORY_HEADER_WORDS + i] = pages[first + i].Get();
		}
		handle.MarkModified();
	}
	directory_dirty = false;
}

IndexStorageInfo HNSWPageStore::Describe(const Identifier &name, case_insensitive_map_t<Value> options) {
	IndexStorageInfo info(name);
	info.root = directory[0].Get();
	options[STORAGE_FORMAT_KEY] = Value(STORAGE_FORMAT);
	info.options = std::move(options);
	allocator->RemoveEmptyBuffers();
	return info;
}

IndexStorageInfo HNSWPageStore::ToDisk(QueryContext context, const Identifier &name,
                                       case_insensitive_map_t<Value> options) {
	auto info = Describe(name, std::move(options));
	PartialBlockManager partial_blocks(context, block_manager, PartialBlockType::FULL_CHECKPOINT);
	allocator->SerializeBuffers(partial_blocks);
	partial_blocks.FlushPartialBlocks();
	info.allocator_infos.push_back(allocator->GetInfo());
	return info;
}

IndexStorageInfo HNSWPageStore::ToWAL(const Identifier &name, case_insensitive_map_t<Value> options) {
	auto info = Describe(name, std::move(options));
	info.buffers.push_back(allocator->InitSerializationToWAL());
	info.allocator_infos.push_back(allocator->GetInfo());
	return info;
}

void HNSWPageStore::Reset() {
	allocator->Reset();
	pages.clear();
	checksums.clear();
	directory.clear();
	directory_dirty = true;
}

idx_t HNSWPageStore::InMemorySize() const {
	return allocator->GetInMemorySize();
}

} // namespace hnsw
} // namespace duckdb

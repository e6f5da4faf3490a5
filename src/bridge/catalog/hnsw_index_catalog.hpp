// Finding HNSW indexes: through the catalog (by name, for the table functions and pragmas) and
// through a table's storage (for the optimizer rules and the scan).
#pragma once

#include "hnsw_compat.hpp"
#include "index/hnsw_index.hpp"

#include "duckdb/storage/table/data_table_info.hpp"
#include "duckdb/storage/table/table_index_list.hpp"

namespace duckdb {
class ClientContext;
class DataTableInfo;
class DuckIndexEntry;
class TableCatalogEntry;

namespace hnsw {

//! A bound HNSW index found by name, with the catalog entry that describes it.
struct HNSWIndexRef {
	DuckIndexEntry &catalog_entry;
	IndexEntryRef entry;
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

//! Calls `fn(entry)` for each HNSW index entry of the table (bound ones only, unless
//! `include_unbound`) while its index list is locked, until `fn` returns false.
template <class FUNC> void ForEachHNSWIndex(DataTableInfo &table_info, FUNC &&fn, bool include_unbound = false) {
	ForEachIndexEntry(table_info, [&](const IndexEntryRef &entry) {
		// CREATE INDEX keeps the type's spelling (USING hnsw): the name is case-insensitive.
		if (!StringUtil::CIEquals(entry->GetIndexType(), HNSWIndex::TYPE_NAME) ||
		    (!include_unbound && entry->GetBindState() != IndexBindState::BOUND)) {
			return true;
		}
		return fn(entry);
	});
}

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
//! Over-fetch factor of a quantized index's search: SET hnsw_overfetch, else 0 (the index's).
idx_t EffectiveOverfetch(ClientContext &context);

} // namespace hnsw
} // namespace duckdb

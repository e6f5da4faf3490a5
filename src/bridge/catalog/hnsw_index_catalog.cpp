// Finding HNSW indexes through the catalog, for the table functions and pragmas, and through a
// table's storage, for the optimizer rules and the scan.
#include "hnsw_compat.hpp"
#include "catalog/hnsw_index_catalog.hpp"

#include "duckdb/catalog/catalog.hpp"
#include "duckdb/catalog/catalog_entry/duck_index_entry.hpp"
#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/parser/qualified_name.hpp"
#include "duckdb/storage/table/data_table_info.hpp"
#include "duckdb/storage/table/table_index_list.hpp"

namespace duckdb {
namespace hnsw {

void BindHNSWIndexes(ClientContext &context, DataTableInfo &table_info) {
	// After a reopen, indexes stay unbound until a write; a query binds them itself (cheap: the
	// pages are read on first use). DuckDB binds by the type name exactly as stored, which keeps
	// the case the user wrote (USING hnsw), so each spelling found is bound.
	vector<string> types;
	ForEachHNSWIndex(
	    table_info,
	    [&](const IndexEntryRef &entry) {
		    string type = entry->GetIndexType();
		    if (entry->GetBindState() != IndexBindState::BOUND &&
		        std::find(types.begin(), types.end(), type) == types.end()) {
			    types.push_back(type);
		    }
		    return true;
	    },
	    true);
	for (auto &type : types) {
		BindIndexesOfType(context, table_info, type);
	}
}

//! The storage-side entry of a catalog index entry, or null. (Names are read under the list's
//! lock: a retired entry, out of the list, has no index to name.)
static IndexEntryRef StorageEntry(DuckIndexEntry &index) {
	auto name = NameText(index.name);
	IndexEntryRef found;
	ForEachHNSWIndex(
	    index.GetDataTableInfo(),
	    [&](const IndexEntryRef &entry) {
		    if (StringUtil::CIEquals(NameText(entry->GetName()), name)) {
			    found = entry;
		    }
		    return !found;
	    },
	    true);
	return found;
}

//! The handle `take(entry)` gives for the ref's entry while it is still in the table's index list,
//! or null if another transaction dropped it.
template <class HANDLE, class TAKE> static unique_ptr<HANDLE> TakeHandle(const HNSWIndexRef &ref, TAKE &&take) {
	unique_ptr<HANDLE> handle;
	ForEachHNSWIndex(ref.catalog_entry.GetDataTableInfo(), [&](const IndexEntryRef &entry) {
		if (entry == ref.entry) {
			handle = make_uniq<HANDLE>(take(entry));
		}
		return !handle;
	});
	return handle;
}

unique_ptr<IndexReadHandle<HNSWIndex>> TryReadHNSWIndex(const HNSWIndexRef &ref) {
	return TakeHandle<IndexReadHandle<HNSWIndex>>(
	    ref, [](const IndexEntryRef &entry) { return entry->GetReadHandle<HNSWIndex>(); });
}

//! The error for an index another transaction dropped after it was looked up.
static CatalogException DroppedMeanwhile(const HNSWIndexRef &ref) {
	return CatalogException("HNSW index \"%s\" was dropped by another transaction", NameText(ref.catalog_entry.name));
}

unique_ptr<IndexReadHandle<HNSWIndex>> ReadHNSWIndex(const HNSWIndexRef &ref) {
	auto handle = TryReadHNSWIndex(ref);
	if (!handle) {
		throw DroppedMeanwhile(ref);
	}
	return handle;
}

unique_ptr<IndexWriteHandle<HNSWIndex>> WriteHNSWIndex(const HNSWIndexRef &ref) {
	auto handle = TakeHandle<IndexWriteHandle<HNSWIndex>>(
	    ref, [](const IndexEntryRef &entry) { return entry->GetWriteHandle<HNSWIndex>(); });
	if (!handle) {
		throw DroppedMeanwhile(ref);
	}
	return handle;
}

vector<HNSWIndexRef> AllHNSWIndexes(ClientContext &context) {
	vector<HNSWIndexRef> result;
	for (auto &catalog_entry : Catalog::GetAllEntries(context, CatalogType::INDEX_ENTRY)) {
		auto &index = catalog_entry.get().Cast<IndexCatalogEntry>();
		if (!StringUtil::CIEquals(index.index_type, HNSWIndex::TYPE_NAME) || !index.catalog.IsDuckCatalog()) {
			continue;
		}
		auto &duck_index = index.Cast<DuckIndexEntry>();
		BindHNSWIndexes(context, duck_index.GetDataTableInfo());
		auto entry = StorageEntry(duck_index);
		if (entry && entry->GetBindState() == IndexBindState::BOUND) {
			result.push_back(HNSWIndexRef{duck_index, std::move(entry)});
		}
	}
	return result;
}

//! HNSW indexes whose [catalog.][schema.]name matches `parts` (case-insensitive).
static vector<HNSWIndexRef> MatchingIndexes(ClientContext &context, const vector<string> &parts, string &places) {
	vector<HNSWIndexRef> matches;
	auto count = parts.size();
	for (auto &ref : AllHNSWIndexes(context)) {
		auto &index = ref.catalog_entry;
		bool match = StringUtil::CIEquals(NameText(index.name), parts[count - 1]) &&
		             (count < 2 || StringUtil::CIEquals(NameText(index.GetSchemaName()), parts[count - 2])) &&
		             (count < 3 || StringUtil::CIEquals(NameText(index.catalog.GetName()), parts[0]));
		if (match) {
			places += (places.empty() ? "" : ", ") + NameText(index.catalog.GetName()) + "." +
			          NameText(index.GetSchemaName()) + "." + NameText(index.name);
			matches.push_back(std::move(ref));
		}
	}
	return matches;
}

HNSWIndexRef FindHNSWIndex(ClientContext &context, const string &name) {
	// The text as one name first (a quoted index name may contain dots), then as
	// schema.index or catalog.schema.index (quotes allowed); a bare name must be unique.
	string places;
	auto matches = MatchingIndexes(context, {name}, places);
	if (matches.empty()) {
		vector<string> parts;
		try {
			for (auto &part : QualifiedName::ParseComponents(name)) {
				parts.push_back(NameText(part));
			}
		} catch (std::exception &) {
			parts.clear();
		}
		bool valid = !parts.empty() && parts.size() <= 3 && !StringUtil::StartsWith(name, ".") &&
		             !StringUtil::EndsWith(name, ".");
		for (auto &part : parts) {
			valid = valid && !part.empty();
		}
		if (!valid) {
			throw InvalidInputException("HNSW index name \"%s\": expected index, schema.index or catalog.schema.index",
			                            name);
		}
		matches = MatchingIndexes(context, parts, places);
	}
	if (matches.size() > 1) {
		throw InvalidInputException(
		    "HNSW index name \"%s\" is ambiguous: it matches %s; qualify it as schema.index or catalog.schema.index",
		    name, places);
	}
	if (matches.empty()) {
		throw CatalogException("HNSW index \"%s\" does not exist (see pragma_hnsw_index_info() for the HNSW indexes)",
		                       name);
	}
	return std::move(matches[0]);
}

unique_ptr<IndexReadHandle<HNSWIndex>> ReadTableHNSWIndex(TableCatalogEntry &table, const string &name) {
	unique_ptr<IndexReadHandle<HNSWIndex>> handle;
	ForEachHNSWIndex(*table.Cast<DuckTableEntry>().GetStorage().GetDataTableInfo(), [&](const IndexEntryRef &entry) {
		if (StringUtil::CIEquals(NameText(entry->GetName()), name)) {
			handle = make_uniq<IndexReadHandle<HNSWIndex>>(entry->GetReadHandle<HNSWIndex>());
		}
		return !handle;
	});
	return handle;
}

idx_t EffectiveEf(ClientContext &context, int64_t requested, const HNSWIndex &index, idx_t k) {
	int64_t ef = requested;
	if (ef <= 0) {
		Value setting;
		if (context.TryGetCurrentSetting("hnsw_ef_search", setting) && !setting.IsNull()) {
			ef = setting.GetValue<int64_t>();
		} else {
			ef = index.Options().params.ef_search;
		}
	}
	return MaxValue<idx_t>(NumericCast<idx_t>(ef), k);
}

idx_t EffectiveOverfetch(ClientContext &context) {
	Value setting;
	if (context.TryGetCurrentSetting("hnsw_overfetch", setting) && !setting.IsNull()) {
		return NumericCast<idx_t>(setting.GetValue<int64_t>());
	}
	return 0;
}

} // namespace hnsw
} // namespace duckdb

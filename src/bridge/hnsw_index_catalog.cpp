// Finding HNSW indexes through the catalog, for the table functions and pragmas.
#include "hnsw_compat.hpp"
#include "hnsw_index.hpp"

#include "duckdb/catalog/catalog.hpp"
#include "duckdb/catalog/catalog_entry/duck_index_entry.hpp"
#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/parser/qualified_name.hpp"
#include "duckdb/storage/table/data_table_info.hpp"
#include "duckdb/storage/table/index_entry.hpp"
#include "duckdb/storage/table/table_index_list.hpp"

namespace duckdb {
namespace hnsw {

void BindHNSWIndexes(ClientContext &context, DataTableInfo &table_info) {
	// After a reopen, indexes stay unbound until a write; a query binds them itself (cheap: the
	// pages are read on first use).
	bool unbound = false;
	for (const auto &entry : table_info.GetIndexes().IndexEntries()) {
		unbound = unbound ||
		          (entry->GetIndexType() == HNSWIndex::TYPE_NAME && entry->GetBindState() != IndexBindState::BOUND);
	}
	if (unbound) {
		table_info.BindIndexes(context, string(HNSWIndex::TYPE_NAME));
	}
}

//! The storage-side entry of a catalog index entry, or null. (Names are read under the list's
//! lock: a retired entry, out of the list, has no index to name.)
static shared_ptr<IndexEntry> StorageEntry(DuckIndexEntry &index) {
	auto name = NameText(index.name);
	for (const auto &entry : index.GetDataTableInfo().GetIndexes().IndexEntries()) {
		if (StringUtil::CIEquals(NameText(entry->GetName()), name)) {
			return entry;
		}
	}
	return nullptr;
}

unique_ptr<IndexReadHandle<HNSWIndex>> TryReadHNSWIndex(const HNSWIndexRef &ref) {
	for (const auto &entry : ref.catalog_entry.GetDataTableInfo().GetIndexes().IndexEntries()) {
		if (entry == ref.entry) {
			return make_uniq<IndexReadHandle<HNSWIndex>>(entry->GetReadHandle<HNSWIndex>());
		}
	}
	return nullptr;
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
	for (const auto &entry : ref.catalog_entry.GetDataTableInfo().GetIndexes().IndexEntries()) {
		if (entry == ref.entry) {
			return make_uniq<IndexWriteHandle<HNSWIndex>>(entry->GetWriteHandle<HNSWIndex>());
		}
	}
	throw DroppedMeanwhile(ref);
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
	for (const auto &entry :
	     table.Cast<DuckTableEntry>().GetStorage().GetDataTableInfo()->GetIndexes().IndexEntries()) {
		if (entry->GetIndexType() == HNSWIndex::TYPE_NAME && entry->GetBindState() == IndexBindState::BOUND &&
		    StringUtil::CIEquals(NameText(entry->GetName()), name)) {
			return make_uniq<IndexReadHandle<HNSWIndex>>(entry->GetReadHandle<HNSWIndex>());
		}
	}
	return nullptr;
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

} // namespace hnsw
} // namespace duckdb

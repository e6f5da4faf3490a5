// Before optimizing a write (INSERT, UPDATE, MERGE), hand the written table's storage to its HNSW
// indexes: at commit they may ask DuckDB to start a new row group (hnsw_index_row_groups.cpp),
// and an index cannot find its table by itself. The plan is not changed.
#include "hnsw_bridge.hpp"
#include "catalog/hnsw_index_catalog.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/optimizer/optimizer_extension.hpp"
#include "duckdb/planner/operator/logical_insert.hpp"
#include "duckdb/planner/operator/logical_merge_into.hpp"
#include "duckdb/planner/operator/logical_update.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/table/data_table_info.hpp"
#include "duckdb/storage/table/table_index_list.hpp"

namespace duckdb {
namespace hnsw {

//! The table a write operator appends to, or null.
static optional_ptr<TableCatalogEntry> AppendedTable(LogicalOperator &op) {
	switch (op.type) {
	case LogicalOperatorType::LOGICAL_INSERT:
		return &op.Cast<LogicalInsert>().table;
	case LogicalOperatorType::LOGICAL_UPDATE:
		return &op.Cast<LogicalUpdate>().table; // an update of an indexed column appends the new row
	case LogicalOperatorType::LOGICAL_MERGE_INTO:
		return &op.Cast<LogicalMergeInto>().table;
	default:
		return nullptr;
	}
}

//! Gives each HNSW index of the table the table's storage (binding indexes a reopen left unbound).
static void AttachToIndexes(ClientContext &context, TableCatalogEntry &table) {
	if (!table.IsDuckTable()) {
		return; // another catalog's table: not ours to manage
	}
	auto &storage = table.Cast<DuckTableEntry>().GetStorage();
	auto &info = *storage.GetDataTableInfo();
	bool has_hnsw = false; // checked first, to bind nothing for tables without HNSW indexes
	ForEachHNSWIndex(
	    info,
	    [&](const IndexEntryRef &) {
		    has_hnsw = true;
		    return false;
	    },
	    true);
	if (!has_hnsw) {
		return;
	}
	BindHNSWIndexes(context, info);
	ForEachHNSWIndex(info, [&](const IndexEntryRef &entry) {
		auto handle = entry->GetReadHandle<HNSWIndex>();
		handle->AttachTable(storage);
		return true;
	});
}

static void AttachWrittenTables(ClientContext &context, LogicalOperator &op) {
	for (auto &child : op.children) {
		AttachWrittenTables(context, *child);
	}
	auto table = AppendedTable(op);
	if (table) {
		AttachToIndexes(context, *table);
	}
}

static void PreOptimizeWrites(OptimizerExtensionInput &input, unique_ptr<LogicalOperator> &plan) {
	AttachWrittenTables(input.context, *plan);
}

void RegisterWriteOptimizer(ExtensionLoader &loader) {
	OptimizerExtension extension;
	extension.pre_optimize_function = PreOptimizeWrites;
	OptimizerExtension::Register(DBConfig::GetConfig(loader.GetDatabaseInstance()), extension);
}

} // namespace hnsw
} // namespace duckdb

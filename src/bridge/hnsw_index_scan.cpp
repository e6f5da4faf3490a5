// HNSW_INDEX_SCAN execution: search the graph once, then fetch the candidate rows by rowid.
// When this transaction has uncommitted changes to the table (which the index cannot see yet)
// it scans the whole table instead, so the result stays exact.
#include "hnsw_index_scan.hpp"
#include "hnsw_index.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/table/scan_state.hpp"
#include "duckdb/storage/table/index_entry.hpp"
#include "duckdb/transaction/duck_transaction.hpp"
#include "duckdb/transaction/local_storage.hpp"

namespace duckdb {
namespace hnsw {

unique_ptr<FunctionData> HNSWScanBindData::Copy() const {
	return make_uniq<HNSWScanBindData>(table, index_name, query, k);
}

bool HNSWScanBindData::Equals(const FunctionData &other_p) const {
	auto &other = other_p.Cast<HNSWScanBindData>();
	return &table == &other.table && index_name == other.index_name && query == other.query && k == other.k;
}

struct HNSWScanState : public GlobalTableFunctionState {
	vector<StorageIndex> storage_ids;
	//! Candidate rowids, ascending (fetch order); empty in full-scan mode.
	vector<row_t> row_ids;
	idx_t offset = 0;
	bool full_scan = false;
	TableScanState table_scan;
	ColumnFetchState fetch_state;
};

static unique_ptr<GlobalTableFunctionState> HNSWScanInit(ClientContext &context, TableFunctionInitInput &input) {
	auto &bind = input.bind_data->Cast<HNSWScanBindData>();
	auto &storage = bind.table.Cast<DuckTableEntry>().GetStorage();
	auto &transaction = DuckTransaction::Get(context, bind.table.catalog);
	auto state = make_uniq<HNSWScanState>();
	// Without filters, only the projected columns are needed: fetch exactly the output columns.
	auto output_columns = input.column_indexes.size();
	if (!input.projection_ids.empty()) {
		output_columns = input.projection_ids.size();
	}
	for (idx_t i = 0; i < output_columns; i++) {
		auto &column = input.column_indexes[input.projection_ids.empty() ? i : input.projection_ids[i]];
		state->storage_ids.push_back(column.IsRowIdColumn() ? StorageIndex(COLUMN_IDENTIFIER_ROW_ID)
		                                                    : bind.table.GetStorageIndex(column));
	}
	if (LocalStorage::Get(transaction).Find(storage)) {
		// Uncommitted inserts/deletes of this transaction are not in the index yet.
		state->full_scan = true;
		storage.InitializeScan(context, transaction, state->table_scan, state->storage_ids);
		return std::move(state);
	}
	auto ref = FindHNSWIndex(context, bind.index_name);
	auto handle = ref.entry->GetReadHandle<HNSWIndex>();
	auto &index = *handle.operator->();
	auto ef = EffectiveEf(context, 0, index, bind.k);
	index.Graph().Candidates(bind.query.data(), bind.query.size(), bind.k, ef, state->row_ids);
	std::sort(state->row_ids.begin(), state->row_ids.end());
	return std::move(state);
}

static void HNSWScanFunction(ClientContext &context, TableFunctionInput &input, DataChunk &output) {
	auto &bind = input.bind_data->Cast<HNSWScanBindData>();
	auto &state = input.global_state->Cast<HNSWScanState>();
	auto &storage = bind.table.Cast<DuckTableEntry>().GetStorage();
	auto &transaction = DuckTransaction::Get(context, bind.table.catalog);
	if (state.full_scan) {
		storage.Scan(transaction, output, state.table_scan);
		return;
	}
	// Rows this snapshot cannot see are dropped by Fetch; keep going until a chunk has rows.
	while (state.offset < state.row_ids.size()) {
		auto count = MinValue<idx_t>(STANDARD_VECTOR_SIZE, state.row_ids.size() - state.offset);
		Vector ids(LogicalType::ROW_TYPE, data_ptr_cast(state.row_ids.data() + state.offset), count);
		state.offset += count;
		output.Reset();
		storage.Fetch(transaction, output, state.storage_ids, ids, count, state.fetch_state);
		if (output.size() > 0) {
			return;
		}
	}
	output.SetChildCardinality(0);
}

static virtual_column_map_t HNSWScanVirtualColumns(ClientContext &context, optional_ptr<FunctionData> bind_data) {
	return bind_data->Cast<HNSWScanBindData>().table.GetVirtualColumns();
}

static unique_ptr<NodeStatistics> HNSWScanCardinality(ClientContext &context, const FunctionData *bind_data) {
	auto &bind = bind_data->Cast<HNSWScanBindData>();
	return make_uniq<NodeStatistics>(bind.k, bind.k);
}

static InsertionOrderPreservingMap<string> HNSWScanToString(TableFunctionToStringInput &input) {
	auto &bind = input.bind_data->Cast<HNSWScanBindData>();
	InsertionOrderPreservingMap<string> result;
	result["Table"] = bind.table.name.GetIdentifierName();
	result["HNSW Index"] = bind.index_name;
	result["Limit"] = to_string(bind.k);
	return result;
}

TableFunction GetHNSWIndexScanFunction() {
	TableFunction scan("hnsw_index_scan", {}, HNSWScanFunction, nullptr, HNSWScanInit);
	scan.projection_pushdown = true;
	scan.filter_pushdown = false;
	scan.filter_prune = false;
	scan.get_virtual_columns = HNSWScanVirtualColumns;
	scan.cardinality = HNSWScanCardinality;
	scan.to_string = HNSWScanToString;
	return scan;
}

} // namespace hnsw
} // namespace duckdb

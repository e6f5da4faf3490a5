// HNSW_INDEX_SCAN execution: search the graph once, then fetch the candidate rows by rowid.
// When this transaction has uncommitted changes to the table (which the index cannot see yet),
// the query vector is NULL, or the index holds fewer than k rows (rows with NULL vectors then
// belong in the result), it reads the whole table instead, so the result stays exact.
// Two forms: a table scan (constant query vector) and an in-out function that takes the query
// vector from its input (a scalar subquery or CTE value), one search per input row.
#include "hnsw_index_scan.hpp"
#include "hnsw_index.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/common/vector/array_vector.hpp"
#include "duckdb/main/client_context.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/table/index_entry.hpp"
#include "duckdb/storage/table/scan_state.hpp"
#include "duckdb/transaction/duck_transaction.hpp"
#include "duckdb/transaction/local_storage.hpp"

namespace duckdb {
namespace hnsw {

unique_ptr<FunctionData> HNSWScanBindData::Copy() const {
	auto copy = make_uniq<HNSWScanBindData>(table, index_name, query, k);
	copy->query_column = query_column;
	copy->passthrough_columns = passthrough_columns;
	return std::move(copy);
}

bool HNSWScanBindData::Equals(const FunctionData &other_p) const {
	auto &other = other_p.Cast<HNSWScanBindData>();
	return &table == &other.table && index_name == other.index_name && query == other.query && k == other.k &&
	       query_column == other.query_column && passthrough_columns == other.passthrough_columns;
}

//! Reads the rows of one search: the candidates by rowid, or the whole table as a fallback.
class CandidateReader {
public:
	//! Storage columns to produce, from the scan's columns and projection.
	void SetColumns(const HNSWScanBindData &bind, const vector<ColumnIndex> &columns, const vector<idx_t> &projection) {
		auto outputs = projection.empty() ? columns.size() : projection.size();
		for (idx_t i = 0; i < outputs; i++) {
			auto &column = columns[projection.empty() ? i : projection[i]];
			storage_ids.push_back(column.IsRowIdColumn() ? StorageIndex(COLUMN_IDENTIFIER_ROW_ID)
			                                             : bind.table.GetStorageIndex(column));
			types.push_back(column.IsRowIdColumn()
			                    ? LogicalType::ROW_TYPE
			                    : bind.table.GetColumn(LogicalIndex(column.GetPrimaryIndex())).Type());
		}
	}

	//! Starts reading for one query vector (null: read everything).
	void Start(ClientContext &context, const HNSWScanBindData &bind, const float *query) {
		auto &storage = bind.table.Cast<DuckTableEntry>().GetStorage();
		auto &transaction = DuckTransaction::Get(context, bind.table.catalog);
		row_ids.clear();
		offset = 0;
		// Uncommitted inserts and deletes of this transaction are not in the index yet (deletes of
		// committed rows are not in LocalStorage either, hence ChangesMade).
		full_scan = !query || LocalStorage::Get(transaction).Find(storage) || transaction.ChangesMade();
		if (full_scan) {
			table_scan = make_uniq<TableScanState>();
			storage.InitializeScan(context, transaction, *table_scan, storage_ids);
			return;
		}
		// The index of this very table (names are only unique per schema).
		auto entry = FindTableHNSWIndex(bind.table, bind.index_name);
		if (!entry) {
			throw CatalogException("HNSW index \"%s\" was dropped while the query ran", bind.index_name);
		}
		auto handle = entry->GetReadHandle<HNSWIndex>();
		auto &index = *handle.operator->();
		auto ef = EffectiveEf(context, 0, index, bind.k);
		try {
			index.Graph().Candidates(query, index.Dimensions(), bind.k, ef, row_ids);
		} catch (InvalidInputException &) {
			// A query vector the index cannot search (NaN, or zero under cosine): the exact plan
			// still answers (with NaN distances), so read the table.
			row_ids.clear();
			Start(context, bind, nullptr);
			return;
		}
		if (row_ids.size() < bind.k) {
			// The index holds fewer than k rows: the exact plan also returns rows whose vector
			// is NULL (sorted last), so read the whole table.
			row_ids.clear();
			Start(context, bind, nullptr);
			return;
		}
		std::sort(row_ids.begin(), row_ids.end());
	}

	//! Fills `out` (the produced columns only) with the next rows; 0 when done.
	idx_t Next(ClientContext &context, const HNSWScanBindData &bind, DataChunk &out) {
		auto &storage = bind.table.Cast<DuckTableEntry>().GetStorage();
		auto &transaction = DuckTransaction::Get(context, bind.table.catalog);
		out.Reset();
		if (full_scan) {
			storage.Scan(transaction, out, *table_scan);
			return out.size();
		}
		// Rows this snapshot cannot see are dropped by Fetch; keep going until a chunk has rows.
		while (offset < row_ids.size()) {
			auto count = MinValue<idx_t>(STANDARD_VECTOR_SIZE, row_ids.size() - offset);
			Vector ids(LogicalType::ROW_TYPE, data_ptr_cast(row_ids.data() + offset), count);
			offset += count;
			out.Reset();
			storage.Fetch(transaction, out, storage_ids, ids, count, fetch_state);
			if (out.size() > 0) {
				return out.size();
			}
		}
		out.SetChildCardinality(0);
		return 0;
	}

	vector<StorageIndex> storage_ids;
	vector<LogicalType> types;

private:
	//! Candidate rowids, ascending (fetch order); unused in full-scan mode.
	vector<row_t> row_ids;
	idx_t offset = 0;
	bool full_scan = false;
	unique_ptr<TableScanState> table_scan;
	ColumnFetchState fetch_state;
};

struct HNSWScanState : public GlobalTableFunctionState {
	CandidateReader reader;
};

static unique_ptr<GlobalTableFunctionState> HNSWScanInit(ClientContext &context, TableFunctionInitInput &input) {
	auto &bind = input.bind_data->Cast<HNSWScanBindData>();
	auto state = make_uniq<HNSWScanState>();
	state->reader.SetColumns(bind, input.column_indexes, input.projection_ids);
	state->reader.Start(context, bind, bind.query.data());
	return std::move(state);
}

static void HNSWScanFunction(ClientContext &context, TableFunctionInput &input, DataChunk &output) {
	auto &bind = input.bind_data->Cast<HNSWScanBindData>();
	input.global_state->Cast<HNSWScanState>().reader.Next(context, bind, output);
}

//! Per-thread state of the in-out form: the input row being answered.
struct HNSWInOutState : public LocalTableFunctionState {
	CandidateReader reader;
	DataChunk rows;
	bool started = false;
	vector<float> query;
};

static unique_ptr<LocalTableFunctionState> HNSWInOutInit(ExecutionContext &context, TableFunctionInitInput &input,
                                                         GlobalTableFunctionState *global_state) {
	auto &bind = input.bind_data->Cast<HNSWScanBindData>();
	auto state = make_uniq<HNSWInOutState>();
	state->reader.SetColumns(bind, input.column_indexes, input.projection_ids);
	state->rows.Initialize(Allocator::DefaultAllocator(), state->reader.types);
	return std::move(state);
}

//! Reads the query vector of the (single-row) input; false when it is NULL.
static bool InputQuery(DataChunk &input, idx_t column, vector<float> &query) {
	auto &vector = input.data[column];
	UnifiedVectorFormat outer;
	vector.ToUnifiedFormat(outer);
	if (input.size() == 0 || !outer.validity.RowIsValid(outer.sel->get_index(0))) {
		return false;
	}
	auto size = ArrayType::GetSize(vector.GetType());
	auto &child = ArrayVector::GetChild(vector);
	UnifiedVectorFormat elements;
	child.ToUnifiedFormat(elements);
	auto data = UnifiedVectorFormat::GetData<float>(elements);
	auto base = outer.sel->get_index(0) * size;
	query.resize(size);
	for (idx_t i = 0; i < size; i++) {
		auto index = elements.sel->get_index(base + i);
		if (!elements.validity.RowIsValid(index)) {
			return false; // the exact plan would raise its own error on this vector
		}
		query[i] = data[index];
	}
	return true;
}

static OperatorResultType HNSWInOutFunction(ExecutionContext &context, TableFunctionInput &data, DataChunk &input,
                                            DataChunk &output) {
	auto &bind = data.bind_data->Cast<HNSWScanBindData>();
	auto &state = data.local_state->Cast<HNSWInOutState>();
	if (!state.started) {
		bool has_query = InputQuery(input, bind.query_column, state.query);
		state.reader.Start(context.client, bind, has_query ? state.query.data() : nullptr);
		state.started = true;
	}
	auto count = state.reader.Next(context.client, bind, state.rows);
	if (count == 0) {
		state.started = false;
		output.SetChildCardinality(0);
		return OperatorResultType::NEED_MORE_INPUT;
	}
	// Our columns first; the operator fills the passed-through input columns after them.
	D_ASSERT(output.ColumnCount() == state.rows.ColumnCount() + bind.passthrough_columns);
	for (idx_t i = 0; i < state.rows.ColumnCount(); i++) {
		output.data[i].Reference(state.rows.data[i]);
	}
	output.SetChildCardinality(count);
	return OperatorResultType::HAVE_MORE_OUTPUT;
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
	// The in-out form shows as INOUT_FUNCTION: name the scan so EXPLAIN shows it either way.
	result["Function"] = "HNSW_INDEX_SCAN";
	result["Table"] = bind.table.name.GetIdentifierName();
	result["HNSW Index"] = bind.index_name;
	result["Limit"] = to_string(bind.k);
	return result;
}

static TableFunction BaseScanFunction() {
	TableFunction scan("hnsw_index_scan", {}, nullptr);
	scan.projection_pushdown = true;
	scan.filter_pushdown = false;
	scan.filter_prune = false;
	scan.get_virtual_columns = HNSWScanVirtualColumns;
	scan.cardinality = HNSWScanCardinality;
	scan.to_string = HNSWScanToString;
	return scan;
}

TableFunction GetHNSWIndexScanFunction() {
	auto scan = BaseScanFunction();
	scan.function = HNSWScanFunction;
	scan.init_global = HNSWScanInit;
	return scan;
}

TableFunction GetHNSWIndexScanInOutFunction() {
	auto scan = BaseScanFunction();
	scan.in_out_function = HNSWInOutFunction;
	scan.init_local = HNSWInOutInit;
	return scan;
}

} // namespace hnsw
} // namespace duckdb

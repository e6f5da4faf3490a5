// pragma_hnsw_index_info(): one row per HNSW index (vss's columns plus ours), and
// PRAGMA hnsw_compact_index('name'): reclaim the slots of deleted rows.
#include "hnsw_bridge.hpp"
#include "hnsw_compat.hpp"
#include "catalog/hnsw_index_catalog.hpp"

#include "duckdb/catalog/catalog.hpp"
#include "duckdb/catalog/catalog_entry/duck_index_entry.hpp"
#include "duckdb/function/pragma_function.hpp"
#include "duckdb/function/table_function.hpp"
#include "duckdb/main/extension/extension_loader.hpp"

namespace duckdb {
namespace hnsw {

struct InfoState : public GlobalTableFunctionState {
	vector<vector<Value>> rows;
	idx_t offset = 0;
};

static const vector<pair<const char *, LogicalType>> &InfoColumns() {
	static const vector<pair<const char *, LogicalType>> columns = {
	    {"catalog_name", LogicalType::VARCHAR},
	    {"schema_name", LogicalType::VARCHAR},
	    {"index_name", LogicalType::VARCHAR},
	    {"table_name", LogicalType::VARCHAR},
	    {"metric", LogicalType::VARCHAR},
	    {"dimensions", LogicalType::BIGINT},
	    {"count", LogicalType::BIGINT},
	    {"deleted", LogicalType::BIGINT},
	    {"retired", LogicalType::BIGINT},
	    {"approx_memory_usage", LogicalType::BIGINT},
	    {"levels", LogicalType::BIGINT},
	    {"m", LogicalType::BIGINT},
	    {"m0", LogicalType::BIGINT},
	    {"ef_construction", LogicalType::BIGINT},
	    {"ef_search", LogicalType::BIGINT},
	    {"stored_pages", LogicalType::BIGINT},
	    {"pages_written", LogicalType::BIGINT},
	    {"unusable_reason", LogicalType::VARCHAR},
	    {"quantization", LogicalType::VARCHAR},
	    {"bytes_per_vector", LogicalType::BIGINT},
	    {"overfetch", LogicalType::BIGINT},
	    {"clamped_components", LogicalType::BIGINT},
	};
	return columns;
}

static unique_ptr<FunctionData> InfoBind(ClientContext &context, TableFunctionBindInput &input,
                                         vector<LogicalType> &return_types, vector<Identifier> &names) {
	for (auto &column : InfoColumns()) {
		names.emplace_back(column.first);
		return_types.push_back(column.second);
	}
	return make_uniq<TableFunctionData>();
}

static unique_ptr<GlobalTableFunctionState> InfoInit(ClientContext &context, TableFunctionInitInput &input) {
	auto state = make_uniq<InfoState>();
	for (auto &ref : AllHNSWIndexes(context)) {
		auto read = TryReadHNSWIndex(ref);
		if (!read) {
			continue; // dropped by another transaction since the catalog was read
		}
		auto &handle = *read;
		auto &options = handle->Options();
		HnswStats stats{};
		if (handle->IsUsable()) {
			stats = handle->Graph().Stats();
		}
		auto &index = ref.catalog_entry;
		state->rows.push_back({Value(NameText(index.catalog.GetName())),
		                       Value(NameText(index.GetSchemaName())),
		                       Value(NameText(index.name)),
		                       Value(NameText(index.GetTableName())),
		                       Value(options.metric_name),
		                       Value::BIGINT(options.params.dim),
		                       Value::BIGINT(NumericCast<int64_t>(stats.count)),
		                       Value::BIGINT(NumericCast<int64_t>(stats.deleted)),
		                       Value::BIGINT(NumericCast<int64_t>(stats.retired)),
		                       Value::BIGINT(NumericCast<int64_t>(stats.memory_bytes)),
		                       Value::BIGINT(NumericCast<int64_t>(stats.layers)),
		                       Value::BIGINT(options.params.m),
		                       Value::BIGINT(options.params.m0),
		                       Value::BIGINT(options.params.ef_construction),
		                       Value::BIGINT(options.params.ef_search),
		                       Value::BIGINT(NumericCast<int64_t>(handle->StoredPages().first)),
		                       Value::BIGINT(NumericCast<int64_t>(handle->StoredPages().second)),
		                       handle->IsUsable() ? Value(LogicalType::VARCHAR) : Value(handle->UnusableReason()),
		                       Value(hnsw_rs_quantization_name(options.params.quantization)),
		                       Value::BIGINT(NumericCast<int64_t>(stats.code_bytes)),
		                       Value::BIGINT(options.params.overfetch),
		                       Value::BIGINT(NumericCast<int64_t>(stats.clamped))});
	}
	return std::move(state);
}

static void InfoFunction(ClientContext &context, TableFunctionInput &input, DataChunk &output) {
	auto &state = input.global_state->Cast<InfoState>();
	idx_t count = 0;
	while (state.offset < state.rows.size() && count < STANDARD_VECTOR_SIZE) {
		auto &row = state.rows[state.offset++];
		for (idx_t col = 0; col < row.size(); col++) {
			output.data[col].SetValue(count, row[col]);
		}
		count++;
	}
	SetChunkSize(output, count);
}

static void CompactPragma(ClientContext &context, const FunctionParameters &parameters) {
	if (parameters.values[0].IsNull()) {
		throw InvalidInputException("hnsw_compact_index: the index name is NULL");
	}
	auto ref = FindHNSWIndex(context, parameters.values[0].GetValue<string>());
	// The write handle keeps searches and appends out while the graph is repaired.
	auto handle = WriteHNSWIndex(ref);
	(*handle)->Compact();
}

//! A name as a double-quoted SQL identifier.
static string QuotedName(const string &name) {
	return "\"" + StringUtil::Replace(name, "\"", "\"\"") + "\"";
}

//! PRAGMA hnsw_set_ef_search('name', ef): the index's default ef_search from now on, stored with
//! it. Returns the statement DuckDB runs next: the index's comment set to itself, a catalog
//! change that makes the next checkpoint happen even if nothing else was written (a checkpoint
//! with an empty write-ahead log is skipped), so the new value reaches the file.
static string SetEfSearchPragma(ClientContext &context, const FunctionParameters &parameters) {
	if (parameters.values[0].IsNull() || parameters.values[1].IsNull()) {
		throw InvalidInputException("hnsw_set_ef_search: expected an index name and an ef_search, got NULL");
	}
	auto ef = parameters.values[1].GetValue<int64_t>();
	CheckEfSearch(ef, "hnsw_set_ef_search");
	auto ref = FindHNSWIndex(context, parameters.values[0].GetValue<string>());
	{
		auto handle = WriteHNSWIndex(ref);
		(*handle)->SetEfSearch(ef);
	}
	auto &index = ref.catalog_entry;
	return StringUtil::Format("COMMENT ON INDEX %s.%s.%s IS %s", QuotedName(NameText(index.catalog.GetName())),
	                          QuotedName(NameText(index.GetSchemaName())), QuotedName(NameText(index.name)),
	                          index.comment.IsNull() ? string("NULL") : index.comment.ToSQLString());
}

void RegisterIndexInfoFunctions(ExtensionLoader &loader) {
	loader.RegisterFunction(TableFunction("pragma_hnsw_index_info", {}, InfoFunction, InfoBind, InfoInit));
	loader.RegisterFunction(PragmaFunction::PragmaCall("hnsw_compact_index", CompactPragma, {LogicalType::VARCHAR}));
	loader.RegisterFunction(PragmaFunction::PragmaCall("hnsw_set_ef_search", SetEfSearchPragma,
	                                                   {LogicalType::VARCHAR, LogicalType::BIGINT}));
}

} // namespace hnsw
} // namespace duckdb

// Filtered search, the DuckDB side: evaluating the predicate into a row set, and the settings.
#include "scan/hnsw_filtered_rows.hpp"
#include "scan/hnsw_index_scan.hpp"
#include "catalog/hnsw_index_catalog.hpp"
#include "hnsw_bridge.hpp"
#include "hnsw_compat.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/execution/expression_executor.hpp"
#include "duckdb/main/config.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "duckdb/planner/expression/bound_conjunction_expression.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/table/scan_state.hpp"
#include "duckdb/transaction/duck_transaction.hpp"

namespace duckdb {
namespace hnsw {

void CollectMatchingRows(ClientContext &context, const HNSWScanBindData &bind, MatchingRows &rows) {
	rows.committed.clear();
	rows.local.clear();
	auto &storage = bind.table.Cast<DuckTableEntry>().GetStorage();
	auto &transaction = DuckTransaction::Get(context, bind.table.catalog);
	vector<StorageIndex> ids;
	vector<LogicalType> types;
	for (auto &column : bind.predicate_columns) {
		if (column.IsRowIdColumn()) {
			ids.push_back(StorageIndex(COLUMN_IDENTIFIER_ROW_ID));
			types.push_back(LogicalType::ROW_TYPE);
		} else {
			ids.push_back(bind.table.GetStorageIndex(column));
			types.push_back(bind.table.GetColumn(LogicalIndex(column.GetPrimaryIndex())).Type());
		}
	}
	auto rowid_slot = ids.size();
	ids.push_back(StorageIndex(COLUMN_IDENTIFIER_ROW_ID));
	types.push_back(LogicalType::ROW_TYPE);

	// The scan applies the pushed-down filters (and may adapt their order): give it a copy.
	auto filters = bind.predicate_filters ? bind.predicate_filters->Copy() : nullptr;
	TableScanState state;
	storage.InitializeScan(context, transaction, state, ids, filters.get());
	DataChunk chunk;
	chunk.Initialize(Allocator::DefaultAllocator(), types);

	unique_ptr<Expression> conjunction;
	for (auto &expression : bind.predicate) {
		if (!conjunction) {
			conjunction = expression->Copy();
		} else {
			conjunction = make_uniq<BoundConjunctionExpression>(ExpressionType::CONJUNCTION_AND, std::move(conjunction),
			                                                    expression->Copy());
		}
	}
	ExpressionExecutor executor(context);
	if (conjunction) {
		executor.AddExpression(*conjunction);
	}
	SelectionVector selected(STANDARD_VECTOR_SIZE);
	while (true) {
		chunk.Reset();
		storage.Scan(transaction, chunk, state);
		if (chunk.size() == 0) {
			break;
		}
		idx_t count = conjunction ? executor.SelectExpression(chunk, selected) : chunk.size();
		UnifiedVectorFormat format;
		ToUnifiedFormat(chunk.data[rowid_slot], chunk.size(), format);
		auto data = UnifiedVectorFormat::GetData<row_t>(format);
		for (idx_t i = 0; i < count; i++) {
			auto row = conjunction ? selected.get_index(i) : i;
			auto row_id = data[format.sel->get_index(row)];
			(row_id >= MAX_ROW_ID ? rows.local : rows.committed).push_back(row_id);
		}
	}
}

HnswFilterSettings FilterSettingsFor(ClientContext &context) {
	HnswFilterSettings settings;
	settings.exact_max_matches = HNSW_FILTER_EXACT_MAX_MATCHES_DEFAULT;
	settings.post_filter_min_selectivity = HNSW_FILTER_POST_FILTER_MIN_SELECTIVITY_DEFAULT;
	Value value;
	if (context.TryGetCurrentSetting("hnsw_filter_exact_max_matches", value) && !value.IsNull()) {
		settings.exact_max_matches = NumericCast<uint64_t>(value.GetValue<int64_t>());
	}
	if (context.TryGetCurrentSetting("hnsw_filter_post_filter_selectivity", value) && !value.IsNull()) {
		settings.post_filter_min_selectivity = value.GetValue<double>();
	}
	settings.overfetch = EffectiveOverfetch(context);
	return settings;
}

//! Validates SET hnsw_filter_exact_max_matches.
static void SetExactMaxMatches(ClientContext &context, SetScope scope, Value &parameter) {
	if (!parameter.IsNull() && parameter.GetValue<int64_t>() < 0) {
		throw InvalidInputException("hnsw_filter_exact_max_matches must be 0 or more, not %lld",
		                            parameter.GetValue<int64_t>());
	}
}

//! Validates SET hnsw_filter_post_filter_selectivity.
static void SetPostFilterSelectivity(ClientContext &context, SetScope scope, Value &parameter) {
	if (parameter.IsNull()) {
		return;
	}
	auto share = parameter.GetValue<double>();
	if (!(share >= 0.0 && share <= 1.0)) {
		throw InvalidInputException("hnsw_filter_post_filter_selectivity must be between 0 and 1, not %s",
		                            parameter.ToString());
	}
}

void RegisterFilterSettings(ExtensionLoader &loader) {
	auto &config = DBConfig::GetConfig(loader.GetDatabaseInstance());
	config.AddExtensionOption(
	    "hnsw_filter_exact_max_matches",
	    "Filtered HNSW searches whose predicate matches at most this many rows compute exact distances over them",
	    LogicalType::BIGINT, Value::BIGINT(HNSW_FILTER_EXACT_MAX_MATCHES_DEFAULT), SetExactMaxMatches);
	config.AddExtensionOption("hnsw_filter_post_filter_selectivity",
	                          "Filtered HNSW searches whose predicate matches at least this share of the rows run "
	                          "the plain graph search keeping only matching rows (below it: the two-hop search)",
	                          LogicalType::DOUBLE, Value::DOUBLE(HNSW_FILTER_POST_FILTER_MIN_SELECTIVITY_DEFAULT),
	                          SetPostFilterSelectivity);
}

} // namespace hnsw
} // namespace duckdb

// The top-k rewrite. After DuckDB's own optimizers, a query
//     SELECT ... FROM t ORDER BY <distance>(t.col, <constant vector>) LIMIT k [OFFSET o]
// is a TOP_N over a PROJECTION (computing the distance) over a full scan of t; with late
// materialization that TOP_N sits on the right side of a SEMI join on rowid whose left side
// scans t again. When t.col has an HNSW index of the matching metric, both scans are replaced by
// HNSW_INDEX_SCAN, which yields only the index's candidate rows. The TOP_N stays: it re-ranks the
// candidates with the exact SQL distance, so results carry the function's real values.
#include "hnsw_bridge.hpp"
#include "hnsw_compat.hpp"
#include "hnsw_index.hpp"
#include "hnsw_index_scan.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/function/table/table_scan.hpp"
#include "duckdb/main/config.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "duckdb/optimizer/optimizer_extension.hpp"
#include "duckdb/planner/expression/bound_columnref_expression.hpp"
#include "duckdb/planner/expression/bound_constant_expression.hpp"
#include "duckdb/planner/expression/bound_function_expression.hpp"
#include "duckdb/planner/operator/logical_comparison_join.hpp"
#include "duckdb/planner/operator/logical_get.hpp"
#include "duckdb/planner/operator/logical_projection.hpp"
#include "duckdb/planner/operator/logical_top_n.hpp"
#include "duckdb/storage/data_table.hpp"
#include "duckdb/storage/table/data_table_info.hpp"
#include "duckdb/storage/table/index_entry.hpp"
#include "duckdb/storage/table/table_index_list.hpp"

namespace duckdb {
namespace hnsw {

//! LIMIT + OFFSET above which the exact plan is kept (a graph search would visit most rows).
static constexpr idx_t MAX_K = 5000;

//! What an ORDER BY expression asks for, once recognised.
struct DistanceOrder {
	string metric;
	const BoundColumnRefExpression *column = nullptr;
	Value query;
};

//! Splits a two-argument array function into (column reference, constant) in either order.
static bool ColumnAndConstant(const BoundFunctionExpression &fn, DistanceOrder &out) {
	auto &children = fn.GetChildren();
	if (children.size() != 2) {
		return false;
	}
	for (idx_t i = 0; i < 2; i++) {
		auto &a = *children[i];
		auto &b = *children[1 - i];
		if (a.GetExpressionClass() == ExpressionClass::BOUND_COLUMN_REF &&
		    b.GetExpressionClass() == ExpressionClass::BOUND_CONSTANT) {
			out.column = &a.Cast<BoundColumnRefExpression>();
			out.query = b.Cast<BoundConstantExpression>().GetValue();
			return true;
		}
	}
	return false;
}

//! Recognises the distance forms and their direction; false means "not an HNSW ordering".
static bool MatchDistance(const Expression &expr, OrderType direction, DistanceOrder &out) {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_FUNCTION) {
		return false;
	}
	auto &fn = expr.Cast<BoundFunctionExpression>();
	auto name = NameText(fn.Function().GetName());
	bool asc = direction == OrderType::ASCENDING;
	if (name == "-" && asc && fn.GetChildren().size() == 2) {
		// 1 - array_cosine_similarity(col, q)
		auto &one = *fn.GetChildren()[0];
		auto &sim = *fn.GetChildren()[1];
		if (one.GetExpressionClass() != ExpressionClass::BOUND_CONSTANT ||
		    sim.GetExpressionClass() != ExpressionClass::BOUND_FUNCTION) {
			return false;
		}
		auto one_value = one.Cast<BoundConstantExpression>().GetValue();
		if (one_value.IsNull() || one_value.DefaultCastAs(LogicalType::DOUBLE).GetValue<double>() != 1.0) {
			return false;
		}
		auto &inner = sim.Cast<BoundFunctionExpression>();
		if (NameText(inner.Function().GetName()) != "array_cosine_similarity") {
			return false;
		}
		out.metric = "cosine";
		return ColumnAndConstant(inner, out);
	}
	if ((name == "array_distance" || name == "array_l2sq_distance") && asc) {
		out.metric = "l2sq";
	} else if (name == "array_cosine_distance" && asc) {
		out.metric = "cosine";
	} else if (name == "array_cosine_similarity" && !asc) {
		out.metric = "cosine";
	} else if (name == "array_negative_inner_product" && asc) {
		out.metric = "ip";
	} else if (name == "array_inner_product" && !asc) {
		out.metric = "ip";
	} else {
		return false;
	}
	return ColumnAndConstant(fn, out);
}

//! A plain full scan of a DuckDB table with no pushed-down filters, or null.
static optional_ptr<TableCatalogEntry> PlainTableScan(LogicalOperator &op) {
	if (op.type != LogicalOperatorType::LOGICAL_GET) {
		return nullptr;
	}
	auto &get = op.Cast<LogicalGet>();
	if (get.function.GetName() != "seq_scan" || !get.bind_data) {
		return nullptr;
	}
	if (get.table_filters.HasFilters() || get.table_filters.HasMultiColumnFilters()) {
		return nullptr; // a WHERE filter: the exact plan keeps its semantics
	}
	auto &table = get.bind_data->Cast<TableScanBindData>().table;
	if (!table.IsDuckTable()) {
		return nullptr;
	}
	return &table;
}

//! Name of a bound HNSW index on the given storage column with the given metric, or "".
static string FindMatchingIndex(TableCatalogEntry &table, const StorageIndex &column, const string &metric,
                                idx_t dims) {
	auto &storage = table.Cast<DuckTableEntry>().GetStorage();
	vector<shared_ptr<IndexEntry>> entries;
	for (const auto &entry : storage.GetDataTableInfo()->GetIndexes().IndexEntries()) {
		entries.push_back(entry);
	}
	for (auto &entry : entries) {
		if (entry->GetIndexType() != HNSWIndex::TYPE_NAME || entry->GetBindState() != IndexBindState::BOUND) {
			continue;
		}
		auto handle = entry->GetReadHandle<HNSWIndex>();
		auto &index = *handle.operator->();
		if (index.GetColumnIds().size() == 1 && index.GetColumnIds()[0] == column.GetPrimaryIndex() &&
		    index.Options().metric_name == metric && index.Dimensions() == dims) {
			return NameText(entry->GetName());
		}
	}
	return string();
}

//! The query constant as floats, or false if it is not a non-NULL numeric array/list.
static bool QueryFloats(const Value &value, vector<float> &out) {
	auto id = value.type().id();
	if (value.IsNull() || (id != LogicalTypeId::ARRAY && id != LogicalTypeId::LIST)) {
		return false;
	}
	auto &children = id == LogicalTypeId::ARRAY ? ArrayValue::GetChildren(value) : ListValue::GetChildren(value);
	for (auto &child : children) {
		if (child.IsNull()) {
			return false;
		}
		out.push_back(child.DefaultCastAs(LogicalType::FLOAT).GetValue<float>());
	}
	return true;
}

//! Replaces a plain table scan's function with HNSW_INDEX_SCAN.
static void UseIndexScan(LogicalGet &get, const HNSWScanBindData &bind) {
	get.function = BoundTableFunction(GetHNSWIndexScanFunction());
	get.bind_data = bind.Copy();
	get.estimated_cardinality = bind.k;
	get.has_estimated_cardinality = true;
}

//! Rewrites TOP_N → PROJECTION → GET; returns the scan's bind data when it did.
static unique_ptr<HNSWScanBindData> TryRewriteTopN(ClientContext &context, LogicalTopN &top_n) {
	if (top_n.orders.size() != 1 || top_n.limit == 0) {
		return nullptr; // several sort keys: the index orders by one distance only
	}
	auto k = top_n.limit + top_n.offset;
	if (top_n.limit > MAX_K || k > MAX_K) {
		return nullptr; // a sensible k bound: beyond it the exact plan is as fast
	}
	auto &projection_op = *top_n.children[0];
	if (projection_op.type != LogicalOperatorType::LOGICAL_PROJECTION) {
		return nullptr;
	}
	auto &projection = projection_op.Cast<LogicalProjection>();
	auto table = PlainTableScan(*projection.children[0]);
	if (!table) {
		return nullptr;
	}
	auto &get = projection.children[0]->Cast<LogicalGet>();
	auto &order = top_n.orders[0];
	if (order.expression->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
		return nullptr;
	}
	auto &order_ref = order.expression->Cast<BoundColumnRefExpression>();
	if (order_ref.Binding().table_index != projection.table_index) {
		return nullptr;
	}
	auto &distance = *projection.expressions[order_ref.Binding().column_index];
	DistanceOrder match;
	if (!MatchDistance(distance, order.type, match)) {
		return nullptr; // not a distance, or the wrong direction for it
	}
	if (match.column->Binding().table_index != get.table_index) {
		return nullptr; // the vector column is not this scan's
	}
	idx_t position = match.column->Binding().column_index;
	if (!get.projection_ids.empty()) {
		position = get.projection_ids[position];
	}
	auto &column = get.GetColumnIds()[position];
	if (column.IsRowIdColumn() || column.IsVirtualColumn()) {
		return nullptr;
	}
	vector<float> query;
	if (!QueryFloats(match.query, query)) {
		return nullptr; // NULL query: the exact plan returns its NULL distances
	}
	auto index_name = FindMatchingIndex(*table, table->GetStorageIndex(column), match.metric, query.size());
	if (index_name.empty()) {
		return nullptr; // no HNSW index with this column and metric
	}
	auto bind = make_uniq<HNSWScanBindData>(*table, index_name, std::move(query), k);
	UseIndexScan(get, *bind);
	return bind;
}

//! Walks the plan bottom-up; returns the bind data of a rewrite inside `op` for its parent.
static unique_ptr<HNSWScanBindData> Rewrite(ClientContext &context, LogicalOperator &op) {
	vector<unique_ptr<HNSWScanBindData>> below;
	for (auto &child : op.children) {
		below.push_back(Rewrite(context, *child));
	}
	if (op.type == LogicalOperatorType::LOGICAL_TOP_N) {
		return TryRewriteTopN(context, op.Cast<LogicalTopN>());
	}
	if (op.type == LogicalOperatorType::LOGICAL_COMPARISON_JOIN && below.size() == 2 && below[1]) {
		// Late materialization: SEMI join of a second full scan with the rewritten top-k on rowid.
		auto &join = op.Cast<LogicalComparisonJoin>();
		auto table = PlainTableScan(*op.children[0]);
		if (join.join_type == JoinType::SEMI && table && table.get() == &below[1]->table) {
			UseIndexScan(op.children[0]->Cast<LogicalGet>(), *below[1]);
		}
		return nullptr;
	}
	// Pass a rewrite up through the projections between the top-k and the join.
	if (op.type == LogicalOperatorType::LOGICAL_PROJECTION && below.size() == 1) {
		return std::move(below[0]);
	}
	return nullptr;
}

static void OptimizeTopN(OptimizerExtensionInput &input, unique_ptr<LogicalOperator> &plan) {
	Rewrite(input.context, *plan);
}

void RegisterTopNOptimizer(ExtensionLoader &loader) {
	OptimizerExtension extension;
	extension.optimize_function = OptimizeTopN;
	OptimizerExtension::Register(DBConfig::GetConfig(loader.GetDatabaseInstance()), extension);
}

} // namespace hnsw
} // namespace duckdb

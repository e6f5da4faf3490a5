// The top-k rewrite. After DuckDB's own optimizers, a query
//     SELECT ... FROM t ORDER BY <distance>(t.col, <constant vector>) LIMIT k [OFFSET o]
// is a TOP_N over a PROJECTION (computing the distance) over a full scan of t; with late
// materialization that TOP_N sits on the right side of a SEMI join on rowid whose left side
// scans t again. When t.col has an HNSW index of the matching metric, the scan becomes
// HNSW_INDEX_SCAN, which yields only the index's candidate rows, and the TOP_N stays: it re-ranks
// the candidates with the exact SQL distance, so results carry the function's real values. The
// SEMI join is then pointless (both sides would be the same candidates) and costs more than the
// search, so it is replaced by a TOP_N directly over the left side, also scanning the index.
#include "hnsw_bridge.hpp"
#include "hnsw_compat.hpp"
#include "hnsw_index.hpp"
#include "hnsw_index_scan.hpp"
#include "hnsw_vectors.hpp"

#include "duckdb/catalog/catalog_entry/duck_table_entry.hpp"
#include "duckdb/function/table/table_scan.hpp"
#include "duckdb/main/config.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "duckdb/optimizer/optimizer.hpp"
#include "duckdb/planner/binder.hpp"
#include "duckdb/optimizer/optimizer_extension.hpp"
#include "duckdb/planner/expression/bound_columnref_expression.hpp"
#include "duckdb/planner/expression/bound_constant_expression.hpp"
#include "duckdb/planner/expression/bound_function_expression.hpp"
#include "duckdb/planner/expression_iterator.hpp"
#include "duckdb/planner/operator/logical_comparison_join.hpp"
#include "duckdb/planner/operator/logical_get.hpp"
#include "duckdb/planner/operator/logical_limit.hpp"
#include "duckdb/planner/operator/logical_order.hpp"
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
	//! The scanned vector column, and the other argument (a constant or a column of another input).
	const BoundColumnRefExpression *column = nullptr;
	const Expression *query = nullptr;
};

//! Splits a two-argument array function into (column of the scan, other argument), either order.
static bool ColumnAndQuery(const BoundFunctionExpression &fn, TableIndex scan, DistanceOrder &out) {
	auto &children = fn.GetChildren();
	if (children.size() != 2) {
		return false;
	}
	for (idx_t i = 0; i < 2; i++) {
		auto &a = *children[i];
		auto &b = *children[1 - i];
		if (a.GetExpressionClass() == ExpressionClass::BOUND_COLUMN_REF &&
		    a.Cast<BoundColumnRefExpression>().Binding().table_index == scan) {
			out.column = &a.Cast<BoundColumnRefExpression>();
			out.query = &b;
			return true;
		}
	}
	return false;
}

//! Recognises the distance forms and their direction; false means "not an HNSW ordering".
static bool MatchDistance(const Expression &expr, OrderType direction, TableIndex scan, DistanceOrder &out) {
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
		return ColumnAndQuery(inner, scan, out);
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
	return ColumnAndQuery(fn, scan, out);
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
	if (get.extra_info.sample_options) {
		return nullptr; // TABLESAMPLE: the index would search rows outside the sample
	}
	for (auto &column : get.GetColumnIds()) {
		if ((column.IsVirtualColumn() && !column.IsRowIdColumn()) || column.HasType()) {
			return nullptr; // virtual columns other than rowid and struct-field pushdowns: not fetchable here
		}
	}
	auto &table = get.bind_data->Cast<TableScanBindData>().table;
	if (!table.IsDuckTable()) {
		return nullptr;
	}
	return &table;
}

//! Name of a bound HNSW index on the given storage column with the given metric, or "". Throws
//! (saying how to rebuild it) if that index's stored data cannot be read.
static string FindMatchingIndex(ClientContext &context, TableCatalogEntry &table, const StorageIndex &column,
                                const string &metric, idx_t dims) {
	auto &storage = table.Cast<DuckTableEntry>().GetStorage();
	BindHNSWIndexes(context, *storage.GetDataTableInfo());
	// Handles are taken under the list's lock (entries in the list are never retired); the
	// pages are loaded after it is released.
	unique_ptr<IndexReadHandle<HNSWIndex>> found;
	string name;
	for (const auto &entry : storage.GetDataTableInfo()->GetIndexes().IndexEntries()) {
		if (entry->GetIndexType() != HNSWIndex::TYPE_NAME || entry->GetBindState() != IndexBindState::BOUND) {
			continue;
		}
		auto handle = entry->GetReadHandle<HNSWIndex>();
		auto &index = *handle.operator->();
		if (index.GetColumnIds().size() == 1 && index.GetColumnIds()[0] == column.GetPrimaryIndex() &&
		    index.Options().metric_name == metric && index.Dimensions() == dims) {
			name = NameText(entry->GetName());
			found = make_uniq<IndexReadHandle<HNSWIndex>>(std::move(handle));
			break;
		}
	}
	if (found) {
		auto &index = *found->operator->();
		// Loads stored pages on first use; throws the rebuild advice if it cannot.
		index.Graph();
		// Later appends (even through an Appender) then find the table.
		index.AttachTable(storage);
	}
	return name;
}

//! Replaces a plain table scan's function with HNSW_INDEX_SCAN.
static void UseIndexScan(LogicalGet &get, const HNSWScanBindData &bind) {
	get.function = BoundTableFunction(GetHNSWIndexScanFunction());
	get.bind_data = bind.Copy();
	get.estimated_cardinality = bind.k;
	get.has_estimated_cardinality = true;
}

//! A rewritten TOP_N, as its parents need it.
struct TopNRewrite {
	unique_ptr<HNSWScanBindData> bind;
	LogicalTopN *top_n = nullptr;
	//! The distance expression over the scan's columns, and the scan it reads.
	const Expression *distance = nullptr;
	TableIndex scan_table_index;
	//! Table column of the indexed vector.
	column_t vector_column = 0;
	//! The TOP_N replaced a late-materialization SEMI join: the ORDER BY that late
	//! materialization put above it only re-sorts the TOP_N's already sorted output.
	bool replaced_join = false;
};

//! Position of a binding among an operator's output bindings, or invalid.
static optional_idx BindingPosition(LogicalOperator &op, const ColumnBinding &binding) {
	auto bindings = op.GetColumnBindings();
	for (idx_t i = 0; i < bindings.size(); i++) {
		if (bindings[i] == binding) {
			return i;
		}
	}
	return optional_idx();
}

//! Turns CROSS_PRODUCT(scan, subquery) into an in-out HNSW scan over the subquery's row: its input
//! is PROJECTION(query vector, subquery columns...), the vector feeds the search and the subquery
//! columns pass through. `above` (the projection that read the subquery) is re-pointed at them.
static void UseInOutScan(unique_ptr<LogicalOperator> &cross_slot, HNSWScanBindData &bind, LogicalProjection &above,
                         Binder &binder, idx_t query_position) {
	auto &cross = *cross_slot;
	auto scan = std::move(cross.children[0]);
	auto &get = scan->Cast<LogicalGet>();
	auto subquery = std::move(cross.children[1]);
	subquery->ResolveOperatorTypes();
	auto bindings = subquery->GetColumnBindings();
	auto types = subquery->types;

	auto input_index = binder.GenerateTableIndex();
	vector<unique_ptr<Expression>> columns;
	columns.push_back(make_uniq<BoundColumnRefExpression>(types[query_position], bindings[query_position]));
	for (idx_t i = 0; i < bindings.size(); i++) {
		columns.push_back(make_uniq<BoundColumnRefExpression>(types[i], bindings[i]));
	}
	auto input = make_uniq<LogicalProjection>(input_index, std::move(columns));
	input->children.push_back(std::move(subquery));
	input->ResolveOperatorTypes();
	for (auto &expression : above.expressions) {
		ExpressionIterator::EnumerateExpression(expression, [&](unique_ptr<Expression> &child) {
			if (child->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
				return;
			}
			auto &ref = child->Cast<BoundColumnRefExpression>();
			for (idx_t i = 0; i < bindings.size(); i++) {
				if (ref.Binding() == bindings[i]) {
					child = make_uniq<BoundColumnRefExpression>(child->GetReturnType(),
					                                            ColumnBinding(input_index, ProjectionIndex(i + 1)));
					return;
				}
			}
		});
	}

	bind.query_column = 0;
	bind.passthrough_columns = bindings.size();
	get.function = BoundTableFunction(GetHNSWIndexScanInOutFunction());
	get.bind_data = bind.Copy();
	get.input_table_types.clear();
	get.input_table_types.push_back(input->types[0]);
	get.input_table_names.clear();
	get.input_table_names.emplace_back("query");
	get.projected_input.clear();
	for (idx_t i = 0; i < bindings.size(); i++) {
		get.projected_input.push_back(i + 1);
	}
	get.children.push_back(std::move(input));
	get.estimated_cardinality = bind.k;
	get.has_estimated_cardinality = true;
	get.ResolveOperatorTypes();
	cross_slot = std::move(scan);
}

//! Rewrites TOP_N → PROJECTION → GET (constant query vector), or TOP_N → PROJECTION →
//! CROSS_PRODUCT(GET, scalar subquery) (query vector from the subquery); returns what it did.
static unique_ptr<TopNRewrite> TryRewriteTopN(ClientContext &context, Binder &binder, LogicalTopN &top_n) {
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
	auto &below = projection.children[0];
	bool from_subquery = below->type == LogicalOperatorType::LOGICAL_CROSS_PRODUCT;
	auto &scan_op = from_subquery ? *below->children[0] : *below;
	auto table = PlainTableScan(scan_op);
	if (!table) {
		return nullptr;
	}
	auto &get = scan_op.Cast<LogicalGet>();
	auto &order = top_n.orders[0];
	if (order.null_order != OrderByNullType::NULLS_LAST) {
		return nullptr; // NULLS FIRST puts the rows without a vector (never indexed) first
	}
	if (order.expression->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
		return nullptr;
	}
	auto &order_ref = order.expression->Cast<BoundColumnRefExpression>();
	if (order_ref.Binding().table_index != projection.table_index) {
		return nullptr;
	}
	auto &distance = *projection.expressions[order_ref.Binding().column_index];
	DistanceOrder match;
	if (!MatchDistance(distance, order.type, get.table_index, match)) {
		return nullptr; // not a distance over this scan, or the wrong direction for it
	}
	// A scan's bindings index its column ids directly (also when projection_ids is set).
	auto &column = get.GetColumnIds()[match.column->Binding().column_index];
	if (column.IsRowIdColumn() || column.IsVirtualColumn()) {
		return nullptr;
	}
	vector<float> query;
	optional_idx query_column;
	idx_t dims;
	if (!from_subquery) {
		if (match.query->GetExpressionClass() != ExpressionClass::BOUND_CONSTANT ||
		    !ValueToFloats(match.query->Cast<BoundConstantExpression>().GetValue(), query)) {
			return nullptr; // not a constant, or NULL: the exact plan handles it
		}
		dims = query.size();
	} else {
		auto &type = match.query->GetReturnType();
		if (match.query->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF ||
		    type.id() != LogicalTypeId::ARRAY || ArrayType::GetChildType(type).id() != LogicalTypeId::FLOAT) {
			return nullptr; // the query is not a FLOAT[n] column of the subquery
		}
		query_column = BindingPosition(*below->children[1], match.query->Cast<BoundColumnRefExpression>().Binding());
		if (!query_column.IsValid()) {
			return nullptr;
		}
		dims = ArrayType::GetSize(type);
	}
	auto index_name = FindMatchingIndex(context, *table, table->GetStorageIndex(column), match.metric, dims);
	if (index_name.empty()) {
		return nullptr; // no HNSW index with this column and metric
	}
	auto result = make_uniq<TopNRewrite>();
	result->bind = make_uniq<HNSWScanBindData>(*table, index_name, std::move(query), k);
	result->top_n = &top_n;
	result->distance = &distance;
	result->scan_table_index = get.table_index;
	result->vector_column = column.GetPrimaryIndex();
	if (from_subquery) {
		UseInOutScan(below, *result->bind, projection, binder, query_column.GetIndex());
		return nullptr; // no late materialization above a cross product
	}
	UseIndexScan(get, *result->bind);
	return result;
}

//! Binding column index (an index into the column ids) of a scan output, or invalid.
static optional_idx OutputBinding(LogicalGet &get, bool rowid, column_t column = 0) {
	auto &ids = get.GetColumnIds();
	auto outputs = get.projection_ids.empty() ? ids.size() : get.projection_ids.size();
	for (idx_t i = 0; i < outputs; i++) {
		idx_t id_index = get.projection_ids.empty() ? i : idx_t(get.projection_ids[i]);
		auto &id = ids[id_index];
		if (rowid ? id.IsRowIdColumn() : (!id.IsVirtualColumn() && id.GetPrimaryIndex() == column)) {
			return id_index;
		}
	}
	return optional_idx();
}

//! True when `expr` is a reference to the rowid output of `get`.
static bool IsRowIdOf(const Expression &expr, LogicalGet &get) {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
		return false;
	}
	auto &binding = expr.Cast<BoundColumnRefExpression>().Binding();
	auto rowid = OutputBinding(get, true);
	return binding.table_index == get.table_index && rowid.IsValid() && binding.column_index == rowid.GetIndex();
}

//! Follows column references down through projections to the expression that computes them.
static const Expression &Resolve(const Expression &expr, LogicalOperator &op) {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF ||
	    op.type != LogicalOperatorType::LOGICAL_PROJECTION) {
		return expr;
	}
	auto &projection = op.Cast<LogicalProjection>();
	auto &binding = expr.Cast<BoundColumnRefExpression>().Binding();
	if (binding.table_index != projection.table_index) {
		return expr;
	}
	return Resolve(*projection.expressions[binding.column_index], *projection.children[0]);
}

//! Replaces SEMI(left scan of t, right: rewritten top-k of t) by TOP_N over the left scan, which
//! then reads the index's candidates too. False (plan unchanged) if the shape does not allow it.
static bool CollapseSemiJoin(unique_ptr<LogicalOperator> &join_op, TopNRewrite &right) {
	if (right.replaced_join || right.top_n->orders.size() != 1) {
		return false;
	}
	auto &join = join_op->Cast<LogicalComparisonJoin>();
	auto table = PlainTableScan(*join.children[0]);
	if (join.join_type != JoinType::SEMI || !table || table.get() != &right.bind->table ||
	    join.conditions.size() != 1) {
		return false;
	}
	auto &left = join.children[0]->Cast<LogicalGet>();
	// Only late materialization's join: left.rowid = the top-k's rowid of the same table. A user's
	// IN (subquery) is a SEMI join too, on other columns.
	auto &condition = join.conditions[0];
	if (!condition.IsComparison() || condition.GetComparisonType() != ExpressionType::COMPARE_EQUAL ||
	    !IsRowIdOf(condition.GetLHS(), left)) {
		return false;
	}
	auto &right_scan = right.top_n->children[0]->children[0]->Cast<LogicalGet>();
	if (!IsRowIdOf(Resolve(condition.GetRHS(), *right.top_n->children[0]), right_scan)) {
		return false;
	}
	auto position = OutputBinding(left, false, right.vector_column);
	if (!position.IsValid()) {
		return false; // the left side does not read the vector column
	}
	// The same distance, over the left scan's copy of the vector column.
	auto distance = right.distance->Copy();
	ExpressionIterator::EnumerateExpression(distance, [&](unique_ptr<Expression> &child) {
		if (child->GetExpressionClass() == ExpressionClass::BOUND_COLUMN_REF &&
		    child->Cast<BoundColumnRefExpression>().Binding().table_index == right.scan_table_index) {
			child = make_uniq<BoundColumnRefExpression>(
			    child->GetReturnType(), ColumnBinding(left.table_index, ProjectionIndex(position.GetIndex())));
		}
	});
	auto &order = right.top_n->orders[0];
	vector<BoundOrderByNode> orders;
	orders.emplace_back(order.type, order.null_order, std::move(distance));
	auto top_n = make_uniq<LogicalTopN>(std::move(orders), right.top_n->limit, right.top_n->offset);
	UseIndexScan(left, *right.bind);
	top_n->children.push_back(std::move(join.children[0]));
	top_n->ResolveOperatorTypes();
	top_n->estimated_cardinality = right.top_n->limit;
	top_n->has_estimated_cardinality = true;
	right.top_n = top_n.get();
	right.distance = nullptr; // it lived in the subtree the new TOP_N replaces
	right.replaced_join = true;
	join_op = std::move(top_n);
	return true;
}

//! Drops the ORDER BY above a TOP_N that replaced a SEMI join: it sorts the same rows by the
//! same key the TOP_N already sorted them by, and its operator costs more than the search.
static bool DropRedundantOrder(unique_ptr<LogicalOperator> &order_op, const TopNRewrite &below) {
	auto &order = order_op->Cast<LogicalOrder>();
	if (!below.replaced_join || order.orders.size() != 1 || !order.projection_map.empty() ||
	    order.orders[0].type != below.top_n->orders[0].type ||
	    order.orders[0].null_order != below.top_n->orders[0].null_order) {
		return false;
	}
	// Same key: the ORDER's expression, followed down through the projections, is the TOP_N's.
	if (!Resolve(*order.orders[0].expression, *order.children[0]).Equals(*below.top_n->orders[0].expression)) {
		return false;
	}
	order_op = std::move(order_op->children[0]);
	return true;
}

//! Walks the plan bottom-up; returns a rewrite inside `op` for its parent to build on.
static unique_ptr<TopNRewrite> Rewrite(ClientContext &context, Binder &binder, unique_ptr<LogicalOperator> &op) {
	vector<unique_ptr<TopNRewrite>> below;
	for (auto &child : op->children) {
		below.push_back(Rewrite(context, binder, child));
	}
	if (op->type == LogicalOperatorType::LOGICAL_TOP_N) {
		return TryRewriteTopN(context, binder, op->Cast<LogicalTopN>());
	}
	if (op->type == LogicalOperatorType::LOGICAL_COMPARISON_JOIN && below.size() == 2 && below[1]) {
		return CollapseSemiJoin(op, *below[1]) ? std::move(below[1]) : nullptr;
	}
	if (op->type == LogicalOperatorType::LOGICAL_ORDER_BY && below.size() == 1 && below[0]) {
		DropRedundantOrder(op, *below[0]);
		return nullptr;
	}
	// Pass a rewrite up through the projections between the top-k and the join.
	if (op->type == LogicalOperatorType::LOGICAL_PROJECTION && below.size() == 1) {
		return std::move(below[0]);
	}
	return nullptr;
}

//! Before DuckDB's optimizers: LIMIT → ORDER BY <distance> → PROJECTION... → GET of a column with
//! a matching HNSW index. Late materialization would turn that scan into a SEMI join that the
//! rewrite then has to undo; planning the join costs more than the whole index search, so the
//! scan is told not to take part (only this query's copy of the scan function).
static void KeepScanForIndex(ClientContext &context, LogicalOperator &op) {
	for (auto &child : op.children) {
		KeepScanForIndex(context, *child);
	}
	if (op.type != LogicalOperatorType::LOGICAL_LIMIT || op.children.size() != 1 ||
	    op.children[0]->type != LogicalOperatorType::LOGICAL_ORDER_BY) {
		return; // not an ORDER BY ... LIMIT
	}
	auto &limit = op.Cast<LogicalLimit>();
	if (limit.limit_val.Type() != LimitNodeType::CONSTANT_VALUE ||
	    (limit.offset_val.Type() != LimitNodeType::UNSET && limit.offset_val.Type() != LimitNodeType::CONSTANT_VALUE)) {
		return; // LIMIT n% or an expression: never rewritten
	}
	auto k = limit.limit_val.GetConstantValue();
	auto offset = limit.offset_val.Type() == LimitNodeType::CONSTANT_VALUE ? limit.offset_val.GetConstantValue() : 0;
	if (k > MAX_K || offset > MAX_K - k) {
		return; // beyond the k bound the rewrite keeps the exact plan
	}
	auto &order = op.children[0]->Cast<LogicalOrder>();
	if (order.orders.size() != 1 || order.orders[0].null_order == OrderByNullType::NULLS_FIRST) {
		return; // several sort keys or NULLS FIRST: never rewritten
	}
	reference<LogicalOperator> scan = *order.children[0];
	while (scan.get().type == LogicalOperatorType::LOGICAL_PROJECTION) {
		scan = *scan.get().children[0];
	}
	auto table = PlainTableScan(scan.get());
	if (!table) {
		return; // a filter or something else between the sort and the scan
	}
	auto &get = scan.get().Cast<LogicalGet>();
	DistanceOrder distance;
	auto &key = Resolve(*order.orders[0].expression, *order.children[0]);
	if (!MatchDistance(key, order.orders[0].type, get.table_index, distance)) {
		return; // not a distance over this scan, or the wrong direction
	}
	auto column_index = distance.column->Binding().column_index;
	if (column_index >= get.GetColumnIds().size() || distance.column->GetReturnType().id() != LogicalTypeId::ARRAY) {
		return;
	}
	auto storage = table->GetStorageIndex(get.GetColumnIds()[column_index]);
	auto dims = ArrayType::GetSize(distance.column->GetReturnType());
	try {
		if (FindMatchingIndex(context, *table, storage, distance.metric, dims).empty()) {
			return; // no HNSW index for this column and metric
		}
	} catch (std::exception &) {
		return; // an unusable index: the rewrite reports it
	}
	get.function.late_materialization = false;
}

static void PreOptimizeTopN(OptimizerExtensionInput &input, unique_ptr<LogicalOperator> &plan) {
	KeepScanForIndex(input.context, *plan);
}

static void OptimizeTopN(OptimizerExtensionInput &input, unique_ptr<LogicalOperator> &plan) {
	Rewrite(input.context, input.optimizer.binder, plan);
}

void RegisterTopNOptimizer(ExtensionLoader &loader) {
	OptimizerExtension extension;
	extension.pre_optimize_function = PreOptimizeTopN;
	extension.optimize_function = OptimizeTopN;
	OptimizerExtension::Register(DBConfig::GetConfig(loader.GetDatabaseInstance()), extension);
}

} // namespace hnsw
} // namespace duckdb

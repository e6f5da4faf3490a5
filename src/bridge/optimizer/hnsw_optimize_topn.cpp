// The top-k rewrite, after DuckDB's own optimizers:
//
//     TOP_N k by d                                    TOP_N k by d
//       PROJECTION d = <distance>(t.col, q)    ==>      PROJECTION d = <distance>(t.col, q)
//         GET t (every row)                               HNSW_INDEX_SCAN t (the candidates)
//
// The TOP_N stays: it re-ranks the index's candidates with the exact SQL distance, so results
// carry the function's real values. With q from a scalar subquery or CTE value the GET sits under
// CROSS_PRODUCT(GET t, subquery), which becomes an in-out HNSW_INDEX_SCAN fed by the subquery's
// row. What the rewrite recognises is in hnsw_topn_match.cpp; the late-materialization join DuckDB
// may put around the TOP_N is undone in hnsw_late_materialization.cpp.
#include "hnsw_bridge.hpp"
#include "optimizer/hnsw_topn.hpp"
#include "hnsw_compat.hpp"

#include "duckdb/main/config.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "duckdb/optimizer/optimizer.hpp"
#include "duckdb/optimizer/optimizer_extension.hpp"
#include "duckdb/planner/binder.hpp"
#include "duckdb/planner/expression_iterator.hpp"
#include "duckdb/planner/operator/logical_projection.hpp"

namespace duckdb {
namespace hnsw {

//! Position of a binding among an operator's output bindings, or invalid.
optional_idx BindingPosition(LogicalOperator &op, const ColumnBinding &binding) {
	auto bindings = op.GetColumnBindings();
	for (idx_t i = 0; i < bindings.size(); i++) {
		if (bindings[i] == binding) {
			return i;
		}
	}
	return optional_idx();
}

//! Turns CROSS_PRODUCT(scan, outer rows) into an in-out HNSW scan over the outer rows: its input
//! is PROJECTION(query vector, outer columns...). The scan searches for a whole input chunk at
//! once, on all threads, and emits each outer row's candidates with that row's outer columns,
//! which become extra columns of the scan (after the table's). `above` (the projection that read
//! the cross product) is re-pointed at them.
void UseInOutScan(unique_ptr<LogicalOperator> &cross_slot, HNSWScanBindData &bind, LogicalProjection &above,
                  Binder &binder, idx_t query_position) {
	auto &cross = *cross_slot;
	auto scan = std::move(cross.children[0]);
	auto &get = scan->Cast<LogicalGet>();
	PrepareInOutProjection(get);
	auto outer = std::move(cross.children[1]);
	outer->ResolveOperatorTypes();
	auto bindings = outer->GetColumnBindings();
	auto types = outer->types;

	auto input_index = binder.GenerateTableIndex();
	vector<unique_ptr<Expression>> columns;
	columns.push_back(make_uniq<BoundColumnRefExpression>(types[query_position], bindings[query_position]));
	for (idx_t i = 0; i < bindings.size(); i++) {
		columns.push_back(make_uniq<BoundColumnRefExpression>(types[i], bindings[i]));
	}
	auto input = make_uniq<LogicalProjection>(input_index, std::move(columns));
	input->children.push_back(std::move(outer));
	input->ResolveOperatorTypes();

	// The outer columns as columns of the scan: ids from the table's column count on.
	bind.query_column = 0;
	bind.passthrough_base = get.returned_types.size();
	vector<ColumnBinding> passed;
	for (idx_t i = 0; i < bindings.size(); i++) {
		get.returned_types.push_back(types[i]);
		get.names.push_back(Identifier("hnsw_outer_" + to_string(i)));
		auto &ids = get.GetMutableColumnIds();
		ids.emplace_back(bind.passthrough_base + i);
		auto position = ids.size() - 1;
		if (!get.projection_ids.empty()) {
			get.projection_ids.emplace_back(position);
		}
		passed.emplace_back(get.table_index, ProjectionIndex(position));
	}
	for (auto &expression : above.expressions) {
		ExpressionIterator::EnumerateExpression(expression, [&](unique_ptr<Expression> &child) {
			if (child->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
				return;
			}
			auto &ref = child->Cast<BoundColumnRefExpression>();
			for (idx_t i = 0; i < bindings.size(); i++) {
				if (BindingOf(ref) == bindings[i]) {
					child = make_uniq<BoundColumnRefExpression>(ReturnType(*child), passed[i]);
					return;
				}
			}
		});
	}

	SetScanFunction(get, GetHNSWIndexScanInOutFunction());
	get.bind_data = bind.Copy();
	get.input_table_types.clear();
	get.input_table_types.push_back(input->types[0]);
	get.input_table_names.clear();
	get.input_table_names.emplace_back("query");
	get.projected_input.clear();
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
	// A WHERE clause: FILTER operators (and projections DuckDB put between) above the scan.
	vector<reference<LogicalFilter>> filters;
	auto scan_slot = from_subquery ? &below->children[0] : &below;
	while (!from_subquery && ((*scan_slot)->type == LogicalOperatorType::LOGICAL_PROJECTION ||
	                          (*scan_slot)->type == LogicalOperatorType::LOGICAL_FILTER)) {
		if ((*scan_slot)->type == LogicalOperatorType::LOGICAL_FILTER) {
			filters.push_back((*scan_slot)->Cast<LogicalFilter>());
		}
		scan_slot = &(*scan_slot)->children[0];
	}
	auto &scan_op = **scan_slot;
	auto table = PlainTableScan(scan_op, true);
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
	if (BindingOf(order_ref).table_index != projection.table_index) {
		return nullptr;
	}
	// The distance over the scan's own columns (through any projections in between).
	auto distance = InlineProjections(*projection.expressions[BindingOf(order_ref).column_index], *below);
	DistanceOrder match;
	if (!MatchDistance(*distance, order.type, get.table_index, match)) {
		return nullptr; // not a distance over this scan, or the wrong direction for it
	}
	optional_idx query_column;
	auto result = make_uniq<TopNRewrite>();
	result->bind =
	    BindSearch(context, *table, get, match, from_subquery ? below->children[1].get() : nullptr, k, query_column);
	if (!result->bind) {
		return nullptr;
	}
	if (!TakePredicate(*scan_slot, filters, *distance, order.type, !from_subquery, *result->bind)) {
		return nullptr; // a conjunct the scan cannot evaluate (volatile, or over another input)
	}
	result->top_n = &top_n;
	result->resolved_distance = std::move(distance);
	result->distance = result->resolved_distance.get();
	result->scan_table_index = get.table_index;
	if (from_subquery) {
		UseInOutScan(below, *result->bind, projection, binder, query_column.GetIndex());
		return nullptr; // no late materialization above a cross product
	}
	UseIndexScan(get, *result->bind);
	return result;
}

//! Walks the plan bottom-up; returns a rewrite inside `op` for its parent to build on.
static unique_ptr<TopNRewrite> Rewrite(ClientContext &context, Binder &binder, unique_ptr<LogicalOperator> &op,
                                       vector<FusedJoin> &fused) {
	vector<unique_ptr<TopNRewrite>> below;
	for (auto &child : op->children) {
		below.push_back(Rewrite(context, binder, child, fused));
	}
	if (op->type == LogicalOperatorType::LOGICAL_TOP_N) {
		return TryRewriteTopN(context, binder, op->Cast<LogicalTopN>());
	}
	if (op->type == LogicalOperatorType::LOGICAL_AGGREGATE_AND_GROUP_BY) {
		TryRewriteTopKAggregate(context, binder, op->Cast<LogicalAggregate>());
		return nullptr;
	}
	if (op->type == LogicalOperatorType::LOGICAL_COMPARISON_JOIN && below.size() == 2 && below[1]) {
		return CollapseSemiJoin(op, *below[1]) ? std::move(below[1]) : nullptr;
	}
	if (op->type == LogicalOperatorType::LOGICAL_COMPARISON_JOIN) {
		TryFuseLateralTopK(op, binder, fused);
		return nullptr;
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

static void PreOptimizeTopN(OptimizerExtensionInput &input, unique_ptr<LogicalOperator> &plan) {
	KeepScanForIndex(input.context, *plan);
}

static void OptimizeTopN(OptimizerExtensionInput &input, unique_ptr<LogicalOperator> &plan) {
	vector<FusedJoin> fused;
	Rewrite(input.context, input.optimizer.binder, plan, fused);
	if (!fused.empty()) {
		RebindFusedJoins(*plan, fused);
	}
}

void RegisterTopNOptimizer(ExtensionLoader &loader) {
	OptimizerExtension extension;
	extension.pre_optimize_function = PreOptimizeTopN;
	extension.optimize_function = OptimizeTopN;
	OptimizerExtension::Register(DBConfig::GetConfig(loader.GetDatabaseInstance()), extension);
}
} // namespace hnsw
} // namespace duckdb

// DuckDB's late materialization and the top-k rewrite. For
//     SELECT ... FROM t ORDER BY <distance>(t.col, q) LIMIT k
// late materialization plans a SEMI join on rowid: a full scan of t on one side, the top-k over
// a second scan on the other. Once the index answers the top-k, the join would only intersect
// the candidates with the whole table, at a higher cost than the search. The pre-optimizer hook
// keeps such scans out of late materialization; where the join exists anyway it is collapsed:
//
//     ORDER BY d                                 (dropped: already sorted)
//       PROJECTION                                 PROJECTION
//         SEMI JOIN t.rowid = t'.rowid    ==>        TOP_N k by d
//           GET t                                      HNSW_INDEX_SCAN t
//           TOP_N k by d
//             PROJECTION d, rowid
//               HNSW_INDEX_SCAN t'
#include "optimizer/hnsw_topn.hpp"
#include "hnsw_compat.hpp"

#include "duckdb/planner/expression_iterator.hpp"
#include "duckdb/planner/operator/logical_comparison_join.hpp"
#include "duckdb/planner/operator/logical_limit.hpp"
#include "duckdb/planner/operator/logical_order.hpp"
#include "duckdb/planner/operator/logical_projection.hpp"

namespace duckdb {
namespace hnsw {

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
	auto &binding = BindingOf(expr.Cast<BoundColumnRefExpression>());
	auto rowid = OutputBinding(get, true);
	return binding.table_index == get.table_index && rowid.IsValid() && binding.column_index == rowid.GetIndex();
}

//! Follows column references down through projections to the expression that computes them.
const Expression &Resolve(const Expression &expr, LogicalOperator &op) {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF ||
	    op.type != LogicalOperatorType::LOGICAL_PROJECTION) {
		return expr;
	}
	auto &projection = op.Cast<LogicalProjection>();
	auto &binding = BindingOf(expr.Cast<BoundColumnRefExpression>());
	if (binding.table_index != projection.table_index) {
		return expr;
	}
	return Resolve(*projection.expressions[binding.column_index], *projection.children[0]);
}

//! Replaces SEMI(left scan of t, right: rewritten top-k of t) by TOP_N over the left scan, which
//! then reads the index's candidates too. False (plan unchanged) if the shape does not allow it.
bool CollapseSemiJoin(unique_ptr<LogicalOperator> &join_op, TopNRewrite &right) {
	if (right.replaced_join || right.top_n->orders.size() != 1 || right.bind->filtered) {
		return false; // (a filtered top-k keeps the join: the left scan does not apply the WHERE clause)
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
	ExpressionType comparison;
	const Expression *lhs, *rhs;
	if (!JoinConditionParts(join.conditions[0], comparison, lhs, rhs) || comparison != ExpressionType::COMPARE_EQUAL ||
	    !IsRowIdOf(*lhs, left)) {
		return false;
	}
	auto &right_below = *right.top_n->children[0]->children[0];
	if (right_below.type != LogicalOperatorType::LOGICAL_GET) {
		return false;
	}
	auto &right_scan = right_below.Cast<LogicalGet>();
	if (!IsRowIdOf(Resolve(*rhs, *right.top_n->children[0]), right_scan)) {
		return false;
	}
	auto position = OutputBinding(left, false, right.bind->vector_column);
	if (!position.IsValid()) {
		return false; // the left side does not read the vector column
	}
	// The same distance, over the left scan's copy of the vector column.
	auto distance = right.distance->Copy();
	ExpressionIterator::EnumerateExpression(distance, [&](unique_ptr<Expression> &child) {
		if (child->GetExpressionClass() == ExpressionClass::BOUND_COLUMN_REF &&
		    BindingOf(child->Cast<BoundColumnRefExpression>()).table_index == right.scan_table_index) {
			child = make_uniq<BoundColumnRefExpression>(
			    ReturnType(*child), ColumnBinding(left.table_index, ProjectionIndex(position.GetIndex())));
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
bool DropRedundantOrder(unique_ptr<LogicalOperator> &order_op, const TopNRewrite &below) {
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

//! Before DuckDB's optimizers: LIMIT → ORDER BY <distance> → PROJECTION/FILTER... → GET of a column with
//! a matching HNSW index. Late materialization would turn that scan into a SEMI join that the
//! rewrite then has to undo; planning the join costs more than the whole index search, so the
//! scan is told not to take part (only this query's copy of the scan function).
void KeepScanForIndex(ClientContext &context, LogicalOperator &op) {
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
	while (scan.get().type == LogicalOperatorType::LOGICAL_PROJECTION ||
	       scan.get().type == LogicalOperatorType::LOGICAL_FILTER) {
		if (scan.get().type == LogicalOperatorType::LOGICAL_FILTER) {
			for (auto &expression : scan.get().expressions) {
				if (expression->IsVolatile()) {
					return; // the rewrite keeps the exact plan for volatile predicates
				}
			}
		}
		scan = *scan.get().children[0];
	}
	auto table = PlainTableScan(scan.get());
	if (!table) {
		return; // something else between the sort and the scan
	}
	auto &get = scan.get().Cast<LogicalGet>();
	DistanceOrder distance;
	auto key = InlineProjections(*order.orders[0].expression, *order.children[0]);
	if (!MatchDistance(*key, order.orders[0].type, get.table_index, distance)) {
		return; // not a distance over this scan, or the wrong direction
	}
	auto column_index = BindingOf(*distance.column).column_index;
	if (column_index >= get.GetColumnIds().size() || ReturnType(*distance.column).id() != LogicalTypeId::ARRAY) {
		return;
	}
	auto storage = table->GetStorageIndex(get.GetColumnIds()[column_index]);
	auto dims = ArrayType::GetSize(ReturnType(*distance.column));
	try {
		if (FindMatchingIndex(context, *table, storage, distance.metric, dims).empty()) {
			return; // no HNSW index for this column and metric
		}
	} catch (std::exception &) {
		return; // an unusable index: the rewrite reports it
	}
	get.function.late_materialization = false;
}

} // namespace hnsw
} // namespace duckdb

// Many queries in one statement: the k nearest rows per group, written as an aggregate
// (`min_by(x, <distance>, k)`, `arg_min`, `max_by` / `arg_max` for similarities), which is also how
// DuckDB plans a LATERAL top-k join (`arg_min_nulls_last` grouped by the outer vector):
//
//     AGGREGATE [groups: outer columns]                   AGGREGATE (unchanged)
//       min_by(x, <distance>(t.v, o.q), k)                  PROJECTION ...
//       PROJECTION ...                          ==>           HNSW_INDEX_SCAN t (in-out: one search
//         CROSS_PRODUCT                                         per outer row, its columns passed
//           GET t                                               through)
//           <outer rows>                                          <outer rows>
//
// The aggregate ranks each outer row's candidates with the exact SQL distance and keeps k, so the
// answer is the exact plan's, over the candidates. Ungrouped with a constant query vector, the
// GET alone becomes the index scan (with a WHERE clause over t: a filtered search).
#include "optimizer/hnsw_topn.hpp"
#include "hnsw_compat.hpp"

#include "duckdb/planner/expression/bound_aggregate_expression.hpp"
#include "duckdb/planner/expression/bound_constant_expression.hpp"
#include "duckdb/planner/expression_iterator.hpp"

namespace duckdb {
namespace hnsw {

//! Recognises min_by / arg_min / max_by / arg_max (and DuckDB's *_nulls_last forms) with an
//! optional constant k; returns the ordering key resolved over the scans below `input`.
bool MatchTopKAggregate(const Expression &expr, LogicalOperator &input, unique_ptr<Expression> &key,
                        OrderType &direction, idx_t &k) {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_AGGREGATE) {
		return false;
	}
	auto &aggregate = expr.Cast<BoundAggregateExpression>();
	if (aggregate.IsDistinct() || HasFilterOrOrderBy(aggregate)) {
		return false; // DISTINCT, FILTER (WHERE ...) or ORDER BY inside the aggregate see other rows
	}
	auto name = FunctionName(aggregate);
	if (name == "min_by" || name == "arg_min" || name == "arg_min_nulls_last") {
		direction = OrderType::ASCENDING;
	} else if (name == "max_by" || name == "arg_max" || name == "arg_max_nulls_last") {
		direction = OrderType::DESCENDING;
	} else {
		return false; // any other aggregate needs every row
	}
	auto &children = Children(aggregate);
	if (children.size() == 2) {
		k = 1;
	} else if (children.size() == 3) {
		auto count = InlineProjections(*children[2], input);
		if (count->GetExpressionClass() != ExpressionClass::BOUND_CONSTANT) {
			return false;
		}
		auto value = ConstantValue(count->Cast<BoundConstantExpression>());
		if (value.IsNull() || !value.type().IsIntegral()) {
			return false;
		}
		auto n = value.DefaultCastAs(LogicalType::BIGINT).GetValue<int64_t>();
		if (n < 1 || n > int64_t(MAX_K)) {
			return false; // the aggregate's own error, or beyond the k bound: the exact plan
		}
		k = idx_t(n);
	} else {
		return false;
	}
	key = InlineProjections(*children[1], input);
	return true;
}

//! first() / any_value() without DISTINCT, FILTER or ORDER BY.
static bool IsFirstValue(const Expression &expr) {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_AGGREGATE) {
		return false;
	}
	auto &aggregate = expr.Cast<BoundAggregateExpression>();
	auto name = FunctionName(aggregate);
	return (name == "first" || name == "any_value" || name == "arbitrary") && !aggregate.IsDistinct() &&
	       !HasFilterOrOrderBy(aggregate);
}

//! True when `expr` reads a column of the scan with table index `table`.
static bool ReadsScan(const Expression &expr, TableIndex table) {
	bool reads = false;
	ExpressionIterator::VisitExpression<BoundColumnRefExpression>(
	    expr, [&](const BoundColumnRefExpression &column) { reads = reads || BindingOf(column).table_index == table; });
	return reads;
}

//! Removes projections of plain column references (query_table() and views put one over a
//! table) from the top of `child`, one input of the cross product that `above` alone reads:
//! `above` then reads the columns below them directly. Only renames bindings.
static void SkipColumnProjections(unique_ptr<LogicalOperator> &child, LogicalProjection &above) {
	while (child->type == LogicalOperatorType::LOGICAL_PROJECTION) {
		auto &projection = child->Cast<LogicalProjection>();
		for (auto &expression : projection.expressions) {
			if (expression->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
				return; // it computes something
			}
		}
		for (auto &expression : above.expressions) {
			ExpressionIterator::EnumerateExpression(expression, [&](unique_ptr<Expression> &ref) {
				if (ref->GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
					return;
				}
				auto &binding = BindingOf(ref->Cast<BoundColumnRefExpression>());
				if (binding.table_index == projection.table_index) {
					ref = projection.expressions[binding.column_index]->Copy();
				}
			});
		}
		child = std::move(projection.children[0]);
	}
}

void TryRewriteTopKAggregate(ClientContext &context, Binder &binder, LogicalAggregate &aggregate) {
	if (aggregate.expressions.empty() || aggregate.grouping_sets.size() > 1 || !aggregate.grouping_functions.empty()) {
		return; // GROUPING SETS / ROLLUP: groups that span outer rows
	}
	// Down through projections (and, over the table alone, filters) to the scan.
	vector<reference<LogicalFilter>> filters;
	optional_ptr<LogicalProjection> above;
	auto slot = &aggregate.children[0];
	while ((*slot)->type == LogicalOperatorType::LOGICAL_PROJECTION ||
	       (*slot)->type == LogicalOperatorType::LOGICAL_FILTER) {
		if ((*slot)->type == LogicalOperatorType::LOGICAL_FILTER) {
			filters.push_back((*slot)->Cast<LogicalFilter>());
			above = nullptr;
		} else {
			above = &(*slot)->Cast<LogicalProjection>();
		}
		slot = &(*slot)->children[0];
	}
	bool cross = (*slot)->type == LogicalOperatorType::LOGICAL_CROSS_PRODUCT;
	if (cross && (!above || !filters.empty())) {
		return; // the in-out scan needs the projection that reads the cross product
	}
	if (cross) {
		auto &children = (*slot)->children;
		SkipColumnProjections(children[0], *above);
		SkipColumnProjections(children[1], *above);
		if (!PlainTableScan(*children[0], true) && PlainTableScan(*children[1], true)) {
			std::swap(children[0], children[1]); // the indexed table on the left
		}
	}
	auto &input = *aggregate.children[0];
	unique_ptr<Expression> key;
	OrderType direction = OrderType::ASCENDING;
	idx_t k = 0;
	// first() / any_value() of outer columns (DuckDB adds one when it flattens a correlated
	// aggregate): one value per outer row, whichever of its rows it sees.
	vector<unique_ptr<Expression>> outer_only;
	for (auto &expression : aggregate.expressions) {
		unique_ptr<Expression> this_key;
		OrderType this_direction;
		idx_t this_k;
		if (IsFirstValue(*expression)) {
			for (auto &child : Children(expression->Cast<BoundAggregateExpression>())) {
				outer_only.push_back(InlineProjections(*child, input));
			}
			continue;
		}
		if (!MatchTopKAggregate(*expression, input, this_key, this_direction, this_k)) {
			return; // an aggregate that is not a top-k by distance
		}
		if (key && (!key->Equals(*this_key) || this_direction != direction)) {
			return; // top-k by different keys
		}
		key = std::move(this_key);
		direction = this_direction;
		k = MaxValue(k, this_k);
	}
	if (!key) {
		return; // no top-k among the aggregates
	}
	auto get_slot = cross ? &(*slot)->children[0] : slot;
	auto table = PlainTableScan(**get_slot, true);
	if (!table) {
		return;
	}
	auto &get = (*get_slot)->Cast<LogicalGet>();
	DistanceOrder match;
	if (!MatchDistance(*key, direction, get.table_index, match)) {
		return; // not a distance over this table, or the wrong direction for it
	}
	for (auto &group : aggregate.groups) {
		if (ReadsScan(*InlineProjections(*group, input), get.table_index)) {
			return; // grouped by the table's own columns: not one top-k per query
		}
	}
	for (auto &expression : outer_only) {
		if (ReadsScan(*expression, get.table_index)) {
			return; // first() of the table's columns depends on which rows it sees
		}
	}
	optional_idx query_column;
	auto bind = BindSearch(context, *table, get, match, cross ? (*slot)->children[1].get() : nullptr, k, query_column);
	if (!bind) {
		return;
	}
	if (!TakePredicate(*get_slot, filters, *key, direction, !cross, *bind)) {
		return; // a conjunct the scan cannot evaluate
	}
	if (cross) {
		UseInOutScan(*slot, *bind, *above, binder, query_column.GetIndex());
	} else {
		UseIndexScan(get, *bind);
	}
}

} // namespace hnsw
} // namespace duckdb
